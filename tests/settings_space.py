"""Hypothesis strategies for a lesson's settings, drawn from the ranges its own flags check.

The ranges are read from the lesson's argparse parser (each flag's type carries its range: see
_cli.in_range, _cli.comma_list, _flags.pair), so a range changed there is explored here at once.
`lesson_flags` draws an argv; `run_quickly` runs the lesson with it, in this process, as a terminal
would; `check_generic` checks what every run must do at every setting.
"""

import json
import math
import re
from pathlib import Path

from hypothesis import strategies as st

import _flags
from conftest import lesson_settings, run_in_terminal

NOT_DRAWN = {"OUT_DIR", "PLOTS"}  # where the pictures go, and whether there are any: run_quickly draws none


def parser_of(filename):
    settings = lesson_settings(filename)
    return _flags.parser_for(filename.removesuffix(".py"), settings)


def explored_actions(filename):
    """The lesson's flags that set a setting, each with its parsing type (which carries its range)."""
    return [action for action in parser_of(filename)._actions
            if action.dest.isupper() and action.dest not in NOT_DRAWN]


def number_text(parse, limit=None):
    """A number in the range `parse` checks (narrowed to `limit`), as the text a learner would type."""
    low, high = parse.low, parse.high
    if limit is not None:
        low, high = max(low, limit[0]), min(high, limit[1])
    if parse.kind is int:
        return st.integers(low, high).map(str)
    open_high = getattr(parse, "high_open", False) and high == parse.high
    return st.floats(low, high, exclude_max=open_high, allow_nan=False).map(repr)


def list_text(parse, limit=None):
    """1 to `most` comma-separated items (`least` 0 means the list may be `none`)."""
    items = st.lists(number_text(parse.item, limit), min_size=max(parse.least, 1), max_size=parse.most)
    joined = items.map(",".join)
    return st.one_of(st.just("none"), joined) if parse.least == 0 else joined


def value_text(action, limit=None):
    if isinstance(limit, st.SearchStrategy):
        return limit
    if action.choices is not None:
        return st.sampled_from(list(action.choices))
    if hasattr(action.type, "item"):
        return list_text(action.type, limit)
    return number_text(action.type, limit)


def lesson_flags(filename, limits=None, fixed=()):
    """A strategy of argv lists for the lesson: each flag left out (its default) or drawn from its range.

    `limits` maps a setting's name (its flag's dest, e.g. "EPOCHS") to (low, high), narrowing its range
    to keep a run quick (such a flag is always drawn, as its default may lie outside), to a strategy of
    texts, or to None to leave that flag out; `fixed` is appended.
    """
    limits = limits or {}
    flags = []
    for action in explored_actions(filename):
        if action.dest in limits and limits[action.dest] is None:
            continue
        text = value_text(action, limits.get(action.dest))
        if action.dest not in limits:  # left out, the flag keeps its default; a narrowed one is always drawn
            text = st.one_of(st.none(), text)
        flags.append(text.map(lambda value, option=action.option_strings[0]:
                                                     None if value is None else f"{option}={value}"))
    return st.tuples(*flags).map(lambda drawn: [flag for flag in drawn if flag is not None] + list(fixed))


def out_of_range_flag(filename):
    """A strategy of (option, argv) with one flag given a value its range refuses."""
    def bad_values(action):
        parse = action.type
        if action.choices is not None:
            return st.just("nowhere")
        if hasattr(parse, "item"):
            parse = parse.item
        bad = [st.sampled_from(["abc", "", "nan", "1,,2" if hasattr(action.type, "item") else "1.5.2"])]
        if parse.high < math.inf:
            above = parse.high + (1 if parse.kind is int else max(abs(parse.high) * 1e-3, 1e-3))
            bad.append(st.just(repr(above)) if not getattr(parse, "high_open", False) else st.just(repr(parse.high)))
        if parse.low > -math.inf:
            bad.append(st.just(repr(parse.low - (1 if parse.kind is int else max(abs(parse.low) * 1e-3, 1e-3)))))
        return st.one_of(*bad)

    actions = [action for action in explored_actions(filename) if action.type is not None or action.choices]
    return st.sampled_from(actions).flatmap(
        lambda action: bad_values(action).map(lambda value: (action.option_strings[0],
                                                             [f"{action.option_strings[0]}={value}"])))


def run_quickly(filename, argv):
    """Run the lesson with `argv`, no pictures and --json, in this process as a terminal would.

    Returns (exit status, stdout, stderr, the --json report or None).
    """
    status, out, err = run_in_terminal(filename, [*argv, "--no-plots", "--json"])
    report = json.loads(out.splitlines()[-1]) if status == 0 else None
    return status, out, err, report


# A measurement printed as nan or inf (Python's and JSON's spellings), not a word that contains them.
NAN_OR_INF = re.compile(r"(?<![\w.])[-+]?(nan|inf|infinity)(?![\w])", re.IGNORECASE)


def check_generic(filename, status, out, err, report):
    """What a run must do at every setting: finish, or stop with one line that says why; never a traceback,
    nothing on stderr when it succeeds, no NaN or infinity printed as a measurement."""
    prog = Path(filename).name
    assert status in (0, 1, 2), (status, err)
    assert "Traceback" not in err
    if status == 0:
        assert err == "", err
        assert report is not None
        found = NAN_OR_INF.search(out)
        assert found is None, out[max(0, found.start() - 200):found.end() + 50]
    elif status == 1:  # a run-time failure: one line
        assert err.count("\n") == 1 and err.startswith(f"{prog}: error: "), err
    else:  # a usage error: argparse's usage lines, then one line naming the setting
        assert err.splitlines()[-1].startswith(f"{prog}: error: argument --"), err

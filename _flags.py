"""Machinery, not lesson: a learner need not read this file.

How a lesson's settings cell meets the command line. Each lesson starts with
its settings as plain constants (EPOCHS = 2, ...), then calls

    _flags.apply("01_pattern_classifier", globals())

which, in a terminal, lets flags replace those constants (`--help` lists them,
each with its default: the value in the settings cell), and in a notebook
leaves them as the learner set them. In both, each value is checked against
its range and turned into the type the lesson needs (a whole number typed
where a decimal is meant becomes a float). A lesson ends with

    _flags.finish("01_pattern_classifier", globals())

which, with --json, prints the results as one JSON object on the last line.

In a terminal `apply` also installs the handler that turns a run-time failure
into one line on stderr (exit status 1) and Ctrl-C into one line (exit 130),
and --quiet silences everything the lesson prints. docs/reference.md lists
the flags' conventions and the JSON keys.
"""

import argparse
import json
import os
import sys
from pathlib import Path

import torch

import _cli

LESSONS = {}  # lesson name -> Lesson


class Lesson:
    def __init__(self, description, add_flags, report, check=None):
        self.description, self.add_flags, self.report, self.check = description, add_flags, report, check


class SettingError(ValueError):
    """A setting out of its range, in a notebook: one line that says what is allowed."""


class State:
    """What the terminal asked for beyond the settings: --quiet and --json, and where stdout was."""

    json = False
    stdout = None


def lesson(name, description, report, check=None):
    """Register a lesson's flags: decorates add_flags(parser, settings)."""

    def register(add_flags):
        LESSONS[name] = Lesson(description, add_flags, report, check)
        return add_flags

    return register


def parser_for(name, settings):
    """The lesson's argparse parser; each flag's default is its value in the settings cell."""
    spec = LESSONS[name]
    parser = _cli.make_parser(spec.description)
    spec.add_flags(parser, settings)
    parser.add_argument("--out-dir", dest="OUT_DIR", type=Path,
                        help=f"folder for the pictures (default: {settings['OUT_DIR']}/ beside the lessons)")
    parser.add_argument("--quiet", action="store_true",
                        help="print nothing but errors and the --json line (default: print everything)")
    parser.add_argument("--json", action="store_true",
                        help="print the results as one JSON object on the last line of stdout (default: off)")
    return parser


def apply(name, settings):
    """Check the settings cell's values and, where there are flags, let them replace the values first.

    A terminal has flags; so has `%run LESSON.py --flag` in a notebook. A notebook's own cells have
    none: there the values are the settings cell's, checked, and a bad one raises SettingError.
    """
    parser = parser_for(name, settings)
    in_a_kernel = _cli.running_in_a_kernel()
    if not in_a_kernel:
        sys.excepthook = report_failure
    flags = _cli.command_line_flags()
    args = vars(parser.parse_args(flags))

    def fail(message):
        if flags or not in_a_kernel:
            parser.error(message)
        raise SettingError(message)

    for action in parser._actions:
        if action.dest.isupper() and action.dest != "OUT_DIR":
            settings[action.dest] = checked(action, args[action.dest], fail)
    settings["OUT_DIR"] = args["OUT_DIR"] or _cli.REPO_DIR / settings["OUT_DIR"]
    if LESSONS[name].check:
        LESSONS[name].check(settings, fail)
    State.json, State.stdout = args["json"], sys.stdout
    if args["quiet"]:
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 -- finish() puts stdout back


def checked(action, value, fail):
    """A setting's value, converted and checked as its flag would be; `fail` on a bad one."""
    shown = f"{action.option_strings[0]} ({action.dest} = {value!r})"
    if isinstance(action, argparse._StoreConstAction):  # on/off switches: PLOTS = True or False
        if not isinstance(value, bool):
            fail(f"{shown}: must be True or False")
        return value
    try:
        if action.type is not None and value is not None:
            value = action.type(value)
    except argparse.ArgumentTypeError as error:
        fail(f"argument {shown}: {error}")
    if action.choices is not None and value not in action.choices:
        fail(f"argument {shown}: must be one of {', '.join(map(repr, action.choices))}")
    return value


def finish(name, settings):
    """With --json, print the lesson's results as one JSON line; make sure all output is out."""
    if State.stdout is not None and sys.stdout is not State.stdout:  # --quiet: stdout back as it was
        sys.stdout.close()
        sys.stdout = State.stdout
    if State.json:
        print(json.dumps(LESSONS[name].report(settings)))
    sys.stdout.flush()  # a reader that went away (`| head`) shows up here, where report_failure handles it


def report_failure(kind, error, traceback):
    """sys.excepthook in a terminal: run-time failures and Ctrl-C in one line, never a traceback."""
    prog = Path(sys.argv[0]).name
    if issubclass(kind, _cli.RunFailure):
        print(f"{prog}: error: {error}", file=sys.stderr)  # Python then exits with status 1
    elif issubclass(kind, KeyboardInterrupt):
        print(f"{prog}: interrupted", file=sys.stderr)
        flush_and_exit(130)
    elif issubclass(kind, BrokenPipeError):  # the reader went away (`| head`): stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        flush_and_exit(1)
    else:
        sys.__excepthook__(kind, error, traceback)


def flush_and_exit(status):
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(status)


# ---------------------------------------------------------------------------
# Each lesson's flags: the settings cell's names, in capitals, as their `dest`
# ---------------------------------------------------------------------------


def add_plots_flag(parser, settings):
    parser.add_argument("--no-plots", dest="PLOTS", action="store_false", default=settings["PLOTS"],
                        help="draw no pictures (default: draw them)")


def add_device_flag(parser, settings):
    parser.add_argument("--device", dest="DEVICE", choices=("auto", "cpu", "cuda"), default=settings["DEVICE"],
                        help="where to train: auto picks cuda when it is available, else cpu")


def resolve_device(settings, fail):
    """DEVICE becomes 'cpu' or 'cuda'; asking for CUDA where there is none fails."""
    if settings["DEVICE"] == "auto":
        settings["DEVICE"] = "cuda" if torch.cuda.is_available() else "cpu"
    if settings["DEVICE"] == "cuda" and not torch.cuda.is_available():
        fail("argument --device: CUDA is not available on this machine; use cpu or auto")
    if settings["DEVICE"] == "cuda":
        torch.backends.cudnn.deterministic = True  # same seed, same bits, on the GPU too
        torch.backends.cudnn.benchmark = False


# ---------------------------------------------------------------------------
# Lesson 01
# ---------------------------------------------------------------------------

# ---------------------------------------------------------------------------
# Lesson 02
# ---------------------------------------------------------------------------

# ---------------------------------------------------------------------------
# Lesson 03
# ---------------------------------------------------------------------------

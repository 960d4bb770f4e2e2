"""_flags.py: a lesson's settings cell and its flags. In a terminal flags replace the settings;
in a notebook the settings stay as the learner wrote them; in both every value is checked and
converted alike. Run-time failures, Ctrl-C and a reader that goes away end in one line."""

import argparse
import io
import os
import sys

import pytest

import _cli
import _flags


def toy_flags(parser, settings):
    parser.add_argument("--lr", dest="LR", type=_cli.learning_rate, default=settings["LR"], help="a rate")
    parser.add_argument("--steps", dest="STEPS", type=_cli.in_range(1, 100, int), default=settings["STEPS"],
                        help="steps, 1 to 100")
    parser.add_argument("--starts", dest="STARTS", type=_cli.comma_list(_cli.in_range(-4, 4), 3, "numbers"),
                        default=settings["STARTS"], help="starting points")
    parser.add_argument("--order", dest="ORDER", choices=("sequential", "shuffled"), default=settings["ORDER"],
                        help="sample order")
    _flags.add_plots_flag(parser, settings)
    _flags.add_device_flag(parser, settings)


def toy_check(settings, fail):
    if settings["STEPS"] == 13:
        fail("argument --steps: 13 is unlucky")
    _flags.resolve_device(settings, fail)


_flags.lesson("toy", "A toy lesson.", report=lambda s: {"lr": s["LR"], "starts": s["STARTS"]},
              check=toy_check)(toy_flags)


def settings_cell(**changed):
    """What a lesson's settings cell holds before apply(): the article's values, as a learner may edit them."""
    return {"LR": 0.5, "STEPS": 10, "STARTS": (2.5, 3.0), "ORDER": "sequential", "PLOTS": True, "DEVICE": "auto",
            "OUT_DIR": "outputs", **changed}


@pytest.fixture
def terminal(monkeypatch):
    """apply() as in a terminal: returns a function that applies with these flags."""
    monkeypatch.setattr(_cli, "running_in_a_kernel", lambda: False)
    monkeypatch.setattr(sys, "excepthook", sys.excepthook)  # apply() installs its own: put the old one back

    def run(*flags, **changed):
        monkeypatch.setattr(sys, "argv", ["toy.py", *flags])
        settings = settings_cell(**changed)
        _flags.apply("toy", settings)
        return settings

    return run


@pytest.fixture
def notebook(monkeypatch):
    """apply() as in a notebook's cell: the kernel's own command line, which holds no lesson flags."""
    monkeypatch.setattr(_cli, "running_in_a_kernel", lambda: True)
    monkeypatch.setattr(sys, "argv", ["ipykernel_launcher.py", "-f", "/tmp/kernel-1.json"])

    def run(**changed):
        settings = settings_cell(**changed)
        _flags.apply("toy", settings)
        return settings

    return run


# --- the settings cell and the flags ----------------------------------------------------------

def test_without_flags_the_settings_stay_checked_and_converted(terminal):
    settings = terminal()
    assert settings["LR"] == 0.5 and settings["STEPS"] == 10 and settings["STARTS"] == [2.5, 3.0]
    assert settings["PLOTS"] is True and settings["DEVICE"] == "cpu"
    assert settings["OUT_DIR"] == _cli.REPO_DIR / "outputs"  # beside the lessons, wherever you run them


def test_flags_replace_the_settings(terminal, tmp_path):
    settings = terminal("--lr", "2", "--steps", "3", "--starts=-1,4", "--order", "shuffled", "--no-plots",
                        "--out-dir", "pictures")
    assert (settings["LR"], settings["STEPS"], settings["STARTS"]) == (2.0, 3, [-1.0, 4.0])
    assert settings["ORDER"] == "shuffled" and settings["PLOTS"] is False
    assert settings["OUT_DIR"] == _cli.Path("pictures")  # typed in a terminal: from where you are


def test_whole_numbers_are_fine_where_a_decimal_is_meant_in_a_notebook(notebook):
    settings = notebook(LR=1, STARTS=(-3, 1, 3.8))
    assert settings["LR"] == 1.0 and isinstance(settings["LR"], float)
    assert settings["STARTS"] == [-3.0, 1.0, 3.8] and all(isinstance(x, float) for x in settings["STARTS"])


def test_a_notebook_setting_reaches_the_lesson_as_it_is(notebook):
    settings = notebook(LR=0.25, STEPS=7, ORDER="shuffled", PLOTS=False, OUT_DIR="/tmp/somewhere")
    assert (settings["LR"], settings["STEPS"], settings["ORDER"], settings["PLOTS"]) == (0.25, 7, "shuffled", False)
    assert settings["OUT_DIR"] == _cli.Path("/tmp/somewhere")


@pytest.mark.parametrize("changed, message", [
    ({"LR": -1}, r"^argument --lr \(LR = -1\): must be a finite number from 0 to .*, got -1$"),
    ({"STEPS": 2.5}, r"^argument --steps \(STEPS = 2.5\): expected a whole number, got 2.5$"),
    ({"STEPS": True}, r"expected a whole number, got True$"),
    ({"STEPS": 101}, r"must be a whole number from 1 to 100, got 101$"),
    ({"STARTS": (1, 2, 3, 4)}, r"must be 1 to 3 comma-separated numbers"),
    ({"STARTS": (1, 9)}, r"each value: must be a finite number from -4 to 4, got 9"),
    ({"ORDER": "random"}, r"^argument --order \(ORDER = 'random'\): must be one of 'sequential', 'shuffled'$"),
    ({"PLOTS": "no"}, r"^--no-plots \(PLOTS = 'no'\): must be True or False$"),
    ({"STEPS": 13}, r"^argument --steps: 13 is unlucky$"),
    ({"STEPS": "twelve"}, r"^argument --steps \(STEPS = 'twelve'\): expected a whole number, got 'twelve'$"),
    ({"STARTS": ""}, r"must be 1 to 3 comma-separated numbers, got ''$"),
])
def test_a_bad_setting_in_a_notebook_says_what_is_allowed(notebook, changed, message):
    with pytest.raises(_flags.SettingError, match=message):
        notebook(**changed)


def test_a_bad_setting_in_a_terminal_is_a_usage_error(terminal, capsys):
    with pytest.raises(SystemExit) as stopped:
        terminal(LR=-1)  # the file edited by hand, then run in a terminal
    assert stopped.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1].startswith("toy.py: error: argument --lr (LR = -1): must be")


@pytest.mark.parametrize("flags, message", [
    (["--lr", "-1"], "argument --lr: must be a finite number from 0"),
    (["--steps", "13"], "argument --steps: 13 is unlucky"),
    (["--order", "random"], "argument --order: invalid choice: 'random'"),
])
def test_a_bad_flag_is_a_usage_error_in_one_line(terminal, capsys, flags, message):
    with pytest.raises(SystemExit) as stopped:
        terminal(*flags)
    err = capsys.readouterr().err
    assert stopped.value.code == 2 and message in err.splitlines()[-1] and err.splitlines()[-1].startswith("toy.py:")


def test_run_in_a_notebook_with_flags_reads_them(monkeypatch):
    """`%run toy.py --lr 2` in a kernel: sys.argv holds the script and its flags."""
    monkeypatch.setattr(_cli, "running_in_a_kernel", lambda: True)
    monkeypatch.setattr(sys, "argv", ["toy.py", "--lr", "2"])
    settings = settings_cell()
    _flags.apply("toy", settings)
    assert settings["LR"] == 2.0


def test_help_lists_every_flag_with_the_settings_value_as_its_default(terminal, capsys):
    with pytest.raises(SystemExit) as stopped:
        terminal("--help", LR=0.125)
    text = " ".join(capsys.readouterr().out.split())
    assert stopped.value.code == 0
    for entry in ("--lr LR a rate (default: 0.125)", "--steps STEPS steps, 1 to 100 (default: 10)",
                  "(default: outputs/ beside the lessons)", "--quiet", "--json", "--no-plots draw no pictures"):
        assert entry in text


# --- the device ----------------------------------------------------------------------------------

@pytest.mark.parametrize("asked, available, expected", [
    ("auto", False, "cpu"), ("cpu", True, "cpu"), ("auto", True, "cuda"), ("cuda", True, "cuda"),
])
def test_device_choice(asked, available, expected, monkeypatch):
    monkeypatch.setattr(_flags.torch.cuda, "is_available", lambda: available)
    monkeypatch.setattr(_flags.torch.backends.cudnn, "deterministic", False)
    monkeypatch.setattr(_flags.torch.backends.cudnn, "benchmark", True)
    settings = {"DEVICE": asked}
    _flags.resolve_device(settings, pytest.fail)
    assert settings["DEVICE"] == expected
    on_cuda = expected == "cuda"  # the same seed must give the same bits on the GPU too
    assert (_flags.torch.backends.cudnn.deterministic, _flags.torch.backends.cudnn.benchmark) == (on_cuda,
                                                                                                   not on_cuda)


def test_cuda_asked_for_but_absent_is_a_usage_error(terminal, monkeypatch, capsys):
    monkeypatch.setattr(_flags.torch.cuda, "is_available", lambda: False)
    with pytest.raises(SystemExit) as stopped:
        terminal("--device", "cuda")
    assert stopped.value.code == 2
    assert "argument --device: CUDA is not available on this machine; use cpu or auto" in capsys.readouterr().err


# --- what a run prints: --quiet and --json ---------------------------------------------------------

def test_quiet_silences_the_lesson_and_finish_gives_stdout_back(terminal, monkeypatch):
    printed = io.StringIO()
    monkeypatch.setattr(sys, "stdout", printed)
    settings = terminal("--quiet", "--json", "--lr", "0.25")
    print("a line of the lesson")
    _flags.finish("toy", settings)
    assert sys.stdout is printed and printed.getvalue() == '{"lr": 0.25, "starts": [2.5, 3.0]}\n'


def test_without_json_finish_prints_nothing(terminal, capsys):
    settings = terminal()
    print("a line of the lesson")
    _flags.finish("toy", settings)
    assert capsys.readouterr().out == "a line of the lesson\n"


def test_quiet_without_json_prints_nothing_at_all(terminal, monkeypatch):
    printed = io.StringIO()
    monkeypatch.setattr(sys, "stdout", printed)
    settings = terminal("--quiet")
    print("a line of the lesson")
    _flags.finish("toy", settings)
    assert printed.getvalue() == "" and sys.stdout is printed


@pytest.mark.parametrize("in_a_kernel", [False, True])
def test_only_a_terminal_gets_the_one_line_handler(in_a_kernel, monkeypatch):
    monkeypatch.setattr(sys, "excepthook", sys.__excepthook__)
    monkeypatch.setattr(_cli, "running_in_a_kernel", lambda: in_a_kernel)
    monkeypatch.setattr(sys, "argv", ["toy.py"])
    _flags.apply("toy", settings_cell())
    assert sys.excepthook is (sys.__excepthook__ if in_a_kernel else _flags.report_failure)  # a kernel: its own


# --- how a run ends ----------------------------------------------------------------------------

@pytest.fixture
def exits(monkeypatch):
    """report_failure as Python calls it, with os._exit recorded instead of ending the tests."""
    statuses = []
    monkeypatch.setattr(_flags.os, "_exit", statuses.append)
    monkeypatch.setattr(sys, "argv", ["/somewhere/02_gd_parabola_anim.py", "--steps", "5"])
    return statuses


@pytest.mark.parametrize("raised, status, message", [
    (_cli.RunFailure("cannot write x"), [], "02_gd_parabola_anim.py: error: cannot write x"),
    (_cli.TrainingDiverged(2, 7, float("inf")), [],
     "02_gd_parabola_anim.py: error: training diverged: the loss became inf at epoch 2, step 7; try a smaller --lr"),
    (KeyboardInterrupt(), [130], "02_gd_parabola_anim.py: interrupted"),
])
def test_failures_end_in_one_line(exits, capsys, raised, status, message):
    _flags.report_failure(type(raised), raised, None)
    assert capsys.readouterr().err == message + "\n"
    assert exits == status  # a RunFailure: Python itself exits with status 1 once the hook returns


class Recording(io.StringIO):
    flushed = 0

    def flush(self):
        self.flushed += 1


@pytest.mark.parametrize("raised", [KeyboardInterrupt(), BrokenPipeError()])
def test_what_was_printed_is_delivered_before_the_exit(exits, monkeypatch, raised):
    stdout, stderr = Recording(), Recording()
    monkeypatch.setattr(sys, "stdout", stdout)
    monkeypatch.setattr(sys, "stderr", stderr)
    _flags.report_failure(type(raised), raised, None)
    assert stdout.flushed >= 1 and stderr.flushed >= 1 and len(exits) == 1


def test_other_errors_keep_their_traceback(exits, monkeypatch):
    shown = []
    monkeypatch.setattr(sys, "__excepthook__", lambda *args: shown.append(args))
    error = ZeroDivisionError("a bug")
    _flags.report_failure(ZeroDivisionError, error, None)
    assert shown == [(ZeroDivisionError, error, None)] and exits == []


def test_a_reader_that_goes_away_ends_the_lesson_quietly(exits, tmp_path, monkeypatch, capsys):
    with capsys.disabled(), open(tmp_path / "stdout", "w") as stdout:
        monkeypatch.setattr(sys, "stdout", stdout)
        saved = os.dup(stdout.fileno())
        try:
            _flags.report_failure(BrokenPipeError, BrokenPipeError(), None)
        finally:
            os.dup2(saved, stdout.fileno())
            os.close(saved)
    assert exits == [1]


def test_a_reader_that_goes_away_ends_the_script_quietly(end_to_end):
    """`python 02_gd_parabola_anim.py ... | head -0`: exit 1, and nothing on stderr, not even at exit.

    Run with stdout block-buffered, as a learner's shell has it, so the short output is still in
    Python's buffer when the lesson ends (conftest.py starts it)."""
    result = end_to_end["stage2_reader_gone"].result()
    assert result.returncode == 1 and result.stderr == ""


def test_a_usage_error_in_a_terminal_exits_2_in_one_line(end_to_end):
    result = end_to_end["stage1_bad_lr"].result()
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.splitlines()[-1] == ("01_pattern_classifier.py: error: argument --lr: must be a finite "
                                              "number from 0 to 3.403e+38 (float32's largest), got '-1'")


def test_a_run_time_failure_in_a_terminal_exits_1_in_one_line(end_to_end):
    result = end_to_end["stage1_diverges"].result()
    assert result.returncode == 1 and len(result.stderr.splitlines()) == 1
    assert result.stderr.startswith("01_pattern_classifier.py: error: training diverged: the loss became ")


def test_every_lesson_uses_apply_and_finish_once():
    for path in sorted(_cli.REPO_DIR.glob("0*.py")):
        source = path.read_text().replace("'", '"')  # the mutation runner rewrites the quotes
        assert source.count(f'_flags.apply("{path.stem}", globals())') == 1, path.name
        assert source.count(f'_flags.finish("{path.stem}", globals())') == 1, path.name
        assert path.stem in _flags.LESSONS


def test_argparse_types_still_take_text(terminal):
    assert _cli.in_range(0, 1)("0.5") == 0.5 and _cli.comma_list(_cli.in_range(0, 1), 2, "x")("0,1") == [0.0, 1.0]
    with pytest.raises(argparse.ArgumentTypeError, match="expected a number, got 'x'"):
        _cli.in_range(0, 1)("x")

"""_cli.py, the command-line machinery: flag checks at their limits, one-line
errors and their exit statuses, --quiet, progress, and atomic file writing."""

import argparse
import io
import os
import stat
import sys
from pathlib import Path

import pytest

import _cli
import _notebook

# --- flags: both sides of every limit -------------------------------------------

@pytest.mark.parametrize("parse, inside, outside", [
    (_cli.learning_rate, ["0", "1e-9", "3.4028234663852886e38"], ["-1e-300", "3.5e38", "nan", "inf", "-inf"]),
    (_cli.epochs_value, ["1", "1000"], ["0", "1001", "-1", "2.5"]),
    (_cli.seed_value, ["0", str(2**63 - 1)], ["-1", str(2**63)]),
    (_cli.momentum_value, ["0", "0.999999"], ["1", "-1e-9", "nan"]),
    (_cli.in_range(-4.0, 4.0), ["-4", "4", "0"], ["-4.000001", "4.000001", "nan"]),
])
def test_number_flags_accept_their_limits_and_refuse_beyond(parse, inside, outside):
    for text in inside:
        assert parse(text) == (int(text) if parse in (_cli.epochs_value, _cli.seed_value) else float(text))
    for text in outside:
        with pytest.raises(argparse.ArgumentTypeError, match=repr(text)):
            parse(text)


def test_range_errors_say_what_is_allowed():
    with pytest.raises(argparse.ArgumentTypeError, match=r"^must be a whole number from 1 to 1000, got '0'$"):
        _cli.epochs_value("0")
    with pytest.raises(argparse.ArgumentTypeError, match=r"^expected a whole number, got 'two'$"):
        _cli.epochs_value("two")
    with pytest.raises(argparse.ArgumentTypeError, match=r"^must be a finite number from -4 to 4, got '5'$"):
        _cli.in_range(-4.0, 4.0)("5")
    with pytest.raises(argparse.ArgumentTypeError, match=r"from 0 to 2\*\*63-1, got '-1'"):
        _cli.seed_value("-1")


def test_comma_list_takes_one_to_most_values():
    parse = _cli.comma_list(_cli.learning_rate, 3, "rates")
    assert parse("0.5") == [0.5] and parse("0,1,2") == [0.0, 1.0, 2.0]
    for text in ("", " ", "1,2,3,4", "1,,2", "1,x", "1,-2"):
        with pytest.raises(argparse.ArgumentTypeError, match=repr(text)):
            parse(text)


def test_help_ends_each_flag_with_its_default_once():
    parser = _cli.make_parser("x")
    parser.add_argument("--rate", type=float, default=0.5, help="a rate")
    parser.add_argument("--said", type=float, default=1.0, help="a rate (default: one)")
    parser.add_argument("--switch", action="store_true", help="a switch")
    text = " ".join(parser.format_help().split())
    assert "a rate (default: 0.5)" in text and "(default: one)" in text and "(default: 1.0)" not in text
    assert "a switch (default" not in text


# --- what a run prints ----------------------------------------------------------

class Terminal(io.StringIO):
    flushes = 0

    def isatty(self):
        return True

    def flush(self):
        self.flushes += 1


def test_progress_rewrites_one_line_on_a_terminal_only(monkeypatch):
    terminal = Terminal()
    monkeypatch.setattr("sys.stdout", terminal)
    _cli.show_progress("sweep: 100 of 400 runs done")
    assert terminal.flushes == 1  # a line without a newline shows only once flushed
    _cli.show_progress("sweep: 200 of 400 runs done")
    _cli.end_progress()
    assert terminal.flushes == 3
    assert terminal.getvalue() == ("\rsweep: 100 of 400 runs done\033[K\rsweep: 200 of 400 runs done\033[K"
                                   "\r\033[K")
    piped = io.StringIO()
    monkeypatch.setattr("sys.stdout", piped)
    _cli.show_progress("sweep: 1 of 2 runs done")
    _cli.end_progress()
    assert piped.getvalue() == ""


# --- writing files ----------------------------------------------------------

def test_atomic_write_leaves_nothing_when_writing_fails(tmp_path):
    target = tmp_path / "picture.png"

    def half_then_fail(file):
        file.write(b"half a picture")
        raise OSError(28, "No space left on device")

    with pytest.raises(_cli.RunFailure, match="No space left"):
        _cli.atomic_write(target, half_then_fail)
    assert list(tmp_path.iterdir()) == []


def test_atomic_write_keeps_the_old_file_when_interrupted(tmp_path):
    target = tmp_path / "picture.png"
    target.write_bytes(b"old")

    def interrupted(file):
        file.write(b"new but unfinished")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        _cli.atomic_write(target, interrupted)
    assert [p.name for p in tmp_path.iterdir()] == ["picture.png"] and target.read_bytes() == b"old"


def test_atomic_write_gives_ordinary_permissions_and_leaves_the_umask_alone(tmp_path):
    old_mask = os.umask(0o022)
    try:
        path = _cli.atomic_write(tmp_path / "a.bin", lambda f: f.write(b"x"))
        mask_after = os.umask(0o022)
    finally:
        os.umask(old_mask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644 and path.read_bytes() == b"x"
    assert mask_after == 0o022


def test_a_write_error_without_an_errno_still_says_what_went_wrong(tmp_path):
    def fail(file):
        raise OSError("the disk caught fire")

    with pytest.raises(_cli.RunFailure, match=r"cannot write .*a.bin: the disk caught fire$"):
        _cli.atomic_write(tmp_path / "a.bin", fail)


def test_out_dir_that_cannot_be_created_is_a_run_failure(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    with pytest.raises(_cli.RunFailure, match="cannot create --out-dir"):
        _cli.prepare_out_dir(blocker / "pictures")


def test_out_dir_is_created_with_its_parents(tmp_path):
    assert _cli.prepare_out_dir(tmp_path / "a" / "b") == tmp_path / "a" / "b" and (tmp_path / "a" / "b").is_dir()


def test_out_dir_without_write_permission_is_a_run_failure(tmp_path, monkeypatch):
    monkeypatch.setattr(os, "access", lambda path, mode: False)  # as root, a read-only folder is still writable
    with pytest.raises(_cli.RunFailure, match="cannot write to --out-dir .*: permission denied"):
        _cli.prepare_out_dir(tmp_path)


def test_atomic_write_creates_a_missing_folder_and_its_parents(tmp_path):
    """A notebook run in a copied folder may have no outputs/ yet."""
    _cli.atomic_write(tmp_path / "missing" / "deeper" / "picture.png", lambda file: file.write(b"x"))
    assert (tmp_path / "missing" / "deeper" / "picture.png").read_bytes() == b"x"


def test_atomic_write_into_a_folder_that_cannot_be_made_is_a_run_failure(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(_cli.RunFailure, match=r"cannot write .*picture.png: (Not a directory|File exists)"):
        _cli.atomic_write(tmp_path / "file" / "sub" / "picture.png", lambda file: file.write(b"x"))


# --- inside a Jupyter kernel -----------------------------------------------------------

KERNEL_ARGV = {"Jupyter": ["/usr/lib/python3/site-packages/ipykernel_launcher.py", "-f", "/tmp/kernel-1.json"],
               "VS Code": ["/x/ipykernel_launcher.py", "--f=/x/kernel-v2-1.json"],
               "Colab": ["/usr/local/bin/colab_kernel_launcher.py", "-f", "/root/kernel-2.json"]}


@pytest.mark.parametrize("kernel", KERNEL_ARGV)
def test_a_kernels_own_command_line_gives_no_flags(kernel, monkeypatch):
    monkeypatch.setattr(_cli, "running_in_a_kernel", lambda: True)
    monkeypatch.setattr(sys, "argv", KERNEL_ARGV[kernel])
    assert _cli.command_line_flags() == []
    parser = _cli.make_parser("test")
    parser.add_argument("--lr", type=float, default=0.5)
    assert parser.parse_args().lr == 0.5  # the defaults, not an error about -f
    assert parser.parse_args(["--lr", "2"]).lr == 2.0  # flags given as a list still count


@pytest.mark.parametrize("argv, in_kernel", [
    (["02_gd_parabola_anim.py", "--lr", "0.6"], False),  # a terminal
    (["02_gd_parabola_anim.py", "--lr", "0.6"], True),  # %run with flags in a kernel
    (["01_pattern_classifier.py", "-f"], False),  # no kernel: an unknown flag stays an error
])
def test_a_scripts_own_command_line_gives_its_flags(argv, in_kernel, monkeypatch):
    monkeypatch.setattr(_cli, "running_in_a_kernel", lambda: in_kernel)
    monkeypatch.setattr(sys, "argv", argv)
    assert _cli.command_line_flags() == argv[1:]


def test_no_kernel_runs_these_tests():
    assert _cli.running_in_a_kernel() is False  # the notebook tests run their kernels in other processes


def test_a_picture_inside_the_current_folder_is_named_from_there(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert str(_cli.shown_path(tmp_path / "outputs" / "a.png")) == "outputs/a.png"  # README's `wrote outputs/...`
    assert _cli.shown_path("outputs/a.png") == Path("outputs/a.png")
    assert _cli.shown_path(tmp_path.parent / "a.png") == (tmp_path.parent / "a.png").resolve()  # elsewhere: in full


def test_in_a_kernel_show_pictures_also_shows_each_one_below_the_cell(capsys, tmp_path, monkeypatch):
    from IPython import display

    shown = []
    monkeypatch.setattr(_cli, "running_in_a_kernel", lambda: True)
    monkeypatch.setattr(display, "display", shown.append)
    (tmp_path / "a.gif").write_bytes(b"GIF89a")
    _cli.show_pictures([tmp_path / "a.gif"])
    assert [(type(image).__name__, image.filename, image.format) for image in shown] == [
        ("Image", str(tmp_path / "a.gif"), "gif")]  # IPython's Image: a GIF stays animated
    assert capsys.readouterr().out == f"wrote {tmp_path / 'a.gif'}\n"


def test_show_pictures_says_where_each_went(capsys, tmp_path):
    _cli.show_pictures([tmp_path / "a.png", tmp_path / "b.gif"], ["", " (3 frames)"])
    assert capsys.readouterr().out == f"wrote {tmp_path / 'a.png'}\nwrote {tmp_path / 'b.gif'} (3 frames)\n"


# --- the notebooks' first cell: versions here, tested, and oldest checked --------------------------

def test_pinned_versions_are_read_from_requirements(tmp_path):
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("# a comment==1.0\ntorch==2.13.0\nPillow==13.0.0  # a note\nloose>=1\n\n")
    assert _notebook.pinned_versions(requirements) == {"torch": "2.13.0", "pillow": "13.0.0"}
    assert set(_notebook.LIBRARIES) <= set(_notebook.pinned_versions())  # the real file pins all four


@pytest.mark.parametrize("text, numbers", [("2.13.0+cpu", (2, 13, 0)), ("2.11.0+cu130", (2, 11, 0)),
                                           ("3.10.0rc1", (3, 10, 0)), ("11.0.0", (11, 0, 0)), ("2.1", (2, 1)),
                                           ("not installed", ()),
                                           ("1.dev.2", (1,)), ("1.0rc1.2", (1, 0))])  # a non-number ends it
def test_release_numbers_compare_as_versions(text, numbers):
    assert _notebook.release(text) == numbers
    assert _notebook.release("2.9.1") < _notebook.release("2.11.0") < _notebook.release("2.13.0+cpu")


def test_show_versions_flags_what_is_older_or_off_the_pins(monkeypatch, capsys):
    here = {"torch": "2.9.1", "numpy": "2.4.6", "matplotlib": "3.10.0", "pillow": "not installed"}
    monkeypatch.setattr(_notebook, "installed_version", here.get)
    _notebook.show_versions()
    lines = capsys.readouterr().out.splitlines()
    pins = _notebook.pinned_versions()
    assert lines[1].split() == ["torch", "2.9.1", pins["torch"], "2.11.0", "<-", "older", "than", "any", "version",
                                "checked"]
    assert lines[2].split() == ["numpy", "2.4.6", pins["numpy"], "2.1.3"]  # on its pin: nothing to say
    assert lines[3].split() == ["matplotlib", "3.10.0", pins["matplotlib"], "3.10.0"]  # the oldest checked: fine
    assert lines[4].split()[-1] == "missing"
    assert lines[-1] == ("Off the tested versions (torch, matplotlib, pillow), numbers may differ in their last "
                         "digits and pictures by a few pixels.")


def test_show_versions_on_the_pins_adds_nothing(monkeypatch, capsys):
    monkeypatch.setattr(_notebook, "installed_version", lambda name: _notebook.pinned_versions()[name] + "+cpu")
    _notebook.show_versions()
    assert len(capsys.readouterr().out.splitlines()) == 1 + len(_notebook.LIBRARIES)


def test_show_versions_without_requirements_says_the_pins_were_not_found(monkeypatch, capsys, tmp_path):
    monkeypatch.setattr(_notebook, "REQUIREMENTS", tmp_path / "requirements.txt")  # a folder without it
    monkeypatch.setattr(_notebook.pinned_versions, "__defaults__", (tmp_path / "requirements.txt",))
    monkeypatch.setattr(_notebook, "installed_version", {"torch": "2.13.0", "numpy": "2.4.6", "matplotlib": "3.11.2",
                                                         "pillow": "13.0.0"}.get)
    _notebook.show_versions()
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == ("requirements.txt was not found beside the lessons: the versions they were tested with "
                        "are unknown.")
    assert lines[2].split() == ["torch", "2.13.0", "?", "2.11.0"] and len(lines) == 2 + len(_notebook.LIBRARIES)

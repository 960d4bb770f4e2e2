"""Machinery, not lesson: a learner need not read this file.

What the three scripts share as command-line programs: flags and their
checks (also inside a Jupyter kernel), one-line errors with their exit
statuses, --quiet and --json, a progress line, pictures shown inline in a
notebook, and file writing that never leaves half a file.
docs/reference.md describes the behaviour; this is how it is done.
"""

import argparse
import itertools
import os
import sys
import tempfile
from pathlib import Path

import torch

REPO_DIR = Path(__file__).resolve().parent
DEFAULT_OUT_DIR = REPO_DIR / "outputs"
FLOAT32_MAX = torch.finfo(torch.float32).max
MAX_EPOCHS = 1000
MAX_SEED = 2**63 - 1


# ---------------------------------------------------------------------------
# Failures at run time: one line on stderr, exit status 1
# ---------------------------------------------------------------------------

class RunFailure(Exception):
    """A failure at run time, reported as one line and exit status 1."""


class TrainingDiverged(RunFailure):
    def __init__(self, epoch, step, loss, run=""):
        run = f" ({run})" if run else ""
        super().__init__(f"training diverged{run}: the loss became {loss} at epoch {epoch}, step {step}; "
                         "try a smaller --lr")


# ---------------------------------------------------------------------------
# Flags: each help ends with its default, each number has a range
# ---------------------------------------------------------------------------

class HelpWithDefaults(argparse.ArgumentDefaultsHelpFormatter):
    """Ends each flag's help with its default, unless the help already says it or it is an on/off switch."""

    def _get_help_string(self, action):
        if "default" in action.help or action.default is None or action.default is False:
            return action.help
        return super()._get_help_string(action)


class LessonParser(argparse.ArgumentParser):
    """An ArgumentParser that, given no arguments, reads command_line_flags() rather than sys.argv."""

    def parse_args(self, args=None, namespace=None):
        return super().parse_args(command_line_flags() if args is None else args, namespace)


def make_parser(description):
    return LessonParser(description=description, formatter_class=HelpWithDefaults)


def command_line_flags():
    """The flags typed after the script's name; none inside a Jupyter kernel's own process.

    A kernel's sys.argv holds its launcher and its connection file (`-f kernel-....json`,
    or `--f=...` in VS Code), not flags for a lesson: there (a notebook, VS Code's
    interactive window) a lesson runs with its defaults. `%run SCRIPT --flag` sets
    sys.argv to the script and its flags, which are read as in a terminal.
    """
    kernel_argv = any(arg == "-f" or arg.startswith("--f=") for arg in sys.argv[1:])
    return [] if kernel_argv and running_in_a_kernel() else sys.argv[1:]


def running_in_a_kernel():
    """True in a Jupyter kernel's own process (a notebook, VS Code's interactive window).

    The kernel's app is a singleton that exists only there; a program that merely uses
    Jupyter's libraries (the tests start kernels with nbclient) has none.
    """
    kernelapp = sys.modules.get("ipykernel.kernelapp")
    return kernelapp is not None and kernelapp.IPKernelApp.initialized()


def parse_number(value, kind=float):
    """A number from a flag's text, or a setting's value from a notebook: a whole number is
    fine where a decimal is meant (X0 = 1), a decimal is not where a whole number is."""
    expected = "a whole number" if kind is int else "a number"
    if isinstance(value, str):
        try:
            return kind(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {expected}, got {value!r}") from None
    allowed = (int,) if kind is int else (int, float)
    if isinstance(value, bool) or not isinstance(value, allowed):
        raise argparse.ArgumentTypeError(f"expected {expected}, got {value!r}")
    return kind(value)


def in_range(low, high, kind=float, shown=None):
    """An argparse type: a number of `kind` from low to high, both included.

    `shown` replaces "from LOW to HIGH" in the error, where plain digits would not read well.
    """
    noun = "a whole number" if kind is int else "a finite number"
    allowed = shown or (f"from {low} to {high}" if kind is int else f"from {low:g} to {high:g}")

    def parse(text):
        value = parse_number(text, kind)
        if not low <= value <= high:  # NaN fails this too
            raise argparse.ArgumentTypeError(f"must be {noun} {allowed}, got {text!r}")
        return value

    parse.low, parse.high, parse.kind = low, high, kind  # the range, for the tests that explore it
    return parse


# torch's SGD overflows beyond float32's largest value.
learning_rate = in_range(0, FLOAT32_MAX, shown=f"from 0 to {FLOAT32_MAX:.4g} (float32's largest)")
epochs_value = in_range(1, MAX_EPOCHS, int)
seed_value = in_range(0, MAX_SEED, int, shown="from 0 to 2**63-1")


def comma_list(item, most, what):
    """An argparse type: 1 to `most` comma-separated values, each parsed by `item`; in a
    notebook, a list or tuple of values."""

    def parse(value):
        parts = value.split(",") if isinstance(value, str) else list(value)
        if (isinstance(value, str) and not value.strip()) or not 1 <= len(parts) <= most:
            raise argparse.ArgumentTypeError(f"must be 1 to {most} comma-separated {what}, got {value!r}")
        try:
            return [item(part) for part in parts]
        except argparse.ArgumentTypeError as error:
            raise argparse.ArgumentTypeError(f"each value: {error} (in {value!r})") from None

    parse.item, parse.least, parse.most = item, 1, most  # for the tests that explore the settings
    return parse


def momentum_value(text):
    value = parse_number(text)
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"must be a number from 0 up to (not including) 1, got {text!r}")
    return value


momentum_value.low, momentum_value.high, momentum_value.kind, momentum_value.high_open = 0, 1, float, True


# ---------------------------------------------------------------------------
# What a run prints: --quiet, progress, --json
# ---------------------------------------------------------------------------

def show_progress(text):
    """Rewrite one line in place, on a terminal only: piped or --quiet output stays clean."""
    if sys.stdout.isatty():
        print(f"\r{text}\033[K", end="", flush=True)


def end_progress():
    if sys.stdout.isatty():
        print("\r\033[K", end="", flush=True)


def show_pictures(paths, notes=()):
    """Say where each picture went, with an optional note each; in a Jupyter kernel, show it below the cell."""
    for path, note in itertools.zip_longest(paths, notes, fillvalue=""):
        print(f"wrote {shown_path(path)}{note}")
        if running_in_a_kernel():
            from IPython.display import Image, display

            display(Image(filename=str(path)))  # a GIF stays animated


# ---------------------------------------------------------------------------
# Writing files: whole or not at all
# ---------------------------------------------------------------------------

def shown_path(path):
    """A path as a learner reads it best: relative to the current folder when it lies inside it."""
    path = Path(path).resolve()
    return path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path


def prepare_out_dir(out_dir):
    """Create --out-dir if needed; a RunFailure if it cannot be written."""
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise RunFailure(f"cannot create --out-dir {out_dir}: {error.strerror}") from None
    if not os.access(out_dir, os.W_OK):
        raise RunFailure(f"cannot write to --out-dir {out_dir}: permission denied")
    return out_dir


def atomic_write(path, write):
    """Call write(file) on a temporary file beside `path`, then move it into place.

    Readers see the old file or the complete new one, never half of one, even if
    writing fails or is interrupted.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as error:
        raise RunFailure(f"cannot write {path}: {error.strerror}") from None
    try:
        with os.fdopen(handle, "wb") as file:
            write(file)
        os.chmod(temp_name, 0o666 & ~current_umask())  # mkstemp makes files private (0600)
        os.replace(temp_name, path)
    except BaseException as error:
        os.unlink(temp_name)
        if isinstance(error, OSError):
            raise RunFailure(f"cannot write {path}: {error.strerror or error}") from None
        raise
    return path


def current_umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def save_figure(figure, path):
    """Save a matplotlib figure as PNG, atomically."""
    return atomic_write(path, lambda file: figure.savefig(file, format="png"))

"""Helpers to load the numbered scripts as modules and to run them as a learner would."""

import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

import common

REPO_DIR = Path(__file__).resolve().parent.parent


def load_script(filename):
    """Import a numbered script (its name is not a valid module name) without running it."""
    spec = importlib.util.spec_from_file_location(filename.removesuffix(".py").lstrip("0123456789_"),
                                                  REPO_DIR / filename)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_script(filename, *args):
    """Run a script in a fresh Python, as from a terminal; return the CompletedProcess."""
    return subprocess.run([sys.executable, str(REPO_DIR / filename), *map(str, args)],
                          capture_output=True, text=True, cwd=REPO_DIR, timeout=120)


def help_entries(help_text):
    """{flag: its help, on one line} from a script's --help output."""
    options = help_text.split("options:", 1)[1]
    entries = re.split(r"\n  (?=-)", options)
    return {entry.split()[0].rstrip(","): " ".join(entry.split()) for entry in entries if entry.strip()}


def last_json_line(stdout):
    return json.loads(stdout.strip().splitlines()[-1])


def call_main(module, argv, capsys):
    """Run module.main(argv) through common.run_cli; return (exit status, stdout, stderr)."""
    status = 0
    try:
        common.run_cli(lambda: module.main([str(a) for a in argv]))
    except SystemExit as exit_:
        status = exit_.code
    out, err = capsys.readouterr()
    return status, out, err


@pytest.fixture(scope="session")
def classifier():
    return load_script("01_pattern_classifier.py")


@pytest.fixture(scope="session")
def parabola():
    return load_script("02_gd_parabola_anim.py")


@pytest.fixture(scope="session")
def custom_optimizer():
    return load_script("03_custom_optimizer.py")

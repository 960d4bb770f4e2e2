"""Lesson runs that test modules do in a Python of their own, in the background, instead of in the tests'
process: README's "try this" commands (test_readme.py) and the settings whose pictures' texts are checked
(test_picture_texts.py). Each is run as before, by conftest.run_lesson (runpy, as `python LESSON FLAGS`
runs it), with the warnings that pytest turns into errors turned into errors here too; the module's test
then checks what the run gave. So the in-process tests keep one core while these runs take the other.
conftest.BATCHES names the modules; conftest starts one such Python for all those the collected tests need.

    python tests/lesson_batch.py MODULE... --out-dir DIR

runs each entry of each MODULE.BATCH ({key: function(out_dir) -> what the test checks, as JSON}) in a folder
of its own under DIR, and writes DIR/MODULE.json: {key: {"value": ...}} or {key: {"error": the traceback}}.
A test reads its entry with Outcomes(job, MODULE)[key].
"""

import importlib
import json
import sys
import tomllib
import traceback
import warnings
from pathlib import Path

import pytest

TESTS_DIR = Path(__file__).resolve().parent
REPO_DIR = TESTS_DIR.parent


def pytests_warning_filters():
    """The filterwarnings of pyproject.toml, as pytest applies them around each test."""
    from _pytest.config import parse_warning_filter

    config = tomllib.loads((REPO_DIR / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]
    return [parse_warning_filter(line, escape=False) for line in config.get("filterwarnings", [])]


def run_batch(module_name, out_dir):
    module = importlib.import_module(module_name)
    filters, outcomes = pytests_warning_filters(), {}
    for index, (key, run) in enumerate(module.BATCH.items()):
        with warnings.catch_warnings():
            warnings.simplefilter("always")  # what pytest does first, before its own filters
            for arguments in filters:
                warnings.filterwarnings(*arguments)
            try:
                outcomes[key] = {"value": run(out_dir / module_name / f"{index:02d}")}
            except BaseException:  # noqa: BLE001 -- a SystemExit too: the test shows it as its failure
                outcomes[key] = {"error": traceback.format_exc()}
    (out_dir / f"{module_name}.json").write_text(json.dumps(outcomes))


class Outcomes:
    """What the entries of a module's BATCH returned, once the background run has done them all."""

    def __init__(self, job, module_name):
        self.job, self.module_name = job, module_name

    def __getitem__(self, key):
        result = self.job.result()
        assert result.returncode == 0, f"{' '.join(map(str, result.args))} failed:\n{result.stderr}"
        found = json.loads((self.job.out_dir / f"{self.module_name}.json").read_text())[key]
        if "error" in found:
            pytest.fail(f"{key}:\n{found['error']}", pytrace=False)
        return found["value"]


def outcomes_fixture(module_name):
    """The session fixture of a module whose BATCH runs here: its Outcomes (conftest.BATCHES names it)."""
    @pytest.fixture(scope="session")
    def outcomes():
        from conftest import BACKGROUND  # a test session's, not this script's

        return Outcomes(BACKGROUND.jobs["lesson_batch"], module_name)

    return outcomes


if __name__ == "__main__":
    # pyproject.toml's pythonpath, after this folder (already first): `conftest` is tests/conftest.py, even
    # where the root holds a conftest.py of its own (tests/mutation.py's copies do)
    sys.path.insert(1, str(REPO_DIR))
    *names, option, folder = sys.argv[1:]
    assert option == "--out-dir", sys.argv
    for name in names:
        run_batch(name, Path(folder))

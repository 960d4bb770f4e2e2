"""Helpers to load the numbered scripts as modules and to run them as a learner would."""

import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

import _cli
import common

REPO_DIR = Path(__file__).resolve().parent.parent


def load_script(filename):
    """Import a numbered script (its name is not a valid module name) without running it."""
    spec = importlib.util.spec_from_file_location(filename.removesuffix(".py").lstrip("0123456789_"),
                                                  REPO_DIR / filename)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def articles_loop(seed, epochs=2, lr=0.001, momentum=0.9, order_indices=None, optimizer_class=torch.optim.SGD):
    """The article's training, written out here again: the same operations, so the same bits."""
    torch.manual_seed(seed)
    model = common.Test_Conv()
    settings = {"lr": lr, "momentum": momentum} if momentum else {"lr": lr}
    optimizer = optimizer_class(model.parameters(), **settings)
    inputs, labels = common.training_set()
    losses = []
    for i in order_indices or list(range(40)) * epochs:
        optimizer.zero_grad()
        loss = nn.CrossEntropyLoss()(model(inputs[i : i + 1]), labels[i : i + 1])
        losses.append(loss.item())
        loss.backward()
        optimizer.step()
    return model, losses


def held_out_accuracy(weight, inputs, labels):
    """Accuracy (%) of filters `weight` (4, 1, 4, 4), by dot products rather than the network."""
    logits = inputs.reshape(len(inputs), 16) @ weight.reshape(4, 16).T
    return 100.0 * (logits.argmax(dim=1) == labels).sum().item() / len(labels)


class BackgroundRun:
    """A script started in its own Python at the beginning of the session, so that the
    slow end-to-end runs (each imports torch afresh) overlap with the in-process tests."""

    def __init__(self, filename, args, out_dir):
        self.out_dir = out_dir
        self.process = subprocess.Popen(
            [sys.executable, str(REPO_DIR / filename), *map(str, args), "--out-dir", str(out_dir)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO_DIR)
        self._result = None

    def result(self):
        if self._result is None:
            stdout, stderr = self.process.communicate(timeout=180)
            self._result = subprocess.CompletedProcess(self.process.args, self.process.returncode, stdout, stderr)
        return self._result


END_TO_END_RUNS = {
    "stage1": ("01_pattern_classifier.py", ["--json"]),
    "stage2": ("02_gd_parabola_anim.py", ["--json"]),
    "stage3": ("03_custom_optimizer.py", ["--json"]),
    "stage1_bad_lr": ("01_pattern_classifier.py", ["--lr", "-1"]),
}


@pytest.fixture(scope="session")
def end_to_end(tmp_path_factory):
    """{name: BackgroundRun} for each script run with its defaults, all started when the first is needed."""
    runs = {name: BackgroundRun(filename, args, tmp_path_factory.mktemp(name))
            for name, (filename, args) in END_TO_END_RUNS.items()}
    yield runs
    for run in runs.values():  # runs no test asked for (a partial session): stop them, close their pipes
        if run.process.poll() is None:
            run.process.kill()
        run.process.communicate()


@pytest.fixture(scope="session", autouse=True)
def outputs_stay_untouched():
    """Tests write only to temporary folders: outputs/ holds what README shows."""
    def snapshot():
        return {path.name: path.stat().st_mtime_ns for path in (REPO_DIR / "outputs").iterdir()}

    before = snapshot()
    yield
    assert snapshot() == before, "a test wrote into outputs/"


def help_text(module, capsys):
    """What `python SCRIPT --help` prints, produced in this process."""
    with pytest.raises(SystemExit):
        module.main(["--help"])
    return capsys.readouterr().out


def help_entries(help_text):
    """{flag: its help, on one line} from a script's --help output."""
    options = help_text.split("options:", 1)[1]
    entries = re.split(r"\n  (?=-)", options)
    return {entry.split()[0].rstrip(","): " ".join(entry.split()) for entry in entries if entry.strip()}


def frames_of(path):
    """Every frame of a picture as the viewer shows it (a later GIF frame drawn over the one before),
    as integer RGB arrays."""
    with Image.open(path) as image:
        frames = []
        for index in range(getattr(image, "n_frames", 1)):
            image.seek(index)
            frames.append(np.asarray(image.convert("RGB")).astype(int))
        return frames


def gif_timing(path):
    """A GIF's frame durations (ms, one per frame) and its loop count (0: forever)."""
    with Image.open(path) as gif:
        durations = []
        for index in range(gif.n_frames):
            gif.seek(index)
            durations.append(gif.info["duration"])
        return durations, gif.info.get("loop")


def last_json_line(stdout):
    return json.loads(stdout.strip().splitlines()[-1])


def call_main(module, argv, capsys):
    """Run module.main(argv) through _cli.run_cli; return (exit status, stdout, stderr)."""
    status = 0
    try:
        _cli.run_cli(lambda: module.main([str(a) for a in argv]))
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

"""Timing helpers shared by the benchmarks: whole commands, interleaved, median of repeats."""

import os
import runpy
import statistics
import subprocess
import sys
import time
import types
from pathlib import Path

REPO_DIR = Path(__file__).resolve().parent.parent
PYTHON = sys.executable

# The floors a script is compared with: the imports every script pays for anyway.
IMPORT_FLOOR = [PYTHON, "-c", "import torch, matplotlib.pyplot"]
OPTIMIZER_FLOOR = [PYTHON, "-c", "import torch, matplotlib.pyplot; "
                   "torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)"]


def script(name, *args):
    return [PYTHON, str(REPO_DIR / name), *map(str, args)]


def run_once(command):
    """Run a command to completion; return (seconds, peak memory in MB)."""
    start = time.perf_counter()
    process = subprocess.Popen(command, cwd=REPO_DIR, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed: {process.stderr.read().decode()}")
    return seconds, usage.ru_maxrss / 1024


def compare(commands, repeats):
    """{name: (median seconds, largest peak MB)}, running the commands in turn `repeats` times.

    Interleaving spreads any slowdown of the machine over all commands alike,
    so their ratios stay meaningful on a busy computer.
    """
    samples = {name: [] for name in commands}
    for _ in range(repeats):
        for name, command in commands.items():
            samples[name].append(run_once(command))
    return {name: (statistics.median(s for s, _ in runs), max(m for _, m in runs)) for name, runs in samples.items()}


def verdict(value, goal):
    return "meets goal" if value <= goal else "MISSES GOAL"


def repeats_from_argv(default=5):
    import argparse

    parser = argparse.ArgumentParser(description="Run the benchmark and print ratios.")
    parser.add_argument("--repeats", type=int, default=default, help=f"runs of each command (default: {default})")
    return parser.parse_args().repeats


def run_lesson_quietly(name, *args):
    """What a lesson defines (its optimizers): a lesson runs top to bottom, so run it with short `args`."""
    saved = sys.argv
    sys.argv = [str(REPO_DIR / name), *args, "--no-plots", "--quiet"]
    try:
        return types.SimpleNamespace(**runpy.run_path(sys.argv[0], run_name="__main__"))
    finally:
        sys.argv = saved


def median_step_seconds(optimizers, steps_per_sample, samples):
    """Median seconds per step of each optimizer, sampled in turn."""
    times = {name: [] for name in optimizers}
    for _ in range(samples):
        for name, optimizer in optimizers.items():
            start = time.perf_counter()
            for _ in range(steps_per_sample):
                optimizer.step()
            times[name].append((time.perf_counter() - start) / steps_per_sample)
    return {name: statistics.median(t) for name, t in times.items()}

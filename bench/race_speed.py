"""Lesson 05: the whole lesson at its defaults, and its batched training against the same runs one at a time.

1. `python 05_minibatch_race.py` as README gives it: goal at most 30 s on two CPU cores, peak memory under
   1 GB (its import floor, torch, matplotlib and scikit-learn, beside it).
2. The tuning of the default race, 3 optimizers x 9 learning rates x 10 seeds of 200 steps, trained by the
   lesson's `train_many` in one batch, against the same 270 runs trained one at a time by its `train`,
   interleaved in one process: goal at least 10 times faster.

    python bench/race_speed.py [--repeats 3]
"""

import statistics
import sys
import time

import numpy as np

from timing import PYTHON, REPO_DIR, compare, repeats_from_argv, run_lesson_quietly, script, verdict

sys.path.insert(0, str(REPO_DIR))  # the lesson imports its helpers (_flags, _cli) from there
OUT = ("--quiet", "--out-dir", "/tmp/bench_outputs")
FLOOR = [PYTHON, "-c", "import torch, matplotlib.pyplot, sklearn.model_selection, scipy.stats"]
SEEDS, STEPS = range(10), 200


def one_at_a_time(lesson, jobs):
    for name, lr in jobs:
        for seed in SEEDS:
            network = lesson.new_network(seed)
            lesson.train(network, lesson.OPTIMIZERS[name]([{"params": list(network.parameters()), "lr": lr}]), seed,
                         steps=STEPS)


def batched_against_alone(repeats):
    """Median seconds of the batched tuning and of the same runs one at a time, interleaved."""
    lesson = run_lesson_quietly("05_minibatch_race.py", "--steps", "1", "--draws", "10", "--tune-seeds", "2",
                                "--test-seeds", "2", "--grid-points", "2")
    lesson.train_many.__globals__["STEPS"] = STEPS  # the lesson's functions read its settings
    jobs = [(name, lr) for name in lesson.OPTIMIZERS for lr in np.geomspace(1e-4, 1, 9).tolist()]
    times = {"batched": [], "one at a time": []}
    for _ in range(repeats):
        for name, work in (("batched", lambda: lesson.train_many(jobs, list(SEEDS))),
                           ("one at a time", lambda: one_at_a_time(lesson, jobs))):
            start = time.perf_counter()
            work()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(seconds) for name, seconds in times.items()}


def main():
    repeats = repeats_from_argv(default=3)
    whole = compare({"import floor": FLOOR, "05 default": script("05_minibatch_race.py", *OUT)}, repeats)
    print(f"median of {repeats} runs each, interleaved")
    for name, (seconds, megabytes) in whole.items():
        print(f"  {name:<14} {seconds:6.2f} s  peak {megabytes:5.0f} MB")
    seconds, megabytes = whole["05 default"]
    print(f"05 default: {seconds:.1f} s (goal <= 30 s): {verdict(seconds, 30)}; "
          f"peak {megabytes:.0f} MB (goal < 1024 MB): {verdict(megabytes, 1023.9)}")
    race = batched_against_alone(repeats)
    ratio = race["one at a time"] / race["batched"]
    print(f"270 runs of 200 steps: batched {race['batched']:.2f} s, one at a time {race['one at a time']:.2f} s: "
          f"{ratio:.1f}x faster batched (goal >= 10x): {verdict(10, ratio)}")


if __name__ == "__main__":
    main()

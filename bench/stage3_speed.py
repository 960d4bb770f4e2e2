"""SimpleGD.step() and SimpleMomentum.step() against torch.optim.SGD, and 03_custom_optimizer.py's run time.

Step time: one process, the optimizers interleaved, many repeats, median, on
  - Test_Conv (1 tensor, 64 values),
  - an MLP of 50 Linear(256, 256) layers (100 tensors, about 3.3M values),
  - one Linear(4096, 4096) without bias (1 tensor, about 16.8M values),
for SimpleGD (`p.add_(p.grad, alpha=-lr)`) and the article's `p.add_(p.grad * -lr)`
against SGD(momentum=0), and for SimpleMomentum against SGD(momentum=0.9), each SGD
with its CPU default. Goal: each hand-written optimizer at most 1.05x its SGD on
every model.

Script: the default run, `python 03_custom_optimizer.py` (the whole lesson, both pictures),
against its floor (import torch and matplotlib.pyplot, build one optimizer), interleaved in
this one run. Goal: at most 1.6x.

    python bench/stage3_speed.py [--repeats 5]
"""

import sys

import torch
from torch import nn

from timing import (
    OPTIMIZER_FLOOR,
    REPO_DIR,
    compare,
    median_step_seconds,
    repeats_from_argv,
    run_lesson_quietly,
    script,
    verdict,
)

sys.path.insert(0, str(REPO_DIR))
import common  # noqa: E402


def models():
    return {
        "Test_Conv (1 tensor)": common.Test_Conv(),
        "MLP (100 tensors, 3.3M)": nn.Sequential(*[nn.Linear(256, 256) for _ in range(50)]),
        "Linear 4096x4096 (16.8M)": nn.Linear(4096, 4096, bias=False),
    }


def step_table(stage3, repeats):
    torch.manual_seed(0)
    print("step time, median of interleaved samples (lower is better); ratio = time / its SGD's time")
    print(f"  {'model':<26} {'SGD':>10} {'SimpleGD':>10} {'ratio':>6} {'article':>10} {'ratio':>6}"
          f" {'SGD m=0.9':>10} {'Momentum':>10} {'ratio':>6}")
    worst = {"SimpleGD": 0.0, "SimpleMomentum": 0.0}
    for name, model in models().items():
        for p in model.parameters():
            p.grad = torch.randn_like(p)
        params = list(model.parameters())
        optimizers = {
            "SGD": torch.optim.SGD(params, lr=1e-6, momentum=0),
            "SimpleGD": stage3.SimpleGD(params, lr=1e-6),
            "article": stage3.ArticleGD(params, lr=1e-6),  # the article's update, as the lesson runs it
            "SGD momentum": torch.optim.SGD(params, lr=1e-6, momentum=0.9),
            "SimpleMomentum": stage3.SimpleMomentum(params, lr=1e-6, momentum=0.9),
        }
        steps = 200 if name.startswith("Test_Conv") else 5
        t = median_step_seconds(optimizers, steps, samples=20 * repeats)
        ratios = {"SimpleGD": t["SimpleGD"] / t["SGD"], "article": t["article"] / t["SGD"],
                  "SimpleMomentum": t["SimpleMomentum"] / t["SGD momentum"]}
        for optimizer in worst:
            worst[optimizer] = max(worst[optimizer], ratios[optimizer])
        print(f"  {name:<26} {t['SGD'] * 1e6:8.1f}us {t['SimpleGD'] * 1e6:8.1f}us {ratios['SimpleGD']:5.2f}x "
              f"{t['article'] * 1e6:8.1f}us {ratios['article']:5.2f}x "
              f"{t['SGD momentum'] * 1e6:8.1f}us {t['SimpleMomentum'] * 1e6:8.1f}us {ratios['SimpleMomentum']:5.2f}x")
    for optimizer, ratio in worst.items():
        print(f"{optimizer}'s worst ratio: {ratio:.2f}x (goal <= 1.05x): {verdict(ratio, 1.05)}")


def script_ratio(repeats):
    results = compare({
        "floor": OPTIMIZER_FLOOR,
        "default run": script("03_custom_optimizer.py", "--quiet", "--out-dir", "/tmp/bench_outputs"),
    }, repeats)
    floor, run = results["floor"][0], results["default run"][0]
    print(f"03_custom_optimizer.py: {run:.2f} s against a floor of {floor:.2f} s = {run / floor:.2f}x "
          f"(goal <= 1.6x): {verdict(run / floor, 1.6)}")


def main():
    repeats = repeats_from_argv()
    stage3 = run_lesson_quietly("03_custom_optimizer.py", "--epochs", "1", "--steps", "1", "--minima-steps", "1")
    sys.excepthook = sys.__excepthook__  # the lesson installed its own, for a terminal run of itself
    step_table(stage3, repeats)
    script_ratio(repeats)


if __name__ == "__main__":
    main()

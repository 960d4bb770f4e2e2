"""SimpleAdam.step() (lesson 04) against torch.optim.Adam.step(), on many small tensors.

One process, the optimizers interleaved (A, B, C, A, B, C, ...), many samples, median, on an
MLP of 50 Linear(32, 32) layers: 100 tensors (weights and biases), about 53k values, where the
per-tensor work of a step (Python, and launching each operation) is most of its cost. The
gradients are set once and kept; only step() is timed.

  - SimpleAdam against Adam(foreach=False), the single-tensor code it follows.
    Goal: at most 1.10x.
  - SimpleAdam against the default Adam() (no goal; on the CPU, Adam picks the same
    single-tensor code by itself).

    python bench/adam_speed.py [--repeats 5]
"""

import sys

import torch
from torch import nn

from timing import REPO_DIR, median_step_seconds, repeats_from_argv, run_lesson_quietly, verdict

sys.path.insert(0, str(REPO_DIR))  # the lesson imports its helpers (_flags, _cli, common) from there
GOAL = 1.10


def main():
    repeats = repeats_from_argv()
    stage4 = run_lesson_quietly("04_adam_by_hand.py", "--steps", "3", "--epochs", "1")
    sys.excepthook = sys.__excepthook__  # the lesson installed its own, for a terminal run of itself
    torch.manual_seed(0)
    model = nn.Sequential(*[nn.Linear(32, 32) for _ in range(50)])
    for p in model.parameters():
        p.grad = torch.randn_like(p)
    params = list(model.parameters())
    optimizers = {
        "Adam(foreach=False)": torch.optim.Adam(params, foreach=False),
        "SimpleAdam": stage4.SimpleAdam(params),
        "Adam()": torch.optim.Adam(params),
    }
    for optimizer in optimizers.values():  # the first step creates the state: not timed
        optimizer.step()
    t = median_step_seconds(optimizers, steps_per_sample=5, samples=40 * repeats)
    print(f"step time on an MLP of 50 Linear(32, 32) ({len(params)} tensors, "
          f"{sum(p.numel() for p in params)} values), median of {40 * repeats} interleaved samples of 5 steps")
    for name, seconds in t.items():
        print(f"  {name:<20} {seconds * 1e6:8.1f} us")
    single = t["SimpleAdam"] / t["Adam(foreach=False)"]
    default = t["SimpleAdam"] / t["Adam()"]
    print(f"SimpleAdam / Adam(foreach=False): {single:.2f}x (goal <= {GOAL:.2f}x): {verdict(single, GOAL)}")
    print(f"SimpleAdam / Adam(): {default:.2f}x (no goal)")


if __name__ == "__main__":
    main()

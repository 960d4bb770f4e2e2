"""How much slower is 01_pattern_classifier.py than the imports it cannot avoid?

Floor: `import torch, matplotlib.pyplot` and building one torch.optim.SGD
(which imports torch._dynamo). Goals: the default run (the article's run, the
sweep of 100 seeds in both orders, three pictures) at most 1.6x the floor;
--sweep 10000 (20000 trainings, no pictures) in under 60 s.

    python bench/stage1_speed.py [--repeats 5]
"""

from timing import OPTIMIZER_FLOOR, compare, repeats_from_argv, script, verdict


def main():
    repeats = repeats_from_argv()
    results = compare({
        "floor": OPTIMIZER_FLOOR,
        "default run": script("01_pattern_classifier.py", "--quiet", "--out-dir", "/tmp/bench_outputs"),
        "--sweep 10000": script("01_pattern_classifier.py", "--sweep", "10000", "--no-plots", "--quiet"),
    }, repeats)
    floor = results["floor"][0]
    print(f"median of {repeats} runs each, interleaved")
    for name, (seconds, peak) in results.items():
        print(f"  {name:<14} {seconds:6.2f} s   {seconds / floor:5.2f}x floor   peak {peak:4.0f} MB")
    default_ratio = results["default run"][0] / floor
    sweep_seconds = results["--sweep 10000"][0]
    print(f"default run: {default_ratio:.2f}x floor (goal <= 1.6x): {verdict(default_ratio, 1.6)}")
    print(f"--sweep 10000: {sweep_seconds:.2f} s, {sweep_seconds / floor:.2f}x floor (goal < 60 s): "
          f"{verdict(sweep_seconds, 60)}")


if __name__ == "__main__":
    main()

"""How much slower is 01_pattern_classifier.py than the imports it cannot avoid?

Floor: `import torch, matplotlib.pyplot` and building one torch.optim.SGD
(which imports torch._dynamo). Goals: the default run (with plots) at most
1.25x the floor; --sweep 100 in under 10 s.

    python bench/stage1_speed.py [--repeats 5]
"""

from timing import OPTIMIZER_FLOOR, compare, repeats_from_argv, script, verdict


def main():
    repeats = repeats_from_argv()
    results = compare({
        "floor": OPTIMIZER_FLOOR,
        "default run": script("01_pattern_classifier.py", "--quiet", "--out-dir", "/tmp/bench_outputs"),
        "--sweep 100": script("01_pattern_classifier.py", "--sweep", "100", "--quiet", "--out-dir",
                              "/tmp/bench_outputs"),
    }, repeats)
    floor = results["floor"][0]
    print(f"median of {repeats} runs each, interleaved")
    for name, (seconds, _) in results.items():
        print(f"  {name:<12} {seconds:6.2f} s   {seconds / floor:5.2f}x floor")
    default_ratio = results["default run"][0] / floor
    sweep_seconds = results["--sweep 100"][0]
    print(f"default run: {default_ratio:.2f}x floor (goal <= 1.25x): {verdict(default_ratio, 1.25)}")
    print(f"--sweep 100: {sweep_seconds:.2f} s (goal < 10 s): {verdict(sweep_seconds, 10)}")


if __name__ == "__main__":
    main()

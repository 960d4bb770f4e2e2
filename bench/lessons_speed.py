"""How much slower is each whole lesson than the imports it cannot avoid? All in one run.

Each lesson's one command, as README.md gives it, against its floor (see README.md here):
01, 03 and 04 build a torch.optim optimizer, so their floor is OPTIMIZER_FLOOR; 02 builds none,
so its floor is IMPORT_FLOOR. Goals: 01 at most 1.6x, 02 at most 1.8x, 03 at most 1.6x,
04 at most 1.8x, and `01 --sweep 10000` within 60 s.

    python bench/lessons_speed.py [--repeats 3]
"""

from timing import IMPORT_FLOOR, OPTIMIZER_FLOOR, compare, repeats_from_argv, script, verdict

OUT = ("--quiet", "--out-dir", "/tmp/bench_outputs")
GOALS = {"01 default": ("optimizer floor", 1.6), "02 default": ("import floor", 1.8),
         "03 default": ("optimizer floor", 1.6), "04 default": ("optimizer floor", 1.8)}


def main():
    repeats = repeats_from_argv(default=3)
    results = compare({
        "import floor": IMPORT_FLOOR,
        "optimizer floor": OPTIMIZER_FLOOR,
        "01 default": script("01_pattern_classifier.py", *OUT),
        "02 default": script("02_gd_parabola_anim.py", *OUT),
        "03 default": script("03_custom_optimizer.py", *OUT),
        "04 default": script("04_adam_by_hand.py", *OUT),
        "01 --sweep 10000": script("01_pattern_classifier.py", "--sweep", "10000", "--no-plots", *OUT),
    }, repeats)
    print(f"median of {repeats} runs each, interleaved")
    for name, (seconds, megabytes) in results.items():
        print(f"  {name:<18} {seconds:6.2f} s  peak {megabytes:5.0f} MB")
    for name, (floor, goal) in GOALS.items():
        ratio = results[name][0] / results[floor][0]
        print(f"{name}: {ratio:.2f}x its {floor} (goal <= {goal}x): {verdict(ratio, goal)}")
    sweep = results["01 --sweep 10000"][0]
    print(f"01 --sweep 10000: {sweep:.1f} s (goal <= 60 s): {verdict(sweep, 60)}")


if __name__ == "__main__":
    main()

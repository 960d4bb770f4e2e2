"""02_gd_parabola_anim.py against its import floor, with GIF sizes and peak memory.

Floor: `import torch, matplotlib.pyplot` (this script builds no optimizer).
Goals: default run at most 1.5x the floor, --compare at most 2.5x, default GIF
at most 200 KB, panel GIF at most 400 KB, peak memory under 500 MB.

    python bench/stage2_speed.py [--repeats 5]
"""

import tempfile
from pathlib import Path

from timing import IMPORT_FLOOR, compare, repeats_from_argv, script, verdict


def main():
    repeats = repeats_from_argv()
    out_dir = Path(tempfile.mkdtemp(prefix="bench_stage2_"))
    results = compare({
        "floor": IMPORT_FLOOR,
        "default run": script("02_gd_parabola_anim.py", "--quiet", "--out-dir", out_dir),
        "--compare": script("02_gd_parabola_anim.py", "--compare", "--quiet", "--out-dir", out_dir),
    }, repeats)
    floor = results["floor"][0]
    print(f"median of {repeats} runs each, interleaved")
    for name, (seconds, peak_mb) in results.items():
        print(f"  {name:<12} {seconds:6.2f} s   {seconds / floor:5.2f}x floor   peak {peak_mb:5.0f} MB")
    for name, goal in (("default run", 1.5), ("--compare", 2.5)):
        ratio = results[name][0] / floor
        print(f"{name}: {ratio:.2f}x floor (goal <= {goal}x): {verdict(ratio, goal)}")
    for gif, goal_kb in (("02_gd_parabola.gif", 200), ("02_learning_rates.gif", 400)):
        size_kb = (out_dir / gif).stat().st_size / 1000
        print(f"{gif}: {size_kb:.0f} KB (goal <= {goal_kb} KB): {verdict(size_kb, goal_kb)}")
    peak = max(results[name][1] for name in ("default run", "--compare"))
    print(f"peak memory: {peak:.0f} MB (goal < 500 MB): {verdict(peak, 499.9)}")


if __name__ == "__main__":
    main()

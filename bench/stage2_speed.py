"""02_gd_parabola_anim.py against its import floor, with GIF sizes and peak memory;
and the lesson's GIF written by _gif.FrameRecorder against matplotlib's FuncAnimation.save.

Floor: `import torch, matplotlib.pyplot` (this lesson builds no optimizer).
Goals: the default run, `python 02_gd_parabola_anim.py` (the article's run and the
comparison of four learning rates, both GIFs), at most 1.8x the floor; the single
GIF at most 200 KB, the panel GIF at most 400 KB; peak memory under 500 MB.

The second comparison writes the default run's 120 frames both ways, in one
process, with the lesson's own update function (move_to_step): FuncAnimation
with the pillow writer redraws the whole figure for every frame, the recorder
only the moving parts. It reports the ratio; there is no goal.

    python bench/stage2_speed.py [--repeats 5]
"""

import io
import runpy
import statistics
import sys
import tempfile
import time
import types
from pathlib import Path

from timing import IMPORT_FLOOR, REPO_DIR, compare, repeats_from_argv, script, verdict

sys.path.insert(0, str(REPO_DIR))


def main():
    repeats = repeats_from_argv()
    out_dir = Path(tempfile.mkdtemp(prefix="bench_stage2_"))
    results = compare({
        "floor": IMPORT_FLOOR,
        "default run": script("02_gd_parabola_anim.py", "--quiet", "--out-dir", out_dir),
    }, repeats)
    floor = results["floor"][0]
    print(f"median of {repeats} runs each, interleaved")
    for name, (seconds, peak_mb) in results.items():
        print(f"  {name:<12} {seconds:6.2f} s   {seconds / floor:5.2f}x floor   peak {peak_mb:5.0f} MB")
    ratio = results["default run"][0] / floor
    print(f"default run (article + comparison, both GIFs): {ratio:.2f}x floor (goal <= 1.8x): {verdict(ratio, 1.8)}")
    for gif, goal_kb in (("02_gd_parabola.gif", 200), ("02_learning_rates.gif", 400)):
        size_kb = (out_dir / gif).stat().st_size / 1000
        print(f"{gif}: {size_kb:.0f} KB (goal <= {goal_kb} KB): {verdict(size_kb, goal_kb)}")
    peak = results["default run"][1]
    print(f"peak memory: {peak:.0f} MB (goal < 500 MB): {verdict(peak, 499.9)}")
    compare_gif_writers(repeats, out_dir)


def load_stage2():
    """What the lesson defines, after a run that draws nothing (it runs on import, as a notebook does)."""
    saved = sys.argv, sys.stdout
    sys.argv, sys.stdout = ["02_gd_parabola_anim.py", "--no-plots", "--compare", "none"], io.StringIO()
    try:
        return types.SimpleNamespace(**runpy.run_path(str(REPO_DIR / "02_gd_parabola_anim.py"), run_name="__main__"))
    finally:
        sys.argv, sys.stdout = saved


def with_funcanimation(stage2, run, path):
    """The article's way: FuncAnimation calls the update function per frame and saves every frame whole."""
    from matplotlib.animation import FuncAnimation, PillowWriter

    import _figures
    from _gif import pick_frames

    figure, (axes,) = _figures.descent_figure(1)
    parts = stage2.draw_panel(axes, run)
    steps = pick_frames(stage2.STEPS, stage2.FRAMES)

    def update(frame):
        stage2.move_to_step(parts, run, steps[: frame + 1])
        return list(parts.values())

    FuncAnimation(figure, update, frames=len(steps)).save(path, writer=PillowWriter(fps=stage2.FPS))


def compare_gif_writers(repeats, out_dir):
    stage2 = load_stage2()
    run = stage2.panel("Gradient descent on x²", stage2.history, stage2.STEPS, single=True)
    writers = {"FuncAnimation.save": lambda: with_funcanimation(stage2, run, out_dir / "funcanimation.gif"),
               "FrameRecorder": lambda: stage2.animate([run], stage2.STEPS, stage2.FRAMES, stage2.FPS,
                                                       out_dir / "recorder.gif")}
    seconds = {name: [] for name in writers}
    for _ in range(repeats):
        for name, write in writers.items():
            start = time.perf_counter()
            write()
            seconds[name].append(time.perf_counter() - start)
    medians = {name: statistics.median(times) for name, times in seconds.items()}
    print(f"the default GIF's {stage2.FRAMES} frames, written in this process, median of {repeats}:")
    for name, median in medians.items():
        print(f"  {name:<19} {median:6.2f} s")
    ratio = medians["FuncAnimation.save"] / medians["FrameRecorder"]
    print(f"FuncAnimation.save takes {ratio:.1f}x the recorder's time")


if __name__ == "__main__":
    main()

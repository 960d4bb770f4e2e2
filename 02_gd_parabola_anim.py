# %% [markdown]
# # Stage 2: gradient descent on y = x², animated
#
# The article's stage first: x starts at 1.0 and takes 800 steps of size 0.01,
# each one against the slope that autograd computes, and the run becomes a GIF.
# The closed form x_n = x0 * (1 - 2*lr)^n checks the run: float32 keeps about
# 7 significant digits, and the two agree to about 6. Then several learning rates
# side by side: too slow, fast, oscillating, diverging.
#
# In a terminal: `python 02_gd_parabola_anim.py` (outputs/02_gd_parabola.gif),
# then `python 02_gd_parabola_anim.py --compare` (outputs/02_learning_rates.gif).

# %% tags=["active-ipynb"]
# try:  # notebook only: the lesson's files must lie beside this notebook
#     import _notebook
# except ModuleNotFoundError:
#     raise FileNotFoundError("Put this notebook beside the lesson files: upload or clone the whole folder.") from None
# _notebook.show_versions()

# %%
import numpy as np
import torch

import _cli
import _figures
import _gif
import common

# The settings: the article's, and the defaults of the flags at the bottom.
# In a notebook, change them here and run the cells below again.
X0 = 1.0
LR = 0.01
STEPS = 800
FRAMES = 120  # the GIF shows 120 of the 801 positions: every early step, fewer later ones
FPS = 20.0
COMPARE = (0.01, 0.1, 0.9, 1.05)  # slow, fast, oscillating, diverging
ESCAPE_FACTOR = 1000  # a run has diverged once |x| would pass 1000 * max(1, |x0|)
FLOAT32_TINY = torch.finfo(torch.float32).tiny  # below it float32 is subnormal and loses precision

# %% [markdown]
# ## The article's stage, and the closed form that checks it
#
# Each step computes y = x², calls `backward()` to get the slope dy/dx into
# `x.grad`, moves x against it under `torch.no_grad()`, and clears the slope.
#
# The slope of x² is 2x, so one step is x - lr * 2x = (1 - 2*lr) * x: every
# step multiplies x by the same factor, and n steps by that factor to the n.
# That closed form, x0 * (1 - 2*lr)^n, is what the run is checked against.
# When the factor is negative (lr above 0.5), x changes sign at every step.

# %%
def f(x):
    """The function to minimise: y = x^2, lowest at x = 0."""
    return x**2


def descend(x0=X0, lr=LR, steps=STEPS):
    """Gradient descent on f from x0; return x before the first step and after each step.

    A diverging run stops before x overflows, with fewer than steps + 1 values.
    """
    bound = escape_bound(x0)
    x = torch.tensor(x0, requires_grad=True)
    xs = [x.item()]
    for _ in range(steps):
        y = f(x)  # forward: autograd records how y is computed from x
        y.backward()  # backward: the slope dy/dx = 2x lands in x.grad
        with torch.no_grad():  # the step is not part of f: autograd must not record it
            x -= lr * x.grad  # one step downhill, against the slope
        x.grad = None  # clear the slope, or the next backward() would add to it
        if not abs(x.item()) <= bound:  # diverging (inf and NaN fail this too): stop before float32 overflows
            break
        xs.append(x.item())  # the history, for the table and the animation
    return xs


def escape_bound(x0):
    return ESCAPE_FACTOR * max(1.0, abs(x0))


def f_and_slope(xs):
    """f(x) and its slope dy/dx at each x, as float32 computes them; autograd finds the slopes."""
    x = torch.tensor(xs, requires_grad=True)
    y = f(x)
    y.sum().backward()  # each y depends on its own x alone, so x.grad holds every slope
    return y.tolist(), x.grad.tolist()


SHOW_EVERY_STEP_UP_TO = 20  # a longer run shows about ten of its steps


def show_descent(xs, lr):
    """Print x, f(x) and the slope at every step of a short run, at about ten steps of a long one."""
    fs, slopes = f_and_slope(xs)
    steps_done = len(xs) - 1
    print(f"Gradient descent on f(x) = x^2 from x0 = {xs[0]:g}, lr = {lr:g}")
    print(f"  {'step':>6}  {'x':>13}  {'f(x)':>13}  {'slope':>13}")
    every = 1 if steps_done <= SHOW_EVERY_STEP_UP_TO else steps_done // 8
    for step in sorted({*range(0, steps_done + 1, every), steps_done}):
        print(f"  {step:>6}  {xs[step]:>13.6g}  {fs[step]:>13.6g}  {slopes[step]:>13.6g}")


def behaviour(xs, steps):
    """Name what a run of `steps` steps did, from its trajectory alone."""
    if len(xs) <= steps or abs(xs[-1]) > abs(xs[0]):
        return "diverges"
    if all(x == xs[0] for x in xs):
        return "stays put"
    changed_sign = any(a * b < 0 for a, b in zip(xs, xs[1:]))
    if abs(xs[-1]) < abs(xs[0]):
        return "oscillates and converges" if changed_sign else "converges"
    return "oscillates forever"


def stop_note(xs, steps):
    """How a run ended early, in the same words on stdout and in the GIF; '' if it did not."""
    if len(xs) > steps:
        return ""
    return f"stopped: step {len(xs)} would take |x| past {escape_bound(xs[0]):g}"


def with_note(text, note):
    return f"{text} ({note})" if note else text


def check_against_closed_form(xs, lr):
    """Compare the float32 result with the exact x0 * (1 - 2*lr)^n; return the exact value."""
    measured, steps_done = xs[-1], len(xs) - 1
    expected = common.parabola_closed_form(xs[0], lr, steps_done)
    print(f"Closed form after {steps_done} steps: x0 * (1 - 2*lr)^n = {expected:.9g}; measured {measured:.9g}")
    if measured == expected:
        print("  exactly equal: no rounding error at all")
    elif 0 < abs(expected) < FLOAT32_TINY:
        print(f"  (the exact value is below {FLOAT32_TINY:.3g}, where float32 turns subnormal and can no longer "
              "shrink x by that factor: x stalls, and no relative difference is meaningful)")
    elif expected != 0:
        print(f"  relative difference {abs(measured - expected) / abs(expected):.2e} "
              "(float32 rounds once or twice a step)")
    else:  # the exact value is 0, so the whole of x is the error
        print(f"  absolute difference {abs(measured):.2e}")
    return expected


def single_run(x0=X0, lr=LR, steps=STEPS):
    """The article's run: descend, print the table, what the run did and the closed-form check."""
    xs = descend(x0, lr, steps)
    show_descent(xs, lr)
    print(with_note(f"Behaviour: {behaviour(xs, steps)}", stop_note(xs, steps)))
    expected = check_against_closed_form(xs, lr)
    return xs, expected


# %% [markdown]
# ## The animation: draw the still parts once, move the rest frame by frame
#
# A frame has still parts (the parabola, its minimum, the axes) and moving
# parts (the point, its trail, the tangent whose slope autograd found).
# `draw_panel` draws the still parts and returns the moving ones, empty;
# `move_to_step` moves them to one step and returns the caption. The article
# hands such an update function to matplotlib's `FuncAnimation(figure, update,
# frames)`, which calls it once per frame and, to save the GIF, redraws the
# whole figure for every frame. `_gif.FrameRecorder` draws the still parts once
# and only the moving parts per frame: for the default GIF, over 30 times
# faster (`bench/stage2_speed.py` measures it), and the file is smaller.

# %%
TRAIL = 6  # the point leaves a trail through the positions of the last 6 frames


def panel(title, xs, steps, single=True):
    """What one panel needs: the run, its slopes, its note, and how far its x axis reaches."""
    fs, slopes = f_and_slope(xs)
    diverges = behaviour(xs, steps) == "diverges"
    reach = (3 if diverges else 1) * max(1.0, abs(xs[0]))  # a diverging run gets a wider view
    return {"title": title, "xs": xs, "fs": fs, "slopes": slopes, "stop_note": stop_note(xs, steps),
            "reach": reach, "single": single}


def draw_panel(axes, run):
    """Draw one panel's still parts; return its moving parts, with nothing to show yet."""
    reach = run["reach"]
    grid = np.linspace(-reach, reach, 401)
    axes.plot(grid, grid**2, color=_figures.CURVE_COLOUR, lw=1.5)
    axes.plot([0], [0], marker="*", color=_figures.MINIMUM_COLOUR, markersize=10, linestyle="none")
    axes.set(xlim=(-1.05 * reach, 1.05 * reach), ylim=(-0.06 * reach**2, 1.3 * reach**2), xlabel="x")
    axes.set_title(run["title"], fontsize=10)
    colour = _figures.PLAIN_GD_COLOUR
    parts = {"trail": axes.plot([], [], color=colour, alpha=0.35, marker="o", markersize=4, lw=1)[0],
             "tangent": axes.plot([], [], color="0.3", linestyle="--", lw=1)[0],
             "point": axes.plot([], [], color=colour, marker="o", markersize=9, linestyle="none")[0]}
    if run["single"]:  # a small log plot of |x| shows the slow end, too small to see on the parabola
        parts["distance"] = _figures.distance_inset(axes, run["xs"])
    return parts


def move_to_step(parts, run, shown_steps):
    """The update function: move one panel's parts to the last of `shown_steps`; return its caption."""
    last = len(run["xs"]) - 1
    step = min(shown_steps[-1], last)  # a run that stopped early stays at its last step
    x, y, slope = run["xs"][step], run["fs"][step], run["slopes"][step]
    trail = [min(s, last) for s in shown_steps[-TRAIL:]]
    parts["trail"].set_data([run["xs"][s] for s in trail], [run["fs"][s] for s in trail])
    half_width = 0.15 * run["reach"]
    parts["tangent"].set_data([x - half_width, x + half_width], [y - slope * half_width, y + slope * half_width])
    _figures.place_point(parts["point"], x, y, run["reach"])  # off the panel: an arrow at its edge
    if "distance" in parts:
        parts["distance"].set_data([step], [max(abs(x), FLOAT32_TINY)])
    return _figures.descent_caption(run, step)


def animate(runs, steps=STEPS, n_frames=FRAMES, fps=FPS, path=_cli.DEFAULT_OUT_DIR / "02_gd_parabola.gif"):
    """One panel per run, the same steps in all; write the GIF and return its frame count."""
    figure, all_axes = _figures.descent_figure(len(runs))
    all_parts = [draw_panel(axes, run) for axes, run in zip(all_axes, runs)]
    recorder = _gif.FrameRecorder(figure, [part for parts in all_parts for part in parts.values()])
    frame_steps = _gif.pick_frames(steps, n_frames)
    for i in range(len(frame_steps)):
        recorder.capture([(axes, move_to_step(parts, run, frame_steps[: i + 1]))
                          for axes, parts, run in zip(all_axes, all_parts, runs)])
    return recorder.save_gif(path, fps)


def single_panel(lr, xs, steps):
    done = len(xs) - 1
    ran = f"{steps} steps" if done == steps else f"diverged, stopped after {done} of {steps} steps"
    return panel(f"Gradient descent on x², lr = {lr:g}, {ran}", xs, steps)


# %% tags=["active-ipynb"]
# xs, expected = single_run(X0, LR, STEPS)
# path = _cli.DEFAULT_OUT_DIR / "02_gd_parabola.gif"
# frames = animate([single_panel(LR, xs, STEPS)], STEPS, min(FRAMES, STEPS + 1), FPS, path)
# _cli.show_pictures([path], [f" ({frames} frames)"])

# %% [markdown]
# ## Beyond the article: what a learning rate does
#
# The factor 1 - 2*lr tells the whole story: between 0 and 1 the point creeps
# or hurries to the minimum; between -1 and 0 it jumps across the minimum at
# every step and lands closer; below -1 it lands farther out every time.
#
# Float32 has a floor, too. Below about 1.2e-38 its numbers are *subnormal*:
# they keep fewer digits, and the smallest above 0 is 1.4e-45. There x can no
# longer shrink by the factor, and a converging run stalls.

# %%
def stall_note(xs, lr):
    """How a run ended stuck in float32's smallest numbers; '' if it did not."""
    expected = common.parabola_closed_form(xs[0], lr, len(xs) - 1)
    stuck = len(xs) > 1 and abs(xs[-1]) == abs(xs[-2]) and abs(expected) < abs(xs[-1])
    if not (stuck and 0 < abs(xs[-1]) < FLOAT32_TINY):
        return ""
    factor = abs(1 - 2 * lr)
    return (f"stalled: among float32's subnormal numbers |x| times {factor:g} rounds back to |x|; "
            f"the closed form says {expected:.2g}")


def compare_learning_rates(lrs=COMPARE, x0=X0, steps=STEPS):
    """Descend from x0 with each learning rate; print what each run did."""
    runs = [descend(x0, lr, steps) for lr in lrs]
    print(f"Learning rates compared on f(x) = x^2 from x0 = {x0:g}, {steps} steps:")
    for lr, xs in zip(lrs, runs):
        summary = f"{behaviour(xs, steps):<26} x after {len(xs) - 1} steps = {xs[-1]:.6g}"
        print(f"  lr = {lr:<8g} {with_note(summary, stop_note(xs, steps) or stall_note(xs, lr))}")
    return runs


def compare_panels(lrs, runs, steps):
    return [panel(f"lr = {lr:g}: {behaviour(xs, steps)}", xs, steps, single=False) for lr, xs in zip(lrs, runs)]


# %% tags=["active-ipynb"]
# runs = compare_learning_rates(COMPARE, X0, STEPS)
# path = _cli.DEFAULT_OUT_DIR / "02_learning_rates.gif"
# frames = animate(compare_panels(COMPARE, runs, STEPS), STEPS, min(FRAMES, STEPS + 1), FPS, path)
# _cli.show_pictures([path], [f" ({frames} frames)"])

# %% tags=["active-py"]
# ===========================================================================
# The command line: flags, then main() and its --json report
# ===========================================================================

DEFAULT_COMPARE = ",".join(map(str, COMPARE))
learning_rates = _cli.comma_list(_cli.learning_rate, 6, f"learning rates such as {DEFAULT_COMPARE}")
MAX_STEPS = 100_000
MAX_X0 = 1e6


def parse_args(argv=None):
    parser = _cli.make_parser("Stage 2: plain gradient descent on y = x^2, with autograd for the slope, as a GIF.")
    parser.add_argument("--lr", type=_cli.learning_rate, default=LR, help="step size (learning rate)")
    parser.add_argument("--steps", type=_cli.in_range(1, MAX_STEPS, int), default=STEPS,
                        help=f"gradient descent steps, 1 to {MAX_STEPS}")
    parser.add_argument("--x0", type=_cli.in_range(-MAX_X0, MAX_X0), default=X0,
                        help=f"starting point, from {-MAX_X0:g} to {MAX_X0:g}")
    parser.add_argument("--frames", type=_cli.in_range(2, MAX_STEPS + 1, int),
                        help=f"frames in the GIF, from 2 to steps+1, spaced to show the fast start and the slow "
                             f"end (default: {FRAMES}, or steps+1 if that is fewer)")
    parser.add_argument("--fps", type=_cli.in_range(0.1, 100), default=FPS,
                        help="GIF frames per second, 0.1 to 100")
    parser.add_argument("--compare", type=learning_rates, nargs="?", const=DEFAULT_COMPARE, metavar="LR[,LR...]",
                        help="draw one panel per learning rate in outputs/02_learning_rates.gif instead of the "
                             f"single GIF; 1 to 6 rates, with no list: {DEFAULT_COMPARE} (default: off)")
    _cli.add_output_flags(parser, plots=False)
    args = parser.parse_args(argv)
    if isinstance(args.compare, str):  # argparse passes the `const` string through unparsed
        args.compare = learning_rates(args.compare)
    _cli.check_frames(parser, args, "steps", args.steps, FRAMES)
    return args


def run(args):
    """Do what the flags ask: print, draw the GIF, return the --json report."""
    _cli.prepare_out_dir(args.out_dir)
    if args.compare:
        runs = compare_learning_rates(args.compare, args.x0, args.steps)
        report = {"steps": args.steps, "runs": [
            {"lr": lr, "x_final": xs[-1], "steps_done": len(xs) - 1, "behaviour": behaviour(xs, args.steps)}
            for lr, xs in zip(args.compare, runs)]}
        panels = compare_panels(args.compare, runs, args.steps)
        path = args.out_dir / "02_learning_rates.gif"
    else:
        xs, expected = single_run(args.x0, args.lr, args.steps)
        report = {"x_final": xs[-1], "x_expected": expected, "steps": args.steps, "steps_done": len(xs) - 1,
                  "behaviour": behaviour(xs, args.steps)}
        panels = [single_panel(args.lr, xs, args.steps)]
        path = args.out_dir / "02_gd_parabola.gif"
    report["frames"] = animate(panels, args.steps, args.frames, args.fps, path)
    report["gif"] = str(path)
    _cli.show_pictures([path], [f" ({report['frames']} frames)"])
    return report


def main(argv=None):
    args = parse_args(argv)
    with _cli.quiet_if(args.quiet):
        report = run(args)
    if args.json:
        _cli.print_json(report)


if __name__ == "__main__":
    _cli.run_cli(main)

"""Stage 2: plain gradient descent on y = x^2, with autograd for the slope, as a GIF.

The article's run first (x0 = 1.0, step size 0.01, 800 steps), checked against
the closed form x_n = x0 * (1 - 2*lr)^n; then, with --compare, several learning
rates side by side: too slow, fast, oscillating, diverging.

    python 02_gd_parabola_anim.py            # outputs/02_gd_parabola.gif
    python 02_gd_parabola_anim.py --compare  # outputs/02_learning_rates.gif
"""

import argparse
import math
from dataclasses import dataclass

import torch

import common

DEFAULT_COMPARE = "0.01,0.1,0.9,1.05"  # slow, fast, oscillating, diverging
DEFAULT_FRAMES = 120
MAX_STEPS = 100_000
MAX_X0 = 1e6
ESCAPE_FACTOR = 1000  # a run has diverged once |x| > 1000 * max(1, |x0|)
TRAIL_FRAMES = 6
FLOAT32_TINY = torch.finfo(torch.float32).tiny  # below it float32 is subnormal and loses precision


def parse_args(argv=None):
    parser = common.make_parser(__doc__.split("\n")[0])
    parser.add_argument("--lr", type=common.learning_rate, default=0.01, help="step size (learning rate)")
    parser.add_argument("--steps", type=steps_value, default=800, help="gradient descent steps")
    parser.add_argument("--x0", type=x0_value, default=1.0, help="starting point")
    parser.add_argument("--frames", type=common.positive_int,
                        help=f"frames in the GIF, from 2 to steps+1, spaced to show the fast start and the slow "
                             f"end (default: {DEFAULT_FRAMES}, or steps+1 if that is fewer)")
    parser.add_argument("--fps", type=fps_value, default=20.0, help="GIF frames per second")
    parser.add_argument("--compare", type=learning_rates, nargs="?", const=DEFAULT_COMPARE, metavar="LR[,LR...]",
                        help="draw one panel per learning rate in outputs/02_learning_rates.gif instead of the "
                             f"single GIF; with no list: {DEFAULT_COMPARE} (default: off)")
    common.add_output_flags(parser, plots=False)
    args = parser.parse_args(argv)
    if isinstance(args.compare, str):  # argparse passes the `const` string through unparsed
        args.compare = learning_rates(args.compare)
    if args.frames is None:
        args.frames = min(DEFAULT_FRAMES, args.steps + 1)
    if not 2 <= args.frames <= args.steps + 1:
        parser.error(f"argument --frames: must be from 2 to steps+1 = {args.steps + 1}, got {args.frames}")
    return args


def steps_value(text):
    value = common.positive_int(text)
    if value > MAX_STEPS:
        raise argparse.ArgumentTypeError(f"must be a whole number from 1 to {MAX_STEPS}, got {text!r}")
    return value


def x0_value(text):
    value = common.parse_number(text)
    if not abs(value) <= MAX_X0:
        raise argparse.ArgumentTypeError(f"must be a finite number from {-MAX_X0:g} to {MAX_X0:g}, got {text!r}")
    return value


def fps_value(text):
    value = common.parse_number(text)
    if not 0.1 <= value <= 100:
        raise argparse.ArgumentTypeError(f"must be a number from 0.1 to 100 (GIF timing is in 1/100 s), got {text!r}")
    return value


def learning_rates(text):
    parts = text.split(",")
    if not text.strip() or len(parts) > 6:
        raise argparse.ArgumentTypeError(
            f"must be 1 to 6 comma-separated learning rates such as {DEFAULT_COMPARE}, got {text!r}")
    try:
        return [common.learning_rate(part) for part in parts]
    except argparse.ArgumentTypeError as error:
        raise argparse.ArgumentTypeError(f"each learning rate: {error} (in {text!r})") from None


# ---------------------------------------------------------------------------
# The descent: autograd gives the slope, we take the step by hand
# ---------------------------------------------------------------------------

@dataclass
class Descent:
    lr: float
    xs: list  # x at step 0, 1, ... (float32 values)
    fs: list  # f(x) = x^2 there
    slopes: list  # f'(x) there, from autograd
    escaped_at: int | None  # the step that would have left the bound, if the run diverged

    @property
    def steps_done(self):
        return len(self.xs) - 1


def descend(x0, lr, steps):
    """Gradient descent on f(x) = x^2 from x0; stops early if x leaves the bound."""
    bound = ESCAPE_FACTOR * max(1.0, abs(x0))
    x = torch.tensor(x0, requires_grad=True)
    xs, fs, slopes = [], [], []
    for step in range(steps + 1):
        f = x**2
        f.backward()  # x.grad now holds the slope 2x
        xs.append(x.item())
        fs.append(f.item())
        slopes.append(x.grad.item())
        if step == steps:
            break
        with torch.no_grad():  # the update itself must not become part of the graph
            next_x = x - lr * x.grad
            if not abs(next_x.item()) <= bound:  # also catches inf and nan
                return Descent(lr, xs, fs, slopes, escaped_at=step + 1)
            x.copy_(next_x)
        x.grad = None  # gradients accumulate unless cleared
    return Descent(lr, xs, fs, slopes, escaped_at=None)


def behaviour(descent):
    """Name what the run did, from its trajectory."""
    xs = descent.xs
    if descent.escaped_at is not None or abs(xs[-1]) > abs(xs[0]):
        return "diverges"
    if all(x == xs[0] for x in xs):
        return "stays put"
    changed_sign = any(a * b < 0 for a, b in zip(xs, xs[1:]))
    if abs(xs[-1]) < abs(xs[0]):
        return "oscillates and converges" if changed_sign else "converges"
    return "oscillates forever"


def check_against_closed_form(descent, say):
    """Compare the float32 result with the exact value; returns the expected x."""
    measured = descent.xs[-1]
    expected = common.parabola_closed_form(descent.xs[0], descent.lr, descent.steps_done)
    say(f"Closed form after {descent.steps_done} steps: x0 * (1 - 2*lr)^n = {expected:.9g}; measured {measured:.9g}")
    if 0 < abs(expected) < FLOAT32_TINY:
        say(f"  (the exact value is below {FLOAT32_TINY:.3g}, where float32 turns subnormal and can no longer "
            "shrink x by that factor: x stalls, and no relative difference is meaningful)")
    elif measured == expected:
        say("  exactly equal: no rounding error at all")
    elif expected != 0:
        difference = abs(measured - expected) / abs(expected)
        say(f"  relative difference {difference:.2e} (float32 rounds once or twice a step)")
    else:
        say(f"  absolute difference {abs(measured - expected):.2e}")
    return expected


def report_descent(descent, say):
    say(f"Gradient descent on f(x) = x^2 from x0 = {descent.xs[0]:g}, lr = {descent.lr:g}")
    say(f"  {'step':>6}  {'x':>13}  {'f(x)':>13}  {'slope':>13}")
    every = max(1, descent.steps_done // 8)
    for step in sorted({*range(0, descent.steps_done + 1, every), descent.steps_done}):
        say(f"  {step:>6}  {descent.xs[step]:>13.6g}  {descent.fs[step]:>13.6g}  {descent.slopes[step]:>13.6g}")
    if descent.escaped_at is not None:
        say(f"  step {descent.escaped_at} would take |x| past {ESCAPE_FACTOR} * max(1, |x0|): stopped, diverged")
    say(f"Behaviour: {behaviour(descent)}")


# ---------------------------------------------------------------------------
# The animation: the parabola is drawn once, only the point and its trail move
# ---------------------------------------------------------------------------

def draw_panel(axes, descent, reach, title, inset):
    """Draw the still parts of one panel; return its moving artists.

    With `inset`, a small log-scale plot of |x| per step shows the slow end of
    the descent, which on the parabola itself is too small to see.
    """
    import numpy as np

    grid = np.linspace(-reach, reach, 401)
    axes.plot(grid, grid**2, color="0.6", lw=1.5)
    axes.plot([0], [0], marker="*", color="tab:green", markersize=10, linestyle="none")
    axes.set(xlim=(-1.05 * reach, 1.05 * reach), ylim=(-0.06 * reach**2, 1.3 * reach**2), xlabel="x")
    axes.set_title(title, fontsize=10)
    moving = {
        "trail": axes.plot([], [], color=common.PLAIN_GD_COLOUR, alpha=0.35, marker="o", markersize=4, lw=1)[0],
        "tangent": axes.plot([], [], color="0.3", linestyle="--", lw=1)[0],
        "point": axes.plot([], [], color=common.PLAIN_GD_COLOUR, marker="o", markersize=9, linestyle="none")[0],
    }
    if inset:
        distance = axes.inset_axes([0.3, 0.42, 0.4, 0.33])
        distance.semilogy(range(descent.steps_done + 1), [max(abs(x), FLOAT32_TINY) for x in descent.xs],
                          color=common.PLAIN_GD_COLOUR, lw=1)
        distance.set_title("|x|, log scale, per step", fontsize=8)
        distance.tick_params(labelsize=7)
        common.label_decades(distance.yaxis)
        moving["distance"] = distance.plot([], [], color=common.PLAIN_GD_COLOUR, marker="o", markersize=5)[0]
    return moving


def update_panel(moving, descent, shown_steps, reach, long_caption):
    """Move one panel's artists to the last of `shown_steps`; return its caption."""
    shown = [min(s, descent.steps_done) for s in shown_steps[-TRAIL_FRAMES:]]  # a stopped run stays put
    step = shown[-1]
    x, f, slope = descent.xs[step], descent.fs[step], descent.slopes[step]
    moving["trail"].set_data([descent.xs[s] for s in shown], [descent.fs[s] for s in shown])
    half_width = 0.15 * reach
    moving["tangent"].set_data([x - half_width, x + half_width], [f - slope * half_width, f + slope * half_width])
    if abs(x) <= 1.05 * reach:
        moving["point"].set(data=([x], [f]), marker="o")
    else:  # off the panel: an arrow at the edge shows which way it went
        moving["point"].set(data=([math.copysign(reach, x)], [1.2 * reach**2]), marker=">" if x > 0 else "<")
    if "distance" in moving:
        moving["distance"].set_data([step], [max(abs(x), FLOAT32_TINY)])
    if long_caption:
        caption = f"step {shown_steps[-1]}:  x = {x:.3g}   f(x) = {f:.3g}   slope = {slope:.3g}"
    else:
        caption = f"step {shown_steps[-1]}\nx = {x:.3g}, f(x) = {f:.3g}"
    if descent.escaped_at is not None and shown_steps[-1] >= descent.escaped_at:
        caption += f"\nstopped at step {descent.escaped_at}: |x| left the bound"
    return caption


def view_reach(descent, x0):
    """Half the width of a panel's view: wider for a diverging run, to watch it fly off."""
    reach = max(1.0, abs(x0))
    return 3 * reach if behaviour(descent) == "diverges" else reach


def animate(descents, x0, frame_steps, fps, path, titles):
    """One panel per descent, the same steps in every panel; return the frame count."""
    single = len(descents) == 1
    figure = common.new_figure(figsize=(6.4, 4.2) if single else (3.3 * len(descents), 3.6),
                               layout="constrained", dpi=80)
    panels = figure.subplots(1, len(descents), squeeze=False)[0]
    panels[0].set_ylabel("f(x) = x²")
    reaches = [view_reach(descent, x0) for descent in descents]
    panel_artists = [draw_panel(axes, descent, reach, title, inset=single)
                     for axes, descent, reach, title in zip(panels, descents, reaches, titles)]
    recorder = common.FrameRecorder(figure, [a for moving in panel_artists for a in moving.values()])
    for i in range(len(frame_steps)):
        captions = [(axes, update_panel(moving, descent, frame_steps[: i + 1], reach, long_caption=single))
                    for axes, moving, descent, reach in zip(panels, panel_artists, descents, reaches)]
        recorder.capture(captions)
    return recorder.save_gif(path, fps)


# ---------------------------------------------------------------------------

def run_single(args, say):
    descent = descend(args.x0, args.lr, args.steps)
    report_descent(descent, say)
    expected = check_against_closed_form(descent, say)
    frame_steps = common.pick_frames(args.steps, args.frames)
    path = args.out_dir / "02_gd_parabola.gif"
    title = f"Gradient descent on x², lr = {args.lr:g}, {args.steps} steps"
    frames = animate([descent], args.x0, frame_steps, args.fps, path, [title])
    return {"x_final": descent.xs[-1], "x_expected": expected, "steps": args.steps,
            "behaviour": behaviour(descent), "frames": frames, "gif": str(path)}


def run_comparison(args, say):
    descents = [descend(args.x0, lr, args.steps) for lr in args.compare]
    say(f"Learning rates compared on f(x) = x^2 from x0 = {args.x0:g}, {args.steps} steps:")
    for descent in descents:
        say(f"  lr = {descent.lr:<8g} {behaviour(descent):<26} "
            f"x after {descent.steps_done} steps = {descent.xs[-1]:.6g}")
    frame_steps = common.pick_frames(args.steps, args.frames)
    path = args.out_dir / "02_learning_rates.gif"
    titles = [f"lr = {d.lr:g}: {behaviour(d)}" for d in descents]
    frames = animate(descents, args.x0, frame_steps, args.fps, path, titles)
    runs = [{"lr": d.lr, "x_final": d.xs[-1], "behaviour": behaviour(d)} for d in descents]
    return {"steps": args.steps, "frames": frames, "gif": str(path), "runs": runs}


def main(argv=None):
    args = parse_args(argv)
    say = common.make_printer(args.quiet)
    common.prepare_out_dir(args.out_dir)
    report = run_comparison(args, say) if args.compare else run_single(args, say)
    say(f"wrote {report['gif']} ({report['frames']} frames)")
    if args.json:
        common.print_json(report)


if __name__ == "__main__":
    common.run_cli(main)

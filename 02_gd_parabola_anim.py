"""Stage 2: plain gradient descent on y = x^2, with autograd for the slope, as a GIF.

The article's stage first: x starts at 1.0 and takes 800 steps of size 0.01,
each one against the slope that autograd computes, checked against the closed
form x_n = x0 * (1 - 2*lr)^n. Then, with --compare, several learning rates
side by side: too slow, fast, oscillating, diverging.

    python 02_gd_parabola_anim.py            # outputs/02_gd_parabola.gif
    python 02_gd_parabola_anim.py --compare  # outputs/02_learning_rates.gif
"""

import torch

import _cli
import common

# The article's run, and the defaults of the flags at the bottom.
X0 = 1.0
LR = 0.01
STEPS = 800
ESCAPE_FACTOR = 1000  # a run has diverged once |x| would pass 1000 * max(1, |x0|)
FLOAT32_TINY = torch.finfo(torch.float32).tiny  # below it float32 is subnormal and loses precision


# ===========================================================================
# The article's stage: f, its slope, and the descent
# ===========================================================================

def f(x):
    """The function to minimise: y = x^2, lowest at x = 0."""
    return x**2


def f_and_slope(xs):
    """f(x) and its slope dy/dx at each x, as float32 computes them; autograd finds the slopes."""
    x = torch.tensor(xs, requires_grad=True)
    y = f(x)
    y.sum().backward()  # each y depends on its own x alone, so x.grad holds every slope
    return y.tolist(), x.grad.tolist()


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


def show_descent(xs, lr):
    """Print x, f(x) and the slope at about ten of the steps taken."""
    fs, slopes = f_and_slope(xs)
    steps_done = len(xs) - 1
    print(f"Gradient descent on f(x) = x^2 from x0 = {xs[0]:g}, lr = {lr:g}")
    print(f"  {'step':>6}  {'x':>13}  {'f(x)':>13}  {'slope':>13}")
    every = max(1, steps_done // 8)
    for step in sorted({*range(0, steps_done + 1, every), steps_done}):
        print(f"  {step:>6}  {xs[step]:>13.6g}  {fs[step]:>13.6g}  {slopes[step]:>13.6g}")


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


# ===========================================================================
# Beyond the article: what a learning rate does
# ===========================================================================

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


def with_stop_note(text, xs, steps):
    note = stop_note(xs, steps)
    return f"{text} ({note})" if note else text


def compare_learning_rates(lrs, x0=X0, steps=STEPS):
    """Descend from x0 with each learning rate; print what each run did."""
    runs = [descend(x0, lr, steps) for lr in lrs]
    print(f"Learning rates compared on f(x) = x^2 from x0 = {x0:g}, {steps} steps:")
    for lr, xs in zip(lrs, runs):
        summary = f"{behaviour(xs, steps):<26} x after {len(xs) - 1} steps = {xs[-1]:.6g}"
        print(f"  lr = {lr:<8g} {with_stop_note(summary, xs, steps)}")
    return runs


# ===========================================================================
# The command line: flags, then main() and its --json report
# ===========================================================================

DEFAULT_COMPARE = "0.01,0.1,0.9,1.05"  # slow, fast, oscillating, diverging
learning_rates = _cli.comma_list(_cli.learning_rate, 6, f"learning rates such as {DEFAULT_COMPARE}")
DEFAULT_FRAMES = 120
MAX_STEPS = 100_000
MAX_X0 = 1e6


def parse_args(argv=None):
    parser = _cli.make_parser(__doc__.split("\n")[0])
    parser.add_argument("--lr", type=_cli.learning_rate, default=LR, help="step size (learning rate)")
    parser.add_argument("--steps", type=_cli.in_range(1, MAX_STEPS, int), default=STEPS,
                        help=f"gradient descent steps, 1 to {MAX_STEPS}")
    parser.add_argument("--x0", type=_cli.in_range(-MAX_X0, MAX_X0), default=X0,
                        help=f"starting point, from {-MAX_X0:g} to {MAX_X0:g}")
    parser.add_argument("--frames", type=_cli.in_range(2, MAX_STEPS + 1, int),
                        help=f"frames in the GIF, from 2 to steps+1, spaced to show the fast start and the slow "
                             f"end (default: {DEFAULT_FRAMES}, or steps+1 if that is fewer)")
    parser.add_argument("--fps", type=_cli.in_range(0.1, 100), default=20.0,
                        help="GIF frames per second, 0.1 to 100")
    parser.add_argument("--compare", type=learning_rates, nargs="?", const=DEFAULT_COMPARE, metavar="LR[,LR...]",
                        help="draw one panel per learning rate in outputs/02_learning_rates.gif instead of the "
                             f"single GIF; 1 to 6 rates, with no list: {DEFAULT_COMPARE} (default: off)")
    _cli.add_output_flags(parser, plots=False)
    args = parser.parse_args(argv)
    if isinstance(args.compare, str):  # argparse passes the `const` string through unparsed
        args.compare = learning_rates(args.compare)
    _cli.check_frames(parser, args, "steps", args.steps, DEFAULT_FRAMES)
    return args


def single_run(args):
    """The article's run, or the flags' variant of it: the table, the closed form, one panel."""
    xs = descend(args.x0, args.lr, args.steps)
    show_descent(xs, args.lr)
    print(with_stop_note(f"Behaviour: {behaviour(xs, args.steps)}", xs, args.steps))
    expected = check_against_closed_form(xs, args.lr)
    report = {"x_final": xs[-1], "x_expected": expected, "steps": args.steps, "steps_done": len(xs) - 1,
              "behaviour": behaviour(xs, args.steps)}
    panels = [panel(f"Gradient descent on x², lr = {args.lr:g}, {args.steps} steps", xs, args.steps)]
    return report, panels, args.out_dir / "02_gd_parabola.gif"


def comparison_run(args):
    """--compare: one run and one panel per learning rate."""
    runs = compare_learning_rates(args.compare, args.x0, args.steps)
    report = {"steps": args.steps, "runs": [
        {"lr": lr, "x_final": xs[-1], "steps_done": len(xs) - 1, "behaviour": behaviour(xs, args.steps)}
        for lr, xs in zip(args.compare, runs)]}
    panels = [panel(f"lr = {lr:g}: {behaviour(xs, args.steps)}", xs, args.steps) for lr, xs in zip(args.compare, runs)]
    return report, panels, args.out_dir / "02_learning_rates.gif"


def panel(title, xs, steps):
    """What the GIF needs to draw one run."""
    fs, slopes = f_and_slope(xs)
    return {"title": title, "xs": xs, "fs": fs, "slopes": slopes, "stop_note": stop_note(xs, steps),
            "diverges": behaviour(xs, steps) == "diverges"}


def run(args):
    """Do what the flags ask: print, draw the GIF, return the --json report."""
    import _figures  # matplotlib loads only when there is something to draw

    _cli.prepare_out_dir(args.out_dir)
    report, panels, path = comparison_run(args) if args.compare else single_run(args)
    report["frames"] = _figures.stage2_descent_gif(panels, args.x0, args.steps, args.frames, args.fps, path)
    report["gif"] = str(path)
    print(f"wrote {path} ({report['frames']} frames)")
    return report


def main(argv=None):
    args = parse_args(argv)
    with _cli.quiet_if(args.quiet):
        report = run(args)
    if args.json:
        _cli.print_json(report)


if __name__ == "__main__":
    _cli.run_cli(main)

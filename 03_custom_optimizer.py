"""Stage 3: write your own optimizer, SimpleGD, and prove it is exactly torch.optim.SGD.

Three parts, as in the article, each shown rather than claimed:
  1. SimpleGD minimises y = x^2, checked against the closed form;
  2. SimpleGD trains the stage 1 network, and ends with the very same weights
     as torch.optim.SGD(momentum=0) from the same start;
  3. plain gradient descent stops in a local minimum where momentum may not.

    python 03_custom_optimizer.py
"""

import argparse
import copy

import torch

import common
from common import Test_Conv


class SimpleGD(torch.optim.Optimizer):
    """Plain gradient descent: for every parameter p that has a gradient,

        p <- p - lr * p.grad

    A drop-in for torch.optim.SGD(params, lr) with momentum 0: the same
    parameter values bit for bit, the same checks, param groups, state_dict,
    schedulers and hooks (all but the update come from torch.optim.Optimizer).
    """

    def __init__(self, params, lr=1e-3):
        if lr < 0.0:
            raise ValueError(f"Invalid learning rate: {lr}")  # SGD's own check and message
        super().__init__(params, defaults={"lr": lr})

    @torch.no_grad()  # the update must not be recorded by autograd
    def step(self, closure=None):
        """Take one step; with a closure, first re-evaluate the loss and return it."""
        loss = None
        if closure is not None:
            with torch.enable_grad():  # the closure runs forward and backward, which need autograd
                loss = closure()
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:  # this parameter took no part in the loss
                    continue
                # In place (add_), so the model keeps the very tensor it owns; alpha= fuses
                # the scaling into the addition: no temporary tensor, and the same single
                # rounding as torch.optim.SGD, hence the same bits. `p.add_(p.grad * -lr)`
                # allocates a temporary and rounds twice.
                p.add_(p.grad, alpha=-group["lr"])
        return loss


MINIMA_RANGE = 4.0  # part 3 draws and searches f on [-4, 4]
MINIMA_MOMENTUM = 0.9
DEFAULT_STARTS = "2.5,3.0,-2.0"
GLOBAL_TOLERANCE = 1e-3  # a run "found the global minimum" if f ended this close to its value
GIF_FPS = 20


def parse_args(argv=None):
    parser = common.make_parser(__doc__.split("\n")[0])
    parser.add_argument("--lr", type=common.learning_rate, default=0.1,
                        help="SimpleGD learning rate in parts 1 (parabola) and 2 (network)")
    parser.add_argument("--steps", type=common.positive_int, default=50, help="part 1: steps on y = x^2")
    parser.add_argument("--seed", type=common.seed_value, default=0, help="part 2: seeds the initial weights")
    parser.add_argument("--epochs", type=common.positive_int, default=2,
                        help="part 2: passes over the 40 training samples")
    parser.add_argument("--minima-lr", type=common.learning_rate, default=0.05,
                        help="part 3: learning rate of both optimizers on the bumpy function")
    parser.add_argument("--minima-steps", type=common.positive_int, default=200, help="part 3: steps per run")
    parser.add_argument("--starts", type=starting_points, default=DEFAULT_STARTS, metavar="X[,X...]",
                        help=f"part 3: starting points, each in [-{MINIMA_RANGE:g}, {MINIMA_RANGE:g}]")
    parser.add_argument("--frames", type=common.positive_int, default=80,
                        help="part 3: frames in the GIF, from 2 to minima-steps+1")
    common.add_device_flag(parser)
    common.add_output_flags(parser)
    args = parser.parse_args(argv)
    if not 2 <= args.frames <= args.minima_steps + 1:
        parser.error(f"argument --frames: must be from 2 to minima-steps+1 = {args.minima_steps + 1}, "
                     f"got {args.frames}")
    args.device = common.pick_device(parser, args.device)
    return args


def starting_points(text):
    try:
        values = [float(part) for part in text.split(",")]
    except ValueError:
        values = []
    if not 1 <= len(values) <= 4 or not all(abs(v) <= MINIMA_RANGE for v in values):
        raise argparse.ArgumentTypeError(
            f"must be 1 to 4 comma-separated numbers in [-{MINIMA_RANGE:g}, {MINIMA_RANGE:g}], got {text!r}")
    return values


# ---------------------------------------------------------------------------
# Part 1: y = x^2
# ---------------------------------------------------------------------------

ESCAPE = 1000.0  # a one-dimensional run whose |x| passes this has diverged


def descend(function, optimizer, x, steps, lr_flag):
    """Minimise function(x) for a scalar tensor x; return x after each step, x0 first."""
    xs = [x.item()]
    for step in range(1, steps + 1):
        optimizer.zero_grad()
        function(x).backward()
        optimizer.step()
        if not abs(x.item()) <= ESCAPE:  # also catches inf and nan
            raise common.RunFailure(f"gradient descent from x0 = {xs[0]:g} diverged at step {step} "
                                    f"(|x| > {ESCAPE:g}); try a smaller {lr_flag}")
        xs.append(x.item())
    return xs


def descend_parabola(x0, lr, steps):
    """SimpleGD on y = x^2 from x0."""
    x = torch.tensor(x0, requires_grad=True)
    return descend(torch.square, SimpleGD([x], lr=lr), x, steps, "--lr")


def part_parabola(args, say):
    say(f"Part 1: SimpleGD(lr={args.lr:g}) on y = x^2 from x = 1.0, {args.steps} steps")
    xs = descend_parabola(1.0, args.lr, args.steps)
    every = max(1, args.steps // 10)
    say("  " + "  ".join(f"x{n}={xs[n]:.4g}" for n in sorted({*range(0, args.steps + 1, every), args.steps})))
    expected = common.parabola_closed_form(1.0, args.lr, args.steps)
    difference = abs(xs[-1] - expected) / abs(expected) if expected else abs(xs[-1])
    say(f"  closed form x0*(1 - 2*lr)^n = {expected:.9g}, measured {xs[-1]:.9g} "
        f"({'relative' if expected else 'absolute'} difference {difference:.1e})")
    return xs, {"x_final": xs[-1], "x_expected": expected}


def plot_parabola(xs, lr, path):
    import numpy as np

    figure = common.new_figure(figsize=(9, 3.6), layout="constrained")
    curve, distance = figure.subplots(1, 2)
    grid = np.linspace(-1.05, 1.05, 201)
    curve.plot(grid, grid**2, color="0.6")
    steps = np.arange(len(xs))
    values = np.array(xs)
    shown = curve.scatter(values, values**2, c=steps, cmap="viridis", s=22, zorder=3)
    figure.colorbar(shown, ax=curve, label="step")
    curve.set(xlabel="x", ylabel="y = x²", title=f"SimpleGD(lr={lr:g}) on y = x²")
    distance.semilogy(steps, np.maximum(np.abs(values), 1e-45), "o", color=common.PLAIN_GD_COLOUR,
                      markersize=4, label="SimpleGD (float32)")
    distance.semilogy(steps, np.abs((1 - 2 * lr) ** steps), color="black", lw=1, label="closed form x0·(1−2·lr)ⁿ")
    distance.set(xlabel="step", ylabel="|x| (log scale)", title="Each step multiplies x by (1 − 2·lr)")
    common.label_decades(distance.yaxis)
    distance.legend()
    return common.save_figure(figure, path)


# ---------------------------------------------------------------------------
# Part 2: the stage 1 network, with SimpleGD and with torch.optim.SGD
# ---------------------------------------------------------------------------

def part_network(args, say):
    say(f"\nPart 2: SimpleGD(lr={args.lr:g}) trains Test_Conv on the stage 1 data, {args.epochs} epochs")
    torch.manual_seed(args.seed)
    ours = Test_Conv().to(args.device)
    theirs = copy.deepcopy(ours)  # the same initial weights, for torch.optim.SGD
    before = common.evaluate(ours, args.device)
    inputs, labels = (t.to(args.device) for t in common.training_set())
    common.train(ours, SimpleGD(ours.parameters(), lr=args.lr), inputs, labels, args.epochs)
    common.train(theirs, torch.optim.SGD(theirs.parameters(), lr=args.lr, momentum=0), inputs, labels, args.epochs)
    after = common.evaluate(ours, args.device)
    say(f"  held-out accuracy {before['accuracy']:.1f}% before, {after['accuracy']:.1f}% after "
        f"(noisy held-out {before['noisy_accuracy']:.1f}% -> {after['noisy_accuracy']:.1f}%)")
    identical = all(torch.equal(a, b) for a, b in zip(ours.parameters(), theirs.parameters()))
    max_abs_diff = max((a - b).abs().max().item() for a, b in zip(ours.parameters(), theirs.parameters()))
    verdict = "identical, bit for bit" if identical else "DIFFERENT"
    say(f"  weights after SimpleGD vs torch.optim.SGD(momentum=0) from the same start: {verdict} "
        f"(largest difference {max_abs_diff:g})")
    return {"accuracy_before": before["accuracy"], "accuracy_after": after["accuracy"],
            "identical_to_sgd": identical, "max_abs_diff": max_abs_diff}


# ---------------------------------------------------------------------------
# Part 3: local minima, plain descent against momentum
# ---------------------------------------------------------------------------

def bumpy(x):
    """x^2/4 + sin(5x)/2: a bowl with ripples, one global and several local minima."""
    return x**2 / 4 + 0.5 * torch.sin(5 * x)


def global_minimum():
    """(x, f) of bumpy's lowest point, found on a fine float64 grid over [-4, 4].

    Outside that range x^2/4 - 1/2 alone already exceeds bumpy(0) = 0, so the
    global minimum cannot lie there.
    """
    grid = torch.linspace(-MINIMA_RANGE, MINIMA_RANGE, 80_001, dtype=torch.float64)
    values = bumpy(grid)
    best = values.argmin()
    return grid[best].item(), values[best].item()


def minima_optimizers():
    """{name: make(params, lr)} for the two optimizers part 3 compares."""
    return {
        "SimpleGD": lambda params, lr: SimpleGD(params, lr=lr),
        f"SGD momentum {MINIMA_MOMENTUM}":
            lambda params, lr: torch.optim.SGD(params, lr=lr, momentum=MINIMA_MOMENTUM),
    }


def descend_bumpy(make_optimizer, x0, lr, steps):
    """Minimise bumpy from x0 with the optimizer make_optimizer(params, lr)."""
    x = torch.tensor(x0, requires_grad=True)
    return descend(bumpy, make_optimizer([x], lr), x, steps, "--minima-lr")


def part_local_minima(args, say):
    """Run both optimizers from every start; return the runs and the global minimum (x, f)."""
    x_best, f_best = global_minimum()
    say(f"\nPart 3: f(x) = x^2/4 + sin(5x)/2, global minimum f({x_best:.4f}) = {f_best:.4f}; "
        f"lr {args.minima_lr:g}, {args.minima_steps} steps")
    runs = []
    for name, make_optimizer in minima_optimizers().items():
        for x0 in args.starts:
            xs = descend_bumpy(make_optimizer, x0, args.minima_lr, args.minima_steps)
            fs = bumpy(torch.tensor(xs)).tolist()
            runs.append({"optimizer": name, "x0": x0, "x_final": xs[-1], "f_final": fs[-1],
                         "is_global": fs[-1] - f_best < GLOBAL_TOLERANCE, "xs": xs, "fs": fs})
    for run in runs:
        where = "the global minimum" if run["is_global"] else "a local minimum"
        say(f"  {run['optimizer']:<17} from x0 = {run['x0']:>5g}: stopped at x = {run['x_final']:8.4f}, "
            f"f = {run['f_final']:7.4f}, {where}")
    return runs, (x_best, f_best)


def animate_local_minima(runs, best, steps, n_frames, path):
    """Two panels, SimpleGD and momentum, with one point per starting point; best = (x, f) of the global minimum."""
    names = list(minima_optimizers())
    figure = common.new_figure(figsize=(9, 3.8), layout="constrained", dpi=80)
    panels = figure.subplots(1, 2, sharey=True)
    grid = torch.linspace(-MINIMA_RANGE, MINIMA_RANGE, 801)
    curve = bumpy(grid)
    markers = ["o", "s", "^", "D"]
    moving = []
    for axes, name, colour in zip(panels, names, (common.PLAIN_GD_COLOUR, common.MOMENTUM_COLOUR)):
        axes.plot(grid.numpy(), curve.numpy(), color="0.6", lw=1.5)
        axes.plot(*best, marker="*", color="tab:green", markersize=12, linestyle="none")
        axes.set(xlabel="x", title=name, ylim=(curve.min().item() - 0.3, curve.max().item() + 1.2))
        panel_runs = [run for run in runs if run["optimizer"] == name]
        for run, marker in zip(panel_runs, markers):  # a faint copy marks where each run started
            axes.plot(run["xs"][0], run["fs"][0], marker=marker, color=colour, alpha=0.3, linestyle="none")
            point = axes.plot([], [], marker=marker, color=colour, markersize=9, linestyle="none")[0]
            moving.append((axes, run, point))
    panels[0].set_ylabel("f(x) = x²/4 + sin(5x)/2")
    recorder = common.FrameRecorder(figure, [point for _, _, point in moving])
    for step in common.pick_frames(steps, n_frames):
        for _, run, point in moving:
            point.set_data([run["xs"][step]], [run["fs"][step]])
        captions = []
        for axes, name in zip(panels, names):
            xs = ", ".join(f"{run['xs'][step]:.2f}" for _, run, _ in moving if run["optimizer"] == name)
            captions.append((axes, f"step {step}: x = {xs}"))
        recorder.capture(captions)
    return recorder.save_gif(path, GIF_FPS)


# ---------------------------------------------------------------------------

def main(argv=None):
    args = parse_args(argv)
    say = common.make_printer(args.quiet)
    if not args.no_plots:
        common.prepare_out_dir(args.out_dir)
    xs, parabola = part_parabola(args, say)
    network = part_network(args, say)
    runs, best = part_local_minima(args, say)
    outputs = []
    if not args.no_plots:
        outputs.append(plot_parabola(xs, args.lr, args.out_dir / "03_parabola.png"))
        outputs.append(args.out_dir / "03_local_minima.gif")
        animate_local_minima(runs, best, args.minima_steps, args.frames, outputs[-1])
    for path in outputs:
        say(f"wrote {path}")
    if args.json:
        local_minima = [{key: run[key] for key in ("optimizer", "x0", "x_final", "f_final", "is_global")}
                        for run in runs]
        common.print_json({"parabola": parabola, "network": network, "local_minima": local_minima,
                           "outputs": [str(p) for p in outputs]})


if __name__ == "__main__":
    common.run_cli(main)

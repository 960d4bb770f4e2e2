# %% [markdown]
# # Stage 3: write your own optimizer, SimpleGD
#
# The article's stage first: `SimpleGD`, a subclass of `torch.optim.Optimizer`,
# and its two uses:
#   1. SimpleGD minimises y = x², checked against the closed form;
#   2. SimpleGD trains the stage 1 network with stage 1's own loop, and ends with
#      the very same weights as `torch.optim.SGD(momentum=0)` from the same start.
# Then one step further: `SimpleMomentum`, an optimizer that keeps state (a
# velocity per parameter), which rebuilds stage 1's run bit for bit, and
#   3. rolls over the small bumps where plain gradient descent gets stuck.
#
# In a terminal: `python 03_custom_optimizer.py`.

# %% tags=["active-ipynb"]
# try:  # notebook only: the lesson's files must lie beside this notebook
#     import _notebook
# except ModuleNotFoundError:
#     raise FileNotFoundError("Put this notebook beside the lesson files: upload or clone the whole folder.") from None
# _notebook.show_versions()

# %%
import copy
import importlib

import torch

import _cli
import common

stage1 = importlib.import_module("01_pattern_classifier")  # a file name that starts with a digit needs importlib

# The settings: the article's, and the defaults of the flags at the bottom.
# In a notebook, change them here and run the cells below again.
LR = 0.1  # SimpleGD's learning rate in parts 1 and 2
STEPS = 50  # part 1: steps on y = x^2
EPOCHS = stage1.EPOCHS  # part 2: stage 1's training
SEED = stage1.SEED
MINIMA_LR = 0.05  # part 3: both optimizers on a bumpy function
MINIMA_STEPS = 200
MINIMA_MOMENTUM = 0.9
STARTS = (2.5, 3.0, -2.0)
ESCAPE = 1000.0  # a one-dimensional run whose |x| passes this has diverged

# %% [markdown]
# ## The article's stage: SimpleGD
#
# An optimizer needs one method of its own, `step()`, which moves every
# parameter against its gradient. Everything else comes from
# `torch.optim.Optimizer`: the *param groups* (the parameters, each group with
# its own settings), `zero_grad`, `state_dict` (the settings and state to save
# and load), learning-rate schedulers and hooks. `step()` may be given a
# *closure*, a function that computes the loss again (optimizers such as L-BFGS
# need it); it is `step()`'s own job to call it.
#
# The article writes the update as `p.add_(p.grad * -lr)`: right in exact
# arithmetic, but it makes a temporary tensor and rounds twice. `p.add_(p.grad,
# alpha=-lr)` rounds once, as `torch.optim.SGD` does, so the two agree to the bit.

# %%
class SimpleGD(torch.optim.Optimizer):
    """Plain gradient descent: for every parameter p that has a gradient,

        p <- p - lr * p.grad

    A stand-in for torch.optim.SGD(params, lr) with momentum 0: in every case
    the tests try, the same parameter values bit for bit, the same errors, and
    the same param groups, state_dict, schedulers and hooks (all but the update
    come from torch.optim.Optimizer).
    """

    def __init__(self, params, lr=1e-3):
        check_learning_rate(lr)
        super().__init__(params, defaults={"lr": lr})  # the defaults fill in each param group

    @torch.no_grad()  # the update must not be recorded by autograd
    def step(self, closure=None):
        """Take one step; with a closure, first re-evaluate the loss and return it."""
        loss = None
        if closure is not None:
            with torch.enable_grad():  # the closure runs forward and backward, which need autograd
                loss = closure()
        for group in self.param_groups:
            lr = as_scalar(group["lr"])  # a tensor lr of shape [1] or [1, 1] works as SGD's does
            for p in group["params"]:
                if p.grad is None:  # this parameter took no part in the loss
                    continue
                # In place (add_), so the model keeps the very tensor it owns; alpha= fuses
                # the scaling into the addition: no temporary tensor, and the same single
                # rounding as torch.optim.SGD, hence the same bits.
                p.add_(p.grad, alpha=-lr)
        return loss


def check_learning_rate(lr):
    """Refuse what torch.optim.SGD refuses, with the same exception and message."""
    if isinstance(lr, torch.Tensor) and lr.numel() != 1:
        raise ValueError("Tensor lr must be 1-element")
    if lr < 0.0:
        raise ValueError(f"Invalid learning rate: {lr}")


def as_scalar(lr):
    """A one-element tensor lr as a 0-d tensor, which add_(alpha=) takes; a float stays a float."""
    return lr.squeeze() if isinstance(lr, torch.Tensor) else lr


# %% [markdown]
# ## Its two uses
#
# Part 1 is the article's: SimpleGD on y = x² from x = 1.0, where every step
# multiplies x by 1 - 2*lr, as in stage 2.
#
# Part 2 puts SimpleGD into stage 1's own training loop, and trains a twin
# network, from the same initial weights, with `torch.optim.SGD(momentum=0)`.
# The two end with identical weights, bit for bit. So the "stochastic" in SGD
# is not in the optimizer: with momentum 0, SGD is plain gradient descent. It
# is in the loop, which shows the network one sample per step: each step
# follows one sample's gradient, not the whole training set's, and with
# `--order shuffled` the samples come in a random order. In the article's order
# the loop is not random at all: two seeds differ only in their initial weights.

# %%
def descend(function, optimizer, x, steps):
    """Minimise function(x) over a scalar tensor x; return x before the first step and after each."""
    xs = [x.item()]
    for step in range(1, steps + 1):
        optimizer.zero_grad()  # clear the last step's slope: backward() adds to it
        function(x).backward()  # autograd puts the slope at x into x.grad
        optimizer.step()  # the optimizer moves x against the slope
        if not abs(x.item()) <= ESCAPE:  # inf and NaN fail this too
            raise _cli.RunFailure(f"{type(optimizer).__name__}(lr={optimizer.param_groups[0]['lr']:g}) from "
                                  f"x0 = {xs[0]:g} diverged at step {step}: |x| passed {ESCAPE:g}; "
                                  "try a smaller learning rate")
        xs.append(x.item())
    return xs


def part_parabola(lr=LR, steps=STEPS):
    """Part 1, the article's use: SimpleGD on y = x^2 from x = 1.0."""
    print(f"Part 1: SimpleGD(lr={lr:g}) on y = x^2 from x = 1.0, {steps} steps")
    x = torch.tensor(1.0, requires_grad=True)  # the one parameter SimpleGD moves
    xs = descend(torch.square, SimpleGD([x], lr=lr), x, steps)
    every = max(1, steps // 10)
    print("  " + "  ".join(f"x{n}={xs[n]:.4g}" for n in sorted({*range(0, steps + 1, every), steps})))
    expected = common.parabola_closed_form(1.0, lr, steps)
    difference = abs(xs[-1] - expected) / abs(expected) if expected else abs(xs[-1])
    print(f"  closed form x0*(1 - 2*lr)^n = {expected:.9g}, measured {xs[-1]:.9g} "
          f"({'relative' if expected else 'absolute'} difference {difference:.1e})")
    return xs, {"x_final": xs[-1], "x_expected": expected}


def draw_parabola(xs, lr=LR, out_dir=_cli.DEFAULT_OUT_DIR):
    import _figures  # matplotlib loads only when there is something to draw

    return _figures.stage3_parabola(xs, lr, out_dir / "03_parabola.png")


def part_network(lr=LR, epochs=EPOCHS, seed=SEED, device="cpu"):
    """Part 2, the article's claim: SimpleGD trains the stage 1 network with stage 1's loop.

    The check: torch.optim.SGD(momentum=0) from the same start ends with the same weights.
    """
    print(f"\nPart 2: SimpleGD(lr={lr:g}) trains Test_Conv with stage 1's loop, "
          f"{epochs} epoch{'' if epochs == 1 else 's'}")
    ours, theirs = twin_networks(seed, device)
    before = common.evaluate(ours)
    stage1.train(ours, SimpleGD(ours.parameters(), lr=lr), epochs, verbose=False)  # stage 1's loop, our optimizer
    stage1.train(theirs, torch.optim.SGD(theirs.parameters(), lr=lr, momentum=0), epochs, verbose=False)
    after = common.evaluate(ours)
    print(f"  training accuracy {before['train_accuracy']:.1f}% before, {after['train_accuracy']:.1f}% after; "
          f"test accuracy {before['test_accuracy']:.1f}% -> {after['test_accuracy']:.1f}%")
    identical, max_abs_diff = compare_weights(ours, theirs)
    print(f"  weights after SimpleGD vs torch.optim.SGD(momentum=0) from the same start: "
          f"{verdict(identical)} (largest difference {max_abs_diff:g})")
    return {"train_accuracy_before": before["train_accuracy"], "train_accuracy_after": after["train_accuracy"],
            "test_accuracy_before": before["test_accuracy"], "test_accuracy_after": after["test_accuracy"],
            "identical_to_sgd": identical, "max_abs_diff": max_abs_diff}


def twin_networks(seed, device="cpu"):
    """Two Test_Conv with the same initial weights, those stage 1 draws from `seed`."""
    model = stage1.new_network(seed, device)
    return model, copy.deepcopy(model)


def compare_weights(model, other):
    """(every parameter equal bit for bit?, the largest absolute difference)."""
    pairs = list(zip(model.parameters(), other.parameters()))
    identical = all(torch.equal(a, b) for a, b in pairs)
    return identical, max((a - b).abs().max().item() for a, b in pairs)


def verdict(identical):
    return "identical, bit for bit" if identical else "DIFFERENT"


# %% tags=["active-ipynb"]
# xs, parabola = part_parabola(LR, STEPS)
# _cli.show_pictures([draw_parabola(xs, LR)])
# network = part_network(LR, EPOCHS, SEED)

# %% [markdown]
# ## Beyond the article: an optimizer with state, and local minima
#
# `SimpleGD` forgets everything between steps. Momentum cannot: its velocity
# must outlive the step that made it. That is what `self.state` is for, a dict
# per parameter that the optimizer keeps from step to step and that
# `state_dict()` saves. `SimpleMomentum` keeps the velocity there. In stage 1's
# loop, with stage 1's seed and settings, it ends with exactly the weights of
# stage 1's run with `torch.optim.SGD`.
#
# Part 3 shows the article's closing warning: plain gradient descent stops in
# the first valley it meets. On f(x) = x²/4 + sin(5x)/2, a bowl with ripples,
# SimpleGD and SimpleMomentum start from the same points.

# %%
class SimpleMomentum(torch.optim.Optimizer):
    """Gradient descent with momentum: for every parameter p that has a gradient,

        velocity <- momentum * velocity + p.grad    (the first step: velocity <- p.grad)
        p <- p - lr * velocity

    A stand-in for torch.optim.SGD(params, lr, momentum) with dampening 0, no
    Nesterov and no weight decay: in every case the tests try, the same bits.
    Each parameter's velocity outlives the step that made it, so it lives in
    self.state[p]["velocity"], where state_dict() saves it.
    """

    def __init__(self, params, lr=1e-3, momentum=0.9):
        check_learning_rate(lr)
        if momentum < 0.0:
            raise ValueError(f"Invalid momentum value: {momentum}")  # SGD's own check and message
        super().__init__(params, defaults={"lr": lr, "momentum": momentum})

    @torch.no_grad()  # the update must not be recorded by autograd
    def step(self, closure=None):
        """Take one step; with a closure, first re-evaluate the loss and return it."""
        loss = None
        if closure is not None:
            with torch.enable_grad():  # the closure runs forward and backward, which need autograd
                loss = closure()
        for group in self.param_groups:
            lr = as_scalar(group["lr"])  # a tensor lr of shape [1] or [1, 1] works as SGD's does
            for p in group["params"]:
                if p.grad is None:  # this parameter took no part in the loss
                    continue
                state = self.state[p]  # this parameter's own dict, kept from step to step
                if "velocity" not in state:
                    # A copy: zero_grad(set_to_none=False) will zero p.grad in place
                    state["velocity"] = p.grad.clone()  # the first step starts from the gradient, as SGD's does
                else:
                    # The velocity is every past gradient, each shrunk by `momentum` once per
                    # step since: 0.9 keeps 90%. While the slope keeps its sign, the velocity
                    # grows (up to 10x a plain step); where a small bump flips the slope, the
                    # speed gathered so far outweighs it, and the run rolls on over the bump.
                    state["velocity"].mul_(group["momentum"]).add_(p.grad)
                p.add_(state["velocity"], alpha=-lr)
        return loss


def rebuild_stage1(epochs=EPOCHS, seed=SEED, device="cpu"):
    """SimpleMomentum in place of stage 1's SGD ends with stage 1's very weights."""
    ours, stage1_run = twin_networks(seed, device)
    settings = {"lr": stage1.LR, "momentum": stage1.MOMENTUM}
    stage1.train(ours, SimpleMomentum(ours.parameters(), **settings), epochs, verbose=False)
    stage1.train(stage1_run, torch.optim.SGD(stage1_run.parameters(), **settings), epochs, verbose=False)
    identical, max_abs_diff = compare_weights(ours, stage1_run)
    print(f"  SimpleMomentum(lr={stage1.LR}, momentum={stage1.MOMENTUM}) rebuilds stage 1's run with "
          f"torch.optim.SGD: {verdict(identical)} (largest difference {max_abs_diff:g})")
    return {"identical_to_stage1": identical, "stage1_max_abs_diff": max_abs_diff}


MINIMA_RANGE = 4.0  # part 3 draws and searches f on [-4, 4]
GLOBAL_TOLERANCE = 1e-3  # a run "found the global minimum" if f ended this close to its value


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


def descend_bumpy(x0, lr, steps, momentum):
    """Minimise bumpy from x0: with SimpleGD if momentum is 0, else with SimpleMomentum."""
    x = torch.tensor(x0, requires_grad=True)
    optimizer = SimpleMomentum([x], lr=lr, momentum=momentum) if momentum else SimpleGD([x], lr=lr)
    return descend(bumpy, optimizer, x, steps)


def part_local_minima(starts=STARTS, lr=MINIMA_LR, steps=MINIMA_STEPS):
    """Part 3: both hand-written optimizers from every start; return the runs and the global minimum (x, f)."""
    x_best, f_best = global_minimum()
    print(f"\nPart 3: f(x) = x^2/4 + sin(5x)/2, global minimum f({x_best:.4f}) = {f_best:.4f}; "
          f"lr {lr:g}, {steps} steps, SimpleMomentum with momentum {MINIMA_MOMENTUM}")
    runs = []
    for name, momentum in (("SimpleGD", 0.0), ("SimpleMomentum", MINIMA_MOMENTUM)):
        for x0 in starts:
            xs = descend_bumpy(x0, lr, steps, momentum)
            fs = bumpy(torch.tensor(xs)).tolist()
            runs.append({"optimizer": name, "x0": x0, "x_final": xs[-1], "f_final": fs[-1],
                         "is_global": fs[-1] - f_best < GLOBAL_TOLERANCE, "xs": xs, "fs": fs})
    for run in runs:
        where = "the global minimum" if run["is_global"] else "a local minimum"
        print(f"  {run['optimizer']:<14} from x0 = {run['x0']:>5g}: stopped at x = {run['x_final']:8.4f}, "
              f"f = {run['f_final']:7.4f}, {where}")
    return runs, (x_best, f_best)


GIF_FPS = 20
GIF_FRAMES = 80  # or one per position, for a run of fewer steps


def draw_local_minima(runs, best, steps=MINIMA_STEPS, n_frames=GIF_FRAMES, out_dir=_cli.DEFAULT_OUT_DIR):
    import _figures

    return _figures.stage3_local_minima(runs, best, MINIMA_RANGE, steps, n_frames, GIF_FPS,
                                        out_dir / "03_local_minima.gif")


# %% tags=["active-ipynb"]
# network.update(rebuild_stage1(EPOCHS, SEED))
# runs, best = part_local_minima(STARTS, MINIMA_LR, MINIMA_STEPS)
# _cli.show_pictures([draw_local_minima(runs, best, MINIMA_STEPS, min(GIF_FRAMES, MINIMA_STEPS + 1))])

# %% tags=["active-py"]
# ===========================================================================
# The command line: flags, then main() and its --json report
# ===========================================================================

MAX_STEPS = 10_000
starting_points = _cli.comma_list(_cli.in_range(-MINIMA_RANGE, MINIMA_RANGE), 4,
                                  f"numbers in [-{MINIMA_RANGE:g}, {MINIMA_RANGE:g}]")


def parse_args(argv=None):
    parser = _cli.make_parser("Stage 3: write your own optimizer, SimpleGD, and check it against torch.optim.SGD.")
    parser.add_argument("--lr", type=_cli.learning_rate, default=LR,
                        help="SimpleGD learning rate in parts 1 (parabola) and 2 (network)")
    parser.add_argument("--steps", type=_cli.in_range(1, MAX_STEPS, int), default=STEPS,
                        help=f"part 1: steps on y = x^2, 1 to {MAX_STEPS}")
    parser.add_argument("--seed", type=_cli.seed_value, default=SEED,
                        help="part 2: seeds the initial weights, 0 to 2**63-1")
    parser.add_argument("--epochs", type=_cli.epochs_value, default=EPOCHS,
                        help=f"part 2: passes over the 40 training samples, 1 to {_cli.MAX_EPOCHS}")
    parser.add_argument("--minima-lr", type=_cli.learning_rate, default=MINIMA_LR,
                        help="part 3: learning rate of both optimizers on the bumpy function")
    parser.add_argument("--minima-steps", type=_cli.in_range(1, MAX_STEPS, int), default=MINIMA_STEPS,
                        help=f"part 3: steps per run, 1 to {MAX_STEPS}")
    parser.add_argument("--starts", type=starting_points, default=list(STARTS), metavar="X[,X...]",
                        help=f"part 3: 1 to 4 starting points, each in [-{MINIMA_RANGE:g}, {MINIMA_RANGE:g}]; "
                             "write a list that starts with a minus sign as --starts=-2,1 "
                             f"(default: {','.join(map(str, STARTS))})")
    parser.add_argument("--frames", type=_cli.in_range(2, MAX_STEPS + 1, int),
                        help=f"part 3: frames in the GIF, from 2 to minima-steps+1 "
                             f"(default: {GIF_FRAMES}, or minima-steps+1 if that is fewer)")
    _cli.add_device_flag(parser)
    _cli.add_output_flags(parser)
    args = parser.parse_args(argv)
    _cli.check_frames(parser, args, "minima-steps", args.minima_steps, GIF_FRAMES)
    args.device = _cli.resolve_device(parser, args.device)
    return args


def run(args):
    """Do the three parts, as the cells above do; draw the pictures; return the --json report."""
    if not args.no_plots:
        _cli.prepare_out_dir(args.out_dir)
    xs, parabola = part_parabola(args.lr, args.steps)
    pictures = [] if args.no_plots else [draw_parabola(xs, args.lr, args.out_dir)]
    _cli.show_pictures(pictures)
    network = part_network(args.lr, args.epochs, args.seed, args.device)
    network.update(rebuild_stage1(args.epochs, args.seed, args.device))
    runs, best = part_local_minima(args.starts, args.minima_lr, args.minima_steps)
    if not args.no_plots:
        pictures.append(draw_local_minima(runs, best, args.minima_steps, args.frames, args.out_dir))
        _cli.show_pictures(pictures[-1:])
    local_minima = [{key: run[key] for key in ("optimizer", "x0", "x_final", "f_final", "is_global")}
                    for run in runs]
    return {"parabola": parabola, "network": network, "local_minima": local_minima,
            "outputs": [str(path) for path in pictures]}


def main(argv=None):
    args = parse_args(argv)
    with _cli.quiet_if(args.quiet):
        report = run(args)
    if args.json:
        _cli.print_json(report)


if __name__ == "__main__":
    _cli.run_cli(main)

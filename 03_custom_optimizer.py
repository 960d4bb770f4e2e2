# %% [markdown]
# # Stage 3: write your own optimizer, SimpleGD
#
# The article's stage first: `SimpleGD`, a subclass of `torch.optim.Optimizer`,
# and its two uses:
#   1. SimpleGD minimises y = x², checked against the closed form;
#   2. SimpleGD trains stage 1's network, `Test_Conv`, and ends with the very
#      same weights as `torch.optim.SGD(momentum=0)` from the same start.
#
# Then, beyond the article: `SimpleMomentum`, an optimizer that keeps state (a
# velocity per parameter), which rebuilds stage 1's run bit for bit, and
#   3. can roll over the small bumps where plain gradient descent gets stuck,
#      though not from every start.
#
# Run it: `python 03_custom_optimizer.py`.

# %% tags=["active-ipynb"]
# try:  # notebook only: the lesson's files must lie beside this notebook
#     import _notebook
# except ModuleNotFoundError:
#     raise FileNotFoundError("Put this notebook beside the lesson files: upload or clone the whole folder.") from None
# _notebook.show_versions()

# %% [markdown]
# ## Settings
#
# The article's values for parts 1 and 2; part 3 (MINIMA_LR, MINIMA_STEPS,
# STARTS, FRAMES) goes beyond the article. In a notebook, change them here and
# run all the cells again.
# In a terminal, flags change them: `python 03_custom_optimizer.py --help` lists them.

# %%
LR = 0.1  # SimpleGD's learning rate in parts 1 and 2, the article's
STEPS = 50  # part 1: steps on y = x^2
EPOCHS = 2  # part 2: passes over the 40 training samples, as in stage 1
SEED = 0  # part 2: draws the initial weights; stage 1's seed
MINIMA_LR = 0.05  # part 3: the learning rate of both optimizers on the bumpy function
MINIMA_STEPS = 200  # part 3: steps per run
STARTS = (2.5, 3.0, -2.0)  # part 3: 1 to 4 starting points, each in [-4, 4]
FRAMES = None  # part 3: frames in the GIF; None: 80, or one per position if the run has fewer
DEVICE = "auto"  # part 2 trains on "cpu" or "cuda"; "auto": cuda where there is one
OUT_DIR = "outputs"  # the pictures go to this folder, beside the lessons
PLOTS = True  # False: draw no pictures

import _flags  # machinery, skip it: flags typed in a terminal replace the values above; all are checked

_flags.apply("03_custom_optimizer", globals())

# %% [markdown]
# The lesson needs torch, and `common.py`, which holds what the lessons share:
# stage 1's network `Test_Conv`, a fresh one from a seed, the training and test
# sets, and their evaluation. `_cli` is machinery (progress, pictures, run-time
# errors): you may skip it.

# %%
import copy
import math

import torch
from torch import nn

import _cli
import common

# %% [markdown]
# ## The article's stage: SimpleGD
#
# An optimizer needs two methods of its own: `__init__`, which hands its
# settings to `torch.optim.Optimizer`, and `step()`, which moves every
# parameter against its gradient. Everything else comes from
# `torch.optim.Optimizer`: the *param groups* (the parameters, each group with
# its own settings), `zero_grad`, `state_dict` (the settings and state to save
# and load), and what other code attaches to an optimizer: a learning-rate
# *scheduler* (an object that changes the learning rate as training goes on,
# say halving it every 10 epochs) and *hooks* (a function you register to run
# before or after every `step()`).

# %% [markdown]
# Two small helpers first, so that SimpleGD can be a true stand-in for
# `torch.optim.SGD`: it must refuse the learning rates SGD refuses, with the
# same message, and take the ones SGD takes, a one-element tensor among them.

# %%
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
# `step()` may be given a *closure*, a function that computes the loss again
# (optimizers such as L-BFGS need it); it is `step()`'s own job to call it,
# with autograd on, and to return that loss. `loss_from` does that for both
# optimizers of this lesson.

# %%
def loss_from(closure):
    """Run step()'s closure, if it was given one, with autograd on (it calls backward()); return its loss."""
    if closure is None:
        return None
    with torch.enable_grad():  # step() itself runs under torch.no_grad()
        return closure()


# %% [markdown]
# The article writes the update as `p.add_(p.grad * -lr)`: right in exact
# arithmetic, but it makes a temporary tensor, rounded to float32 before it is
# added. `p.add_(p.grad, alpha=-lr)` is the operation `torch.optim.SGD` itself
# uses, the product kept inside the addition, so the two agree to the bit.

# %%
class SimpleGD(torch.optim.Optimizer):
    """Plain gradient descent: p <- p - lr * p.grad, for every parameter p that has a gradient.

    A stand-in for torch.optim.SGD(params, lr) with momentum 0: in every case the tests try, the
    same values bit for bit, the same errors, param groups, state_dict, schedulers and hooks.
    """

    def __init__(self, params, lr=1e-3):
        check_learning_rate(lr)
        super().__init__(params, defaults={"lr": lr})  # the defaults fill in each param group

    @torch.no_grad()  # the update must not be recorded by autograd
    def step(self, closure=None):
        """Take one step; with a closure, first re-evaluate the loss and return it."""
        loss = loss_from(closure)
        for group in self.param_groups:
            lr = as_scalar(group["lr"])  # a tensor lr of shape [1] or [1, 1] works as SGD's does
            for p in group["params"]:
                if p.grad is None:  # this parameter took no part in the loss
                    continue
                # In place, so the model keeps the very tensor it owns; alpha= keeps the
                # scaling inside the addition, as torch.optim.SGD does: the same bits.
                p.add_(p.grad, alpha=-lr)
        return loss


# %% [markdown]
# ## Part 1: SimpleGD on y = x²
#
# The article's first use: SimpleGD moves one number, x, down the parabola
# y = x². `descend` is the usual three lines of a training step, for any
# function of one number. A run whose x runs away stops there, before float32
# overflows to infinity: it returns fewer positions than steps + 1.

# %%
ESCAPE = 1000.0  # a one-dimensional run whose |x| passes this has diverged


def descend(function, optimizer, x, steps):
    """Minimise function(x) over a scalar tensor x; return x before the first step and after each,
    up to the last step that keeps |x| within ESCAPE."""
    xs = [x.item()]
    for _ in range(steps):
        optimizer.zero_grad()  # clear the last step's slope: backward() adds to it
        function(x).backward()  # autograd puts the slope at x into x.grad
        optimizer.step()  # the optimizer moves x against the slope
        if not abs(x.item()) <= ESCAPE:  # inf and NaN fail this too
            break  # diverged: stop
        xs.append(x.item())
    return xs


# %% [markdown]
# From x = 1.0, every step multiplies x by 1 − 2·lr, as in stage 2: x shrinks
# where that factor lies between −1 and 1 (0 < lr < 1), and with the default
# lr = 0.1 each step keeps 80% of it. Past lr = 1 each step throws x farther
# out; a run that would pass |x| = 1000 stops there and says so, and the
# lesson goes on to part 2.

# %%
print(f"Part 1: SimpleGD(lr={LR:g}) on y = x^2 from x = 1.0, {STEPS} steps, "
      f"each multiplying x by 1 - 2*lr = {1 - 2 * LR:g}")
x = torch.tensor(1.0, requires_grad=True)  # the one parameter SimpleGD moves
xs = descend(torch.square, SimpleGD([x], lr=LR), x, STEPS)
steps_done = len(xs) - 1
every = max(1, steps_done // 10)  # about ten positions: the first, every `every`-th, and the last
print("  " + "  ".join(f"x{n}={xs[n]:.4g}" for n in sorted({*range(0, steps_done + 1, every), steps_done})))
if steps_done < STEPS:
    print(f"  diverged: step {steps_done + 1} would take |x| past {ESCAPE:g} (|1 - 2*lr| = {abs(1 - 2 * LR):g} > 1); "
          "part 1 stops there, parts 2 and 3 go on")

# %% [markdown]
# The check: n steps multiply x0 by (1 − 2·lr)ⁿ. Where that is exactly 0
# (lr = 0.5), a relative difference means nothing, so the absolute one is printed.

# %%
x_expected = common.parabola_closed_form(1.0, LR, steps_done)
if x_expected:
    difference = f"relative difference {abs(xs[-1] - x_expected) / abs(x_expected):.1e}"
else:
    difference = f"absolute difference {abs(xs[-1]):.1e}"
print(f"  closed form after {steps_done} steps, x0*(1 - 2*lr)^n = {x_expected:.9g}, measured {xs[-1]:.9g} "
      f"({difference})")

# %% [markdown]
# The picture: the run on the parabola, and |x| per step against the closed
# form (colours and axes are in `_figures.py`, machinery).

# %%
if PLOTS:
    import _figures  # matplotlib loads only when there is something to draw

    _cli.prepare_out_dir(OUT_DIR)
    parabola_picture = _figures.stage3_parabola(xs, LR, OUT_DIR / "03_parabola.png")
    _cli.show_pictures([parabola_picture])

# %% [markdown]
# **What to look at:** on the left, the points (coloured by step) start at
# x = 1; with the default lr = 0.1 they crowd towards the bottom of the bowl,
# each step shorter than the last (past lr = 0.5 they jump from side to side,
# and past lr = 1 they fly outward, until the run stops).
# On the right, on a log scale, the dots (SimpleGD in float32) sit on the
# straight line of the closed form, every step multiplying x by the same
# 1 − 2·lr (0.8 by default), until x reaches 0 or float32's smallest numbers.
# A log scale has no place for 0: an x of exactly 0 is drawn as a green ▼ on
# the panel's bottom edge (the legend says so).

# %% [markdown]
# ## Part 2: SimpleGD trains stage 1's network
#
# The article's claim: SimpleGD can take `torch.optim.SGD`'s place in a real
# training loop. Here is stage 1's loop, written again so that this lesson
# reads on its own: one sample per step, in the article's order (pattern A at
# scales 0 to 19, then B), every step's loss kept. A run that takes long shows
# its progress in a terminal.

# %%
def train(model, optimizer, epochs=EPOCHS, label="training"):
    """Stage 1's loop: one sample per step, in the article's order; return every step's loss."""
    device = next(model.parameters()).device
    inputs, labels = (t.to(device) for t in common.training_set())
    loss_fn = nn.CrossEntropyLoss()  # small when the logit of the right class stands out
    losses = []
    for epoch in range(1, epochs + 1):
        _cli.show_progress(f"{label}: epoch {epoch} of {epochs}")
        for step, i in enumerate(range(len(labels)), start=1):
            optimizer.zero_grad()  # clear the last step's gradients: backward() adds to them
            loss = loss_fn(model(inputs[i : i + 1]), labels[i : i + 1])  # forward: one sample in
            losses.append(loss.item())
            if not math.isfinite(losses[-1]):  # inf or NaN: the run has diverged, stop now
                _cli.end_progress()
                raise _cli.TrainingDiverged(epoch, step, losses[-1], label)
            loss.backward()  # backward: d(loss)/d(weight) for every weight, into its .grad
            optimizer.step()  # the optimizer moves every weight against its gradient
    _cli.end_progress()
    return losses


# %% [markdown]
# Two twin networks, the same initial weights (drawn from `SEED`, as stage 1
# draws them): SimpleGD trains one, `torch.optim.SGD(momentum=0)` the other,
# both with `LR`, by default the article's SimpleGD learning rate, 0.1. (Stage 1
# used 0.001, but with momentum, whose velocity grows up to ten times a plain step.)
# The *training accuracy* counts the 38 training samples a network without bias
# can tell apart (at scale 0 both patterns are all zeros); the *test accuracy*
# counts 160 noisy copies of the patterns that no run trained on.

# %%
print(f"\nPart 2: SimpleGD(lr={LR:g}) trains Test_Conv with stage 1's loop, "
      f"{EPOCHS} epoch{'' if EPOCHS == 1 else 's'}")
model = common.new_network(SEED, DEVICE)
twin = copy.deepcopy(model)  # the same initial weights, for torch.optim.SGD
before = common.evaluate(model)
train(model, SimpleGD(model.parameters(), lr=LR), EPOCHS, "part 2, SimpleGD")
train(twin, torch.optim.SGD(twin.parameters(), lr=LR, momentum=0), EPOCHS, "part 2, torch.optim.SGD")
after = common.evaluate(model)
print(f"  training accuracy {before['train_accuracy']:.1f}% -> {after['train_accuracy']:.1f}%; "
      f"test accuracy {before['test_accuracy']:.1f}% -> {after['test_accuracy']:.1f}%")

# %% [markdown]
# Now compare the two networks' weights, every one of them, bit for bit:
# `common.compare_weights` asks `torch.equal` of each pair of parameters (true
# only when every number holds the same bits) and also reports the largest
# difference.

# %%
identical_to_sgd, max_abs_diff = common.compare_weights(model, twin)
print(f"  weights after SimpleGD vs torch.optim.SGD(momentum=0) from the same start: "
      f"{common.verdict(identical_to_sgd)} (largest difference {max_abs_diff:g})")

# %% [markdown]
# And the article's own update, `p.add_(p.grad * -lr)`? `p.grad * -lr` is a
# tensor of its own, rounded to float32 before it is added: one rounding more
# per step, unless the product needs none. It needs none when lr (as float32
# holds it) is 0 or a power of two, 1, 0.5, 0.25, …: multiplying by a power of
# two changes only a number's exponent (short of float32's tiniest numbers,
# below 1.2e-38, far smaller than the steps that move these weights). Then both
# forms round once and agree to the bit; with any other lr a weight may end a
# last bit apart. The same training with it, and the verdict:

# %%
class ArticleGD(SimpleGD):
    """SimpleGD with the article's update: p.add_(p.grad * -lr)."""

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    p.add_(p.grad * -group["lr"])


article_model = common.new_network(SEED, DEVICE)  # the twins' initial weights again
train(article_model, ArticleGD(article_model.parameters(), lr=LR), EPOCHS, "part 2, the article's update")
article_identical, article_max_abs_diff = common.compare_weights(article_model, twin)
lr32 = torch.tensor(LR, dtype=torch.float32).item()  # the lr that multiplies the float32 gradients
mantissa, exponent = math.frexp(lr32)  # lr32 = mantissa * 2**exponent, with 0.5 <= mantissa < 1
exact_product = lr32 == 0 or mantissa == 0.5  # 0 or a power of two: p.grad * -lr needs no rounding
lr_kind = "0" if lr32 == 0 else f"2^{exponent - 1}" if exact_product else "not a power of two"
print(f"  weights after the article's p.add_(p.grad * -lr) vs torch.optim.SGD(momentum=0): "
      f"{common.verdict(article_identical)} (largest difference {article_max_abs_diff:g}); "
      f"lr {LR:g} in float32 is {lr_kind}")

# %% [markdown]
# SimpleGD takes the very step SGD takes: the first check says identical at
# every lr the tests try. The article's form agrees with SGD where lr is 0 or a
# power of two; elsewhere a rounded product may tip a sum, and the weights may
# drift apart in their last bits: the line above says whether they did. And
# SimpleGD's match says where the "stochastic" in SGD is: not in the
# optimizer, for with momentum 0 SGD is plain gradient descent, but in the
# loop, which shows the network one sample per step: each step follows one
# sample's gradient, not the whole training set's. In the article's order the
# loop is not even random: two seeds differ only in their initial weights.

# %% [markdown]
# ## Beyond the article: an optimizer with state
#
# `SimpleGD` forgets everything between steps. Momentum cannot: its velocity
# must outlive the step that made it. That is what `self.state` is for, a dict
# per parameter that the optimizer keeps from step to step and that
# `state_dict()` saves. `SimpleMomentum` keeps the velocity there.
#
# The velocity is every past gradient, each shrunk by `momentum` once per step
# since: 0.9 keeps 90%. While the slope keeps its sign, the velocity grows (up
# to 10 times a plain step); a small bump that flips the slope need not stop it.

# %%
class SimpleMomentum(torch.optim.Optimizer):
    """Gradient descent with momentum, for every parameter p that has a gradient:
        velocity <- momentum * velocity + p.grad    (the first step: velocity <- p.grad)
        p <- p - lr * velocity
    A stand-in for torch.optim.SGD(params, lr, momentum) with dampening 0, no Nesterov and no
    weight decay: in every case the tests try, the same bits."""

    def __init__(self, params, lr=1e-3, momentum=0.9):
        check_learning_rate(lr)
        if momentum < 0.0:  # SGD's own check and message: a momentum of 1 or more is allowed
            raise ValueError(f"Invalid momentum value: {momentum}")
        super().__init__(params, defaults={"lr": lr, "momentum": momentum})

    @torch.no_grad()  # the update must not be recorded by autograd
    def step(self, closure=None):
        """Take one step; with a closure, first re-evaluate the loss and return it."""
        loss = loss_from(closure)
        for group in self.param_groups:
            lr = as_scalar(group["lr"])  # a tensor lr of shape [1] or [1, 1] works as SGD's does
            for p in group["params"]:
                if p.grad is None:  # this parameter took no part in the loss
                    continue
                state = self.state[p]  # this parameter's own dict, kept from step to step
                if "velocity" not in state:  # the first step: the gradient itself, as in SGD
                    state["velocity"] = p.grad.clone()  # a copy: zero_grad(set_to_none=False) zeroes p.grad
                else:
                    state["velocity"].mul_(group["momentum"]).add_(p.grad)
                p.add_(state["velocity"], alpha=-lr)
        return loss


# %% [markdown]
# The check: stage 1's run, redone with SimpleMomentum in
# place of `torch.optim.SGD(lr=0.001, momentum=0.9)`, from the same seed and
# for the same epochs, must end with exactly stage 1's weights.

# %%
STAGE1_LR, STAGE1_MOMENTUM = 0.001, 0.9  # stage 1's settings for torch.optim.SGD
momentum_model = common.new_network(SEED, DEVICE)
stage1_model = copy.deepcopy(momentum_model)
train(momentum_model, SimpleMomentum(momentum_model.parameters(), lr=STAGE1_LR, momentum=STAGE1_MOMENTUM),
      EPOCHS, "SimpleMomentum")
train(stage1_model, torch.optim.SGD(stage1_model.parameters(), lr=STAGE1_LR, momentum=STAGE1_MOMENTUM),
      EPOCHS, "stage 1's torch.optim.SGD")
identical_to_stage1, stage1_max_abs_diff = common.compare_weights(momentum_model, stage1_model)
print(f"  weights after SimpleMomentum vs torch.optim.SGD, both lr={STAGE1_LR} momentum={STAGE1_MOMENTUM} as in "
      f"stage 1, seed {SEED}: {common.verdict(identical_to_stage1)} (largest difference {stage1_max_abs_diff:g})")

# %% [markdown]
# ## Part 3: local minima
#
# The article's closing warning: plain gradient descent, taking small steps,
# stops in the first valley it meets. Here is a bowl with ripples,
# f(x) = x²/4 + sin(5x)/2: one global minimum and several local ones.
# `torch.func.grad(f)` returns a new function that computes f's derivative by
# autograd: called at x, it gives the slope f'(x); applied to that function in
# turn, the curvature f''(x), the slope of the slope.

# %%
MINIMA_RANGE = 4.0  # part 3 draws f on [-4, 4], where its lowest point lies


def bumpy(x):
    """x^2/4 + sin(5x)/2: a bowl with ripples, one global and several local minima."""
    return x**2 / 4 + 0.5 * torch.sin(5 * x)


slope = torch.func.grad(bumpy)  # f'(x) for a 0-d tensor x
curvature = torch.func.grad(slope)  # f''(x): the slope of the slope

# %% [markdown]
# The floor of a valley is where the slope turns from negative to positive.
# `valley_floors` finds each turn on a fine grid, then polishes it with
# Newton's method. The lowest floor is the global minimum: outside [−4, 4],
# x²/4 − 1/2 alone already exceeds f(0) = 0, so no lower point lies there.

# %%
def valley_floors():
    """x of every local minimum of bumpy in [-4, 4], in float64."""
    grid = torch.linspace(-MINIMA_RANGE, MINIMA_RANGE, 8001, dtype=torch.float64)
    slopes = torch.vmap(slope)(grid)
    floors = grid[1:][(slopes[:-1] < 0) & (slopes[1:] >= 0)]  # the slope turns from - to +
    for _ in range(5):  # Newton's method: x <- x - f'(x) / f''(x)
        floors = floors - torch.vmap(slope)(floors) / torch.vmap(curvature)(floors)
    return floors


floors = valley_floors()
floor_curvatures = torch.vmap(curvature)(floors)
x_best = floors[bumpy(floors).argmin()].item()
f_best = bumpy(torch.tensor(x_best, dtype=torch.float64)).item()

# %% [markdown]
# Can a run settle on a floor at all? Near a floor, f is close to a parabola
# that curves by f'' there, and lesson 02's edge returns: a step multiplies
# the distance to the floor by 1 − lr·f'', so past lr = 2/f'' each swing across
# the floor is longer than the last, and the run cannot settle there. Momentum
# moves that edge to 2(1 + momentum)/f'' (lesson 04 shows why). Each floor has
# its own edge: the lines below give their range, and how many floors lr stays
# below.

# %%
MINIMA_MOMENTUM = 0.9
MOMENTA = {"SimpleGD": 0.0, "SimpleMomentum": MINIMA_MOMENTUM}  # SimpleGD steps as momentum 0 would

print(f"\nPart 3: f(x) = x^2/4 + sin(5x)/2, global minimum f({x_best:.4f}) = {f_best:.4f}; "
      f"lr {MINIMA_LR:g}, {MINIMA_STEPS} steps, SimpleMomentum with momentum {MINIMA_MOMENTUM}")
print(f"  {len(floors)} valley floors in [-4, 4], f'' = {floor_curvatures.min():.4g} to "
      f"{floor_curvatures.max():.4g} there; a run can settle on one only below its edge 2(1 + momentum)/f'':")
edges = {name: 2 * (1 + momentum) / floor_curvatures for name, momentum in MOMENTA.items()}
for name, edge in edges.items():
    print(f"    {name:<14} edges {edge.min():.4f} to {edge.max():.4f}: lr {MINIMA_LR:g} is below "
          f"{(MINIMA_LR < edge).sum()} of them")

# %% [markdown]
# Both hand-written optimizers start from each point of `STARTS`, with the same
# learning rate. Each run's verdict comes from where it ended and from its last
# 10 steps (all of them, in a shorter run), in this order. It has
# - *settled* if each of those steps moved x by less than 1e-4, |f'| < 1e-3
#   where it ended, f'' > 0 there (a floor) and lr is below that floor's edge;
#   at *the global minimum* if its f is within 0.001 of the lowest value, else
#   at *a local minimum*;
# - *stalled* if its steps are exactly 0: lr is 0, or too small for a step to
#   change x in float32;
# - is *at rest, not at a minimum* if it is at rest as above on a peak, f'' ≤ 0;
# - *left the drawn range* if it ended outside [−4, 4];
# - is *oscillating* if each of those steps reversed the one before and the
#   last is no shorter than the first: it swings without settling;
# - is *still moving* otherwise.
#
# A run whose |x| passes 1000 stops, as in part 1; here, in the last part, it
# stops the lesson, with a message.

# %%
WINDOW, STEP_TOLERANCE, SLOPE_TOLERANCE, GLOBAL_TOLERANCE = 10, 1e-4, 1e-3, 1e-3


def verdict(xs, momentum, lr):
    """What a run on bumpy did, judged from its positions xs by the rules above."""
    x = torch.tensor(xs[-1], dtype=torch.float64)
    steps = torch.tensor(xs[-WINDOW - 1 :], dtype=torch.float64).diff()
    at_rest = steps.abs().max() < STEP_TOLERANCE and abs(slope(x)) < SLOPE_TOLERANCE
    if at_rest and curvature(x) > 0 and lr * curvature(x) < 2 * (1 + momentum):  # on a floor, below its edge
        where = "the global" if bumpy(x) - f_best < GLOBAL_TOLERANCE else "a local"
        return f"settled at {where} minimum" + ("" if abs(x) <= MINIMA_RANGE else ", outside the drawn range")
    if (steps == 0).all():
        return "stalled"
    if at_rest and curvature(x) <= 0:
        return "at rest, not at a minimum"
    if abs(x) > MINIMA_RANGE:
        return "left the drawn range"
    if len(steps) > 1 and (steps[1:] * steps[:-1] < 0).all() and abs(steps[-1]) >= abs(steps[0]):
        return "oscillating"
    return "still moving"

# %% [markdown]
# `roll` runs one optimizer from one start and keeps what the verdict rests on.

# %%
def roll(x0, momentum, lr=MINIMA_LR, steps=MINIMA_STEPS):
    """One run on bumpy from x0: SimpleGD if momentum is 0, else SimpleMomentum."""
    x = torch.tensor(x0, requires_grad=True)
    optimizer = SimpleMomentum([x], lr=lr, momentum=momentum) if momentum else SimpleGD([x], lr=lr)
    xs = descend(bumpy, optimizer, x, steps)
    if len(xs) <= steps:  # it stopped early: diverged
        raise _cli.RunFailure(f"{type(optimizer).__name__}(lr={lr:g}) from x0 = {xs[0]:g} diverged at step "
                              f"{len(xs)}: |x| passed {ESCAPE:g}; try a smaller --minima-lr")
    fs = bumpy(torch.tensor(xs)).tolist()
    last = xs[-WINDOW - 1 :]
    said = verdict(xs, momentum, lr)
    return {"optimizer": type(optimizer).__name__, "x0": x0, "x_final": xs[-1], "f_final": fs[-1],
            "slope_final": slope(torch.tensor(xs[-1], dtype=torch.float64)).item(), "last_positions": last,
            "largest_last_step": max(abs(b - a) for a, b in zip(last, last[1:])), "verdict": said,
            "is_global": said == "settled at the global minimum", "xs": xs, "fs": fs}


runs = [roll(x0, momentum) for momentum in MOMENTA.values() for x0 in STARTS]
for run in runs:
    print(f"  {run['optimizer']:<14} from x0 = {run['x0']:>5g}: x = {run['x_final']:8.4f}, f = {run['f_final']:7.4f}, "
          f"f' = {run['slope_final']:8.1e}, last {len(run['last_positions']) - 1} steps <= "
          f"{run['largest_last_step']:.2g}: {run['verdict']}")

# %% [markdown]
# The animation: one panel per optimizer, one marker per start. The panels,
# colours, legend and the GIF's encoding are in `_figures.py` and `_gif.py`
# (machinery).

# %%
GIF_FPS = 20

if PLOTS:
    import _figures

    _cli.prepare_out_dir(OUT_DIR)
    minima_picture = _figures.stage3_local_minima(runs, (x_best, f_best), MINIMA_RANGE, MINIMA_STEPS, FRAMES,
                                                  GIF_FPS, OUT_DIR / "03_local_minima.gif")
    _cli.show_pictures([minima_picture])

# %% [markdown]
# **What to look at:** with the default settings, the left panel (plain
# descent, blue) settles in the nearest valley from every start. On the right,
# momentum (orange) from 2.5 and −2 gathers enough speed to roll over the
# ridges into the global minimum (the green star), while from 3.0 it settles in
# the valley near 3.31. At other settings, the printed verdicts say what each
# run did; a run outside [−4, 4] is off the picture. Each run ends as a hollow
# marker of its start's shape, the first start's the largest, so runs that end
# at the same place show as markers inside each other. The faint markers are
# the starts; the trails show the last 12 steps.

# %% [markdown]
# ## What next
#
# You wrote two optimizers that match PyTorch's own to the last bit, and saw
# what momentum's state buys: speed that carries a run over small bumps, though
# not always into the lowest valley. The article set out, in its introduction,
# to write optimization methods by hand, and wrote the simplest. Lesson 04,
# `04_adam_by_hand.py`, goes on: it writes
# Adam, the optimizer most networks train with, and checks it against
# `torch.optim.Adam` bit for bit; and it measures how fast gradient descent,
# momentum and Adam get down a long, narrow valley.

# %% [markdown]
# In a terminal, `--json` prints the results as one JSON object on the last line.

# %%
_flags.finish("03_custom_optimizer", globals())

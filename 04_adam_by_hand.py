# %% [markdown]
# # Beyond the article: Adam by hand, and three optimizers in one valley
#
# The article sets out, in its introduction, to implement optimization methods
# by hand, and writes only the simplest, steepest descent. Lessons 02 and 03
# built plain gradient descent and momentum; this lesson goes on, all of it
# beyond the article:
#   1. a long, narrow valley, where the speed of gradient descent and of momentum
#      is given by a formula, which the runs check, and where each has an edge
#      past which it blows up;
#   2. `SimpleAdam`: Adam, the optimizer most networks train with, written by
#      hand and equal to `torch.optim.Adam` bit for bit on stage 1's network;
#   3. why the textbook form of Adam, the same formula, gives other bits;
#   4. the three optimizers in the valley, in one animation and one plot.
#
# Run it: `python 04_adam_by_hand.py`.

# %% tags=["active-ipynb"]
# try:  # notebook only: the lesson's files must lie beside this notebook
#     import _notebook
# except ModuleNotFoundError:
#     raise FileNotFoundError("Put this notebook beside the lesson files: upload or clone the whole folder.") from None
# _notebook.show_versions()

# %% [markdown]
# ## Settings
#
# In a notebook, change them here and run all the cells again. In a terminal,
# flags change them: `python 04_adam_by_hand.py --help` lists them.

# %%
CURVATURES = (0.2, 4.0)  # the valley f = (a*x^2 + b*y^2)/2 curves by a along x, b along y: 0.1x^2 + 2y^2
START = (-4.5, 1.0)  # where all three optimizers start in the valley
STEPS = 150  # steps in the valley
GD_LR = None  # gradient descent's learning rate; None: the best one, 2/(a + b)
MOMENTUM_LR = None  # momentum's learning rate; None: the best one for the valley (part 1 gives it)
MOMENTUM = None  # momentum's momentum; None: the best one for the valley
ADAM_LR = 0.1  # Adam's (and RMSProp's) learning rate in the valley: a rule of thumb, part 4 says which
NETWORK_LR = 0.001  # Adam's learning rate on stage 1's network: torch.optim.Adam's default
EPOCHS = 2  # passes over the 40 training samples, as in stage 1
SEED = 0  # draws the network's initial weights; stage 1's seed
FRAMES = None  # frames in the GIF; None: 60, or one per position if the run has fewer
DEVICE = "auto"  # the network trains on "cpu" or "cuda"; "auto": cuda where there is one
OUT_DIR = "outputs"  # the pictures go to this folder, beside the lessons
PLOTS = True  # False: draw no pictures

import _flags  # machinery, skip it: flags typed in a terminal replace the values above; all are checked

_flags.apply("04_adam_by_hand", globals())

# %% [markdown]
# The lesson needs torch and `common.py` (stage 1's network and data). `_cli`
# (progress, pictures, run-time errors) and `_adam` (what part 2's Adam needs
# around its update) are machinery: you may skip them.

# %%
import cmath
import copy
import math

import torch
from torch import nn

import _adam
import _cli
import common

# %% [markdown]
# ## Part 1: a long, narrow valley
#
# f(x, y) = (a·x² + b·y²)/2, with a = 0.2 and b = 4 by default: 0.1·x² + 2·y².
# Its lowest point is (0, 0). Along x it curves gently, along y twenty times
# more steeply: its *curvatures*, its second derivatives along x and along y,
# are λ = a and λ = b. Their ratio, κ = λmax/λmin, is the valley's *condition
# number*: the larger it is, the narrower the valley.
#
# (In a valley turned at an angle, the curvatures along its main directions
# are the *eigenvalues* of its *Hessian*, the table of all its second
# derivatives. An eigenvalue of a table of numbers, a matrix M, is a number μ
# by which M merely stretches some vector v: M·v = μ·v. Here the Hessian is
# [[a, 0], [0, b]], and its eigenvalues are a and b themselves.)

# %%
lam_min, lam_max = min(CURVATURES), max(CURVATURES)
kappa = lam_max / lam_min  # the condition number
curvatures = torch.tensor(CURVATURES, dtype=torch.float64)


def valley(point):
    """f(x, y) = (a*x^2 + b*y^2) / 2 for point = (x, y); lowest at (0, 0)."""
    return 0.5 * (curvatures.to(point.dtype) * point**2).sum()


print(f"Part 1: the valley f(x, y) = {CURVATURES[0] / 2:g}*x^2 + {CURVATURES[1] / 2:g}*y^2, "
      f"curvatures {lam_min:g} and {lam_max:g}, condition number {kappa:g}")

# %% [markdown]
# Along each axis, a gradient descent step is lesson 02's step on a parabola:
# the slope of λ·x²/2 is λ·x, so a step multiplies that coordinate by 1 − lr·λ.
# Each step therefore multiplies the distance to (0, 0) by at most the larger
# of |1 − lr·λmin| and |1 − lr·λmax|: its *rate*. A small lr crawls along the
# gentle axis; a large one overshoots across the steep one. The best lr makes
# the two equal, lr = 2/(λmin + λmax), and then the rate is (κ − 1)/(κ + 1).

# %%
def gd_rate(lr):
    """Gradient descent's rate on the valley: each step multiplies the distance by this, at worst."""
    return max(abs(1 - lr * lam) for lam in CURVATURES)


best_gd_lr = 2 / (lam_min + lam_max)
gd_lr = best_gd_lr if GD_LR is None else GD_LR
best_words = "at the best lr," if GD_LR is None else "for comparison, the best lr's rate"
print(f"  gradient descent: lr {gd_lr:.6g}{' (the best, 2/(a + b))' if GD_LR is None else ''}; "
      f"formula max|1 - lr*lambda| = {gd_rate(gd_lr):.6f}; {best_words} (kappa-1)/(kappa+1) = "
      f"{(kappa - 1) / (kappa + 1):.6f}")

# %% [markdown]
# Momentum, as `torch.optim.SGD` writes it: the velocity *sums* gradients,
# v ← momentum·v + gradient, and the learning rate multiplies the velocity,
# p ← p − lr·v (Distill's "Why Momentum Really Works" writes it the same way).
# Along an axis of curvature λ, one step maps the pair (coordinate x,
# velocity v) to v' = momentum·v + λ·x and x' = x − lr·v': the same 2×2
# matrix at every step. Its eigenvalues μ, the numbers by which it merely
# stretches some pair, are the roots of μ² − (1 + momentum − lr·λ)·μ + momentum
# = 0, and may be complex; the largest size |μ| (absolute value) over both axes
# is the rate. The best pair,
# lr = (2/(√λmin + √λmax))² and momentum = ((√κ − 1)/(√κ + 1))², gives the rate
# (√κ − 1)/(√κ + 1): in the default valley (κ = 20), 0.63 where gradient
# descent has 0.90.

# %%
def momentum_rate(lr, momentum, curvatures=CURVATURES):
    """Momentum's rate on the valley: the largest root size over the curvatures (both, unless told)."""
    sizes = []
    for lam in curvatures:
        middle = 1 + momentum - lr * lam
        root = cmath.sqrt(middle**2 - 4 * momentum)
        sizes += [abs((middle + root) / 2), abs((middle - root) / 2)]
    return max(sizes)


root_kappa = math.sqrt(kappa)
best_momentum_lr = (2 / (math.sqrt(lam_min) + math.sqrt(lam_max))) ** 2
best_momentum = ((root_kappa - 1) / (root_kappa + 1)) ** 2
momentum_lr = best_momentum_lr if MOMENTUM_LR is None else MOMENTUM_LR
momentum = best_momentum if MOMENTUM is None else MOMENTUM
best_pair = MOMENTUM_LR is None and MOMENTUM is None
best_words = "at the best pair," if best_pair else "for comparison, the best pair's rate"
print(f"  momentum: lr {momentum_lr:.6g}, momentum {momentum:.6g}{' (the best pair)' if best_pair else ''}; "
      f"formula (largest root) = {momentum_rate(momentum_lr, momentum):.6f}; {best_words} "
      f"(sqrt(kappa)-1)/(sqrt(kappa)+1) = {(root_kappa - 1) / (root_kappa + 1):.6f}")

# %% [markdown]
# Now the runs. `descend` starts an optimizer at `START` and keeps every
# position. The valley runs in float64, for the distances' sake: the cell
# after it shows what float32 would do to them. A run that flies off (its
# distance reaches 10⁶) is stopped there.

# %%
ESCAPE = 1e6


def descend(optimizer_class, steps=STEPS, dtype=torch.float64, scale=1, **settings):
    """Run an optimizer on the valley (its loss times `scale`) from START; return its positions, one row per step."""
    point = torch.tensor(START, dtype=dtype, requires_grad=True)
    optimizer = optimizer_class([point], **settings)
    positions = [point.tolist()]
    for _ in range(steps):
        optimizer.zero_grad()
        (scale * valley(point)).backward()
        optimizer.step()
        positions.append(point.tolist())
        if not point.norm() < ESCAPE:  # inf and NaN fail this too
            break
    return torch.tensor(positions, dtype=torch.float64)


gd_run = descend(torch.optim.SGD, lr=gd_lr)
momentum_run = descend(torch.optim.SGD, lr=momentum_lr, momentum=momentum)

# %% [markdown]
# Why float64, and why does `distances` below call `torch.hypot`? The plain
# way to a distance is √(x² + y²). Run momentum in float32 and compute that in
# float32 too: the positions stay far above float32's smallest number (about
# 10⁻⁴⁵), but x² + y² does not: it rounds to 0, so the distance reads exactly
# 0 while the point has not reached (0, 0).
#
# float64 has the same pitfall, far lower: x² + y² rounds badly, then to 0,
# once the distance is below √(2.2·10⁻³⁰⁸) ≈ 1.5·10⁻¹⁵⁴, where 2.2·10⁻³⁰⁸ is
# float64's smallest normal number. A long run of a fast optimizer gets there:
# with `--steps 1000`, the float64 line below reads 0 too. `torch.hypot(x, y)`
# is made for this: it computes √(x² + y²) without underflow on the way, so
# the distances that this lesson prints, ranks and draws keep their digits
# down to 2.2·10⁻³⁰⁸, and read 0 only at (0, 0) itself.

# %%
def distances(run):
    """Each position's distance to the minimum (0, 0), sqrt(x^2 + y^2), by hypot: it does not underflow."""
    return torch.hypot(run[:, 0], run[:, 1])


def reads_0_from(run, dtype):
    """The first step where sqrt(x^2 + y^2), computed in dtype, reads 0 while the point is away from (0, 0)."""
    false_zero = (run.to(dtype).norm(dim=1) == 0) & (run.abs().amax(dim=1) > 0)
    return false_zero.nonzero()[0].item() if false_zero.any() else None


run32 = descend(torch.optim.SGD, dtype=torch.float32, lr=momentum_lr, momentum=momentum)
for name, dtype, run in (("float32", torch.float32, run32), ("float64", torch.float64, momentum_run)):
    step = reads_0_from(run, dtype)
    if step is None:
        print(f"  in {name}, momentum's sqrt(x^2 + y^2) never reads 0 while the point is away from (0, 0), "
              f"in these {len(run) - 1} steps")
    else:
        print(f"  in {name}, momentum's sqrt(x^2 + y^2) reads exactly 0 from step {step}, where the point is "
              f"still {distances(run)[step]:.3g} away from (0, 0)")

# %% [markdown]
# The measured rate: the factor by which each step multiplied the distance, on
# average, from step `first` to step `last`: (d_last / d_first)^(1/(last − first)).
# `last` is the run's last step, or, if its distance falls below float64's
# smallest normal number (`TINY`, 2.2·10⁻³⁰⁸, below which float64 keeps fewer
# digits), the step before that; `first` is a third of the way to `last`, as
# momentum does not follow its rate in the early steps.

# %%
TINY = torch.finfo(torch.float64).tiny  # float64's smallest normal number: below it, fewer digits


def rate_window(run):
    """(first, last): the steps a rate is measured over; None if fewer than 2 steps lie above TINY."""
    below = (distances(run) < TINY).nonzero()
    last = below[0].item() - 1 if len(below) else len(run) - 1
    return (last // 3, last) if last >= 1 else None


def measured_rate(run, first, last):
    """The average factor per step by which the distance changed from step `first` to step `last`."""
    d = distances(run)
    return (d[last] / d[first]).item() ** (1 / (last - first))


# %% [markdown]
# Each run prints its measured rate with the steps it was measured over, and,
# where its window ends early, why; a run with no window says why it has no rate.

# %%
def rate_text(run):
    """The measured rate and the steps it came from, as printed; or why the run has none."""
    d, window = distances(run), rate_window(run)
    ended = ""
    if window is None or window[1] < len(run) - 1:  # the distance fell below TINY
        step = (d < TINY).nonzero()[0].item()
        what = "it lands on (0, 0) exactly" if not run[step].any() else f"its distance is below {TINY:.3g}"
        ended = f"at step {step} {what}"
    elif not d[-1] < ESCAPE:
        ended = f"where it passed {ESCAPE:g} and stopped"
    if window is None:
        return f"no rate ({ended})"
    first, last = window
    return f"{measured_rate(run, first, last):.6f} over steps {first} to {last}" + (f" ({ended})" if ended else "")


print(f"  measured: gradient descent {rate_text(gd_run)}; momentum {rate_text(momentum_run)}")

# %% [markdown]
# At its best lr, gradient descent meets its formula to the digits printed:
# there both axes shrink by the same factor, so each step multiplies the
# distance by exactly the rate. In the default run, momentum at its best pair
# shows more than its formula: there, both curvatures give a *double* root, as
# the line below shows (1 + momentum − lr·λ is +2√momentum at one curvature
# and −2√momentum at the other, so each quadratic's two roots coincide). Then
# the distance at step k goes like k·rateᵏ, not rateᵏ, and the factor k slows
# each step a little. Dividing it out,
# ((d_last/last) / (d_first/first))^(1/(last − first)), gets much closer in the
# default run. (It applies to the best pair only, so it is printed only there.)

# %%
def measured_rate_without_k(run, first, last):
    """measured_rate, with the factor k of a double root, d_k ~ k * rate^k, divided out."""
    d = distances(run)
    return ((d[last] / last) / (d[first] / first)).item() ** (1 / (last - first))


if best_pair:
    middles = [1 + momentum - momentum_lr * lam for lam in (lam_min, lam_max)]
    print(f"  the best pair's double roots: 1 + momentum - lr*lambda = {middles[0]:.6f} at lambda {lam_min:g} and "
          f"{middles[1]:.6f} at lambda {lam_max:g}; +-2*sqrt(momentum) = +-{2 * math.sqrt(momentum):.6f}")
    window = rate_window(momentum_run)
    if window and window[0] >= 1:  # d_k / k needs k >= 1
        print(f"  momentum, with the double root's factor k divided out (d_k / k): "
              f"{measured_rate_without_k(momentum_run, *window):.6f} over steps {window[0]} to {window[1]}")

# %% [markdown]
# ### The edge of stability
#
# A step can be too big. Along the steep axis a gradient descent step
# multiplies y by 1 − lr·λmax, which is below −1 once lr > 2/λmax: y then
# flips side *and grows*. Lesson 02's lr = 1.05 on y = x² (curvature 2, edge
# 2/2 = 1) is the one-dimensional case of this same edge.
#
# Momentum's edge is lr·λmax = 2 + 2·momentum. Why? Take a run exactly at the
# edge, along the steep axis, once it has settled: y flips side at every step
# and keeps its size, y, −y, y, … Its gradient λmax·y flips with it. Each
# step, the velocity adds the new gradient to momentum times the last
# velocity, which pointed the other way: the two partly cancel, and the
# velocity settles at λmax·y/(1 + momentum), smaller than the gradient. The
# step, lr times that velocity, takes y exactly to −y when it is 2·y long:
# lr·λmax/(1 + momentum) = 2, that is lr·λmax = 2 + 2·momentum. With
# momentum 0 that is gradient descent's edge, lr·λmax = 2; momentum lets the
# lr grow (1 + momentum) times before the run blows up.
#
# Each optimizer runs 1% below and 1% above its edge. Its verdict compares two
# rates: the one measured, as above, and its formula's rate *from this start*,
# over the axes the start moves along (a coordinate that starts at 0 stays at
# 0, whatever its axis's rate). On the same side of 1, the run is shrinking or
# GROWING. On opposite sides, the run is too short to tell: in its early steps
# the axis that wins in the end has not taken over yet.

# %%
def verdict(measured, formula):
    """'shrinking', 'steady' or 'GROWING' where the measured rate and the formula agree on it."""
    if measured is None:
        return "no rate"
    side = (measured > 1) - (measured < 1)  # -1, 0 or 1
    if side != (formula > 1) - (formula < 1):
        return "too short to tell"
    return ("shrinking", "steady", "GROWING")[side + 1]


gd_edge = 2 / lam_max
momentum_edge = (2 + 2 * momentum) / lam_max
moving_axes = [lam for lam, coordinate in zip(CURVATURES, START) if coordinate != 0]
edge_runs = {}
for name, edge, beta in (("gradient descent", gd_edge, 0.0), ("momentum", momentum_edge, momentum)):
    for side, lr in (("below", 0.99 * edge), ("above", 1.01 * edge)):
        run = descend(torch.optim.SGD, lr=lr, momentum=beta)
        d, window, formula = distances(run), rate_window(run), momentum_rate(lr, beta, moving_axes)
        measured = measured_rate(run, *window) if window else None
        edge_runs[(name, side)] = {"lr": lr, "run": run, "rate_measured": measured, "rate_window": window,
                                   "rate_formula": formula, "verdict": verdict(measured, formula)}
        told = f"{verdict(measured, formula)}; rate {rate_text(run)}" if window else rate_text(run)
        print(f"  {name:<16} edge lr = {edge:.6g}: lr {lr:.6g} ({side}) -> distance {d[0]:.3g} to {d[-1]:.3g} in "
              f"{len(d) - 1} steps: {told}, formula {formula:.6f}")

# %% [markdown]
# ## Part 2: SimpleAdam
#
# Gradient descent steps by lr times the slope, so one learning rate cannot
# suit a steep coordinate and a gentle one at once: in a narrow valley, an lr
# small enough for the steep axis crawls along the gentle one. Adam's idea is
# a step in each coordinate that does not depend on the size of that
# coordinate's gradient. It keeps two running averages per parameter, with
# β₁ = 0.9 and β₂ = 0.999 by default: m ← β₁·m + (1 − β₁)·g of the gradient
# g, and v ← β₂·v + (1 − β₂)·g² of its square. Both start at 0, which pulls
# them towards 0 in the first steps; at step t, dividing by 1 − β₁ᵗ and
# 1 − β₂ᵗ undoes that pull (*bias correction*) and gives m̂ and v̂. The step
# is lr·m̂/(√v̂ + eps), where eps = 1e-8 only keeps the division safe.
# Multiply every gradient by 1000, and m̂ and √v̂ both grow 1000 times: the
# step stays as it was, but for eps. At step 1, m̂/√v̂ is g/|g|, so the first
# step moves each coordinate by lr·|g|/(|g| + eps): lr, however steep its
# slope, unless |g| is as small as eps (and 0 where g is 0). How far a later
# step can go, a cell below works out.
#
# `SimpleAdam` below is that update and nothing else. What makes it a drop-in
# `torch.optim.Adam` is machinery, in `_adam.py`: its base class,
# `_adam.AdamBase`, takes Adam's settings (and refuses what Adam refuses), and
# its `step()` calls `update(p, grad, state, group)` for each parameter p that
# has a gradient: `group` holds p's settings, and `state` its m and v (0 before
# its first step) and t, the steps p has taken, this one included. The base
# also does, as Adam does, what Adam's options ask of the gradient
# (`maximize` flips its sign, `weight_decay` adds weight_decay·p to it), and
# takes a learning rate held in a tensor, complex parameters, and state_dicts
# saved by older versions of PyTorch.
#
# To match `torch.optim.Adam` to the bit, `update` follows the order of
# operations of Adam's single-tensor code in PyTorch (`_single_tensor_adam` in
# the module `torch.optim.adam`): the bias corrections are folded into the step
# size and the denominator, never into m and v themselves. Part 3 shows why
# that order matters.

# %%
class SimpleAdam(_adam.AdamBase):
    """Adam: for every parameter p with a gradient g, at its step t = 1, 2, ...

        m <- beta1 * m + (1 - beta1) * g        (a running average of g)
        v <- beta2 * v + (1 - beta2) * g * g    (a running average of g squared)
        p <- p - lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)

    On the CPU, the same parameter values as torch.optim.Adam, bit for bit.
    """

    def update(self, p, grad, state, group):
        (beta1, beta2), t = group["betas"], state["step"]
        m, v = state["exp_avg"], state["exp_avg_sq"]
        m.lerp_(grad, 1 - beta1)  # m + (1 - beta1) * (grad - m), rounded once
        v.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        if group["amsgrad"]:  # AMSGrad divides by the largest v so far
            v = torch.maximum(state["max_exp_avg_sq"], v, out=state["max_exp_avg_sq"])
        denominator = (v.sqrt() / (1 - beta2**t) ** 0.5).add_(group["eps"])
        p.addcdiv_(m, denominator, value=-group["lr"] / (1 - beta1**t))


# %% [markdown]
# The check, in stage 1's training loop, written again here so that this
# lesson reads on its own: twin networks from the same initial weights (from
# `SEED`), one trained by `SimpleAdam`, the other by `torch.optim.Adam`, both
# with the learning rate `NETWORK_LR` (0.001 by default, as Adam's own default
# is). `foreach=False` asks Adam for its single-tensor code, the one
# `SimpleAdam` follows: on the CPU it is Adam's default anyway.

# %%
def train(model, optimizer, epochs=EPOCHS, label="training"):
    """Stage 1's loop: one sample per step, in the article's order."""
    device = next(model.parameters()).device
    inputs, labels = (t.to(device) for t in common.training_set())
    loss_fn = nn.CrossEntropyLoss()
    for epoch in range(1, epochs + 1):
        _cli.show_progress(f"{label}: epoch {epoch} of {epochs}")
        for i in range(len(labels)):
            optimizer.zero_grad()  # clear the last step's gradients: backward() adds to them
            loss = loss_fn(model(inputs[i : i + 1]), labels[i : i + 1])
            loss.backward()
            optimizer.step()
    _cli.end_progress()


# %% [markdown]
# Train the twins. The *training accuracy* counts the 38 training samples a
# network without bias can tell apart (the 40 but the two all-zero ones, at
# scale 0, which it cannot); the *test accuracy* counts 160 noisy
# copies of the patterns that no run trained on (lesson 01 explains both).

# %%
print(f"\nPart 2: SimpleAdam(lr={NETWORK_LR:g}) trains Test_Conv with stage 1's loop, "
      f"{EPOCHS} epoch{'' if EPOCHS == 1 else 's'}")
model = common.new_network(SEED, DEVICE)
twin = copy.deepcopy(model)  # the same initial weights, for torch.optim.Adam
before = common.evaluate(model)
train(model, SimpleAdam(model.parameters(), lr=NETWORK_LR), EPOCHS, "SimpleAdam")
train(twin, torch.optim.Adam(twin.parameters(), lr=NETWORK_LR, foreach=False), EPOCHS, "torch.optim.Adam")
after = common.evaluate(model)
print(f"  training accuracy {before['train_accuracy']:.1f}% -> {after['train_accuracy']:.1f}%; "
      f"test accuracy {before['test_accuracy']:.1f}% -> {after['test_accuracy']:.1f}%")

# %% [markdown]
# Now compare the twins' weights, every one of them, bit for bit, with
# `common.compare_weights`, as lesson 03 does.

# %%
identical_to_adam, max_abs_diff = common.compare_weights(model, twin)
print(f"  weights after SimpleAdam vs torch.optim.Adam from the same start: "
      f"{common.verdict(identical_to_adam)} (largest difference {max_abs_diff:g})")

# %% [markdown]
# `SimpleAdam` does what `torch.optim.Adam` does on the CPU by default. It
# leaves out Adam's options for speed, `foreach` and `fused` (they update many
# tensors in one call: faster, with other roundings), and for special uses,
# which `torch.optim.Adam`'s documentation describes. One of those is worth
# knowing by name: `decoupled_weight_decay=True` shrinks the weights directly,
# instead of adding weight_decay·p to the gradient; that is AdamW.

# %% [markdown]
# ### Adam's idea, measured: the loss times 1000
#
# Multiply the valley's loss by 1000 and every gradient grows 1000 times.
# Gradient descent's steps grow with them; Adam's should not. `descend`'s
# `scale` multiplies the loss. Each optimizer runs from
# `START` on the valley and on 1000 times the valley: gradient descent with
# its learning rate from part 1, Adam with `ADAM_LR`.

# %%
LOSS_SCALE = 1000


def ending(run):
    final = distances(run)[-1]
    return f"ends {final:.3g} away" if final < ESCAPE else f"flies off, past {ESCAPE:g} at step {len(run) - 1}"


def compare_scales(name, optimizer_class, **settings):
    """Run on the valley and on LOSS_SCALE times it; print how each run ends and how far the paths part."""
    plain, scaled = (descend(optimizer_class, scale=scale, **settings) for scale in (1, LOSS_SCALE))
    line = f"  {name}: {ending(plain)}; on {LOSS_SCALE} x the loss it {ending(scaled)}"
    if distances(plain)[-1] < ESCAPE > distances(scaled)[-1]:  # neither flew off, so both ran every step
        line += f"; the two paths differ by at most {(plain - scaled).abs().max():.3g}"
    print(line)
    return plain, scaled


print(f"\n  Adam's idea: the same runs on the valley and on {LOSS_SCALE} times its loss")
gd_scales = compare_scales(f"gradient descent, lr {gd_lr:.6g}", torch.optim.SGD, lr=gd_lr)
adam_scales = compare_scales(f"SimpleAdam, lr {ADAM_LR:g}", SimpleAdam, lr=ADAM_LR)

# %% [markdown]
# Read the lines above. Gradient descent on 1000 times the loss is gradient
# descent with 1000 times the lr: unless that is still below its edge (part
# 1), it is now past it. Adam's two paths part only by rounding, and where eps
# counts next to √v̂: rescale the loss, and its lr needs no change. Adam is
# not the first to divide by √v: RMSProp did it
# before, without m (the gradient itself takes m's place) and without bias
# correction. Its β₂ is called `alpha`, 0.99 by default, and its default lr is
# 0.01. Without bias correction its first step is lr/√(1 − alpha), 10 times
# lr by default, where Adam's is lr. `SimpleRMSprop` is `SimpleAdam` with that
# update, checked against `torch.optim.RMSprop` bit for bit on both losses.

# %%
class SimpleRMSprop(SimpleAdam):
    """RMSProp: v as Adam's (alpha is its beta2), p <- p - lr * g / (sqrt(v) + eps); no m, no bias correction."""

    def __init__(self, params, lr=1e-2, alpha=0.99, eps=1e-8):
        super().__init__(params, lr=lr, betas=(0.0, alpha), eps=eps)

    def update(self, p, grad, state, group):
        v, alpha = state["exp_avg_sq"], group["betas"][1]
        v.mul_(alpha).addcmul_(grad, grad, value=1 - alpha)
        p.addcdiv_(grad, v.sqrt().add_(group["eps"]), value=-group["lr"])


rmsprop_scales = compare_scales(f"SimpleRMSprop, lr {ADAM_LR:g}", SimpleRMSprop, lr=ADAM_LR)
torch_rmsprop = [descend(torch.optim.RMSprop, scale=scale, lr=ADAM_LR, foreach=False) for scale in (1, LOSS_SCALE)]
rmsprop_identical = all(torch.equal(ours, theirs) for ours, theirs in zip(rmsprop_scales, torch_rmsprop))
print(f"  SimpleRMSprop vs torch.optim.RMSprop, both paths: {common.verdict(rmsprop_identical)}")

# %% [markdown]
# ### How far can one Adam step go?
#
# Where the gradient keeps its size and sign, |m̂/√v̂| stays near 1; where it
# shrinks, below 1, as v still remembers the larger ones; where it grows,
# above 1, but not without bound.
#
# In plain words first: m is a weighted sum of the past gradients, and √v the
# square root of a weighted sum of their squares. A sum of numbers can be
# only so much larger than the square root of the sum of their squares, by a
# factor that depends on the weights alone, not on the numbers. So m̂/√v̂
# has a ceiling, B(t), set by β₁, β₂ and t, whatever the gradients are. The
# *Cauchy–Schwarz inequality* gives that factor: for any two lists of numbers
# aₖ and bₖ, |Σ aₖ·bₖ| ≤ √(Σ aₖ²)·√(Σ bₖ²).
#
# The details. At step t, m = (1 − β₁)·Σ β₁ᵗ⁻ᵏ·gₖ and
# v = (1 − β₂)·Σ β₂ᵗ⁻ᵏ·gₖ², sums over the steps k = 1, …, t so far. Write each
# term of m's sum as (β₁/√β₂)ᵗ⁻ᵏ times √β₂ᵗ⁻ᵏ·gₖ; the Cauchy–Schwarz inequality
# bounds the sum by √(Σ (β₁²/β₂)ᵗ⁻ᵏ) times √(Σ β₂ᵗ⁻ᵏ·gₖ²). With the bias
# corrections, and r = β₁²/β₂, step t moves each coordinate by lr·B(t) at most:
#
#     B(t) = (1 − β₁)/√(1 − β₂) · √((1 − rᵗ)/(1 − r)) · √(1 − β₂ᵗ)/(1 − β₁ᵗ)
#
# (eps only shortens a step). The bound is reached where the two factors are
# proportional: by a gradient that grows by β₂/β₁ at every step, 1.11 for the
# default betas. B(1) = 1, and B(t) climbs with t towards
# (1 − β₁)/√((1 − β₂)(1 − β₁²/β₂)), 7.27 for the default betas: no Adam step
# passes 7.27·lr, so Adam never flies off. A lone spike after a long calm gets
# only to (1 − β₁)/√(1 − β₂) ≈ 3.16. (That needs β₁² < β₂, as Adam's usual
# betas have; otherwise B(t) grows without end.)
#
# To check it, `adam_bound` below works out B(t), and `adam_moves` feeds
# `SimpleAdam`, with lr = 1, gradients chosen in advance, one row per step,
# and measures how far each step moved each coordinate.

# %%
def adam_bound(t, beta1=0.9, beta2=0.999):
    """B(t): the largest |step| / lr that Adam can take at its step t."""
    r = beta1**2 / beta2
    return (1 - beta1) / (1 - beta2) ** 0.5 * ((1 - r**t) / (1 - r)) ** 0.5 * (1 - beta2**t) ** 0.5 / (1 - beta1**t)


def adam_moves(gradients):
    """SimpleAdam with lr 1, fed gradients[k] at step k + 1: how far each step moved each coordinate."""
    point = torch.zeros(gradients.shape[1], dtype=torch.float64, requires_grad=True)
    optimizer, positions = SimpleAdam([point], lr=1.0), [point.detach().clone()]
    for gradient in gradients:
        point.grad = gradient
        optimizer.step()
        positions.append(point.detach().clone())
    return torch.stack(positions).diff(dim=0).abs()


# %% [markdown]
# The check: 1000 steps, with a gradient that grows by β₂/β₁ at every step in
# coordinate 0, and random gradients, whose sizes jump between 10⁻⁶ and 10⁶,
# in 256 others. Each step must stay within B(t).

# %%
BOUND_STEPS = 1000
step_numbers = torch.arange(1, BOUND_STEPS + 1, dtype=torch.float64)
growing = (0.999 / 0.9) ** (step_numbers - 1)  # times beta2/beta1 at every step
draw = torch.Generator().manual_seed(0)
sizes = 10 ** (12 * torch.rand(BOUND_STEPS, 256, generator=draw, dtype=torch.float64) - 6)
scattered = sizes * torch.randn(BOUND_STEPS, 256, generator=draw, dtype=torch.float64).sign()
moves, bounds = adam_moves(torch.cat([growing[:, None], scattered], dim=1)), adam_bound(step_numbers)
within = bool((moves <= bounds[:, None] * (1 + 1e-12)).all())  # B(t), give or take float64's rounding
print(f"  Adam's step, in lr, is at most B(t) at step t, and B(t) stays below {adam_bound(math.inf):.6g} for every t")
print("  a gradient growing by beta2/beta1 a step moved " + ", ".join(
    f"{moves[k - 1, 0]:.6g} at step {k} (B {bounds[k - 1]:.6g})" for k in (1, 10, 100, BOUND_STEPS)))
print(f"  random gradients: largest step {moves[:, 1:].max():.4g}; every step of all {moves.shape[1]} gradients "
      f"within B(t), to rounding: {'yes' if within else 'NO'}")

# %% [markdown]
# ## Part 3: the textbook form is another order of operations
#
# Textbooks write Adam in steps: m̂ = m/(1 − β₁ᵗ), v̂ = v/(1 − β₂ᵗ), then
# p ← p − lr·m̂/(√v̂ + eps). In exact arithmetic that is `SimpleAdam`'s update.
# In floating point (float32 on the network, float64 in the valley) each
# operation rounds its result, so another order rounds other numbers. Some
# write eps *inside* the square root, √(v̂ + eps): that is another formula, a
# much larger floor under small v̂ (√1e-8 = 1e-4).

# %%
class TextbookAdam(SimpleAdam):
    """Adam in the textbook's order; eps_inside=True puts eps under the square root."""

    eps_inside = False

    def update(self, p, grad, state, group):
        (beta1, beta2), t = group["betas"], state["step"]
        m, v = state["exp_avg"], state["exp_avg_sq"]
        m.mul_(beta1).add_(grad, alpha=1 - beta1)
        v.mul_(beta2).add_(grad * grad, alpha=1 - beta2)
        m_hat, v_hat = m / (1 - beta1**t), v / (1 - beta2**t)
        denominator = (v_hat + group["eps"]).sqrt() if self.eps_inside else v_hat.sqrt() + group["eps"]
        p.sub_(group["lr"] * m_hat / denominator)


class EpsInsideAdam(TextbookAdam):
    eps_inside = True


# %% [markdown]
# Each form trains the network from the twins' start, and runs in the valley
# (in float64) with Adam's learning rate there, `ADAM_LR`; each is compared
# with `SimpleAdam` doing the same.

# %%
print("\nPart 3: Adam in other forms against SimpleAdam: the largest difference in the final weights, "
      "and anywhere along the valley path")
simple_path = descend(SimpleAdam, lr=ADAM_LR)  # SimpleAdam's own path in the valley, to compare with
textbook = {}
for variant in (TextbookAdam, EpsInsideAdam):
    other = common.new_network(SEED, DEVICE)  # the twins' initial weights again
    train(other, variant(other.parameters(), lr=NETWORK_LR), EPOCHS, variant.__name__)
    network_identical, network_diff = common.compare_weights(other, model)
    valley_diff = (descend(variant, lr=ADAM_LR) - simple_path).abs().max().item()
    textbook[variant.__name__] = {"network_identical": network_identical, "network_max_abs_diff": network_diff,
                                  "valley_max_abs_diff": valley_diff}
    print(f"  {variant.__name__:<14} network weights (float32): {common.verdict(network_identical)} "
          f"(largest difference {network_diff:.3g}); valley path (float64): {valley_diff:.3g}")

# %% [markdown]
# How much further does eps inside the square root stray than the reordering?
# The ratio of their largest differences from `SimpleAdam`, from these runs:

# %%
def times_further(key):
    """EpsInsideAdam's largest difference over TextbookAdam's, in words; there is none where the latter is 0."""
    inside, reordered = textbook["EpsInsideAdam"][key], textbook["TextbookAdam"][key]
    return f"{inside / reordered:.3g} times" if reordered > 0 else "no ratio (the reordering's difference is 0)"


print(f"  eps inside the root against the reordering, largest difference over largest difference: on the network "
      f"{times_further('network_max_abs_diff')}; in the valley {times_further('valley_max_abs_diff')}")

# %% [markdown]
# The textbook order rounds other intermediate numbers, each by at most half a
# step of the grid of numbers that float32 (on the network) or float64 (in the
# valley) can hold there (`numpy.spacing(value)` gives that step), and the
# steps after carry those differences on, and may grow them: the same formula,
# other bits. Not always: where the steps are small next to the weights, as
# with `--network-lr 1e-06`, their differences fall below the weights' grid
# and vanish when they are added. Eps inside the square root is another
# formula: √(v̂ + eps) is about √v̂ + eps/(2·√v̂), which parts from √v̂ + eps
# more as v̂ shrinks, up to a floor of √eps = 1e-4 where v̂ is 0. How much of
# it shows depends on the run, so the ratio above is measured, not a constant:
# on the network it changes with the seed, the learning rate and the epochs
# (try `--seed 5 --network-lr 0.01`, or `--network-lr 0.1 --epochs 5`).

# %% [markdown]
# ## Part 4: three optimizers, one valley
#
# Now Adam in the valley, from the same start as the other two. No formula
# gives its learning rate: in a valley whose axes are x and y, as here, Adam
# divides each coordinate's gradient by that gradient's own running size, so
# its steps hardly depend on the curvatures. `ADAM_LR` comes from a rule of
# thumb instead: Adam's steps are about lr in each coordinate (its first one is
# exactly that), so from x = −4.5 it needs about 4.5/lr steps to travel along
# the valley to x = 0: 45 for lr = 0.1, under a third of the 150 steps.

# %%
adam_run = descend(SimpleAdam, lr=ADAM_LR)
first_move = (adam_run[1] - adam_run[0]).abs().tolist()
largest_move = (adam_run[1:] - adam_run[:-1]).abs().max().item()
crossed = (adam_run[:, 0] * START[0] <= 0).nonzero()  # the steps where x is at 0 or past it
adam_distances = distances(adam_run)
closest = adam_distances.argmin().item()
print(f"\nPart 4: SimpleAdam(lr={ADAM_LR:g}) in the valley from {START}: its first step moves x by "
      f"{first_move[0]:.6g} and y by {first_move[1]:.6g}; no step moves a coordinate more than {largest_move:.6g}")
if len(crossed):
    rule = f"{abs(START[0]) / ADAM_LR:.3g}"
    print(f"  it first reaches x = 0 at step {crossed[0].item()} (the rule of thumb: |x|/lr = {rule} "
          f"step{'' if rule == '1' else 's'})")
for step in sorted({STEPS // 3, 2 * STEPS // 3, STEPS}):  # Adam's step has a bound (part 2): it never flies off
    print(f"  step {step}: distance to (0, 0) {adam_distances[step]:.3g}")
print(f"  closest: {adam_distances[closest]:.3g} at step {closest}")

# %% [markdown]
# That makes an unequal race. Unless you set their learning rates yourself,
# gradient descent and momentum run at the best ones, which the formulas work
# out from the exact curvatures, something a real network never tells you;
# Adam runs at a rule of thumb. The race favours the first two. To give Adam a
# chance of the same kind, it also runs on a small *grid* of learning rates a
# decade apart, 0.001 to 1, as a first search would, each with the same steps
# from the same start, and the grid's best, the one that ends nearest to
# (0, 0), joins the ranking.

# %%
ADAM_GRID = (0.001, 0.01, 0.1, 1.0)  # a decade apart
grid_finals = {lr: distances(descend(SimpleAdam, lr=lr))[-1].item() for lr in ADAM_GRID}
best_adam_lr = min(grid_finals, key=grid_finals.get)
print(f"  SimpleAdam by trial, {STEPS} steps each: "
      + ", ".join(f"lr {lr:g} ends {final:.3g} away" for lr, final in grid_finals.items())
      + f"; the best: lr {best_adam_lr:g}")


def finish_label(name, run):
    """The runner's name, and where it stopped if it flew off before the last step."""
    return name if len(run) == STEPS + 1 else f"{name} (stopped at step {len(run) - 1})"


final_distances = {finish_label("gradient descent", gd_run): distances(gd_run)[-1].item(),
                   finish_label("momentum", momentum_run): distances(momentum_run)[-1].item(),
                   f"SimpleAdam, lr {ADAM_LR:g}": adam_distances[-1].item()}
if best_adam_lr != ADAM_LR:
    final_distances[f"SimpleAdam, lr {best_adam_lr:g} (the grid's best)"] = grid_finals[best_adam_lr]
ranking = sorted(final_distances, key=final_distances.get)  # nearest first
print("  final distances, nearest first: " + "; ".join(f"{name} {final_distances[name]:.3g}" for name in ranking))

# %% [markdown]
# Adam's first step is lr·|g|/(|g| + eps) in each coordinate, however steep
# its slope g: lr itself, unless |g| is as small as eps. In the default run it
# then slows down, as the gradient shrinks while v remembers the larger ones:
# it reaches x = 0 at step 73, not 45. Near the bottom its steps do not shrink
# with the slope as the others' do, so it overshoots, turns and overshoots
# again: its distance goes down and up (the dips and bumps of the plot below).
# The ranking comes from the runs: in the default valley Adam ends last, even
# at the grid's best lr; in a narrower one, `--curvatures 0.04,4`, it passes
# gradient descent, whose rate creeps towards 1, while its own path hardly
# changes.
#
# The animation (the contours, colours, legend and GIF encoding are in
# `_figures.py` and `_gif.py`, machinery):

# %%
GIF_FPS = 15
runs = {f"gradient descent, lr {gd_lr:.3g}": gd_run,
        f"momentum, lr {momentum_lr:.3g}, momentum {momentum:.3g}": momentum_run,
        f"SimpleAdam, lr {ADAM_LR:g}": adam_run}

if PLOTS:
    import _figures  # matplotlib loads only when there is something to draw

    _cli.prepare_out_dir(OUT_DIR)
    valley_gif = _figures.valley_animation(runs, CURVATURES, STEPS, FRAMES, GIF_FPS, OUT_DIR / "04_valley.gif")
    _cli.show_pictures([valley_gif])

# %% [markdown]
# **What to look at:** x and y have the same scale, so the contour lines
# show the valley's true shape: ellipses √κ times as long along the gentle
# axis, the one of the smaller curvature, as along the steep one; the legend
# says which axis that is and how many times. With the default settings
# (along x, about 4.5 times), gradient descent (blue) zigzags across
# the narrow axis while it creeps along the wide one. Momentum (orange) swings
# even wider across at first, but its swings die out and it rushes along the
# valley: by step 8 it is past x = −1 while gradient descent is near x = −2.
# Adam (purple) sets off on a diagonal, equal steps in x and y, swings across
# the valley's floor a few times while it heads along it, and ends last.
#
# Turn the valley so that x is the steep axis, `--curvatures 100,0.01`, and
# momentum's trail becomes a solid orange band: it jumps from one side of x = 0
# to the other at every step, in swings that first grow far past the
# picture's edges, while it creeps down y, so its 150 lines across the valley
# lie side by side. Gradient descent's zigzag, along y ≈ 1, lies under the
# band's top edge.

# %% [markdown]
# The same runs as distances to the minimum, on a log scale, with the two
# formula rates drawn as straight lines d₀·rateᵏ: on a log scale a rate is a
# slope.

# %%
if PLOTS:
    gd_label, momentum_label, _ = runs
    rates = {gd_label: gd_rate(gd_lr), momentum_label: momentum_rate(momentum_lr, momentum)}
    distance_picture = _figures.valley_distances(runs, rates, OUT_DIR / "04_distances.png")
    _cli.show_pictures([distance_picture])

# %% [markdown]
# **What to look at**, with the default settings: the blue dots sit on their
# dashed line: at its best lr, gradient descent's rate is exactly its formula.
# The orange dots fall with the slope of their line but above it, and the gap
# widens slowly: the factor k of the double root. The purple dots (Adam) stay
# above both for the whole run, and from step 73, where x first reaches 0,
# they bounce up and down: no single rate describes Adam here, and a
# well-tuned momentum beats it on this valley.

# %% [markdown]
# ## What next
#
# You wrote Adam by hand and matched PyTorch's to the bit, and you measured
# what the formulas for gradient descent and momentum promise. Try a narrower
# valley (`--curvatures 0.04,4`, κ = 100): both rates creep towards 1, and
# gradient descent is still far from the bottom after 150 steps, while Adam
# runs almost as before (its steps hardly depend on the curvatures here) and
# now ends nearer than gradient descent: the ranking line says so.
#
# In a terminal, `--json` prints the results as one JSON object on the last line.

# %%
_flags.finish("04_adam_by_hand", globals())

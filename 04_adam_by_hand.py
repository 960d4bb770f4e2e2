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
ADAM_LR = 0.1  # Adam's learning rate in the valley (part 4 says why)
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
# is machinery (progress, pictures, run-time errors): you may skip it.

# %%
import cmath
import copy
import math

import torch
from torch import nn

import _cli
import common

# %% [markdown]
# ## Part 1: a long, narrow valley
#
# f(x, y) = (a·x² + b·y²)/2, with a = 0.2 and b = 4 by default: 0.1·x² + 2·y².
# Its lowest point is (0, 0). Along x it curves gently, along y twenty times
# more steeply: its *curvatures* (second derivatives, the *eigenvalues* of its
# Hessian) are λ = a and λ = b. Their ratio, κ = λmax/λmin, is the valley's
# *condition number*: the larger it is, the narrower the valley.

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
print(f"  gradient descent: lr {gd_lr:.6g}{' (the best, 2/(a + b))' if GD_LR is None else ''}; "
      f"formula max|1 - lr*lambda| = {gd_rate(gd_lr):.6f}; at the best lr, (kappa-1)/(kappa+1) = "
      f"{(kappa - 1) / (kappa + 1):.6f}")

# %% [markdown]
# Momentum, as `torch.optim.SGD` writes it: the velocity *sums* gradients,
# v ← momentum·v + gradient, and the learning rate multiplies the velocity,
# p ← p − lr·v (Distill's "Why Momentum Really Works" writes it the same way).
# Along an axis of curvature λ, one step maps the pair (coordinate x,
# velocity v) to v' = momentum·v + λ·x and x' = x − lr·v': the same 2×2
# matrix at every step. Its *eigenvalues* μ, the numbers by which it merely
# stretches some pair, are the roots of μ² − (1 + momentum − lr·λ)·μ + momentum
# = 0, and may be complex; the largest size |μ| (absolute value) over both axes
# is the rate. The best pair,
# lr = (2/(√λmin + √λmax))² and momentum = ((√κ − 1)/(√κ + 1))², gives the rate
# (√κ − 1)/(√κ + 1): 0.63 where gradient descent has 0.90.

# %%
def momentum_rate(lr, momentum):
    """Momentum's rate on the valley: the largest root size over both curvatures."""
    sizes = []
    for lam in CURVATURES:
        middle = 1 + momentum - lr * lam
        root = cmath.sqrt(middle**2 - 4 * momentum)
        sizes += [abs((middle + root) / 2), abs((middle - root) / 2)]
    return max(sizes)


root_kappa = math.sqrt(kappa)
best_momentum_lr = (2 / (math.sqrt(lam_min) + math.sqrt(lam_max))) ** 2
best_momentum = ((root_kappa - 1) / (root_kappa + 1)) ** 2
momentum_lr = best_momentum_lr if MOMENTUM_LR is None else MOMENTUM_LR
momentum = best_momentum if MOMENTUM is None else MOMENTUM
print(f"  momentum: lr {momentum_lr:.6g}, momentum {momentum:.6g}"
      f"{' (the best pair)' if MOMENTUM_LR is None and MOMENTUM is None else ''}; formula (largest root) = "
      f"{momentum_rate(momentum_lr, momentum):.6f}; at the best pair, (sqrt(kappa)-1)/(sqrt(kappa)+1) = "
      f"{(root_kappa - 1) / (root_kappa + 1):.6f}")

# %% [markdown]
# Now the runs. `descend` starts an optimizer at `START` and keeps every
# position. The valley runs in float64, for the distances' sake: a cell below
# shows what float32 would do to them. A run that flies off (its distance
# reaches 10⁶) is stopped there.

# %%
ESCAPE = 1e6


def descend(optimizer_class, steps=STEPS, dtype=torch.float64, **settings):
    """Run an optimizer on the valley from START; return its positions, one row per step."""
    point = torch.tensor(START, dtype=dtype, requires_grad=True)
    optimizer = optimizer_class([point], **settings)
    positions = [point.tolist()]
    for _ in range(steps):
        optimizer.zero_grad()
        valley(point).backward()
        optimizer.step()
        positions.append(point.tolist())
        if not point.norm() < ESCAPE:  # inf and NaN fail this too
            break
    return torch.tensor(positions, dtype=torch.float64)


gd_run = descend(torch.optim.SGD, lr=gd_lr)
momentum_run = descend(torch.optim.SGD, lr=momentum_lr, momentum=momentum)

# %% [markdown]
# The measured rate: the factor by which each step multiplied the distance, on
# average, from step `first` (a third of the way in) to step `last` (the end):
# (d_last / d_first)^(1/(last − first)). The early steps are left out: momentum
# does not follow its rate there yet.

# %%
def distances(run):
    return run.norm(dim=1)


def measured_rate(run, first=STEPS // 3):
    """The average factor per step by which the distance shrank from step `first` to the end."""
    d, last = distances(run), len(run) - 1
    first = min(first, last // 3)  # a run stopped early: its last two thirds
    return (d[last] / d[first]).item() ** (1 / (last - first))


print(f"  measured over steps {STEPS // 3} to {STEPS}: gradient descent {measured_rate(gd_run):.6f}, "
      f"momentum {measured_rate(momentum_run):.6f}")

# %% [markdown]
# Gradient descent meets its formula to the digits printed. Momentum at its
# best pair shows a little more than its formula: there, both curvatures give
# a *double* root, so the distance at step k goes like k·rateᵏ, not rateᵏ, and
# the factor k slows each step a little. Dividing it out,
# ((d_last/last) / (d_first/first))^(1/(last − first)), gets much closer. (It
# applies to the best pair only, so it is printed only there.)

# %%
def measured_rate_without_k(run, first=STEPS // 3):
    """measured_rate, with the factor k of a double root, d_k ~ k * rate^k, divided out."""
    d, last = distances(run), len(run) - 1
    return ((d[last] / last) / (d[first] / first)).item() ** (1 / (last - first))


if MOMENTUM_LR is None and MOMENTUM is None:
    print(f"  momentum, with the double root's factor k divided out (d_k / k): "
          f"{measured_rate_without_k(momentum_run):.6f}")

# %% [markdown]
# Why float64? Run momentum in float32 and compute its distances in float32
# too: the positions stay far above float32's smallest number (about 10⁻⁴⁵),
# but x² + y² does not, and rounds to 0, so the distance reads exactly 0
# while the point has not reached (0, 0). Over 150 steps that would leave the
# last steps without a rate.

# %%
run32 = descend(torch.optim.SGD, dtype=torch.float32, lr=momentum_lr, momentum=momentum)
zero_in_float32 = (run32.float().norm(dim=1) == 0).nonzero()  # the distances, computed in float32
if len(zero_in_float32):
    step = zero_in_float32[0].item()
    print(f"  in float32, momentum's distance reads exactly 0 from step {step}, where the point is still "
          f"{distances(run32)[step]:.3g} away from (0, 0)")

# %% [markdown]
# ### The edge of stability
#
# A step can be too big. Along the steep axis a gradient descent step
# multiplies y by 1 − lr·λmax, which is below −1 once lr > 2/λmax: y then
# flips side *and grows*. Lesson 02's lr = 1.05 on y = x² (curvature 2, edge
# 2/2 = 1) is the one-dimensional case of this same edge.
#
# Momentum's edge is lr·λmax = 2 + 2·momentum. Why? A run at the edge flips
# side at every step, so its gradients flip too, and a velocity that sums
# gradients of alternating sign is damped, not built up: it settles at
# gradient/(1 + momentum). The step can be (1 + momentum) times longer before
# the run overshoots as far as it started.
#
# Each optimizer runs 1% below and 1% above its edge:

# %%
gd_edge = 2 / lam_max
momentum_edge = (2 + 2 * momentum) / lam_max
edge_runs = {}
for name, edge, settings in (("gradient descent", gd_edge, {}),
                             ("momentum", momentum_edge, {"momentum": momentum})):
    for side, lr in (("below", 0.99 * edge), ("above", 1.01 * edge)):
        d = distances(descend(torch.optim.SGD, lr=lr, **settings))
        edge_runs[(name, side)] = d[-1].item()
        change = "shrank to" if d[-1] < d[0] else "GREW to" if d[-1] > d[0] else "stayed at"
        print(f"  {name:<16} edge lr = {edge:.6g}: lr {lr:.6g} ({side}) -> distance {d[0]:.3g} {change} "
              f"{d[-1]:.3g} in {len(d) - 1} steps")

# %% [markdown]
# ## Part 2: SimpleAdam
#
# Adam keeps two running averages per parameter, with β₁ = 0.9 and β₂ = 0.999:
# m ← β₁·m + (1 − β₁)·g of the gradient g, and v ← β₂·v + (1 − β₂)·g² of its
# square. Both start at 0, which pulls them towards 0 in the first steps; at
# step t, dividing by 1 − β₁ᵗ and 1 − β₂ᵗ undoes that pull (*bias correction*)
# and gives m̂ and v̂. The step is lr·m̂/(√v̂ + eps), where eps = 1e-8 only
# keeps the division safe. At step 1, m̂/√v̂ is g/|g|, so the first step moves
# each coordinate by lr, however steep its slope (a coordinate whose slope is
# exactly 0 does not move). After it, |m̂/√v̂| stays near 1 where the
# gradient keeps its size, and shrinks where the gradient shrinks, as v still
# remembers the larger ones. Only a gradient that suddenly grows can push it
# past 1, and never past (1 − β₁)/√(1 − β₂) ≈ 3.2.
#
# To match `torch.optim.Adam` to the bit, `SimpleAdam` follows the order of
# operations of Adam's single-tensor code in PyTorch (`_single_tensor_adam` in
# the module `torch.optim.adam`): the bias corrections are folded into the step
# size and the denominator, never into m and v themselves. Part 3 shows why
# that order matters.

# %%
class SimpleAdam(torch.optim.Optimizer):
    """Adam: for every parameter p with a gradient g, at its step t = 1, 2, ...

        m <- beta1 * m + (1 - beta1) * g        (a running average of g)
        v <- beta2 * v + (1 - beta2) * g * g    (a running average of g squared)
        p <- p - lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)

    On the CPU, the same parameter values as torch.optim.Adam, bit for bit.
    """

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, amsgrad=False,
                 *, maximize=False):
        check_adam_settings(lr, betas, eps, weight_decay)
        super().__init__(params, {"lr": lr, "betas": betas, "eps": eps, "weight_decay": weight_decay,
                                  "amsgrad": amsgrad, "maximize": maximize})

    @torch.no_grad()  # the update must not be recorded by autograd
    def step(self, closure=None):
        """Take one step; with a closure, first re-evaluate the loss and return it."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    self.adam_step(p, group, self.state[p])  # state: p's own dict, kept between steps
        return loss

    def adam_step(self, p, group, state):
        if p.grad.is_sparse:
            raise RuntimeError("Adam does not support sparse gradients, please consider SparseAdam instead")
        grad = -p.grad if group["maximize"] else p.grad
        if group["weight_decay"] != 0:  # L2 weight decay: the gradient of weight_decay/2 * p^2, added
            grad = grad.add(p, alpha=group["weight_decay"])
        if not state:
            state.update(step=0, exp_avg=torch.zeros_like(p), exp_avg_sq=torch.zeros_like(p))
            if group["amsgrad"]:
                state["max_exp_avg_sq"] = torch.zeros_like(p)
        state["step"] += 1
        (beta1, beta2), t = group["betas"], float(state["step"])  # a float, also if loaded from Adam's state
        m, v, grad, p = (real_view(x) for x in (state["exp_avg"], state["exp_avg_sq"], grad, p))
        m.lerp_(grad, 1 - beta1)  # m + (1 - beta1) * (grad - m), rounded once
        v.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        if group["amsgrad"]:  # AMSGrad divides by the largest v so far
            v = torch.maximum(real_view(state["max_exp_avg_sq"]), v, out=real_view(state["max_exp_avg_sq"]))
        denominator = (v.sqrt() / (1 - beta2**t) ** 0.5).add_(group["eps"])
        p.addcdiv_(m, denominator, value=-as_scalar(group["lr"]) / (1 - beta1**t))


# %% [markdown]
# Three small helpers: `SimpleAdam` refuses the settings Adam refuses, with
# Adam's messages; it takes a learning rate held in a one-element tensor, as
# Adam does; and a complex parameter is updated as pairs of real numbers
# (its real and imaginary parts), as Adam updates it.

# %%
def check_adam_settings(lr, betas, eps, weight_decay):
    """Refuse what torch.optim.Adam refuses, in its order, with the same exception and message."""
    if isinstance(lr, torch.Tensor) and lr.numel() != 1:
        raise ValueError("Tensor lr must be 1-element")
    for ok, message in ((0.0 <= lr, f"Invalid learning rate: {lr}"), (0.0 <= eps, f"Invalid epsilon value: {eps}"),
                        (0.0 <= betas[0] < 1.0, f"Invalid beta parameter at index 0: {betas[0]}"),
                        (0.0 <= betas[1] < 1.0, f"Invalid beta parameter at index 1: {betas[1]}"),
                        (0.0 <= weight_decay, f"Invalid weight_decay value: {weight_decay}")):
        if not ok:
            raise ValueError(message)
    if not all(isinstance(beta, float) for beta in betas):
        both_tensors = all(isinstance(beta, torch.Tensor) for beta in betas)
        raise ValueError("SimpleAdam takes betas as floats, not tensors" if both_tensors
                         else "betas must be either both floats or both Tensors")


def as_scalar(lr):
    """A one-element tensor lr as a 0-d tensor, as Adam uses it; a float stays a float."""
    return lr.squeeze() if isinstance(lr, torch.Tensor) else lr


def real_view(tensor):
    """A complex tensor as real pairs (shape [..., 2], the same memory); a real one as it is."""
    return torch.view_as_real(tensor) if tensor.is_complex() else tensor


# %% [markdown]
# The check, in stage 1's training loop, written again here so that this
# lesson reads on its own: twin networks from the same initial weights (from
# `SEED`), one trained by `SimpleAdam`, the other by `torch.optim.Adam`, both
# with Adam's default learning rate, 0.001. `foreach=False` asks Adam for its
# single-tensor code, the one `SimpleAdam` follows: on the CPU it is Adam's
# default anyway.

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
# `SimpleAdam` has what `torch.optim.Adam` does on the CPU, but not Adam's
# options for speed and special uses: `foreach` and `fused` (faster kernels,
# other rounding), `capturable` (CUDA graphs), `differentiable` (gradients
# through the step), `decoupled_weight_decay` (that is AdamW), and betas held
# in tensors.

# %% [markdown]
# ## Part 3: the textbook form is another order of operations
#
# Textbooks write Adam in steps: m̂ = m/(1 − β₁ᵗ), v̂ = v/(1 − β₂ᵗ), then
# p ← p − lr·m̂/(√v̂ + eps). In exact arithmetic that is `SimpleAdam`'s update.
# In float32 each operation rounds its result, so another order rounds other
# numbers. Some write eps *inside* the square root, √(v̂ + eps): that is
# another formula, a much larger floor under small v̂ (√1e-8 = 1e-4).

# %%
class TextbookAdam(SimpleAdam):
    """Adam in the textbook's order; eps_inside=True puts eps under the square root."""

    eps_inside = False

    def adam_step(self, p, group, state):
        beta1, beta2 = group["betas"]
        if not state:
            state.update(step=0, exp_avg=torch.zeros_like(p), exp_avg_sq=torch.zeros_like(p))
        state["step"] += 1
        t, m, v = state["step"], state["exp_avg"], state["exp_avg_sq"]
        m.mul_(beta1).add_(p.grad, alpha=1 - beta1)
        v.mul_(beta2).add_(p.grad * p.grad, alpha=1 - beta2)
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
adam_run = descend(SimpleAdam, lr=ADAM_LR)  # SimpleAdam in the valley; part 4 shows this run
textbook = {}
for variant in (TextbookAdam, EpsInsideAdam):
    other = common.new_network(SEED, DEVICE)  # the twins' initial weights again
    train(other, variant(other.parameters(), lr=NETWORK_LR), EPOCHS, variant.__name__)
    network_identical, network_diff = common.compare_weights(other, model)
    valley_diff = (descend(variant, lr=ADAM_LR) - adam_run).abs().max().item()
    textbook[variant.__name__] = {"network_identical": network_identical, "network_max_abs_diff": network_diff,
                                  "valley_max_abs_diff": valley_diff}
    print(f"  {variant.__name__:<14} network weights (float32): {common.verdict(network_identical)} "
          f"(largest difference {network_diff:.3g}); valley path (float64): {valley_diff:.3g}")

# %% [markdown]
# The textbook order lands a few roundings away from Adam's: it rounds other
# intermediate numbers, each by at most half a step of the grid of numbers
# that float32 (on the network) or float64 (in the valley) can hold there
# (`numpy.spacing(value)` gives that step), and the steps after carry those
# differences on. The same formula, other bits. Eps inside the square root is
# another formula, and in float64 it shows: at its largest, its valley path
# strays more than ten million times further from SimpleAdam's than the
# reordered one (1.1e-08 against 8.88e-16). On the network, in float32, its
# final weights are only 5.96e-08 from SimpleAdam's, twice the reordering's
# difference: there the change is almost lost in float32's rounding.

# %% [markdown]
# ## Part 4: three optimizers, one valley
#
# Now Adam in the valley, from the same start as the other two. Its learning
# rate follows from one rule: Adam's step is at most about lr per coordinate,
# so from x = −4.5 it needs at least 4.5/lr steps to travel along the valley
# to x = 0. lr = 0.1 makes that 45, under a third of the 150 steps, and leaves
# it the rest to get there. No search: one rule, stated.

# %%
first_move = (adam_run[1] - adam_run[0]).abs().tolist()
largest_move = (adam_run[1:] - adam_run[:-1]).abs().max().item()
crossed = (adam_run[:, 0] * START[0] <= 0).nonzero()  # the steps where x is at 0 or past it
adam_distances = distances(adam_run)
closest = adam_distances.argmin().item()
print(f"\nPart 4: SimpleAdam(lr={ADAM_LR:g}) in the valley from {START}: its first step moves x by "
      f"{first_move[0]:.6g} and y by {first_move[1]:.6g}; no step moves a coordinate more than {largest_move:.6g}")
if len(crossed):
    print(f"  it first reaches x = 0 at step {crossed[0].item()}")
for step in sorted({STEPS // 3, 2 * STEPS // 3, STEPS}):  # at most 3.2*lr a step: Adam never flies off
    print(f"  step {step}: distance to (0, 0) {adam_distances[step]:.3g}")
print(f"  closest: {adam_distances[closest]:.3g} at step {closest}; gradient descent ends at "
      f"{distances(gd_run)[-1]:.3g}, momentum at {distances(momentum_run)[-1]:.3g}")

# %% [markdown]
# Adam's first step is lr, to within eps, in each coordinate whose slope is
# not 0, however steep the slope: m̂/√v̂ = g/|g| at step 1. Then it slows
# down, as the gradient shrinks while v remembers the larger ones: it takes
# more steps than the 45 of the rule to reach x = 0. Near the bottom its steps do not shrink with the slope
# as the others' do, so it overshoots, turns and overshoots again: its
# distance goes down and up (the dips and bumps of the plot below).
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
# show the valley's true shape: ellipses about 4.5 times wider than tall
# (√κ). Gradient descent (blue) zigzags across the narrow axis while it
# creeps along the wide one. Momentum (orange) swings even wider across at
# first, but its swings die out and it rushes along the valley: by step 8 it
# is past x = −1 while gradient descent is near x = −2. Adam (purple) sets off
# on a diagonal, equal steps in x and y, swings across the valley's floor a
# few times while it heads along it, and comes in last.

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
# **What to look at:** the blue dots sit on their dashed line: gradient descent's
# rate is exactly its formula. The orange dots fall with the slope of their
# line but above it, and the gap widens slowly: the factor k of the double
# root. The purple dots (Adam) stay above both for the whole run, and from
# step 73, where x first reaches 0, they bounce up and down: no single rate
# describes Adam here, and a well-tuned momentum beats it on this valley.

# %% [markdown]
# ## What next
#
# You wrote Adam by hand and matched PyTorch's to the bit, and you measured
# what the formulas for gradient descent and momentum promise. Try a narrower
# valley (`--curvatures 0.04,4`, κ = 100): both rates creep towards 1, and
# gradient descent is still far from the bottom after 150 steps, while Adam
# runs as before: in a valley whose axes are x and y, as here, its steps do
# not depend on the curvatures.
#
# In a terminal, `--json` prints the results as one JSON object on the last line.

# %%
_flags.finish("04_adam_by_hand", globals())

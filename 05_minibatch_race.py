# %% [markdown]
# # Beyond the article: minibatches, and a fair race of optimizers on real digits
#
# Stage 1 trains on one sample per step, and lessons 02 to 04 on exact
# gradients. Real training does neither: each step takes a *minibatch*, a few
# samples drawn at random, and its gradient is only an estimate. This lesson,
# all of it beyond the article, measures what that costs, then asks the
# question learners ask most, "which optimizer should I use?", and answers it
# with a protocol fair enough to trust:
#   1. the S in SGD: a minibatch gradient is right on average, and its noise
#      shrinks with the batch as a formula says;
#   2. the noise floor: with noisy gradients, gradient descent stops short of the
#      minimum, at a distance a formula gives;
#   3. real data: scikit-learn's handwritten digits, split into training,
#      validation and test sets, and one small network trained on them;
#   4. a race of SGD, SGD with momentum and Adam, each at the learning rate
#      tuned for it, on many seeds, with intervals; and beside it the one-run
#      race that tutorials show.
#
# Run it: `python 05_minibatch_race.py`.

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
# flags change them: `python 05_minibatch_race.py --help` lists them.

# %%
SEED = 0  # seeds everything: the data split, the initial weights, the minibatch orders, the noise
BATCH_SIZE = 32  # samples per minibatch, from 1 to the whole training set (1077)
STEPS = 200  # the step budget: minibatch steps per training run, the same for every optimizer
DRAWS = 500  # part 1: minibatches drawn for each batch size
LR = 0.1  # part 3's SGD learning rate
GRID = (1e-4, 1.0)  # part 4: the ends of the learning-rate grid that every optimizer is tuned on
GRID_POINTS = 9  # part 4: learning rates in the grid, log-spaced: 9 from 1e-4 to 1 lie half a decade apart
TUNE_SEEDS = 10  # part 4: seeds per learning rate while tuning on the validation set
TEST_SEEDS = 50  # part 4: fresh seeds per optimizer at its chosen rate, scored once on the test set
MOMENTUM = 0.9  # part 4: SGD with momentum's momentum
COMMON_LR = 0.001  # part 4's unfair race: every optimizer at this one rate (torch's default for SGD and Adam)
NOISE = 1.0  # part 2: the standard deviation of the noise added to each gradient
FLOOR_RATES = (0.9, 0.5, 0.1, 0.01)  # part 2: learning rates on y = x², each below lesson 02's edge at 1
DEVICE = "auto"  # "cpu", "cuda", or "auto": cuda where there is one
OUT_DIR = "outputs"  # the pictures go to this folder, beside the lessons
PLOTS = True  # False: draw no pictures

import _flags  # machinery, skip it: flags typed in a terminal replace the values above; all are checked

_flags.apply("05_minibatch_race", globals())

# %% [markdown]
# ## The data: handwritten digits
#
# scikit-learn ships a small set of handwritten digits inside its package, so
# it needs no download: 1797 images of 8x8 pixels, each pixel from 0 to 16,
# labelled 0 to 9. It comes from the UCI "Optical Recognition of Handwritten
# Digits" data (CC BY 4.0). The pixels are scaled to 0..1.

# %%
import math

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch import nn

import _cli
import common

torch.set_num_threads(1)  # small tensors: more threads only wait for each other
digits = load_digits()
images = torch.tensor(digits.data, dtype=torch.float32, device=DEVICE) / 16  # (1797, 64): one row per image
labels = torch.tensor(digits.target, device=DEVICE)
print(f"{len(labels)} images of 8x8 pixels, {len(labels.unique())} classes")

# %% [markdown]
# Three sets, split once: the *training set* the networks learn from; the
# *validation set*, on which part 4 chooses each optimizer's learning rate;
# and the *test set*, scored once at the end, by runs that never chose
# anything on it. Each split is *stratified*: every digit keeps its share in
# every set. `random_state` seeds it, so the same seed gives the same split.

# %%
every_row = np.arange(len(labels))
rest, test_rows = train_test_split(every_row, test_size=360, stratify=digits.target, random_state=SEED)
train_rows, val_rows = train_test_split(rest, test_size=360, stratify=digits.target[rest], random_state=SEED)
train_images, train_labels = images[train_rows], labels[train_rows]
val_images, val_labels = images[val_rows], labels[val_rows]
test_images, test_labels = images[test_rows], labels[test_rows]
for name, part in (("training", train_labels), ("validation", val_labels), ("test", test_labels)):
    counts = torch.bincount(part.cpu(), minlength=10)
    print(f"  {name + ' set:':16}{len(part):5d} images, {counts.min()} to {counts.max()} of each digit")
print(f"  the test set's first images are rows {', '.join(map(str, test_rows[:5]))} of the 1797: the seed picks them")

# %% [markdown]
# ## The network
#
# A small *MLP* (multi-layer perceptron): the 64 pixels go into 32 hidden
# units, each a weighted sum followed by ReLU (negative values become 0),
# and those into 10 logits, one per digit. Why not a CNN like `Test_Conv`? An
# 8x8 image leaves a convolution little room to slide, and two small matrix
# products are quick to train: part 4 trains many of these networks (over
# 400 with the default settings).

# %%
class DigitsMLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.hidden = nn.Linear(64, 32)
        self.out = nn.Linear(32, 10)

    def forward(self, x):
        return self.out(torch.relu(self.hidden(x)))


def new_network(seed):
    """A DigitsMLP whose initial weights come from `seed`: the same seed, the same weights."""
    torch.manual_seed(seed)
    return DigitsMLP().to(DEVICE)


model = new_network(SEED)
print(model)
print(f"{sum(p.numel() for p in model.parameters())} weights")

# %% [markdown]
# ## Part 1: the S in SGD
#
# The loss of a batch is the mean of its samples' losses, so its gradient is
# the mean of their gradients. The *full gradient* takes all N = 1077
# training samples; a *minibatch* gradient takes B of them, drawn at random
# without putting any back. Each sample is as likely as any other to be
# drawn, so on average a minibatch gradient equals the full one: it is
# *unbiased*. One draw misses it by some noise, and sampling theory says how
# much: if σ² is the spread of the single samples' gradients around the full
# gradient (the mean of their squared distances from it), a batch's squared
# distance from it is on average
#
#     (σ²/B) · (N − B)/(N − 1)
#
# The first factor is the noise of a mean of B independent draws; the second
# shrinks it further because a batch drawn without putting back cannot draw a
# sample twice, and reaches 0 at B = N, where every batch is the whole set.
#
# `torch.func` computes gradients as functions: `grad(loss_of)` returns the
# gradient of the loss with respect to the weights (its first argument), and
# `vmap` runs that over many batches at once. `in_dims=(None, 0, 0)` says
# which arguments to map over: the weights (None) are the same for every
# batch; the inputs and targets (0) carry one batch per row. The per-sample
# gradients are batches of one.

# %%
from torch.func import functional_call, grad, stack_module_state, vmap

template = DigitsMLP().to("meta")  # the network's shape, without weights of its own


def loss_of(weights, inputs, targets):
    """The mean cross-entropy of the network with `weights` on one batch."""
    return F.cross_entropy(functional_call(template, weights, (inputs,)), targets)


def gradients_of_batches(weights, rows):
    """The gradient of each batch of training rows (K, B), flattened: one row of 2410 numbers per batch."""
    per_batch = vmap(grad(loss_of), in_dims=(None, 0, 0))(weights, train_images[rows], train_labels[rows])
    return torch.cat([g.reshape(len(rows), -1) for g in per_batch.values()], dim=1)


weights = {name: p.detach() for name, p in model.named_parameters()}
n_train = len(train_labels)
full_gradient = gradients_of_batches(weights, torch.arange(n_train, device=DEVICE)[None])[0]
per_sample = gradients_of_batches(weights, torch.arange(n_train, device=DEVICE)[:, None])
sigma2 = ((per_sample - full_gradient) ** 2).sum(dim=1).mean().item()
linearity_gap = (per_sample.mean(dim=0) - full_gradient).abs().max().item()
print(f"full gradient: length {full_gradient.norm():.4g}; the mean of the {n_train} per-sample gradients "
      f"differs from it by at most {linearity_gap:.2g} (float32 rounding)")
print(f"sigma² = {sigma2:.4g}: the mean squared distance of one sample's gradient from the full gradient")

# %% [markdown]
# For each batch size, draw DRAWS batches (500 by default), compute each
# batch's gradient, and measure its mean squared distance from the full
# gradient. Being a mean over many draws, the measurement has its own
# uncertainty: its 95% interval is ±1.96 standard errors. The last column
# measures the bias: how far the mean of the DRAWS batch gradients lies from
# the full gradient, divided by the distance that sampling noise alone gives
# it on average, √(formula/DRAWS). An unbiased estimate puts that ratio near 1.

# %%
BATCH_SIZES = (1, 4, 16, 64, 256)


def measure_batch_noise(batch_size, shuffler):
    """One batch size's row: the measured squared distance (mean and 95% interval), the formula, the bias."""
    rows = torch.stack([torch.randperm(n_train, generator=shuffler)[:batch_size] for _ in range(DRAWS)])
    gradients = gradients_of_batches(weights, rows.to(DEVICE))
    squared = ((gradients - full_gradient) ** 2).sum(dim=1)
    mean, half = squared.mean().item(), 1.96 * squared.std().item() / math.sqrt(DRAWS)
    formula = sigma2 / batch_size * (n_train - batch_size) / (n_train - 1)
    bias = (gradients.mean(dim=0) - full_gradient).norm().item() / math.sqrt(formula / DRAWS)
    return {"batch_size": batch_size, "measured": mean, "interval": [mean - half, mean + half],
            "formula": formula, "formula_inside": mean - half <= formula <= mean + half, "bias_ratio": bias}


shuffler = torch.Generator().manual_seed(SEED)
noise_rows = [measure_batch_noise(b, shuffler) for b in BATCH_SIZES]

# %% [markdown]
# The table, then what it says, computed from it: how many intervals hold
# the formula (at 95% each, one miss in five is not rare: chance gives at
# least one about a quarter of the time), and whether the bias ratios stay
# near 1.

# %%
print(f"\n{'B':>4}  {'measured (95% interval)':>30}  {'formula':>9}  {'inside?':>7}  {'bias ratio':>10}")
for row in noise_rows:
    low, high = row["interval"]
    print(f"{row['batch_size']:4d}  {row['measured']:9.4g} ({low:8.4g} to {high:8.4g})  {row['formula']:9.4g}  "
          f"{'yes' if row['formula_inside'] else 'NO':>7}  {row['bias_ratio']:10.2f}")
inside = sum(row["formula_inside"] for row in noise_rows)
misses = len(noise_rows) - inside
if misses <= 1:
    chance = "at 95% each, a miss now and then is what chance alone gives"
else:
    chance = "more misses than chance alone makes likely at 95% each"
print(f"-> the formula lies inside {inside} of {len(noise_rows)} intervals: {chance}")
ratios = [row["bias_ratio"] for row in noise_rows]
if max(ratios) <= 2:
    bias_verdict = "the batch gradients' mean lies as near the full gradient as their noise alone makes likely"
else:
    bias_verdict = "farther than noise alone makes likely: a sign of bias"
print(f"-> the bias ratios run from {min(ratios):.2f} to {max(ratios):.2f}: {bias_verdict}")

# %% [markdown]
# ## Part 2: the noise floor
#
# What does that noise do to gradient descent? Take the simplest case:
# f = λx²/2, whose gradient is λx, with noise of standard deviation σ added
# to every gradient, fresh at each step. Lesson 02's parabola y = x² is the
# case λ = 2. A step computes
#
#     x ← x − lr·(λx + σ·noise) = (1 − lr·λ)·x − lr·σ·noise
#
# The first term shrinks x, as in lesson 02; the second kicks it anew at
# every step. Where the two balance, the mean of x² stops falling: at
#
#     E[x²] = lr·σ² / (λ·(2 − lr·λ))
#
# the *noise floor* (square both sides of the step and ask when E[x²] stays
# put). It reaches 0 only when lr does, and it grows without bound as lr·λ
# nears 2: lesson 02's edge, lr = 1 on y = x², past which x diverges. One
# tensor holds 5000 runs for each learning rate, all stepping at once from
# x = 1; their mean x² at each step is the measurement.

# %%
CURVATURE = 2.0  # λ: y = x² of lesson 02
FLOOR_RUNS = 5000
FLOOR_STEPS = 500
X_START = 1.0


def noisy_descent(rates, noise, seed):
    """x for FLOOR_RUNS runs per learning rate, all at once; return the mean x² at every step, (steps+1, rates)."""
    noise_source = torch.Generator().manual_seed(seed)
    lr = torch.tensor(rates)[:, None]  # one row of runs per learning rate
    x = torch.full((len(rates), FLOOR_RUNS), X_START)
    mean_squares = [(x**2).mean(dim=1)]
    for _ in range(FLOOR_STEPS):
        kick = torch.randn(x.shape, generator=noise_source)
        x = x - lr * (CURVATURE * x + noise * kick)
        mean_squares.append((x**2).mean(dim=1))
    return torch.stack(mean_squares), x


mean_squares, last_x = noisy_descent(FLOOR_RATES, NOISE, SEED)

# %% [markdown]
# The formula gives more than the floor: E[x²] at step t is exactly
# c^(2t)·x₀² + floor·(1 − c^(2t)), with c = 1 − lr·λ, the start's share
# fading as in lesson 02. The table compares the runs' last step with it,
# and counts the steps until the measured mean x² first comes within a
# factor of 2 of the floor (from half the floor to twice it).

# %%
def floor_of(lr, noise=NOISE):
    return lr * noise**2 / (CURVATURE * (2 - lr * CURVATURE))


def expected_square(lr, t, noise=NOISE):
    """E[x²] after t noisy steps from X_START: the start's share, fading, plus the floor's, growing."""
    fading = (1 - lr * CURVATURE) ** (2 * t)
    return fading * X_START**2 + floor_of(lr, noise) * (1 - fading)


def floor_row(k, lr):
    squares = last_x[k] ** 2
    mean, half = squares.mean().item(), 1.96 * squares.std().item() / math.sqrt(FLOOR_RUNS)
    floor = floor_of(lr)
    near = torch.nonzero((mean_squares[:, k] <= 2 * floor) & (mean_squares[:, k] >= floor / 2)).flatten()
    return {"lr": lr, "floor": floor_of(lr), "expected_last": expected_square(lr, FLOOR_STEPS), "measured_last": mean,
            "interval": [mean - half, mean + half], "steps_to_twice_floor": int(near[0]) if len(near) else None}


floor_rows = [floor_row(k, lr) for k, lr in enumerate(FLOOR_RATES)]
print(f"{FLOOR_RUNS} runs per rate, {FLOOR_STEPS} steps from x = {X_START:g}, noise σ = {NOISE:g}, λ = {CURVATURE:g}")
print(f"{'lr':>6}  {'floor':>9}  {f'step {FLOOR_STEPS}: formula':>16}  {'measured (95% interval)':>30}  "
      "steps to within 2x of the floor")
for row in floor_rows:
    low, high = row["interval"]
    reached = row["steps_to_twice_floor"]
    print(f"{row['lr']:6g}  {row['floor']:9.4g}  {row['expected_last']:16.4g}  {row['measured_last']:9.4g} "
          f"({low:8.4g} to {high:8.4g})  {reached if reached is not None else f'not within {FLOOR_STEPS}'}")

# %% [markdown]
# What the table says, computed from it: does each interval hold the formula,
# and does a smaller learning rate give a lower floor but take longer?

# %%
def compare_floors(rows):
    inside = sum(row["interval"][0] <= row["expected_last"] <= row["interval"][1] for row in rows)
    print(f"-> the formula lies inside {inside} of {len(rows)} intervals")
    by_rate = sorted(rows, key=lambda row: row["lr"])
    for small, large in zip(by_rate, by_rate[1:]):
        late, early = (row["steps_to_twice_floor"] for row in (small, large))
        late, early = (math.inf if n is None else n for n in (late, early))
        when = "reached later" if late > early else "reached sooner" if late < early else "reached at the same step"
        if late == early == math.inf:
            when = f"neither reached within {FLOOR_STEPS} steps"
        print(f"-> lr {small['lr']:g} against {large['lr']:g}: a floor {large['floor'] / small['floor']:.3g} times "
              f"lower, {when}")
    return inside


floors_inside = compare_floors(floor_rows)

# %% [markdown]
# Up to lr·λ = 1 (lr = 0.5 here, where one step lands on the floor), a
# smaller learning rate ends lower but arrives later. Past it, a larger rate
# ends higher and arrives later too: |1 − lr·λ| grows again, as in lesson
# 02's oscillating runs. A *schedule* gets a low floor early: a large rate
# first, then smaller ones. In a network the noise comes from the
# minibatches (part 1), and this trade is why training often lowers its
# learning rate as it goes.
#
# Both parts in one picture (`_figures.py` draws it).

# %%
if PLOTS:
    import _figures  # matplotlib loads only when there is something to draw

    _cli.prepare_out_dir(OUT_DIR)
    _cli.show_pictures([_figures.noise_pictures(noise_rows, n_train, sigma2, mean_squares, floor_rows,
                                                OUT_DIR / "05_noise.png")])

# %% [markdown]
# **What to look at:** on the left, each dot is a batch size's measured
# squared distance with its 95% interval as bars (hidden by the dot where the
# interval is narrower), on log-log axes; the line is the formula. It falls
# by a factor of 10 for each tenfold batch, the 1/B, and
# bends down at the right, the (N − B)/(N − 1). On the right, each colour is
# a learning rate: its mean x² starts at 1 (x starts at 1), moves to its
# dashed floor (down to a floor below 1, up to one above, as lr 0.9's), and
# stays there, jittering. With the default rates, the lower the floor, the
# later its curve meets it, as the table's last column counts.

# %% [markdown]
# ## Part 3: one network, trained with minibatches
#
# The training loop of stage 1, with two changes: each step takes a
# minibatch, and the order comes from a generator seeded with the run's seed.
# Each *epoch* is a fresh shuffle of the training set, cut into batches of
# BATCH_SIZE; the last, shorter batch of an epoch is dropped, so that every
# step sees as many samples.

# %%
def minibatches(seed, batch_size=BATCH_SIZE):
    """Endless minibatches of training rows: each epoch a new shuffle, cut into batches of batch_size."""
    shuffler = torch.Generator().manual_seed(seed)  # its own generator: the global one stays as it was
    while True:
        order = torch.randperm(n_train, generator=shuffler).to(DEVICE)
        for start in range(0, n_train - batch_size + 1, batch_size):
            yield order[start : start + batch_size]


def train(model, optimizer, seed, steps=STEPS, verbose=False):
    """Train on STEPS minibatches, as the race's runs do; return every step's loss."""
    losses = []
    for step, rows in enumerate(minibatches(seed), start=1):
        if step > steps:
            break
        optimizer.zero_grad()
        loss = F.cross_entropy(model(train_images[rows]), train_labels[rows])
        losses.append(loss.item())
        loss.backward()
        optimizer.step()
        if verbose and (step == 1 or step % 50 == 0 or step == steps):
            shown = f"{losses[-1]:.4g}" if math.isfinite(losses[-1]) else "no longer a finite number: diverged"
            print(f"  step {step:4d}/{steps}  this minibatch's loss {shown}")
    return losses


@torch.no_grad()
def accuracy(model, inputs, targets):
    """The share of `inputs` the model classifies right, in %."""
    return 100.0 * (model(inputs).argmax(dim=1) == targets).sum().item() / len(targets)

# %% [markdown]
# Train the network of part 1 with SGD, then score it on all three sets: on
# the samples it trained on, a *training* accuracy, as lesson 01 names it; on
# the other two sets, the *validation* and *test* accuracies. The loss printed
# every 50 steps is that step's minibatch's alone, so it jumps about.

# %%
optimizer = torch.optim.SGD(model.parameters(), lr=LR)
epochs = STEPS * BATCH_SIZE / (n_train - n_train % BATCH_SIZE)
print(f"SGD, lr {LR:g}, {STEPS} step{'s' * (STEPS > 1)} of {BATCH_SIZE} sample{'s' * (BATCH_SIZE > 1)} "
      f"({epochs:.3g} epochs), seed {SEED}")
part3_losses = train(model, optimizer, SEED, verbose=True)
part3 = {"train_accuracy": accuracy(model, train_images, train_labels),
         "val_accuracy": accuracy(model, val_images, val_labels),
         "test_accuracy": accuracy(model, test_images, test_labels)}
print(f"training accuracy {part3['train_accuracy']:.2f}% | validation accuracy {part3['val_accuracy']:.2f}% | "
      f"test accuracy {part3['test_accuracy']:.2f}%")
if not math.isfinite(part3_losses[-1]):
    print("-> at this learning rate the run diverged: its weights are no longer numbers, its answers meaningless")

# %% [markdown]
# ## Part 4: a fair race
#
# Which optimizer is best? Tutorials often answer with one run each, at one
# learning rate. Studies that tuned each optimizer properly found the ranking
# depends on the protocol (Wilson et al. 2017; Choi et al. 2019; Schmidt,
# Schneider & Hennig 2021). Here is a protocol that gives each one a fair
# chance:
#
# - **Equal terms:** the same network, split, batch size and step budget.
# - **Paired seeds:** seed s gives every optimizer the same initial weights
#   and the same order of minibatches, so that two optimizers are compared on
#   the same draws: a *paired comparison*.
# - **Tuning on validation only:** each optimizer trains at every rate of a
#   log-spaced grid, on TUNE_SEEDS seeds each, and keeps the rate with the best
#   mean validation accuracy. That rate must lie inside the grid: at an end, a
#   better one may lie beyond, so the grid grows there and the lesson says so.
# - **Scored once:** at its chosen rate, each optimizer trains TEST_SEEDS
#   fresh seeds, never used for tuning, scored once on the test set.
#
# The optimizers are PyTorch's: lessons 03 and 04 showed the hand-written
# SimpleGD, SimpleMomentum and SimpleAdam equal to them bit for bit.

# %%
OPTIMIZERS = {
    "SGD": lambda groups: torch.optim.SGD(groups),
    "momentum": lambda groups: torch.optim.SGD(groups, momentum=MOMENTUM),
    "Adam": lambda groups: torch.optim.Adam(groups),
}
LR_LIMITS = (1e-6, 10.0)  # how far a grid may grow
grid = np.geomspace(*GRID, GRID_POINTS).tolist()
tune_seeds = list(range(SEED, SEED + TUNE_SEEDS))
test_seeds = list(range(SEED + TUNE_SEEDS, SEED + TUNE_SEEDS + TEST_SEEDS))  # fresh: never tuned on
decades = round(math.log10(GRID[1] / GRID[0]), 9)  # 0.001 to 1: 3 decades, not 2.9999999999999996
print(f"grid: {len(grid)} learning rates from {GRID[0]:g} to {GRID[1]:g} ({decades:.3g} decade{'s' * (decades != 1)}); "
      f"tuning seeds {tune_seeds[0]}..{tune_seeds[-1]}, test seeds {test_seeds[0]}..{test_seeds[-1]}")
if len(grid) < 7 or decades < 3:
    print("-> a narrow grid: fewer than 7 rates or 3 decades can miss an optimizer's best rate")

# %% [markdown]
# All the runs of a phase train at once, as lesson 01's sweep does:
# `stack_module_state` stacks the weights of many networks, and `vmap` runs
# the network over the stack. PyTorch's optimizers act on each number on its
# own, so one optimizer over stacked weights is one optimizer per network.
# Each learning rate gets its own *param group*, a set of weights with
# settings of their own. Step by step, every run takes its own seed's next
# minibatch: two `vmap`s, the inner one over the seeds (each its own weights
# and minibatch), the outer over the jobs (each its own weights, and
# `in_dims=(0, None)`: the same minibatches for all). The cross-entropy is written out: -log of the right class's
# softmax probability is the log of the sum of exp(logits), less the right
# class's logit. It is what `F.cross_entropy` computes, in fewer steps for
# hundreds of tiny batches (so its last bits may differ).

# %%
logits_of_all = vmap(lambda weights, inputs: functional_call(template, weights, (inputs,)))  # run by run
logits_of_jobs = vmap(logits_of_all, in_dims=(0, None))  # job by job, every job on the same inputs

# %% [markdown]
# `train_many` builds each seed's network once, gives every job its own copy
# of the stack, and one optimizer per kind with a param group per rate; then
# each step is the loop of `train`, for all the runs at once.

# %%
def train_many(jobs, seeds):
    """Train one network per (optimizer, lr) of `jobs` and per seed, all at once.
    Returns their weights, each stacked as (jobs x seeds, ...), job by job."""
    networks = [new_network(seed) for seed in seeds]
    stacks = [stack_module_state(networks)[0] for _ in jobs]  # each job its own copy of the seeds' weights
    optimizers = [OPTIMIZERS[name]([{"params": list(stack.values()), "lr": lr}
                                    for stack, (job_name, lr) in zip(stacks, jobs) if job_name == name])
                  for name in OPTIMIZERS if any(job_name == name for job_name, _ in jobs)]
    streams = [minibatches(seed) for seed in seeds]
    for step in range(STEPS):
        rows = torch.stack([next(stream) for stream in streams])  # (seeds, batch): each seed's next minibatch
        weights = {name: torch.stack([stack[name] for stack in stacks]) for name in stacks[0]}  # (jobs, seeds, ...)
        logits = logits_of_jobs(weights, train_images[rows])  # (jobs, seeds, batch, 10)
        targets = train_labels[rows].expand(len(jobs), *rows.shape)
        right = logits.gather(3, targets.unsqueeze(3)).squeeze(3)  # each sample's right-class logit
        losses = (logits.logsumexp(dim=3) - right).mean(dim=2)  # each run's cross-entropy, its minibatch's mean
        for optimizer in optimizers:
            optimizer.zero_grad()
        losses.sum().backward()  # no run's loss depends on another's weights: each gets its own gradient
        for optimizer in optimizers:
            optimizer.step()
        _cli.show_progress(f"training {losses.numel()} networks: step {step + 1} of {STEPS}")
    _cli.end_progress()
    return {name: torch.cat([stack[name] for stack in stacks]).detach() for name in stacks[0]}


@torch.no_grad()
def accuracies(weights, inputs, targets):
    """The accuracy (%) of every stacked network on the same inputs."""
    runs = len(next(iter(weights.values())))
    logits = logits_of_all(weights, inputs.expand(runs, *inputs.shape))
    return 100.0 * (logits.argmax(dim=2) == targets).sum(dim=1).double() / len(targets)

# %% [markdown]
# Intervals. Seeds are a sample, so each mean comes with a 95% interval: the
# mean ± t standard errors, where t comes from Student's t distribution (2.26
# for 10 seeds, 2.01 for 50, 12.7 for 2; scipy, which scikit-learn brings,
# computes it). An accuracy lies in 0..100%, so its interval is cut there. A
# share of seeds comes with lesson 01's Wilson interval, from `common.py`.

# %%
from scipy.stats import t as student_t


def mean_interval(values, bounds=(0.0, 100.0)):
    """The mean of `values` and its 95% interval (low, high), cut to `bounds`."""
    values = np.asarray(values, dtype=float)
    mean = values.mean()
    half = student_t.ppf(0.975, len(values) - 1) * values.std(ddof=1) / math.sqrt(len(values))
    return mean, (max(bounds[0], mean - half), min(bounds[1], mean + half))

# %% [markdown]
# The tuning: every optimizer at every rate of the grid, on the tuning seeds,
# scored on the validation set.

# %%
def tune(jobs):
    """Mean validation accuracy and its interval for each (optimizer, rate) of `jobs`, from TUNE_SEEDS runs each."""
    scores = accuracies(train_many(jobs, tune_seeds), val_images, val_labels).view(len(jobs), -1).tolist()
    return {job: (*mean_interval(runs), runs) for job, runs in zip(jobs, scores)}


tuning = tune([(name, lr) for name in OPTIMIZERS for lr in grid])
grids = {name: list(grid) for name in OPTIMIZERS}

# %% [markdown]
# Is each optimizer's best rate inside its grid? Where it lies at an end, the
# grid grows there by one step of the same ratio, and the new rate is tuned
# too, until the best lies inside, the grid reaches LR_LIMITS, or it has grown
# by MAX_ADDED rates. Among equal means, the lowest rate counts as the best.
# The optimizers' grids grow side by side: each round trains every new rate
# at once.

# %%
MAX_ADDED = 12


def best_rate(name):
    return max(grids[name], key=lambda lr: tuning[(name, lr)][0])


def next_rate(name, ratio):
    """The rate past the end of `name`'s grid where its best lies, or None: inside, or no room to grow."""
    rates, best = grids[name], best_rate(name)
    # (1 ± 1e-9): a grid that steps onto a limit, as 1 * 10 onto 10, reaches it up to rounding
    if best == rates[-1] and rates[-1] * ratio <= LR_LIMITS[1] * (1 + 1e-9):
        return rates[-1] * ratio
    if best == rates[0] and rates[0] / ratio >= LR_LIMITS[0] * (1 - 1e-9):
        return rates[0] / ratio
    return None


def widen(ratio):
    """Grow each grid past the end where its best rate lies, until the best lies inside; return the rates added."""
    added = {name: [] for name in OPTIMIZERS}
    while True:
        jobs = [(name, next_rate(name, ratio)) for name in OPTIMIZERS if len(added[name]) < MAX_ADDED]
        jobs = [(name, lr) for name, lr in jobs if lr is not None]
        if not jobs:
            return added
        tuning.update(tune(jobs))  # every optimizer's new rate, trained at once
        for name, lr in jobs:
            grids[name] = sorted(grids[name] + [lr])
            added[name].append(lr)


# %% [markdown]
# Grow the grids where needed, then print each optimizer's best rate, that
# rate's mean validation accuracy, and whether it lies inside its grid.

# %%
widened = widen(grid[1] / grid[0])  # the grid's step: the same ratio between neighbours
chosen = {}
for name in OPTIMIZERS:
    chosen[name] = best_rate(name)
    mean, (low, high), _ = tuning[(name, chosen[name])]
    inside = chosen[name] not in (grids[name][0], grids[name][-1])
    print(f"{name:>8}: best rate {chosen[name]:.3g}, mean validation accuracy {mean:.2f}% "
          f"(95% interval {low:.2f}% to {high:.2f}%), {'inside its grid' if inside else 'AT AN END of its grid'}")
    if widened[name]:
        print(f"{'':10}its best lay at an end: the grid grew to {', '.join(f'{lr:.3g}' for lr in widened[name])}")
    if not inside:
        print(f"{'':10}the grid can grow no further (rates stay within {LR_LIMITS[0]:g} to {LR_LIMITS[1]:g}, and a "
              f"grid grows by {MAX_ADDED} at most): a better rate may lie beyond it, or between its rates")

# %% [markdown]
# The validation accuracy of every rate, in a table: the mean over the
# tuning seeds.

# %%
all_rates = sorted({lr for rates in grids.values() for lr in rates})
print(f"{'lr':>9}  " + "  ".join(f"{name:>8}" for name in OPTIMIZERS))
for lr in all_rates:
    cells = [f"{tuning[(name, lr)][0]:7.2f}%" if (name, lr) in tuning else f"{'':8}" for name in OPTIMIZERS]
    print(f"{lr:9.3g}  " + "  ".join(cells))

# %% [markdown]
# Now the test: each optimizer at its chosen rate, on the fresh test seeds,
# scored once on the test set.

# %%
test_jobs = [(name, chosen[name]) for name in OPTIMIZERS]
test_weights = train_many(test_jobs, test_seeds)
test_scores = accuracies(test_weights, test_images, test_labels).view(len(test_jobs), -1)
race = {}
for (name, lr), scores in zip(test_jobs, test_scores.tolist()):
    mean, (low, high) = mean_interval(scores)
    race[name] = {"lr": lr, "test_accuracies": scores, "mean": mean, "interval": [low, high]}
    print(f"{name:>8} at lr {lr:.3g}: mean test accuracy {mean:.2f}% (95% interval {low:.2f}% to {high:.2f}%), "
          f"{len(scores)} seeds")

# %% [markdown]
# Paired differences: on each test seed, the two optimizers started from the
# same weights and saw the same minibatches, so the difference of their two
# accuracies on that seed removes the luck they share. Its mean and interval
# say whether one is better. The interval is printed beside the one that the
# two means alone would give (*unpaired*: as if the seeds were unrelated): the
# more luck the two runs of a seed share, the narrower the paired one.

# %%
def paired(first, second):
    """The paired comparison of two optimizers on the test seeds: the numbers."""
    a, b = race[first]["test_accuracies"], race[second]["test_accuracies"]
    differences = [x - y for x, y in zip(a, b)]
    mean, (low, high) = mean_interval(differences, bounds=(-100.0, 100.0))
    unpaired = student_t.ppf(0.975, 2 * len(a) - 2) * math.sqrt((np.var(a, ddof=1) + np.var(b, ddof=1)) / len(a))
    wins, losses = sum(d > 0 for d in differences), sum(d < 0 for d in differences)
    return {"pair": [first, second], "mean_difference": mean, "interval": [low, high],
            "paired_half_width": (high - low) / 2, "unpaired_half_width": unpaired, "wins": wins, "losses": losses,
            "ties": len(a) - wins - losses, "wins_share_95ci": list(common.wilson_interval(wins, len(a)))}

# %% [markdown]
# The verdict, from the interval: above 0 or below it, one optimizer beats the
# other; holding 0, this budget of seeds cannot tell them apart. The share of
# seeds where one comes out ahead says how often (a tie is not ahead, and a
# few seeds far apart can pull the mean against the count).

# %%
def points(value):
    """A difference in points, with enough digits to tell it from 0."""
    return f"{value:+.2f}" if value == 0 or abs(value) >= 0.005 else f"{value:+.2g}"


def say(result):
    first, second = result["pair"]
    low, high = result["interval"]
    if result["wins"] == result["losses"] == 0:
        verdict = "the same accuracy on every seed"
    elif low > 0 or high < 0:
        better, worse = (first, second) if result["mean_difference"] > 0 else (second, first)
        verdict = f"{better} beats {worse} by {abs(result['mean_difference']):.2f} points"
    else:
        verdict = "no difference that this budget can detect: the interval holds 0"
    share = result["wins_share_95ci"]
    print(f"{first} - {second}: {points(result['mean_difference'])} points (95% interval {points(low)} to "
          f"{points(high)}; unpaired ±{result['unpaired_half_width']:.2f}); {first} ahead on {result['wins']}, "
          f"behind on {result['losses']}, tied on {result['ties']} of {len(race[first]['test_accuracies'])} seeds "
          f"(ahead: Wilson 95% {share[0]:.1f}% to {share[1]:.1f}%)")
    print(f"  -> {verdict}")
    return {**result, "verdict": verdict}


names = list(OPTIMIZERS)
pairs = [say(paired(first, second)) for i, first in enumerate(names) for second in names[i + 1 :]]

# %% [markdown]
# Did this race keep the whole protocol? Each shortfall is named: the
# verdicts above then hold for these runs, not for the optimizers.

# %%
def protocol_gaps():
    gaps = []
    if len(grid) < 7 or decades < 3:
        gaps.append(f"a grid of {len(grid)} rates over {decades:.3g} decades (the protocol: at least 7 over 3)")
    at_an_end = [name for name in OPTIMIZERS if chosen[name] in (grids[name][0], grids[name][-1])]
    if at_an_end:
        gaps.append(f"a best rate at an end of its grid ({', '.join(at_an_end)})")
    if TUNE_SEEDS < 10 or TEST_SEEDS < 50:
        gaps.append(f"{TUNE_SEEDS} tuning and {TEST_SEEDS} test seeds (the protocol: at least 10 and 50)")
    return gaps


gaps = protocol_gaps()
if gaps:
    print(f"-> caution: this race falls short of the protocol: {'; '.join(gaps)}")
else:
    print("-> this race kept the whole protocol: its verdicts are those of this network, data and budget")

# %% [markdown]
# The race in a picture (`_figures.py` draws it).

# %%
if PLOTS:
    _cli.show_pictures([_figures.race_pictures(grids, widened, tuning, chosen, race, OUT_DIR / "05_race.png")])

# %% [markdown]
# **What to look at:** on the left, each optimizer's mean validation
# accuracy against the learning rate, with its 95% band over the tuning seeds,
# and a star at its chosen rate; a hollow dot marks a rate the grid grew to.
# With the default settings each curve rises to a peak; momentum's and Adam's
# fall steeply past it, where their runs blow up, SGD's hardly within the
# grid; the highest and lowest of the three best rates lie more than 30 times
# apart. On the right, one dot per test seed, and each optimizer's mean with
# its 95% interval. Where two intervals overlap, the picture alone cannot
# rank the two; their paired interval, printed above, is the one to read.

# %% [markdown]
# ## The unfair race
#
# Now the race most tutorials run: every optimizer at one learning rate
# (COMMON_LR, by default 0.001, torch's default for both SGD and Adam), one
# seed, one score on the test set.

# %%
unfair_weights = train_many([(name, COMMON_LR) for name in OPTIMIZERS], [SEED])
unfair = dict(zip(OPTIMIZERS, accuracies(unfair_weights, test_images, test_labels).tolist()))
unfair_ranking = sorted(unfair, key=unfair.get, reverse=True)
fair_ranking = sorted(race, key=lambda name: race[name]["mean"], reverse=True)
for name in unfair_ranking:
    print(f"{name:>8} at lr {COMMON_LR:g}, seed {SEED}: test accuracy {unfair[name]:.2f}%")
gap = unfair[unfair_ranking[0]] - unfair[unfair_ranking[-1]]
print(f"-> the unfair race ranks {' > '.join(unfair_ranking)}, first to last {gap:.2f} points apart")

# %% [markdown]
# Each of its pairs, against the fair race's verdict on the same pair: does
# the fair race bear it out, reverse it, or detect no difference at all?

# %%
def fair_says(ahead, behind):
    verdict = next(pair["verdict"] for pair in pairs if set(pair["pair"]) == {ahead, behind})
    if verdict.startswith(f"{ahead} beats"):
        return f"the fair race agrees: {verdict}"
    if verdict.startswith(f"{behind} beats"):
        return f"the fair race reverses it: {verdict}"
    return f"the fair race finds {verdict.split(':')[0]}"


contrast = []
for i, ahead in enumerate(unfair_ranking):
    for behind in unfair_ranking[i + 1 :]:
        order = "ties with" if unfair[ahead] == unfair[behind] else "ahead of"
        contrast.append(f"{ahead} {order} {behind} by {unfair[ahead] - unfair[behind]:.2f} points; "
                        f"{fair_says(ahead, behind)}")
        print(f"   {contrast[-1]}")

# %% [markdown]
# One rate for all measures how well that rate suits each optimizer, not how
# good each optimizer is: Adam's steps hardly depend on the gradient's scale
# (lesson 04), so a rate that is too small for SGD can suit Adam. One seed
# adds its luck. The fair race gives each its own best rate and asks how much
# of the gap survives many seeds.

# %% [markdown]
# ## Does the batched training train each run as `train` would?
#
# The check trains the first 3 test seeds of each optimizer again, one
# network at a time with `train` and the optimizer's own class, and compares
# their test accuracies and weights with the batched runs. As in lesson 01,
# the weights may differ by float32 rounding: the batched products add the
# same numbers in another order. Each step starts from the last one's weights,
# so a rounding difference is carried on, and over many steps at a large
# rate it can grow (training then behaves like a chaotic system, where two
# nearby starts drift apart): the weights may then differ by much more, and
# an accuracy with them. The check says which it saw.

# %%
CHECKED_SEEDS = 3  # tests/test_minibatch_race.py checks 10 of each optimizer, on shorter runs
ROUNDING = 1e-4  # weights of about 0.01 to 1 differ by 1e-8 to 1e-7 after one rounding; 1e-4 leaves room for many


def check_one_optimizer(job_index, name, lr):
    """Train the first test seeds alone; return whether the accuracies agree, and the largest weight difference."""
    seeds = test_seeds[:CHECKED_SEEDS]
    same, largest = True, 0.0
    for k, seed in enumerate(seeds):
        alone = new_network(seed)
        train(alone, OPTIMIZERS[name]([{"params": list(alone.parameters()), "lr": lr}]), seed)
        same &= accuracy(alone, test_images, test_labels) == test_scores[job_index, k].item()
        run = job_index * TEST_SEEDS + k
        for key, value in alone.named_parameters():
            largest = max(largest, (value.detach() - test_weights[key][run]).abs().max().item())
    apart = "float32 rounding" if largest <= ROUNDING else "far more than rounding: the runs drifted apart"
    print(f"{name:>8}: {len(seeds)} seeds trained alone: {'the same' if same else 'DIFFERENT'} test accuracies; "
          f"weights apart by at most {largest:.3g}: {apart}")
    return {"optimizer": name, "seeds": len(seeds), "same_accuracies": same, "largest_weight_difference": largest}


checks = [check_one_optimizer(k, name, lr) for k, (name, lr) in enumerate(test_jobs)]

# %% [markdown]
# ## What next
#
# Try a smaller step budget (`--steps 50`), a batch of one sample
# (`--batch-size 1`), or a grid too narrow to hold the best rates
# (`--grid 0.001,0.01 --grid-points 3`), and read what the lesson then says.
# (The whole training set as one batch, `--batch-size 1077`, trains hundreds
# of networks on all 1077 images at every step: minutes, not seconds.)
#
# In a terminal, `--json` prints the results as one JSON object on the last line.

# %%
_flags.finish("05_minibatch_race", globals())

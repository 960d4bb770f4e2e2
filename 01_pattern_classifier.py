# %% [markdown]
# # Stage 1: a tiny CNN learns to tell two patterns apart
#
# The article's stage first: its two 4x4 patterns, its network `Test_Conv`, its
# training loop with `torch.optim.SGD`, and its one check. Then what the article
# leaves out: a test on inputs the network never saw, and a sweep over seeds
# that tells whether one good run was luck.
#
# Run it all with one command: `python 01_pattern_classifier.py`.

# %% tags=["active-ipynb"]
# try:  # notebook only: the lesson's files must lie beside this notebook
#     import _notebook
# except ModuleNotFoundError:
#     raise FileNotFoundError("Put this notebook beside the lesson files: upload or clone the whole folder.") from None
# _notebook.show_versions()

# %% [markdown]
# ## Settings
#
# The article's values. In a notebook, change them here and run all the cells again.
# In a terminal, flags change them: `python 01_pattern_classifier.py --help` lists them.

# %%
EPOCHS = 2  # passes over the 40 training samples
LR = 0.001  # SGD's learning rate
MOMENTUM = 0.9  # SGD's momentum: the share of the last step that each step keeps
ORDER = "sequential"  # the article's: A at scales 0..19, then B at 0..19; or "shuffled", anew each epoch
SEED = 0  # draws the initial weights and the shuffle; with the other values here, seed 0 learns
SWEEP = 100  # beyond the article: seeds 0..SWEEP-1 trained in both orders; 0 skips the sweep
DEVICE = "auto"  # "cpu", "cuda", or "auto": cuda where there is one
OUT_DIR = "outputs"  # the pictures go to this folder, beside the lessons
PLOTS = True  # False: draw no pictures

import _flags  # machinery, skip it: flags typed in a terminal replace the values above; all are checked

_flags.apply("01_pattern_classifier", globals())

# %% [markdown]
# ## The article's stage
#
# The lesson uses PyTorch, and files of this folder: `_flags`, `_cli` and
# `_figures` read the settings, print, save and draw (machinery, skip them);
# `common` holds what the lessons share, among it the patterns, the network and
# the data sets. Open `common.py` now, beside this lesson: the next cells use it.

# %%
import copy
import math

import torch
import torch.nn.functional as F
from torch import nn

import _cli
import common

# %% [markdown]
# Pattern A has columns 1 and 3 set (counting from 0); pattern B is A plus its
# top and bottom rows. The network learns from both at scales 0 to 19: the
# pattern's cells hold the scale, all others 0.

# %%
print("Two patterns to tell apart (shown at scale 1; training uses scales 0..19):")
print("  pattern A (label 0)   pattern B (label 1)")
rows_a = common.pattern_a(1).reshape(4, 4).int().tolist()
rows_b = common.pattern_b(1).reshape(4, 4).int().tolist()
for row_a, row_b in zip(rows_a, rows_b):
    print(f"  {' '.join(map(str, row_a)):<22}{' '.join(map(str, row_b))}")

# %% [markdown]
# `Test_Conv` is one `Conv2d(1, 4, kernel_size=4, bias=False)`: four 4x4
# filters, each giving one number per input, its *logit*, and no *bias* (a
# bias is a number a layer adds to each output, whatever the input). The
# largest of the four logits is the predicted class: A is class 0, B class 1,
# and classes 2 and 3 belong to no sample. `common.new_network(SEED)` seeds
# PyTorch's global generator, then builds it: the same seed, the same initial
# filters.

# %%
model = common.new_network(SEED, DEVICE)
print(model)

# %% [markdown]
# The article's "last misunderstanding" fed an untrained network an input, the
# same input doubled and a very different one, and hoped to read the distance
# between their outputs as a verdict: "same" or "different". Here the same test
# with A, 10*A and B, and the article's distance, the *mean squared error* (the
# mean of the squared differences of the four outputs), shows why that cannot
# work. A network without bias multiplies its outputs by the input's scale: the
# outputs for 10*A are 10 times those for A, so they differ from them by 9 times
# A's outputs, and squared, that makes the distance between A and 10*A 81 times
# the distance of A's outputs from all zeros, whatever the pattern and the
# weights: a distance measures the scale as much as the pattern. The lines below
# print all three distances. The predicted class can say "same": scaling all
# four logits alike leaves the largest one the largest.

# %%
def show_outputs(model, which):
    """Distances between the outputs for A, 10*A and B, and the class predicted for each."""
    inputs = torch.cat([common.pattern_a(1), common.pattern_a(10), common.pattern_b(1)])
    with torch.no_grad():  # in float64: squared, a trained network's outputs can pass float32's largest number
        outputs = copy.deepcopy(model).double()(inputs.double().to(next(model.parameters()).device))
    out_a, out_10a, out_b = outputs
    from_zero = F.mse_loss(out_a, torch.zeros_like(out_a)).item()
    same, different = F.mse_loss(out_a, out_10a).item(), F.mse_loss(out_a, out_b).item()
    predicted = outputs.argmax(dim=1).tolist()  # the class of each input: its largest output
    times = f", {same / from_zero:.4g} times the line above" if from_zero else ""
    print(f"\nThe {which} network's four outputs for A, 10*A and B:")
    print(f"  distance between the outputs for A and all zeros:              {from_zero:.4g} (mean squared error)")
    print(f"  distance between the outputs for A and 10*A, the same pattern: {same:.4g}{times}")
    print(f"  distance between the outputs for A and B, different patterns:  {different:.4g}")
    if same > different:
        print("  -> the same pattern lies farther apart than two different ones: a distance is no verdict")
    else:
        print("  -> here A and B lie farther apart, yet c*A drifts away from A as c grows: a distance is no verdict")
    print(f"  predicted class (the largest output): A {predicted[0]}, 10*A {predicted[1]}, B {predicted[2]} "
          "(right: A 0, 10*A 0, B 1)")
    return {"mse_a_from_zero": from_zero, "mse_same_pattern": same, "mse_different_patterns": different,
            "predicted": predicted}


outputs_before = show_outputs(model, "untrained")

# %% [markdown]
# Three measures tell how well the network does, before training and after:
#
# - *Training accuracy*: the share of the training samples it classifies right,
#   leaving out scale 0, where A and B are the same all-zero input that no
#   network without bias can tell apart: 38 samples, A and B at scales 1..19.
# - *Test accuracy*: the share of 160 inputs that no run ever trains on: A and
#   B at 8 other scales, 10 copies each, plus noise (see `noisy_test_set` in
#   `common.py`).
# - *The article's check*: is A at scale 999999999 classified as A? For a
#   network without bias that is the class of A at scale 1, a training sample
#   in disguise.

# %%
def show_evaluation(when, model):
    """Training accuracy, test accuracy and the article's check, on one line."""
    evaluation = common.evaluate(model)
    check = "yes" if evaluation["article_check"] else "no"
    print(f"\n{when}: training accuracy {evaluation['train_accuracy']:.1f}% | test accuracy "
          f"{evaluation['test_accuracy']:.1f}% | the article's check (A at scale 999999999 called A): {check}")
    return evaluation


training_labels = common.classifiable_training_set()[1]
test_inputs, test_labels = common.noisy_test_set()
print(f"\nMeasured on {len(training_labels)} training samples and {len(test_labels)} test samples")
before = show_evaluation("Before training", model)

# %% [markdown]
# Always guessing A, or always B, gets 50% of the test set right. An untrained
# network's classes follow from its random filters, not from the patterns, so
# its score is luck: with seed 0 it calls every A class 1 (wrong) and most B
# class 1 (right), but the noise sends 23 of the 80 noisy B to class 3: 57
# right answers of 160, 35.6%, below guessing. Other seeds draw other filters:
# many score 0% (`--seed 2` puts every input in class 3, a class no sample
# has), and some score above 50%. With `--seed 203` the untrained network
# scores 100%: its random filters happen to tell A from B already. The next
# lines count, for the noisy copies of each pattern, the class the network
# gives them, then compare this run's score with guessing.

# %%
def count_test_classes(model):
    """How many noisy A and how many noisy B inputs of the test set land in each class."""
    predicted = common.predict(model, test_inputs.to(next(model.parameters()).device)).cpu()
    counts = {}
    for name, label in (("A", common.LABEL_A), ("B", common.LABEL_B)):
        counts[name] = torch.bincount(predicted[test_labels == label], minlength=4).tolist()
        shown = ", ".join(f"class {k}: {n}" for k, n in enumerate(counts[name]))
        print(f"  the {sum(counts[name])} noisy {name} inputs of the test set, by predicted class: {shown}")
    return counts


def compare_with_guessing(test_accuracy):
    """Say where an untrained network's test accuracy lies against the 50% of always guessing one pattern."""
    if test_accuracy == 50.0:
        verdict = "what always guessing one pattern gets"
    else:
        verdict = f"{'above' if test_accuracy > 50.0 else 'below'} the 50% of always guessing one pattern"
    print(f"  -> {test_accuracy:.1f}% right before any training: {verdict}, by the luck of the initial weights")


test_classes_before = count_test_classes(model)
compare_with_guessing(before["test_accuracy"])

# %% [markdown]
# Training shows the network one sample per step, 40 steps an epoch. In the
# article's order it sees A at scales 0..19, then B at 0..19. Shuffled, each
# epoch takes a new random order, drawn from a generator of the shuffle's own,
# seeded once with the run's seed: epoch 1 takes its first permutation, epoch 2
# its second, and so on. PyTorch's global generator, which drew the initial
# weights, is not touched, so the shuffle never changes them.

# %%
def sample_order(n_samples, epochs, order, seed):
    """Which sample each step takes, as one list of indices per epoch."""
    if order == "sequential":
        return [list(range(n_samples))] * epochs
    shuffler = torch.Generator().manual_seed(seed)  # its own generator: the global one stays as it was
    return [torch.randperm(n_samples, generator=shuffler).tolist() for _ in range(epochs)]

# %% [markdown]
# The training loop: for each sample, clear the old gradients, run the network
# forward, measure the loss, run it backward for the gradients, and let the
# optimizer step. It returns every step's loss and prints a few of them: step
# 1's, every 5th step's for 1 or 2 epochs (every 10th for 3 or 4 epochs, and so
# on), and the last step's, at most 18 lines however many epochs there are.
# A loss of inf or NaN means the run diverged: it stops there, before the step.

# %%
def train(model, optimizer, epochs=EPOCHS, order=ORDER, seed=SEED, verbose=True):
    """Train on one sample per step, as the article does; return every step's loss."""
    device = next(model.parameters()).device
    inputs, labels = (t.to(device) for t in common.training_set())
    loss_fn = nn.CrossEntropyLoss()  # small when the logit of the right class stands out
    steps, print_every = epochs * len(labels), 5 * math.ceil(epochs / 2)  # at most 18 lines printed
    losses = []
    for epoch, indices in enumerate(sample_order(len(labels), epochs, order, seed), start=1):
        for step, i in enumerate(indices, start=1):
            optimizer.zero_grad()  # clear the last step's gradients: backward() adds to them
            logits = model(inputs[i : i + 1])  # forward: one sample in, four logits out
            loss = loss_fn(logits, labels[i : i + 1])  # how wrong those logits are
            losses.append(loss.item())
            if not math.isfinite(losses[-1]):  # inf or NaN: the run has diverged, stop now
                raise _cli.TrainingDiverged(epoch, step, losses[-1])
            loss.backward()  # backward: d(loss)/d(weight) for every weight, into its .grad
            optimizer.step()  # the optimizer moves every weight against its gradient
            if verbose and (len(losses) in (1, steps) or len(losses) % print_every == 0):
                print(f"  epoch {epoch}  step {step:2d}/{len(indices)}  loss {losses[-1]:.7g}")
    return losses

# %% [markdown]
# The article trains with SGD and *momentum*: each step moves the weights by
# the learning rate times a velocity, the sum of all past gradients, each
# multiplied by the momentum (0.9: kept at 90%) once per step since. In the
# article's order, step 1 takes pattern A at scale 0, all zeros: all four logits
# are 0. The *softmax* turns the logits into probabilities (each logit's
# exponential, divided by the sum of all four), so it gives each class 1/4, and
# the loss is -ln(1/4) = ln 4 = 1.386294, whatever the weights. Shuffled, step 1
# takes whichever sample the shuffle put first, and its loss depends on the
# initial weights.

# %%
optimizer = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM)
print(f"\nTraining: {EPOCHS} epoch{'' if EPOCHS == 1 else 's'} x 40 samples ({ORDER} order), "
      f"SGD lr={LR} momentum={MOMENTUM}")
losses = train(model, optimizer, EPOCHS, ORDER, SEED)

# %% [markdown]
# Two steps to look at: the first, and the one that cost the most. Which
# sample did each take? A sample is A or B at a scale 0..19; at scale 0 both
# are all zeros.

# %%
def sample_taken(t, order, seed):
    """The sample that step t (counting from 0) took, in words: "A at scale 7"."""
    epoch, step = divmod(t, 40)
    sample = sample_order(40, epoch + 1, order, seed)[epoch][step]
    return f"{'AB'[sample // 20]} at scale {sample % 20}"


def show_first_loss(losses, order, seed):
    """Say which sample step 1 took, and why its loss is what it is."""
    sample = sample_taken(0, order, seed)
    if sample.endswith(" at scale 0"):
        print(f"  step 1 took {sample}, an all-zero input: four logits of 0, so its loss is ln 4 = "
              f"{losses[0]:.7g}, whatever the weights")
    else:
        print(f"  step 1 took {sample}: its loss, {losses[0]:.7g}, comes from the initial weights "
              "(only an all-zero input costs ln 4 whatever they are)")


def show_highest_loss(losses, order, seed):
    """Name the step with the highest loss, and the sample it took."""
    peak = max(range(len(losses)), key=lambda t: losses[t])
    epoch, step = divmod(peak, 40)
    print(f"  highest loss {losses[peak]:.4g} at epoch {epoch + 1}, step {step + 1}: {sample_taken(peak, order, seed)}")


show_first_loss(losses, ORDER, SEED)
show_highest_loss(losses, ORDER, SEED)

# %% [markdown]
# The three measures and the outputs for A, 10*A and B again, now trained.

# %%
after = show_evaluation("After training", model)
outputs_after = show_outputs(model, "trained")

# %% [markdown]
# The loss at every step, in a picture. `_figures.py` adds the decorations:
# the dashed ln 4 line, a dotted line at each new epoch, in the article's order
# the shading of pattern B's steps, and the legend. Past 10 epochs it leaves
# out the dotted lines and the shading, which would merge into grey stripes,
# and its title says so.

# %%
if PLOTS:
    import _figures  # matplotlib loads only when there is something to draw

    _cli.prepare_out_dir(OUT_DIR)
    _cli.show_pictures([_figures.stage1_losses(losses, 40, ORDER, OUT_DIR / "01_loss.png")])

# %% [markdown]
# **What to look at:** in the article's order, step 1's loss is ln 4 (the
# dashed line), the cost of the all-zero input; shuffled, it is wherever the
# first sample puts it, as the line above says. In the default run (the
# article's settings) the loss jumps after every switch of pattern: up after
# the samples turn to B (shaded, from steps 21 and 61), and highest after epoch
# 2 returns to A, 11.03 at epoch 2, step 8, as the output says. Two things make
# a peak: momentum, which carries the weights on past what the other pattern
# needs, and the sample's scale, since a network without bias multiplies its
# logits, and so the cost of a wrong answer, by it.

# %% [markdown]
# The four learned filters, beside the two patterns. Each filter's logit for A
# and for B at scale 1 is in its title (at scale c, c times as much);
# `_figures.py` draws the panels.

# %%
if PLOTS:
    _cli.show_pictures([_figures.stage1_filters(model, OUT_DIR / "01_filters.png")])

# %% [markdown]
# **What to look at:** in the pattern panels black is 1 and white 0. Each
# filter gives one logit: filter 0 scores class 0 (A), filter 1 class 1 (B),
# and filters 2 and 3 score classes that no sample has. The gradient of the
# cross-entropy pushes down the logit of every wrong class (but those of an
# all-zero input, which no weight can change), and classes 2 and 3 are wrong
# for every sample, so training pushes theirs down. In the default run they end
# below zero for both patterns, filter 1 is red (positive) on the cells that
# only B has, columns 0 and 2 of the top and bottom rows, and filter 0 is blue
# there: those four cells vote for B and against A. The titles give your run's
# logits.

# %% [markdown]
# ## Beyond the article: was it luck?
#
# One run is one draw of the initial weights. The sweep trains the seeds
# 0..SWEEP-1 in the article's order and shuffled, and counts the runs that
# learned their training set (100% training accuracy).
#
# It trains all the networks of an order at once, as PyTorch's model-ensembling
# tutorial does with `torch.func`: `stack_module_state` stacks the weights of R
# networks into one tensor with a leading run dimension, `functional_call` runs
# `Test_Conv` with weights handed to it, and `vmap` maps that over the run
# dimension, as a loop over the runs would. No run's loss depends on another's
# weights, so the sum of the R losses gives each run its own gradient, and SGD
# updates each number on its own: each run ends where a separate run of `train`
# ends, up to rounding. The sweep checks that on its first seeds, below.

# %%
from torch.func import functional_call, stack_module_state, vmap

ORDERS = ("sequential", "shuffled")


def new_networks(n_seeds):
    """Test_Conv for seeds 0..n_seeds-1, each as common.new_network makes it."""
    networks = []
    for seed in range(n_seeds):
        networks.append(common.new_network(seed, DEVICE))
        if seed % 1000 == 0:
            _cli.show_progress(f"sweep: {seed} of {n_seeds} networks built")
    return networks


if SWEEP:
    torch.set_num_threads(1)  # tensors this small gain nothing from threads, which only wait for each other
    networks = new_networks(SWEEP)
    template = copy.deepcopy(networks[0]).to("meta")  # Test_Conv's shape, without weights of its own


def logits_of_one(weights, inputs):
    """Test_Conv's logits, computed with the weights given rather than the template's (it has none)."""
    return functional_call(template, weights, (inputs,))


logits_of_all = vmap(logits_of_one)  # weights (R, ...) and inputs (R, ...): R runs in one call

# %% [markdown]
# Each run takes its own seed's sample order; step by step, the R samples go
# in together, one per run.

# %%
def train_many(networks, order, epochs=EPOCHS, lr=LR, momentum=MOMENTUM):
    """Train the networks of seeds 0..R-1 at once; return their stacked weights."""
    weights, _ = stack_module_state(networks)  # {"conv.weight": shape (R, 4, 1, 4, 4)}; no buffers
    optimizer = torch.optim.SGD(weights.values(), lr=lr, momentum=momentum)
    inputs, labels = (t.to(DEVICE) for t in common.training_set())
    schedule = torch.tensor([sum(sample_order(len(labels), epochs, order, seed), [])
                             for seed in range(len(networks))], device=DEVICE)  # (R, steps)
    for t, picked in enumerate(schedule.T):
        optimizer.zero_grad()
        logits = logits_of_all(weights, inputs[picked].unsqueeze(1))  # (R, 1, 4): one sample per run
        losses = F.cross_entropy(logits.squeeze(1), labels[picked], reduction="none")
        if not torch.isfinite(losses).all():
            run = int(torch.nonzero(~torch.isfinite(losses))[0])
            raise _cli.TrainingDiverged(t // len(labels) + 1, t % len(labels) + 1, losses[run].item(),
                                        f"seed {run}, {order} order")
        losses.sum().backward()
        optimizer.step()
        _cli.show_progress(f"sweep: {order} order, step {t + 1} of {len(schedule.T)}")
    return weights


@torch.no_grad()
def run_accuracies(weights, inputs, labels):
    """Accuracy (%) of every run on the same inputs, as common.accuracy computes it for one."""
    logits = logits_of_all(weights, inputs.to(DEVICE).expand(len(weights["conv.weight"]), *inputs.shape))
    correct = (logits.argmax(dim=2) == labels.to(DEVICE)).sum(dim=1).tolist()
    return [100.0 * c / len(labels) for c in correct]

# %% [markdown]
# Each order's runs, trained, their weights, and their training and test accuracies.

# %%
if SWEEP:
    results = {}
    for order in ORDERS:
        weights = train_many(networks, order)
        results[order] = {"weights": weights,
                          "train_accuracy": run_accuracies(weights, *common.classifiable_training_set()),
                          "test_accuracy": run_accuracies(weights, test_inputs, test_labels)}
    _cli.end_progress()

# %% [markdown]
# Seeds are a sample, so a count comes with its uncertainty: the 95% Wilson
# interval is the range of success rates that such a count makes plausible
# (`wilson_interval` in `common.py`, which lesson 05 uses too). The mean test
# accuracy of all runs comes with its own 95% interval: the mean plus or minus
# 1.96 standard errors.

# %%
def mean_interval(accuracies, z=1.96):
    """The mean, and its 95% interval: mean +- 1.96 standard errors, within 0..100%; None for one value."""
    mean = sum(accuracies) / len(accuracies)
    if len(accuracies) < 2:
        return mean, None
    variance = sum((a - mean) ** 2 for a in accuracies) / (len(accuracies) - 1)
    standard_error = math.sqrt(variance / len(accuracies))
    return mean, (max(0.0, mean - z * standard_error), min(100.0, mean + z * standard_error))

# %% [markdown]
# For each order: how many runs learned their training set, how many of those
# still miss part of the test set, and the mean test accuracy.

# %%
def summarize(result, order):
    """Print and return the counts of one order, with their intervals."""
    pairs = list(zip(result["train_accuracy"], result["test_accuracy"]))
    learned = [test for train, test in pairs if train == 100.0]  # the test accuracies of the runs that learned
    others = [test for train, test in pairs if train < 100.0]
    below = [test for test in learned if test < 100.0]  # learned the training set, yet missed test inputs
    low, high = common.wilson_interval(len(learned), len(pairs))
    mean, interval = mean_interval(result["test_accuracy"])
    print(f"{order:>10} order: {len(learned)} of {len(pairs)} run{'s' if len(pairs) > 1 else ''} learned their "
          f"training set (95% Wilson interval {low:.2f}% to {high:.2f}%)")
    if len(learned) == 1:
        print(f"{'':18}it scores {learned[0]:.2f}% test accuracy")
    elif learned:
        lowest = f", the lowest {min(below):.2f}%" if below else ""
        verb = "scores" if len(below) == 1 else "score"
        print(f"{'':18}{len(below)} of those {len(learned)} {verb} below 100% test accuracy{lowest}")
    if others:
        print(f"{'':18}{scores_of_the_others(others, learned)} test accuracy")
    shown = f" (95% interval {interval[0]:.2f}% to {interval[1]:.2f}%)" if interval else ""
    print(f"{'':18}mean test accuracy {mean:.2f}%{shown}")
    return {"runs": len(pairs), "learned_training_set": len(learned), "learned_training_set_95ci": [low, high],
            "learned_test_below_100": len(below),
            "mean_test_accuracy": mean, "mean_test_accuracy_95ci": list(interval) if interval else None}


def scores_of_the_others(others, learned):
    """The test accuracies of the runs that did not learn their training set, in words."""
    if len(others) == 1:
        return f"{'the other run scores' if learned else 'it scores'} {others[0]:.2f}%"
    scores = f"{min(others):.2f}% to {max(others):.2f}%"
    return f"the {len(others)} others score {scores}" if learned else f"they score {scores}"


# %% [markdown]
# Does the sweep train each seed as `train` would? The check trains its first
# seeds again, one network at a time with `train`, and compares their
# accuracies and weights. The weights need not agree to the last bit: float32
# keeps 24 binary digits, so the gap between neighbouring float32 numbers, a
# *float32 step*, is about 6e-8 near 0.9 and about 1e-9 near 0.01: it shrinks
# with the number. vmap computes the same sums of products, but not always in
# the same order; each addition rounds, and momentum carries a rounding on. A
# difference of a few float32 steps is rounding, not another run; it changes a
# count only where a run sits right on the edge of a decision.
#
# So the check counts, at the weight where the two runs differ most, how many
# float32 steps lie between its two values. Read as an integer, a positive
# float32's 32 bits grow by 1 from one float32 number to the next, so the count
# is a difference of two such integers.

# %%
def float32_rank(value):
    """The place of a float32 number among all float32 numbers: its bits read as an integer, mirrored for
    negative numbers (whose bits hold the sign apart), so that -0 and 0 share place 0."""
    bits = value.cpu().view(torch.int32).item()
    return bits if bits >= 0 else -(bits & 0x7FFFFFFF)


def largest_difference(alone, swept):
    """Where two float32 tensors differ most: the difference, the float32 steps between their two values
    there, and the sweep's value."""
    gaps = (alone.double() - swept.double()).abs()
    at = int(gaps.argmax())
    return gaps[at].item(), abs(float32_rank(alone[at]) - float32_rank(swept[at])), swept[at].item()

# %% [markdown]
# The check, for the first three seeds (or fewer, in a smaller sweep).

# %%
CHECKED_SEEDS = 3  # the first seeds of the sweep, trained again one at a time


def seeds_named(n_seeds):
    """'seed 0' for one seed, 'seeds 0..n-1' for more."""
    return "seed 0" if n_seeds == 1 else f"seeds 0..{n_seeds - 1}"


def check_against_train(result, order):
    """Train the sweep's first seeds alone with `train`; print whether their accuracies agree, and how far
    their weights lie from the sweep's."""
    seeds = range(min(CHECKED_SEEDS, len(result["train_accuracy"])))
    different, alone_weights = [], []
    for seed in seeds:
        model = common.new_network(seed, DEVICE)
        optimizer = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM)
        train(model, optimizer, EPOCHS, order, seed, verbose=False)
        alone = common.evaluate(model)
        if (alone["train_accuracy"], alone["test_accuracy"]) != (result["train_accuracy"][seed],
                                                                 result["test_accuracy"][seed]):
            different.append(str(seed))
        alone_weights.append(model.conv.weight.detach())
    swept = result["weights"]["conv.weight"][: len(seeds)]
    largest, steps, where = largest_difference(torch.stack(alone_weights).flatten(), swept.flatten())
    verdict = f"DIFFERENT accuracies for seed {', '.join(different)}" if different else "the same accuracies"
    apart = (f"weights apart by up to {largest:.3g}, {steps} float32 step{'' if steps == 1 else 's'} at a weight "
             f"of {where:.3g}" if largest else "the same weights, to the last bit")
    print(f"{'':18}{seeds_named(len(seeds))} trained alone by train(): {verdict}; {apart}")
    return {"seeds": len(seeds), "same_accuracies": not different, "largest_weight_difference": largest,
            "float32_steps_apart": steps, "weight_at_largest_difference": where}


# %% [markdown]
# The sweep's counts, order by order, each followed by its check.

# %%
if SWEEP:
    print(f"\nThe sweep: {seeds_named(SWEEP)}, each trained in both orders")
    for order in ORDERS:
        results[order]["summary"] = summarize(results[order], order)
        results[order]["check"] = check_against_train(results[order], order)

# %% [markdown]
# One dot per run, in a picture: each order in two panels, the runs at exactly
# 100% test accuracy in a strip above the others (`_figures.py` draws them).

# %%
if PLOTS and SWEEP:
    _cli.show_pictures([_figures.stage1_sweep(results, ORDERS, OUT_DIR / "01_sweep.png")])

# %% [markdown]
# **What to look at:** one dot per run, at its seed; its height is the run's
# test accuracy, its colour whether it learned its training set. Each panel's
# title counts its dots, so the printed counts can be checked by eye. In the
# default run (seeds 0..99, the article's settings), in the article's order 77
# of 100 runs learn it: 26 green dots in the 100% strip, and 51 of the 77 below
# it, most of them just below, down to 78.12%. Those 51 classify every training
# sample right, but their margins are so thin that noise flips some decisions:
# a training accuracy is no test accuracy. The 23 red runs score 50.62% to
# 71.88%: they call most inputs of one pattern by the other's class. Shuffled
# every epoch, the usual practice, all 100 runs learn, and all but one score
# 100% on the test set.

# %% [markdown]
# In a terminal, `--json` prints the results as one JSON object on the last line.

# %%
_flags.finish("01_pattern_classifier", globals())

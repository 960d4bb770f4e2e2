# %% [markdown]
# # Stage 1: a tiny CNN learns to tell two patterns apart
#
# The article's stage first: its two 4x4 patterns, its network `Test_Conv`, its
# training loop with `torch.optim.SGD`, and its one check. Then what the article
# leaves out: a test on inputs the network never saw, and a sweep over seeds
# that tells whether one good run was luck.
#
# In a terminal: `python 01_pattern_classifier.py` (the article's run), then
# `python 01_pattern_classifier.py --sweep 100` (100 seeds, 2 sample orders).

# %% tags=["active-ipynb"]
# try:  # notebook only: the lesson's files must lie beside this notebook
#     import _notebook
# except ModuleNotFoundError:
#     raise FileNotFoundError("Put this notebook beside the lesson files: upload or clone the whole folder.") from None
# _notebook.show_versions()

# %%
import math

import torch
import torch.nn.functional as F
from torch import nn

import _cli
import common
from common import Test_Conv

# The settings: the article's, and the defaults of the flags at the bottom.
# In a notebook, change them here and run the cells below again.
EPOCHS = 2
LR = 0.001
MOMENTUM = 0.9
ORDER = "sequential"  # the article's: A at scales 0..19, then B at scales 0..19
SEED = 0  # a seed whose article run learns; the sweep shows how often that happens
SWEEP_SEEDS = 100
PRINT_EVERY = 5  # print the loss at step 1 and every 5th step; --json has every one

# %% [markdown]
# ## The article's stage
#
# Pattern A has columns 1 and 3 set (counting from 0); pattern B is A plus its
# top and bottom rows. `Test_Conv` (in `common.py`) is one `Conv2d(1, 4,
# kernel_size=4, bias=False)`: four 4x4 filters, each giving one number per
# input, its *logit*. The largest of the four logits is the predicted class: A
# is class 0, B class 1, and classes 2 and 3 belong to no sample.
#
# The article's "last misunderstanding" fed an untrained network an input, the
# same input doubled and a very different one, and hoped to read the distance
# between their outputs as a verdict: "same" or "different". Here the same test
# with A, 10*A and B shows why that cannot work: a network without bias
# multiplies its outputs by the input's scale, so A and 10*A, the same pattern,
# lie farther apart than A and B. The predicted class can say "same": scaling
# all four logits alike leaves the largest one the largest.
#
# Training then shows the network one sample per step, 40 steps an epoch, with
# SGD and *momentum*: each step moves the weights by the learning rate times a
# velocity, the sum of all past gradients, each multiplied by 0.9 (kept at 90%)
# once per step since.

# %%
def show_patterns():
    """Print the two patterns the network must tell apart."""
    print("Two patterns to tell apart (shown at scale 1; training uses scales 0..19):")
    print("  pattern A (label 0)   pattern B (label 1)")
    rows_a = common.pattern_a(1).reshape(4, 4).int().tolist()
    rows_b = common.pattern_b(1).reshape(4, 4).int().tolist()
    for row_a, row_b in zip(rows_a, rows_b):
        print(f"  {' '.join(map(str, row_a)):<22}{' '.join(map(str, row_b))}")


def new_network(seed=SEED, device="cpu"):
    torch.manual_seed(seed)  # the same seed, the same initial filters, the same run
    return Test_Conv().to(device)


def show_outputs(model, which):
    """Distances between the outputs for A, 10*A and B, and the class predicted for each."""
    inputs = torch.cat([common.pattern_a(1), common.pattern_a(10), common.pattern_b(1)])
    with torch.no_grad():
        outputs = model(inputs.to(next(model.parameters()).device))
    out_a, out_10a, out_b = outputs
    same, different = F.mse_loss(out_a, out_10a).item(), F.mse_loss(out_a, out_b).item()
    predicted = outputs.argmax(dim=1).tolist()  # the class of each input: its largest output
    print(f"\nThe {which} network's four outputs for A, 10*A and B:")
    print(f"  distance between the outputs for A and 10*A, the same pattern: {same:.4g} (mean squared error)")
    print(f"  distance between the outputs for A and B, different patterns:  {different:.4g}")
    if same > different:
        print("  -> the same pattern lies farther apart than two different ones: a distance is no verdict")
    else:
        print("  -> here A and B lie farther apart, yet c*A drifts away from A as c grows: a distance is no verdict")
    print(f"  predicted class (the largest output): A {predicted[0]}, 10*A {predicted[1]}, B {predicted[2]} "
          "(right: A 0, 10*A 0, B 1)")
    return {"mse_same_pattern": same, "mse_different_patterns": different, "predicted": predicted}


def show_evaluation(when, model):
    """Training accuracy, test accuracy and the article's check, on one line."""
    evaluation = common.evaluate(model)
    check = "yes" if evaluation["article_check"] else "no"
    print(f"\n{when}: training accuracy {evaluation['train_accuracy']:.1f}% | test accuracy "
          f"{evaluation['test_accuracy']:.1f}% | the article's check (A at scale 999999999 called A): {check}")
    return evaluation


def sample_order(n_samples, epochs, order, seed):
    """Which sample each step takes: the article's order, or reshuffled every epoch."""
    if order == "sequential":
        return [list(range(n_samples))] * epochs
    shuffler = torch.Generator().manual_seed(seed)
    return [torch.randperm(n_samples, generator=shuffler).tolist() for _ in range(epochs)]


def train(model, optimizer, epochs=EPOCHS, order=ORDER, seed=SEED, verbose=True):
    """Train on one sample per step, as the article does; return every step's loss."""
    device = next(model.parameters()).device
    inputs, labels = (t.to(device) for t in common.training_set())
    loss_fn = nn.CrossEntropyLoss()  # small when the logit of the right class stands out
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
            if verbose and (step == 1 or step % PRINT_EVERY == 0):
                print(f"  epoch {epoch}  step {step:2d}/{len(indices)}  loss {losses[-1]:.7g}")
    return losses


def train_with_sgd(model, epochs=EPOCHS, lr=LR, momentum=MOMENTUM, order=ORDER, seed=SEED):
    """The article's training: SGD with momentum, one sample per step; return every step's loss."""
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum)
    print(f"\nTraining: {epochs} epoch{'' if epochs == 1 else 's'} x 40 samples ({order} order), "
          f"SGD lr={lr} momentum={momentum}")
    losses = train(model, optimizer, epochs, order, seed)
    show_highest_loss(losses, order, seed)
    return losses


def show_highest_loss(losses, order, seed):
    """Name the step with the highest loss, and the sample it took."""
    peak = max(range(len(losses)), key=lambda t: losses[t])
    epoch, step = divmod(peak, 40)
    sample = sample_order(40, epoch + 1, order, seed)[epoch][step]
    pattern, scale = "AB"[sample // 20], sample % 20
    print(f"  highest loss {losses[peak]:.4g} at epoch {epoch + 1}, step {step + 1}: {pattern} at scale {scale}")


def draw_run(model, losses, epochs=EPOCHS, order=ORDER, out_dir=_cli.DEFAULT_OUT_DIR):
    """The loss at every step, and the learned filters; return the pictures' paths."""
    import _figures  # matplotlib loads only when there is something to draw

    return [_figures.stage1_losses(losses, len(losses) // epochs, order, out_dir / "01_loss.png"),
            _figures.stage1_filters(model, out_dir / "01_filters.png")]


# %% tags=["active-ipynb"]
# show_patterns()
# model = new_network(SEED)
# outputs_before, before = show_outputs(model, "untrained"), show_evaluation("Before training", model)

# %% [markdown]
# Training prints the loss at step 1 and every fifth step. Step 1 is pattern A
# at scale 0, all zeros: all four logits are 0, so the loss is ln 4, whatever
# the weights. After training come the accuracies again, the network's outputs
# for A, 10*A and B again, then the pictures: the loss at every step, and the
# four learned filters.
#
# *Training accuracy* counts the training samples that the network classifies
# right, leaving out scale 0, where A and B are the same all-zero input. *Test
# accuracy* counts noisy copies of the patterns that no run ever trained on.
# The article's check, A at scale 999999999, is a training sample in disguise:
# for a network without bias it gets the class of A at scale 1.

# %% tags=["active-ipynb"]
# losses = train_with_sgd(model, EPOCHS, LR, MOMENTUM, ORDER, SEED)
# after, outputs_after = show_evaluation("After training", model), show_outputs(model, "trained")
# _cli.show_pictures(draw_run(model, losses, EPOCHS, ORDER))

# %% [markdown]
# ## Beyond the article: was it luck?
#
# One run is one draw of the initial weights. The sweep trains seeds 0..N-1 in
# the article's order and reshuffled, and counts the runs that learned their
# training set (100% training accuracy). A count from a sample of seeds comes
# with its uncertainty: the 95% Wilson interval is the range of success rates
# that such a count makes plausible. The mean test accuracy of all runs comes
# with its own 95% interval, the mean plus or minus 1.96 standard errors.
#
# To be quick, the sweep trains all the runs of an order at once: a 4x4 filter
# over a 4x4 input is a dot product, so R networks are one tensor of R x 4
# filters, and summing their losses keeps each run's gradient its own.

# %%
SWEEP_CHUNK = 2500  # runs trained together; the progress line counts chunks
ORDERS = ("sequential", "shuffled")


def initial_weights(seeds):
    """The filters each seed's Test_Conv starts from, as in a normal run: shape (R, 4, 1, 4, 4).

    nn.Conv2d draws its weights with kaiming_uniform_(a=sqrt(5)) from the default
    generator, which torch.manual_seed(seed) seeds; a Generator of our own, seeded
    alike, draws the same numbers in a tenth of the time (the tests check both).
    """
    generator = torch.Generator()
    draws = [nn.init.kaiming_uniform_(torch.empty(4, 1, 4, 4), a=math.sqrt(5), generator=generator.manual_seed(s))
             for s in seeds]
    return torch.stack(draws)


def batched_logits(weights, inputs):
    """Logits of run r for input r: weights (R, 4, 1, 4, 4), inputs (R, 1, 4, 4) -> (R, 4)."""
    return torch.einsum("rkcij,rcij->rk", weights, inputs)


def train_many(seeds, order, epochs=EPOCHS, lr=LR, momentum=MOMENTUM, device="cpu"):
    """Train one Test_Conv per seed, all at once; return their filters, shape (R, 4, 1, 4, 4).

    SGD updates every element on its own, so run r ends where a separate
    Test_Conv trained with seed r ends (the tests check it).
    """
    inputs, labels = (t.to(device) for t in common.training_set())
    weights = initial_weights(seeds).to(device).requires_grad_()
    optimizer = torch.optim.SGD([weights], lr=lr, momentum=momentum)
    schedule = torch.tensor([sum(sample_order(len(labels), epochs, order, s), []) for s in seeds],
                            device=device)  # (R, steps): which sample each run takes at each step
    for t, picked in enumerate(schedule.T):
        optimizer.zero_grad()
        losses = F.cross_entropy(batched_logits(weights, inputs[picked]), labels[picked], reduction="none")
        if not torch.isfinite(losses).all():
            run = int(torch.nonzero(~torch.isfinite(losses))[0])
            raise _cli.TrainingDiverged(t // len(labels) + 1, t % len(labels) + 1, losses[run].item(),
                                        f"seed {seeds[run]}, {order} order")
        losses.sum().backward()
        optimizer.step()
    return weights.detach()


@torch.no_grad()
def run_accuracies(weights, inputs, labels):
    """Accuracy (%) of every run on the same inputs."""
    logits = torch.einsum("rkcij,ncij->rnk", weights, inputs).contiguous()  # argmax is far slower on a strided view
    predicted = logits.argmax(dim=2)
    correct = (predicted == labels).sum(dim=1).tolist()
    return [100.0 * c / len(labels) for c in correct]  # as common.accuracy computes it


def wilson_interval(successes, runs, z=1.96):
    """The 95% Wilson score interval of a success rate, in percent: (low, high)."""
    rate, spread = successes / runs, z * z / runs
    centre = (rate + spread / 2) / (1 + spread)
    half_width = z * math.sqrt(rate * (1 - rate) / runs + spread / (4 * runs)) / (1 + spread)
    return max(0.0, 100 * (centre - half_width)), min(100.0, 100 * (centre + half_width))


def mean_interval(accuracies, z=1.96):
    """The mean, and its 95% interval: mean +- 1.96 standard errors, within 0..100%; None for one value."""
    mean = sum(accuracies) / len(accuracies)
    if len(accuracies) < 2:
        return mean, None
    variance = sum((a - mean) ** 2 for a in accuracies) / (len(accuracies) - 1)
    standard_error = math.sqrt(variance / len(accuracies))
    return mean, (max(0.0, mean - z * standard_error), min(100.0, mean + z * standard_error))


def sweep(n_seeds=SWEEP_SEEDS, epochs=EPOCHS, lr=LR, momentum=MOMENTUM, device="cpu"):
    """Train seeds 0..N-1 in each order; return each run's training and test accuracy, and a summary."""
    sets = {"train_accuracy": common.classifiable_training_set(), "test_accuracy": common.noisy_test_set()}
    results = {order: {name: [] for name in sets} for order in ORDERS}
    for order in ORDERS:
        for first in range(0, n_seeds, SWEEP_CHUNK):
            weights = train_many(range(first, min(first + SWEEP_CHUNK, n_seeds)), order, epochs, lr, momentum,
                                 device)
            for name, (inputs, labels) in sets.items():
                results[order][name] += run_accuracies(weights, inputs.to(device), labels.to(device))
            done = sum(len(results[o]["train_accuracy"]) for o in ORDERS)
            _cli.show_progress(f"sweep: {done} of {2 * n_seeds} runs done")
    _cli.end_progress()
    for order in ORDERS:
        results[order]["summary"] = summarize(results[order], order)
    return results


def summarize(result, order):
    """Print and return how many runs learned their training set, and the mean test accuracy."""
    runs = len(result["train_accuracy"])
    learned = result["train_accuracy"].count(100.0)
    low, high = wilson_interval(learned, runs)
    mean, interval = mean_interval(result["test_accuracy"])
    shown = f" (95% interval {interval[0]:.2f}% to {interval[1]:.2f}%)" if interval else ""
    print(f"{order:>10} order: {learned} of {runs} runs learned their training set (95% Wilson interval "
          f"{low:.2f}% to {high:.2f}%)\n{'':18}mean test accuracy {mean:.2f}%{shown}")
    return {"runs": runs, "learned_training_set": learned, "learned_training_set_95ci": [low, high],
            "mean_test_accuracy": mean, "mean_test_accuracy_95ci": list(interval) if interval else None}


def draw_sweep(results, out_dir=_cli.DEFAULT_OUT_DIR):
    """One dot per run: its test accuracy, coloured by whether it learned its training set."""
    import _figures

    return _figures.stage1_sweep(results, ORDERS, out_dir / "01_sweep.png")


# %% tags=["active-ipynb"]
# results = sweep(SWEEP_SEEDS, EPOCHS, LR, MOMENTUM)
# _cli.show_pictures([draw_sweep(results)])

# %% tags=["active-py"]
# ===========================================================================
# The command line: flags, then main() and its --json report
# ===========================================================================

MAX_SWEEP = 10_000


def parse_args(argv=None):
    parser = _cli.make_parser("Stage 1: teach a tiny CNN to tell two 4x4 patterns apart with torch.optim.SGD.")
    parser.add_argument("--epochs", type=_cli.epochs_value, default=EPOCHS,
                        help=f"passes over the 40 training samples, 1 to {_cli.MAX_EPOCHS}")
    parser.add_argument("--lr", type=_cli.learning_rate, default=LR, help="SGD learning rate")
    parser.add_argument("--momentum", type=_cli.momentum_value, default=MOMENTUM,
                        help="SGD momentum, from 0 (none) up to but not including 1")
    parser.add_argument("--order", choices=ORDERS, default=ORDER,
                        help="sample order: the article's (A0..A19, B0..B19) or reshuffled each epoch with --seed")
    parser.add_argument("--seed", type=_cli.seed_value, default=SEED,
                        help="seeds the initial weights and the shuffling, 0 to 2**63-1")
    parser.add_argument("--sweep", type=_cli.in_range(1, MAX_SWEEP, int), metavar="N",
                        help=f"instead of one run, train seeds 0..N-1 (N up to {MAX_SWEEP}) with each order "
                             "and count the runs that learn their training set (default: off)")
    _cli.add_device_flag(parser)
    _cli.add_output_flags(parser)
    args = parser.parse_args(argv)
    args.device = _cli.resolve_device(parser, args.device)
    return args


def run(args):
    """Do what the flags ask; return the --json report."""
    if not args.no_plots:
        _cli.prepare_out_dir(args.out_dir)
    if args.sweep:
        results = sweep(args.sweep, args.epochs, args.lr, args.momentum, args.device)
        report = {"sweep": {order: results[order]["summary"] for order in ORDERS}}
        pictures = [] if args.no_plots else [draw_sweep(results, args.out_dir)]
    else:
        report, model, losses = article_run(args)
        pictures = [] if args.no_plots else draw_run(model, losses, args.epochs, args.order, args.out_dir)
    _cli.show_pictures(pictures)
    report["outputs"] = [str(path) for path in pictures]
    return report


def article_run(args):
    """The article's run, as the cells above make it; return the report, the model and the losses."""
    show_patterns()
    model = new_network(args.seed, args.device)
    outputs_before, before = show_outputs(model, "untrained"), show_evaluation("Before training", model)
    losses = train_with_sgd(model, args.epochs, args.lr, args.momentum, args.order, args.seed)
    after, outputs_after = show_evaluation("After training", model), show_outputs(model, "trained")
    report = {"first_loss": losses[0], "final_loss": losses[-1], "losses": losses,
              "mse_same_pattern": outputs_before["mse_same_pattern"],
              "mse_different_patterns": outputs_before["mse_different_patterns"],
              "mse_same_pattern_after": outputs_after["mse_same_pattern"],
              "mse_different_patterns_after": outputs_after["mse_different_patterns"],
              "predicted_before": outputs_before["predicted"], "predicted_after": outputs_after["predicted"]}
    for name in ("train_accuracy", "test_accuracy", "article_check"):
        report[f"{name}_before"], report[f"{name}_after"] = before[name], after[name]
    return report, model, losses


def main(argv=None):
    args = parse_args(argv)
    with _cli.quiet_if(args.quiet):
        report = run(args)
    if args.json:
        _cli.print_json(report)


if __name__ == "__main__":
    _cli.run_cli(main)

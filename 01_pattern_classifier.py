"""Stage 1: teach a tiny CNN to tell two 4x4 patterns apart with torch.optim.SGD.

The article's stage first: its data, its network Test_Conv, its training loop
and its one check. Then what the article leaves out: an honest held-out
evaluation, and a sweep over seeds that tells whether one good run was luck.

    python 01_pattern_classifier.py              # the article's run
    python 01_pattern_classifier.py --sweep 100  # 100 seeds x 2 sample orders
"""

import math

import torch
import torch.nn.functional as F
from torch import nn

import _cli
import common
from common import Test_Conv

# The article's settings, and the defaults of the flags at the bottom.
EPOCHS = 2
LR = 0.001
MOMENTUM = 0.9
SEED = 0  # a seed whose article run ends at 100%; the sweep shows how often that happens
ORDERS = ("sequential", "shuffled")
PRINT_EVERY = 5  # print the loss every 5 steps; --json has every one


# ===========================================================================
# The article's stage: data, model, training loop, evaluation
# ===========================================================================

def show_patterns():
    """Print the two patterns the network must tell apart."""
    print("Two patterns to tell apart (shown at scale 1; training uses scales 0..19):")
    print("  pattern A (label 0)   pattern B (label 1)")
    rows_a = common.pattern_a(1).reshape(4, 4).int().tolist()
    rows_b = common.pattern_b(1).reshape(4, 4).int().tolist()
    for row_a, row_b in zip(rows_a, rows_b):
        print(f"  {' '.join(map(str, row_a)):<22}{' '.join(map(str, row_b))}")


def sample_order(n_samples, epochs, order, seed):
    """Which sample each step takes: the article's order, or reshuffled every epoch."""
    if order == "sequential":
        return [list(range(n_samples))] * epochs
    shuffler = torch.Generator().manual_seed(seed)
    return [torch.randperm(n_samples, generator=shuffler).tolist() for _ in range(epochs)]


def train(model, optimizer, epochs=EPOCHS, order="sequential", seed=SEED, verbose=True):
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
            if verbose and step % PRINT_EVERY == 0:
                print(f"  epoch {epoch}  step {step:2d}/{len(indices)}  loss {losses[-1]:.7g}")
    return losses


def describe(evaluation):
    check = "yes" if evaluation["article_check"] else "no"
    return (f"A at scale 999999999 classified as A: {check} | held-out accuracy "
            f"{evaluation['accuracy']:.1f}% | noisy held-out {evaluation['noisy_accuracy']:.1f}%")


def article_run(epochs=EPOCHS, lr=LR, momentum=MOMENTUM, order="sequential", seed=SEED, device="cpu"):
    """The article's run: build the network, evaluate, train, evaluate again."""
    torch.manual_seed(seed)  # the same seed, the same initial filters, the same run
    model = Test_Conv().to(device)
    show_patterns()
    distances = show_distances_are_not_verdicts(model)
    before = common.evaluate(model)
    print(f"\nBefore training: {describe(before)}")

    # Momentum: each step moves along a velocity, the sum of past gradients, each
    # one shrunk by `momentum` per step (0.9 keeps 90%). A run that has built up
    # speed keeps rolling where the slope is flat, and even over a small bump.
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum)
    print(f"\nTraining: {epochs} epochs x 40 samples ({order} order), SGD lr={lr} momentum={momentum}")
    losses = train(model, optimizer, epochs, order, seed)
    after = common.evaluate(model)
    print(f"\nAfter training:  {describe(after)}")
    return model, losses, before, after, distances


def show_distances_are_not_verdicts(model):
    """The article's 'last misunderstanding': an untrained network only filters.

    Test_Conv is linear, so out(c*A) = c*out(A): the distance between A and c*A,
    the same pattern, grows as (c-1)^2 and soon passes the distance between A and B.
    """
    with torch.no_grad():
        out_a, out_10a, out_b = (model(x) for x in (common.pattern_a(1), common.pattern_a(10), common.pattern_b(1)))
    same, different = F.mse_loss(out_a, out_10a).item(), F.mse_loss(out_a, out_b).item()
    print("\nAn untrained network only filters. Distances between its outputs (mean squared error):")
    print(f"  A and 10*A, the same pattern:    {same:.4g}")
    print(f"  A and B, two different patterns: {different:.4g}")
    print("  The same pattern lies farther apart: no threshold on a distance says 'same'. Training will.")
    return {"mse_same_pattern": same, "mse_different_patterns": different}


# ===========================================================================
# Beyond the article: was it luck? Train many seeds at once
# ===========================================================================

SWEEP_CHUNK = 100  # runs trained together; the progress line counts chunks


def initial_weights(seed):
    """The filters Test_Conv starts from with this seed, as in a normal run."""
    torch.manual_seed(seed)
    return Test_Conv().conv.weight.detach()


def batched_logits(weights, inputs):
    """Logits of run r for input r: weights (R, 4, 1, 4, 4), inputs (R, 1, 4, 4) -> (R, 4)."""
    return torch.einsum("rkcij,rcij->rk", weights, inputs)


def train_many(seeds, order, epochs, lr, momentum, device="cpu"):
    """Train one Test_Conv per seed, all at once; return their filters, shape (R, 4, 1, 4, 4).

    A 4x4 filter over a 4x4 input is a dot product, so R networks are one tensor
    of R x 4 filters. Summing the runs' losses keeps each run's gradient its own,
    and SGD updates every element on its own, so run r ends where a separate
    Test_Conv trained with seed r ends (the tests check it).
    """
    inputs, labels = (t.to(device) for t in common.training_set())
    weights = torch.stack([initial_weights(s) for s in seeds]).to(device).requires_grad_()
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
    predicted = torch.einsum("rkcij,ncij->rnk", weights, inputs).argmax(dim=2)
    correct = (predicted == labels).sum(dim=1).tolist()
    return [100.0 * c / len(labels) for c in correct]  # as common.accuracy computes it


def sweep(n_seeds, epochs=EPOCHS, lr=LR, momentum=MOMENTUM, device="cpu"):
    """Train seeds 0..N-1 in each order; return each run's clean and noisy held-out accuracy."""
    held_out, held_out_labels = (t.to(device) for t in common.held_out_set())
    noisy, noisy_labels = (t.to(device) for t in common.noisy_held_out_set())
    results = {order: {"accuracy": [], "noisy_accuracy": []} for order in ORDERS}
    for order in ORDERS:
        for first in range(0, n_seeds, SWEEP_CHUNK):
            seeds = range(first, min(first + SWEEP_CHUNK, n_seeds))
            weights = train_many(seeds, order, epochs, lr, momentum, device)
            results[order]["accuracy"] += run_accuracies(weights, held_out, held_out_labels)
            results[order]["noisy_accuracy"] += run_accuracies(weights, noisy, noisy_labels)
            done = len(results["sequential"]["accuracy"]) + len(results["shuffled"]["accuracy"])
            _cli.show_progress(f"sweep: {done} of {2 * n_seeds} runs done")
    _cli.end_progress()
    for order in ORDERS:
        accuracies = results[order]["accuracy"]
        results[order]["succeeded"] = sum(a == 100.0 for a in accuracies)
        mean_noisy = sum(results[order]["noisy_accuracy"]) / n_seeds
        print(f"{order:>10} order: {results[order]['succeeded']} of {n_seeds} seeds reached 100% on the "
              f"held-out set; mean noisy held-out accuracy {mean_noisy:.1f}%")
    return results


# ===========================================================================
# The command line: flags, then main() and its --json report
# ===========================================================================

MAX_SWEEP = 10_000

def parse_args(argv=None):
    parser = _cli.make_parser(__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=_cli.epochs_value, default=EPOCHS,
                        help=f"passes over the 40 training samples, 1 to {_cli.MAX_EPOCHS}")
    parser.add_argument("--lr", type=_cli.learning_rate, default=LR, help="SGD learning rate")
    parser.add_argument("--momentum", type=_cli.momentum_value, default=MOMENTUM,
                        help="SGD momentum, from 0 (none) up to but not including 1")
    parser.add_argument("--order", choices=ORDERS, default="sequential",
                        help="sample order: the article's (A0..A19, B0..B19) or reshuffled each epoch with --seed")
    parser.add_argument("--seed", type=_cli.seed_value, default=SEED,
                        help="seeds the initial weights and the shuffling, 0 to 2**63-1")
    parser.add_argument("--sweep", type=_cli.in_range(1, MAX_SWEEP, int), metavar="N",
                        help=f"instead of one run, train seeds 0..N-1 (N up to {MAX_SWEEP}) with each order "
                             "and count the successes (default: off)")
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
        report = {"sweep": {order: {"runs": args.sweep, "succeeded": results[order]["succeeded"]}
                            for order in ORDERS}}
        pictures = [] if args.no_plots else [draw_sweep(results, args.sweep, args.out_dir)]
    else:
        model, losses, before, after, distances = article_run(args.epochs, args.lr, args.momentum, args.order,
                                                              args.seed, args.device)
        report = {
            "first_loss": losses[0], "final_loss": losses[-1], "losses": losses,
            "accuracy_before": before["accuracy"], "accuracy_after": after["accuracy"],
            "noisy_accuracy_before": before["noisy_accuracy"], "noisy_accuracy_after": after["noisy_accuracy"],
            "article_check_before": before["article_check"], "article_check_after": after["article_check"],
            **distances,
        }
        pictures = [] if args.no_plots else draw_run(model, losses, args.epochs, args.order, args.out_dir)
    for path in pictures:
        print(f"wrote {path}")
    report["outputs"] = [str(path) for path in pictures]
    return report


def draw_run(model, losses, epochs, order, out_dir):
    import _figures  # matplotlib loads only when there is something to draw

    return [_figures.stage1_losses(losses, len(losses) // epochs, order, out_dir / "01_loss.png"),
            _figures.stage1_filters(model, out_dir / "01_filters.png")]


def draw_sweep(results, n_seeds, out_dir):
    import _figures

    return _figures.stage1_sweep(results, ORDERS, n_seeds, out_dir / "01_sweep.png")


def main(argv=None):
    args = parse_args(argv)
    with _cli.quiet_if(args.quiet):
        report = run(args)
    if args.json:
        _cli.print_json(report)


if __name__ == "__main__":
    _cli.run_cli(main)

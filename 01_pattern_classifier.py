"""Stage 1: teach a tiny CNN to tell two 4x4 patterns apart with torch.optim.SGD.

The article's run first (its data, network, optimizer and order), then what the
article leaves out: held-out and noisy evaluation, the filters it learned, and
a sweep over seeds that tells whether one good run was luck.

    python 01_pattern_classifier.py             # the article's run
    python 01_pattern_classifier.py --sweep 100 # 100 seeds x 2 sample orders
"""

import argparse

import torch
import torch.nn.functional as F

import common
from common import Test_Conv

ORDERS = ("sequential", "shuffled")
DEFAULT_SEED = 0  # a seed whose article run ends at 100%; see --sweep for how often that happens


def parse_args(argv=None):
    parser = common.make_parser(__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=common.positive_int, default=2,
                        help="passes over the 40 training samples")
    parser.add_argument("--lr", type=common.learning_rate, default=0.001, help="SGD learning rate")
    parser.add_argument("--momentum", type=momentum_value, default=0.9,
                        help="SGD momentum, from 0 (none) up to but not including 1")
    parser.add_argument("--order", choices=ORDERS, default="sequential",
                        help="sample order: the article's (A0..A19, B0..B19) or reshuffled each epoch with --seed")
    parser.add_argument("--seed", type=common.seed_value, default=DEFAULT_SEED,
                        help="seeds the initial weights and the shuffling")
    parser.add_argument("--sweep", type=common.positive_int, metavar="N",
                        help="instead of one run, train seeds 0..N-1 with each order and count the successes "
                             "(default: off)")
    common.add_device_flag(parser)
    common.add_output_flags(parser)
    args = parser.parse_args(argv)
    args.device = common.pick_device(parser, args.device)
    return args


def momentum_value(text):
    value = common.parse_number(text)
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"must be a number from 0 up to (not including) 1, got {text!r}")
    return value


# ---------------------------------------------------------------------------
# What the article prints
# ---------------------------------------------------------------------------

def show_patterns(say):
    say("Two patterns to tell apart (shown at scale 1; training uses scales 0..19):")
    say("  pattern A (label 0)   pattern B (label 1)")
    rows_a = common.pattern_a(1).reshape(4, 4).int().tolist()
    rows_b = common.pattern_b(1).reshape(4, 4).int().tolist()
    for row_a, row_b in zip(rows_a, rows_b):
        say(f"  {' '.join(map(str, row_a)):<22}{' '.join(map(str, row_b))}")


def show_distances_are_not_verdicts(model, device, say):
    """The article's 'last misunderstanding': an untrained network only filters."""
    with torch.no_grad():
        out_a = model(common.pattern_a(1).to(device))
        out_2a = model(common.pattern_a(2).to(device))
        out_b = model(common.pattern_b(1).to(device))
    say("\nAn untrained network only filters. Distances between its outputs:")
    say(f"  MSE(out(A), out(2*A)) = {F.mse_loss(out_a, out_2a).item():.4f}"
        f"   MSE(out(A), out(B)) = {F.mse_loss(out_a, out_b).item():.4f}")
    say("  No threshold turns such a distance into 'same' or 'different'; training does that.")


def describe(evaluation):
    check = "yes" if evaluation["article_check"] else "no"
    return (f"A at scale 999999999 classified as A: {check} | held-out accuracy "
            f"{evaluation['accuracy']:.1f}% | noisy held-out {evaluation['noisy_accuracy']:.1f}%")


def train_once(args, say):
    """The article's run: evaluate, train one sample at a time, evaluate again."""
    torch.manual_seed(args.seed)
    model = Test_Conv().to(args.device)
    show_patterns(say)
    show_distances_are_not_verdicts(model, args.device, say)
    before = common.evaluate(model, args.device)
    say(f"\nBefore training: {describe(before)}")

    optimizer = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=args.momentum)
    inputs, labels = (t.to(args.device) for t in common.training_set())
    say(f"\nTraining: {args.epochs} epochs x {len(labels)} samples ({args.order} order), "
        f"SGD lr={args.lr} momentum={args.momentum}")
    losses = common.train(
        model, optimizer, inputs, labels, args.epochs, args.order, args.seed,
        on_step=lambda epoch, step, loss: say(f"  epoch {epoch}  step {step:2d}/{len(labels)}  loss {loss:.7g}"),
    )
    after = common.evaluate(model, args.device)
    say(f"\nAfter training:  {describe(after)}")
    return model, losses, before, after


# ---------------------------------------------------------------------------
# Pictures
# ---------------------------------------------------------------------------

def plot_losses(losses, steps_per_epoch, order, path):
    figure = common.new_figure(figsize=(7, 3.5), layout="constrained")
    axes = figure.subplots()
    axes.plot(range(1, len(losses) + 1), losses, color=common.MOMENTUM_COLOUR, marker=".")
    for start in range(0, len(losses), steps_per_epoch):
        if start:
            axes.axvline(start + 0.5, color="grey", linestyle=":")
        if order == "sequential":  # the second half of each epoch is pattern B
            axes.axvspan(start + steps_per_epoch / 2 + 0.5, start + steps_per_epoch + 0.5,
                         color="grey", alpha=0.15, lw=0, label="pattern B samples" if not start else None)
    if order == "sequential":
        axes.legend(loc="upper left")
    axes.set(xlabel="step (one sample per step)", ylabel="cross-entropy loss",
             title="Stage 1: loss at each training step (dotted: new epoch)")
    return common.save_figure(figure, path)


def plot_filters(model, path):
    """The two patterns beside the four learned filters, with each filter's logit for A and B."""
    weight = model.conv.weight.detach()
    with torch.no_grad():
        logits_a = model(common.pattern_a(1).to(weight.device)).cpu()
        logits_b = model(common.pattern_b(1).to(weight.device)).cpu()
    filters = weight.cpu().reshape(4, 4, 4)
    figure = common.new_figure(figsize=(11, 2.6), layout="constrained")
    panels = figure.subplots(1, 6)
    for axes, image, title in ((panels[0], common.pattern_a(1), "pattern A"),
                               (panels[1], common.pattern_b(1), "pattern B")):
        axes.imshow(image.reshape(4, 4).numpy(), cmap="Greys", vmin=0, vmax=1)
        axes.set_title(title)
    limit = filters.abs().max().item() or 1.0
    for k in range(4):
        shown = panels[k + 2].imshow(filters[k].numpy(), cmap="RdBu_r", vmin=-limit, vmax=limit)
        panels[k + 2].set_title(f"filter {k}\nlogit A {logits_a[0, k]:.2f}, B {logits_b[0, k]:.2f}",
                                fontsize=9)
    for axes in panels:
        axes.set(xticks=[], yticks=[])
    figure.colorbar(shown, ax=panels[2:], shrink=0.8, label="weight")
    figure.suptitle("Learned 4x4 filters (red +, blue -); the largest logit is the predicted class")
    return common.save_figure(figure, path)


# ---------------------------------------------------------------------------
# Beyond the article: was it luck? Train many seeds at once.
# ---------------------------------------------------------------------------

def initial_weights(seed):
    """The filters Test_Conv starts from with this seed, as in a normal run."""
    torch.manual_seed(seed)
    return Test_Conv().conv.weight.detach()


def train_many(seeds, order, epochs, lr, momentum, device):
    """Train one Test_Conv per seed, all at once; return their filters, shape (R, 4, 1, 4, 4).

    A 4x4 filter over a 4x4 input is a dot product, so R networks are one tensor
    of R x 4 filters. Summing the runs' losses keeps each run's gradient its own,
    and SGD updates every element independently, so run r matches a separate
    Test_Conv trained with seed r (tests/test_pattern_classifier.py checks it).
    """
    inputs, labels = (t.to(device) for t in common.training_set())
    weights = torch.stack([initial_weights(s) for s in seeds]).to(device).requires_grad_()
    optimizer = torch.optim.SGD([weights], lr=lr, momentum=momentum)
    schedule = torch.tensor([sum(common.sample_order(len(labels), epochs, order, s), []) for s in seeds],
                            device=device)  # (R, steps): which sample each run sees at each step
    for t, picked in enumerate(schedule.T):
        optimizer.zero_grad()
        losses = F.cross_entropy(batched_logits(weights, inputs[picked]), labels[picked], reduction="none")
        if not torch.isfinite(losses).all():
            run = int(torch.nonzero(~torch.isfinite(losses))[0])
            raise common.TrainingDiverged(t // len(labels) + 1, t % len(labels) + 1, losses[run].item(),
                                          f"seed {seeds[run]}, {order} order")
        losses.sum().backward()
        optimizer.step()
    return weights.detach()


def sweep(args, say):
    """Train seeds 0..N-1 in each order; report each run's clean and noisy held-out accuracy."""
    seeds = range(args.sweep)
    held_out, held_out_labels = (t.to(args.device) for t in common.held_out_set())
    noisy, noisy_labels = (t.to(args.device) for t in common.noisy_held_out_set())
    results = {}
    for order in ORDERS:
        weights = train_many(seeds, order, args.epochs, args.lr, args.momentum, args.device)
        accuracies = run_accuracies(weights, held_out, held_out_labels)
        noisy_accuracies = run_accuracies(weights, noisy, noisy_labels)
        results[order] = {"accuracy": accuracies, "noisy_accuracy": noisy_accuracies,
                          "succeeded": sum(a == 100.0 for a in accuracies)}
        say(f"{order:>10} order: {results[order]['succeeded']} of {args.sweep} seeds reached 100% on the "
            f"held-out set; mean noisy held-out accuracy {sum(noisy_accuracies) / args.sweep:.1f}%")
    return results


def batched_logits(weights, inputs):
    """Logits of run r for input r: weights (R, 4, 1, 4, 4), inputs (R, 1, 4, 4) -> (R, 4)."""
    return torch.einsum("rkcij,rcij->rk", weights, inputs)


@torch.no_grad()
def run_accuracies(weights, inputs, labels):
    """Accuracy (%) of every run on the same inputs."""
    predicted = torch.einsum("rkcij,ncij->rnk", weights, inputs).argmax(dim=2)
    return ((predicted == labels).float().mean(dim=1) * 100).tolist()


def plot_sweep(results, n_seeds, path):
    figure = common.new_figure(figsize=(7, 4), layout="constrained")
    axes = figure.subplots()
    jitter = (torch.rand(n_seeds, generator=torch.Generator().manual_seed(0)) * 0.5 - 0.25).numpy()
    for position, order in enumerate(ORDERS):
        solved = torch.tensor(results[order]["accuracy"]).numpy() == 100.0  # the held-out set, clean
        noisy = torch.tensor(results[order]["noisy_accuracy"]).numpy()
        for mask, colour, label in ((solved, "tab:green", "100% on held-out"),
                                    (~solved, "tab:red", "below 100% on held-out")):
            axes.scatter(position + jitter[mask], noisy[mask], s=14, color=colour, alpha=0.7,
                         label=label if position == 0 else None)
        axes.text(position, 103, f"{int(solved.sum())} of {n_seeds} solved", ha="center")
    axes.set(xticks=range(len(ORDERS)), xticklabels=[f"{o} order" for o in ORDERS],
             ylabel="noisy held-out accuracy (%)", ylim=(-5, 110), xlim=(-0.6, 1.6),
             title=f"Stage 1 on seeds 0..{n_seeds - 1}: one dot per training run")
    axes.legend(loc="lower center")
    return common.save_figure(figure, path)


# ---------------------------------------------------------------------------

def main(argv=None):
    args = parse_args(argv)
    say = common.make_printer(args.quiet)
    outputs = []
    if not args.no_plots:
        common.prepare_out_dir(args.out_dir)
    if args.sweep:
        results = sweep(args, say)
        if not args.no_plots:
            outputs.append(plot_sweep(results, args.sweep, args.out_dir / "01_sweep.png"))
        report = {"sweep": {order: {"runs": args.sweep, "succeeded": results[order]["succeeded"]}
                            for order in ORDERS}}
    else:
        model, losses, before, after = train_once(args, say)
        if not args.no_plots:
            outputs.append(plot_losses(losses, len(losses) // args.epochs, args.order, args.out_dir / "01_loss.png"))
            outputs.append(plot_filters(model, args.out_dir / "01_filters.png"))
        report = {
            "first_loss": losses[0], "final_loss": losses[-1], "losses": losses,
            "accuracy_before": before["accuracy"], "accuracy_after": after["accuracy"],
            "noisy_accuracy_before": before["noisy_accuracy"], "noisy_accuracy_after": after["noisy_accuracy"],
            "article_check_before": before["article_check"], "article_check_after": after["article_check"],
        }
    report["outputs"] = [str(path) for path in outputs]
    for path in outputs:
        say(f"wrote {path}")
    if args.json:
        common.print_json(report)


if __name__ == "__main__":
    common.run_cli(main)

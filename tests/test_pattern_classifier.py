"""01_pattern_classifier.py against independent references: a momentum-SGD loop with
the softmax gradient derived by hand, the article's loop written out again here,
and dot products in place of the network."""

import io
import math
import statistics
from pathlib import Path

import pytest
import torch
from torch import nn

import _cli
import common
from common import Test_Conv
from conftest import articles_loop, call_main, dot_product_accuracy, help_entries, help_text, last_json_line

FLOAT32_LN4 = torch.tensor(math.log(4), dtype=torch.float32).item()  # the article's first loss, 1.3862943649291992


# --- the training loop ------------------------------------------------------------

def reference_training(initial_weight, inputs, labels, indices, lr, momentum):
    """Momentum SGD on softmax cross-entropy, derived by hand in float64."""
    weight = initial_weight.double().reshape(4, 16).clone()
    velocity, losses = None, []
    for i in indices:
        x = inputs[i].double().reshape(16)
        logits = weight @ x
        shifted = logits - logits.max()
        probabilities = shifted.exp() / shifted.exp().sum()
        losses.append(-math.log(probabilities[labels[i]].item()))
        one_hot = torch.zeros(4, dtype=torch.float64)
        one_hot[labels[i]] = 1.0
        gradient = torch.outer(probabilities - one_hot, x)  # d loss / d weight
        velocity = gradient if velocity is None else momentum * velocity + gradient
        weight = weight - lr * velocity
    return losses, weight.reshape(4, 1, 4, 4)


@pytest.mark.parametrize("order, lr, momentum", [("sequential", 0.001, 0.9), ("shuffled", 0.01, 0.5)])
def test_train_matches_a_hand_derived_loop_step_by_step(classifier, order, lr, momentum):
    torch.manual_seed(3)
    model = Test_Conv()
    start = model.conv.weight.detach().clone()
    inputs, labels = common.training_set()
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum)
    losses = classifier.train(model, optimizer, 2, order, seed=5, verbose=False)
    indices = sum(classifier.sample_order(40, 2, order, 5), [])
    expected_losses, expected_weight = reference_training(start, inputs, labels.tolist(), indices, lr, momentum)
    if order == "sequential":
        assert losses[0] == FLOAT32_LN4  # scale 0: all logits 0, so the loss is ln 4
    assert losses == pytest.approx(expected_losses, rel=1e-4, abs=1e-5)
    torch.testing.assert_close(model.conv.weight.detach().double(), expected_weight, rtol=1e-4, atol=1e-5)


def test_train_is_the_articles_loop_bit_for_bit(classifier):
    model, losses = articles_loop(seed=11)
    torch.manual_seed(11)
    ours = Test_Conv()
    our_losses = classifier.train(ours, torch.optim.SGD(ours.parameters(), lr=0.001, momentum=0.9), verbose=False)
    assert our_losses == losses and torch.equal(ours.conv.weight, model.conv.weight)


def test_shuffled_order_is_a_permutation_per_epoch_and_depends_on_the_seed(classifier):
    orders = classifier.sample_order(40, 3, "shuffled", seed=7)
    assert all(sorted(epoch) == list(range(40)) for epoch in orders)
    assert orders[0] != orders[1]
    assert orders == classifier.sample_order(40, 3, "shuffled", seed=7)
    assert orders != classifier.sample_order(40, 3, "shuffled", seed=8)
    assert classifier.sample_order(40, 2, "sequential", seed=7) == [list(range(40))] * 2


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4])
def test_shuffled_training_separates_the_patterns(classifier, seed):
    torch.manual_seed(seed)
    model = Test_Conv()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.001, momentum=0.9)
    classifier.train(model, optimizer, 2, "shuffled", seed, verbose=False)
    assert dot_product_accuracy(model.conv.weight.detach(), *common.classifiable_training_set()) == 100.0


def test_train_prints_the_first_and_every_fifth_loss_and_nothing_when_not_verbose(classifier, capsys):
    torch.manual_seed(0)
    model = Test_Conv()
    losses = classifier.train(model, torch.optim.SGD(model.parameters(), lr=0.001, momentum=0.9))
    expected = [f"  epoch {e}  step {s:2d}/40  loss {losses[40 * (e - 1) + s - 1]:.7g}"
                for e in (1, 2) for s in (1, 5, 10, 15, 20, 25, 30, 35, 40)]
    assert capsys.readouterr().out.splitlines() == expected
    classifier.train(model, torch.optim.SGD(model.parameters(), lr=0.001), verbose=False)
    assert capsys.readouterr().out == ""


class FixedLogits(nn.Module):
    """A 'network' whose four logits are a parameter, whatever the input."""

    def __init__(self, logits):
        super().__init__()
        self.logits = nn.Parameter(torch.tensor(logits))

    def forward(self, x):
        return self.logits.expand(len(x), 4)


class CountingSGD(torch.optim.SGD):
    steps = 0

    def step(self, closure=None):
        self.steps += 1
        return super().step(closure)


@pytest.mark.parametrize("logits, loss, step", [
    # finite logits, infinite loss: for label B, logsumexp (3e38) minus logit B (-3e38) overflows float32;
    # label A costs nothing, so the first B sample, step 21, is the first non-finite loss
    ([3e38, -3e38, 0.0, 0.0], "inf", 21),
    ([float("nan"), 0.0, 0.0, 0.0], "nan", 1),
])
def test_a_non_finite_loss_stops_training_before_the_step(classifier, logits, loss, step):
    model = FixedLogits(logits)
    optimizer = CountingSGD(model.parameters(), lr=0.0)
    with pytest.raises(_cli.TrainingDiverged, match=rf"became {loss} at epoch 1, step {step}; try a smaller --lr$"):
        classifier.train(model, optimizer, verbose=False)
    assert optimizer.steps == step - 1


# --- the script, end to end ------------------------------------------------------------

@pytest.fixture(scope="module")
def default_run(end_to_end):
    """The article's run in a fresh process, as a learner starts it (started in conftest.py)."""
    return end_to_end["stage1"].result(), end_to_end["stage1"].out_dir


def test_default_run_reproduces_the_article_end_to_end(default_run):
    result, out_dir = default_run
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    report = last_json_line(result.stdout)
    model, losses = articles_loop(seed=0)
    assert report["losses"] == losses and len(losses) == 80
    assert report["first_loss"] == FLOAT32_LN4 and report["final_loss"] == losses[-1]
    assert report["article_check_before"] is False and report["article_check_after"] is True
    assert sorted(report["outputs"]) == sorted(str(out_dir / n) for n in ("01_loss.png", "01_filters.png"))
    for path in report["outputs"]:
        assert Path(path).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_default_run_accuracies_are_recomputed_by_dot_products(default_run):
    report = last_json_line(default_run[0].stdout)
    torch.manual_seed(0)
    start = Test_Conv().conv.weight.detach()
    trained = articles_loop(seed=0)[0].conv.weight.detach()
    training, test = common.classifiable_training_set(), common.noisy_test_set()
    assert report["train_accuracy_before"] == dot_product_accuracy(start, *training) == 50.0
    assert report["train_accuracy_after"] == dot_product_accuracy(trained, *training) == 100.0
    assert report["test_accuracy_before"] == dot_product_accuracy(start, *test)
    assert report["test_accuracy_after"] == dot_product_accuracy(trained, *test)
    assert 90 < report["test_accuracy_after"] < 100  # a number below 100%, pinned exactly above
    assert {"accuracy_before", "noisy_accuracy_after"}.isdisjoint(report)  # the old names are gone


def outputs_by_hand(weight):
    """(MSE between the outputs for A and 10*A, MSE for A and B, classes of A, 10*A, B) from dot products.

    Test_Conv is linear: out(10A) - out(A) = 9 out(A), and out(B) - out(A) = out(B - A).
    """
    weight = weight.double().reshape(4, 16)
    out_a = weight @ common.pattern_a(1).double().reshape(16)
    out_b = weight @ common.pattern_b(1).double().reshape(16)
    same = (81 * out_a**2).mean().item()
    different = ((out_b - out_a) ** 2).mean().item()
    return same, different, [int(out_a.argmax()), int((10 * out_a).argmax()), int(out_b.argmax())]


def test_distances_and_classes_before_and_after_training(default_run):
    report = last_json_line(default_run[0].stdout)
    torch.manual_seed(0)
    start = Test_Conv().conv.weight.detach()
    trained = articles_loop(seed=0)[0].conv.weight.detach()
    for weight, when in ((start, ""), (trained, "_after")):
        same, different, classes = outputs_by_hand(weight)
        assert report[f"mse_same_pattern{when}"] == pytest.approx(same, rel=1e-5)
        assert report[f"mse_different_patterns{when}"] == pytest.approx(different, rel=1e-5)
        assert report[f"mse_same_pattern{when}"] > report[f"mse_different_patterns{when}"]  # trained or not
    assert report["predicted_before"] == outputs_by_hand(start)[2] == [1, 1, 1]
    assert report["predicted_after"] == outputs_by_hand(trained)[2] == [0, 0, 1]
    lines = default_run[0].stdout.splitlines()
    for which, when, classes in (("untrained", "", "A 1, 10*A 1, B 1"), ("trained", "_after", "A 0, 10*A 0, B 1")):
        start = lines.index(f"The {which} network's four outputs for A, 10*A and B:")
        assert lines[start + 1 : start + 5] == [
            f"  distance between the outputs for A and 10*A, the same pattern: "
            f"{report['mse_same_pattern' + when]:.4g} (mean squared error)",
            f"  distance between the outputs for A and B, different patterns:  "
            f"{report['mse_different_patterns' + when]:.4g}",
            "  -> the same pattern lies farther apart than two different ones: a distance is no verdict",
            f"  predicted class (the largest output): {classes} (right: A 0, 10*A 0, B 1)"]


def test_the_distance_verdict_follows_the_numbers(classifier, capsys):
    """A network that puts A near 0 puts A and B farther apart: the printed line must say so."""
    model = Test_Conv()
    with torch.no_grad():
        model.conv.weight.zero_()
        model.conv.weight[1, 0, 0, 0] = 1.0  # a cell only B has: out(A) = 0, out(B) = (0, 1, 0, 0)
    outputs = classifier.show_outputs(model, "hand-made")
    assert outputs["mse_same_pattern"] == 0.0 < outputs["mse_different_patterns"] == 0.25
    assert "  -> here A and B lie farther apart, yet c*A drifts away from A as c grows: a distance is no verdict" \
        in capsys.readouterr().out.splitlines()


def test_default_output_says_what_was_measured(default_run):
    result, out_dir = default_run
    report = last_json_line(result.stdout)
    lines = result.stdout.splitlines()
    assert (f"Before training: training accuracy 50.0% | test accuracy {report['test_accuracy_before']:.1f}% | "
            "the article's check (A at scale 999999999 called A): no") in lines
    assert (f"After training: training accuracy 100.0% | test accuracy {report['test_accuracy_after']:.1f}% | "
            "the article's check (A at scale 999999999 called A): yes") in lines
    assert "Training: 2 epochs x 40 samples (sequential order), SGD lr=0.001 momentum=0.9" in lines
    assert "  epoch 1  step  1/40  loss 1.386294" in lines  # ln 4, the first loss, on screen
    assert "  highest loss 11.03 at epoch 2, step 8: A at scale 7" in lines
    assert max(report["losses"]) == report["losses"][40 + 7] and f"{max(report['losses']):.4g}" == "11.03"
    assert lines[-3:-1] == [f"wrote {out_dir / '01_loss.png'}", f"wrote {out_dir / '01_filters.png'}"]


@pytest.mark.parametrize("order, seed", [("sequential", 0), ("shuffled", 0), ("shuffled", 3)])
def test_the_highest_loss_names_its_step_and_sample(classifier, capsys, order, seed):
    losses = [0.5] * 80
    peak = 53  # epoch 2, step 14
    losses[peak] = 7.0
    classifier.show_highest_loss(losses, order, seed)
    sample = classifier.sample_order(40, 2, order, seed)[1][13]
    name = f"{'AB'[sample >= 20]} at scale {sample % 20}"
    assert capsys.readouterr().out == f"  highest loss 7 at epoch 2, step 14: {name}\n"


def test_default_output_fits_on_one_screen_and_shows_the_patterns(default_run):
    lines = default_run[0].stdout.splitlines()[:-1]  # the last line is --json's
    assert len(lines) <= 48
    assert lines[2:6] == ["  0 1 0 1               1 1 1 1", "  0 1 0 1               0 1 0 1",
                          "  0 1 0 1               0 1 0 1", "  0 1 0 1               1 1 1 1"]
    assert "  epoch 2  step 40/40  loss 0" in lines


def test_same_seed_gives_the_same_losses_and_the_same_bytes(classifier, default_run, tmp_path, capsys):
    result, first_dir = default_run
    status, out, _ = call_main(classifier, ["--out-dir", tmp_path, "--json", "--quiet", "--seed", "0"], capsys)
    assert status == 0
    assert last_json_line(out)["losses"] == last_json_line(result.stdout)["losses"]
    for name in ("01_loss.png", "01_filters.png"):
        assert (tmp_path / name).read_bytes() == (first_dir / name).read_bytes()


def test_quiet_json_prints_only_the_json(classifier, capsys):
    status, out, err = call_main(classifier, ["--no-plots", "--quiet", "--json", "--epochs", "1"], capsys)
    assert status == 0 and err == ""
    assert len(out.strip().splitlines()) == 1
    assert last_json_line(out)["outputs"] == [] and len(last_json_line(out)["losses"]) == 40


def test_flags_reach_the_run(classifier, capsys):
    argv = ["--no-plots", "--quiet", "--json", "--epochs", "3", "--lr", "0.01", "--order", "shuffled",
            "--momentum", "0.5", "--seed", "4"]
    report = last_json_line(call_main(classifier, argv, capsys)[1])
    indices = sum(classifier.sample_order(40, 3, "shuffled", 4), [])
    _, losses = articles_loop(seed=4, lr=0.01, momentum=0.5, order_indices=indices)
    assert report["losses"] == losses and len(losses) == 120
    assert report["first_loss"] == losses[0] and report["final_loss"] == losses[-1] != losses[-2]


def test_learning_rate_zero_learns_nothing(classifier, capsys):
    report = last_json_line(call_main(classifier, ["--no-plots", "--quiet", "--json", "--lr", "0"], capsys)[1])
    for name in ("train_accuracy", "test_accuracy", "predicted"):
        assert report[f"{name}_after"] == report[f"{name}_before"]
    assert report["mse_same_pattern_after"] == report["mse_same_pattern"]


# --- flags at their limits ------------------------------------------------------------

@pytest.mark.parametrize("argv, flag", [
    (["--lr", "-0.1"], "--lr"), (["--lr", "nan"], "--lr"), (["--lr", "inf"], "--lr"),
    (["--lr", "1e39"], "--lr"), (["--lr", "fast"], "--lr"),
    (["--momentum", "1"], "--momentum"), (["--momentum", "-0.5"], "--momentum"),
    (["--epochs", "0"], "--epochs"), (["--epochs", "1001"], "--epochs"), (["--epochs", "two"], "--epochs"),
    (["--epochs", str(10**20)], "--epochs"), (["--order", "random"], "--order"),
    (["--sweep", "0"], "--sweep"), (["--sweep", "10001"], "--sweep"), (["--sweep", "99999999999999999999"], "--sweep"),
    (["--seed", "-1"], "--seed"), (["--seed", str(2**63)], "--seed"), (["--device", "tpu"], "--device"),
])
def test_bad_input_is_a_usage_error_naming_the_flag(classifier, capsys, argv, flag):
    status, _, err = call_main(classifier, argv + ["--no-plots"], capsys)
    assert status == 2
    last_line = err.strip().splitlines()[-1]
    assert last_line.startswith("usage:") is False and flag in last_line and "Traceback" not in err


@pytest.mark.parametrize("argv, attribute, value", [
    (["--seed", "0"], "seed", 0), (["--seed", str(2**63 - 1)], "seed", 2**63 - 1),
    (["--epochs", "1"], "epochs", 1), (["--epochs", "1000"], "epochs", 1000),
    (["--sweep", "1"], "sweep", 1), (["--sweep", "10000"], "sweep", 10000),
    (["--lr", "0"], "lr", 0.0), (["--momentum", "0"], "momentum", 0.0), (["--device", "cpu"], "device", "cpu"),
])
def test_every_limit_itself_is_accepted(classifier, argv, attribute, value):
    assert getattr(classifier.parse_args(argv), attribute) == value


def test_defaults_are_the_articles(classifier):
    args = classifier.parse_args([])
    assert (args.epochs, args.lr, args.momentum, args.order, args.seed, args.sweep) == (2, 0.001, 0.9,
                                                                                        "sequential", 0, None)
    assert args.out_dir == _cli.REPO_DIR / "outputs" and args.device in ("cpu", "cuda")


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_without_cuda_is_a_usage_error(classifier, capsys):
    status, _, err = call_main(classifier, ["--device", "cuda", "--no-plots"], capsys)
    assert status == 2 and "--device" in err.splitlines()[-1] and "cpu" in err.splitlines()[-1]


def test_bad_input_from_the_terminal_has_no_traceback(end_to_end):
    result = end_to_end["stage1_bad_lr"].result()
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("01_pattern_classifier.py: error: argument --lr")


def test_divergence_exits_1_with_where_and_what_to_do(classifier, capsys):
    status, out, err = call_main(classifier, ["--lr", "1e37", "--no-plots"], capsys)
    assert status == 1 and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    assert "diverged" in err and "epoch 1, step" in err and "smaller --lr" in err


def test_unwritable_out_dir_exits_1(classifier, capsys, tmp_path):
    (tmp_path / "file").write_text("")
    status, _, err = call_main(classifier, ["--out-dir", tmp_path / "file" / "pictures"], capsys)
    assert status == 1 and "--out-dir" in err and len(err.strip().splitlines()) == 1


def test_help_names_every_flag_with_its_default(classifier, capsys):
    text = help_text(classifier, capsys)
    flat = " ".join(text.split())
    assert flat.startswith("usage:")
    assert "Stage 1: teach a tiny CNN to tell two 4x4 patterns apart with torch.optim.SGD." in flat
    entries = help_entries(text)
    for flag in ("--epochs", "--lr", "--momentum", "--order", "--seed", "--sweep", "--device",
                 "--out-dir", "--no-plots", "--quiet", "--json"):
        assert "(default: " in entries[flag], f"{flag} does not say its default"
    assert "(default: 0.001)" in entries["--lr"] and "(default: sequential)" in entries["--order"]
    assert "1 to 1000" in entries["--epochs"] and "10000" in entries["--sweep"]


# --- the sweep ----------------------------------------------------------------------

def test_initial_weights_are_those_test_conv_starts_from(classifier):
    seeds = [0, 1, 5, 2**63 - 1]
    for seed, weight in zip(seeds, classifier.initial_weights(seeds), strict=True):
        torch.manual_seed(seed)
        assert torch.equal(weight, Test_Conv().conv.weight.detach())


@pytest.mark.parametrize("order", ["sequential", "shuffled"])
def test_sweep_trains_each_seed_as_a_separate_run_would(classifier, order):
    seeds = range(6)
    weights = classifier.train_many(seeds, order, 2, 0.001, 0.9)
    test_set = common.noisy_test_set()
    swept = classifier.run_accuracies(weights, *test_set)
    for seed in seeds:
        indices = sum(classifier.sample_order(40, 2, order, seed), [])
        model, _ = articles_loop(seed, order_indices=indices)
        torch.testing.assert_close(weights[seed], model.conv.weight.detach(), rtol=1e-4, atol=1e-5)
        assert swept[seed] == dot_product_accuracy(model.conv.weight.detach(), *test_set)


def wilson_by_the_quadratic(k, n, z=1.96):
    """The Wilson interval's ends are the rates p where (k/n - p)^2 = z^2 p (1 - p) / n: a quadratic's roots."""
    a, b, c = 1 + z * z / n, -(2 * k / n + z * z / n), (k / n) ** 2
    root = math.sqrt(b * b - 4 * a * c)
    return 100 * (-b - root) / (2 * a), 100 * (-b + root) / (2 * a)


@pytest.mark.parametrize("k, n", [(77, 100), (100, 100), (0, 100), (1, 1), (8313, 10000), (3, 8)])
def test_wilson_interval_solves_its_defining_equation(classifier, k, n):
    assert classifier.wilson_interval(k, n) == pytest.approx(wilson_by_the_quadratic(k, n), abs=1e-9)


def test_wilson_interval_of_77_in_100_as_published_tables_give_it(classifier):
    assert [round(end, 1) for end in classifier.wilson_interval(77, 100)] == [67.8, 84.2]


def test_mean_interval_is_the_mean_plus_minus_two_standard_errors(classifier):
    values = [90.0, 50.0, 87.5, 62.5, 80.0]
    mean, (low, high) = classifier.mean_interval(values)
    standard_error = statistics.stdev(values) / math.sqrt(len(values))
    assert mean == statistics.mean(values) == 74.0
    assert (low, high) == pytest.approx((74.0 - 1.96 * standard_error, 74.0 + 1.96 * standard_error))
    assert 0 < low and high < 100
    assert classifier.mean_interval([88.0]) == (88.0, None)  # one run: no spread to measure


def test_mean_interval_stays_within_0_and_100(classifier):
    _, (low, high) = classifier.mean_interval([100.0] * 99 + [98.75])
    assert high == 100.0 and low < 100.0
    _, (low, _) = classifier.mean_interval([0.0] * 99 + [1.25])
    assert low == 0.0


def test_sweep_counts_the_runs_that_learned_their_training_set_and_draws_them(classifier, capsys, tmp_path):
    status, out, _ = call_main(classifier, ["--sweep", "8", "--out-dir", tmp_path, "--json"], capsys)
    report = last_json_line(out)
    assert status == 0 and set(report) == {"sweep", "outputs"}
    training, test = common.classifiable_training_set(), common.noisy_test_set()
    for order in ("sequential", "shuffled"):
        learned, test_accuracies = 0, []
        for seed in range(8):
            model, _ = articles_loop(seed, order_indices=sum(classifier.sample_order(40, 2, order, seed), []))
            learned += dot_product_accuracy(model.conv.weight.detach(), *training) == 100.0
            test_accuracies.append(dot_product_accuracy(model.conv.weight.detach(), *test))
        summary = report["sweep"][order]
        mean = statistics.mean(test_accuracies)
        assert (summary["runs"], summary["learned_training_set"]) == (8, learned)
        assert summary["mean_test_accuracy"] == pytest.approx(mean, abs=1e-9)
        assert summary["learned_training_set_95ci"] == pytest.approx(wilson_by_the_quadratic(learned, 8))
        assert f"{order:>10} order: {learned} of 8 runs learned their training set (95% Wilson interval" in out
        assert f"mean test accuracy {mean:.2f}%" in out
    assert report["outputs"] == [str(tmp_path / "01_sweep.png")] and (tmp_path / "01_sweep.png").exists()


def test_sweep_counts_a_near_miss_as_not_learned(classifier, monkeypatch, capsys):
    near_misses = [100.0, 97.36842105263158, 50.0, 100.0, 0.0]
    monkeypatch.setattr(classifier, "run_accuracies", lambda weights, inputs, labels: near_misses[: len(weights)])
    results = classifier.sweep(5)
    assert results["sequential"]["summary"]["learned_training_set"] == 2
    assert results["shuffled"]["summary"]["learned_training_set"] == 2
    out = capsys.readouterr().out
    low, high = wilson_by_the_quadratic(2, 5)
    assert f"2 of 5 runs learned their training set (95% Wilson interval {low:.2f}% to {high:.2f}%)" in out


class Terminal(io.StringIO):
    def isatty(self):
        return True


@pytest.mark.parametrize("chunk, seeds, shown", [(2, 3, (2, 3, 5, 6)),
                                                 (None, 2600, (2500, 2600, 5100, 5200))])  # None: the script's 2500
def test_sweep_shows_progress_on_a_terminal(classifier, monkeypatch, chunk, seeds, shown):
    if chunk:
        monkeypatch.setattr(classifier, "SWEEP_CHUNK", chunk)
    terminal = Terminal()
    monkeypatch.setattr("sys.stdout", terminal)
    classifier.sweep(seeds)
    lines = [part.removesuffix("\033[K") for part in terminal.getvalue().split("\r")]
    assert [line for line in lines if line.startswith("sweep")] == [f"sweep: {n} of {2 * seeds} runs done"
                                                                    for n in shown]


def test_sweep_stops_on_an_infinite_loss_from_finite_logits(classifier, monkeypatch):
    # filter 0 at -2.5e37 and filter 1 at +2.5e37 on A's 8 cells: A at scale 1 (step 2) gets logits
    # -2e38 and 2e38, both finite, and a loss of 2e38 - (-2e38) = 4e38, past float32's largest
    weight = torch.zeros(4, 1, 4, 4)
    weight[0, 0][:, [1, 3]], weight[1, 0][:, [1, 3]] = -2.5e37, 2.5e37
    monkeypatch.setattr(classifier, "initial_weights", lambda seeds: weight.repeat(len(seeds), 1, 1, 1, 1))
    with pytest.raises(_cli.TrainingDiverged, match=r"\(seed 0, sequential order\): the loss became inf at epoch 1, "
                                                    r"step 2;"):
        classifier.train_many(range(2), "sequential", 2, 0.0, 0.9)


def test_sweep_stops_on_divergence_naming_the_first_run_to_diverge(classifier, capsys):
    first_bad_step = {}
    for seed in range(3):
        losses = articles_loop(seed, lr=1e37)[1]
        first_bad_step[seed] = next(t for t, loss in enumerate(losses) if not math.isfinite(loss))
    step = min(first_bad_step.values())
    seed = min(s for s, t in first_bad_step.items() if t == step)
    status, _, err = call_main(classifier, ["--sweep", "3", "--lr", "1e37", "--no-plots"], capsys)
    assert status == 1 and len(err.strip().splitlines()) == 1
    assert f"diverged (seed {seed}, sequential order)" in err
    assert f"at epoch 1, step {step + 1}; try a smaller --lr" in err

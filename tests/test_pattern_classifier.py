"""01_pattern_classifier.py against independent references: a momentum-SGD loop with
the softmax gradient derived by hand, the article's loop written out again here,
and dot products in place of the network."""

import io
import math
from pathlib import Path

import pytest
import torch
from torch import nn

import _cli
import common
from common import Test_Conv
from conftest import articles_loop, call_main, held_out_accuracy, help_entries, help_text, last_json_line

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
    assert held_out_accuracy(model.conv.weight.detach(), *common.held_out_set()) == 100.0


def test_train_prints_every_fifth_loss_and_nothing_when_not_verbose(classifier, capsys):
    torch.manual_seed(0)
    model = Test_Conv()
    losses = classifier.train(model, torch.optim.SGD(model.parameters(), lr=0.001, momentum=0.9))
    expected = [f"  epoch {e}  step {s:2d}/40  loss {losses[40 * (e - 1) + s - 1]:.7g}"
                for e in (1, 2) for s in range(5, 41, 5)]
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
    held_out, noisy = common.held_out_set(), common.noisy_held_out_set()
    assert report["accuracy_before"] == held_out_accuracy(start, *held_out) == 50.0
    assert report["accuracy_after"] == held_out_accuracy(trained, *held_out) == 100.0
    assert report["noisy_accuracy_before"] == held_out_accuracy(start, *noisy)
    assert report["noisy_accuracy_after"] == held_out_accuracy(trained, *noisy)
    assert 90 < report["noisy_accuracy_after"] < 100  # a number below 100%, pinned exactly above


def test_the_same_pattern_lies_farther_apart_than_two_different_ones(default_run):
    """Test_Conv is linear: MSE(out(A), out(10A)) = 81 * mean(out(A)^2), and out(B) - out(A) = out(B - A)."""
    report = last_json_line(default_run[0].stdout)
    torch.manual_seed(0)
    weight = Test_Conv().conv.weight.detach().double().reshape(4, 16)
    out_a = weight @ common.pattern_a(1).double().reshape(16)
    out_b_minus_a = weight @ (common.pattern_b(1) - common.pattern_a(1)).double().reshape(16)
    assert report["mse_same_pattern"] == pytest.approx(81 * (out_a**2).mean().item(), rel=1e-5)
    assert report["mse_different_patterns"] == pytest.approx((out_b_minus_a**2).mean().item(), rel=1e-5)
    assert report["mse_same_pattern"] > report["mse_different_patterns"]
    lines = default_run[0].stdout.splitlines()
    start = lines.index("An untrained network only filters. Distances between its outputs (mean squared error):")
    assert lines[start + 1 : start + 4] == [
        f"  A and 10*A, the same pattern:    {report['mse_same_pattern']:.4g}",
        f"  A and B, two different patterns: {report['mse_different_patterns']:.4g}",
        "  The same pattern lies farther apart: no threshold on a distance says 'same'. Training will."]


def test_default_output_says_what_was_measured(default_run):
    result, out_dir = default_run
    report = last_json_line(result.stdout)
    lines = result.stdout.splitlines()
    assert (f"Before training: A at scale 999999999 classified as A: no | held-out accuracy 50.0% | "
            f"noisy held-out {report['noisy_accuracy_before']:.1f}%") in lines
    assert (f"After training:  A at scale 999999999 classified as A: yes | held-out accuracy 100.0% | "
            f"noisy held-out {report['noisy_accuracy_after']:.1f}%") in lines
    assert "Training: 2 epochs x 40 samples (sequential order), SGD lr=0.001 momentum=0.9" in lines
    assert lines[-3:-1] == [f"wrote {out_dir / '01_loss.png'}", f"wrote {out_dir / '01_filters.png'}"]


def test_default_output_fits_on_one_screen_and_shows_the_patterns(default_run):
    lines = default_run[0].stdout.splitlines()[:-1]  # the last line is --json's
    assert len(lines) <= 40
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
    assert report["accuracy_after"] == report["accuracy_before"]


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

@pytest.mark.parametrize("order", ["sequential", "shuffled"])
def test_sweep_trains_each_seed_as_a_separate_run_would(classifier, order):
    seeds = range(6)
    weights = classifier.train_many(seeds, order, 2, 0.001, 0.9)
    held_out = common.held_out_set()
    swept = classifier.run_accuracies(weights, *held_out)
    for seed in seeds:
        indices = sum(classifier.sample_order(40, 2, order, seed), [])
        model, _ = articles_loop(seed, order_indices=indices)
        torch.testing.assert_close(weights[seed], model.conv.weight.detach(), rtol=1e-4, atol=1e-5)
        assert swept[seed] == held_out_accuracy(model.conv.weight.detach(), *held_out)


def test_sweep_counts_only_perfect_runs_and_draws_them(classifier, capsys, tmp_path):
    status, out, _ = call_main(classifier, ["--sweep", "8", "--out-dir", tmp_path, "--json"], capsys)
    report = last_json_line(out)
    assert status == 0 and set(report) == {"sweep", "outputs"}
    held_out = common.held_out_set()
    for order in ("sequential", "shuffled"):
        accuracies = []
        for seed in range(8):
            model, _ = articles_loop(seed, order_indices=sum(classifier.sample_order(40, 2, order, seed), []))
            accuracies.append(held_out_accuracy(model.conv.weight.detach(), *held_out))
        assert report["sweep"][order] == {"runs": 8, "succeeded": accuracies.count(100.0)}
        assert f"{order:>10} order: {accuracies.count(100.0)} of 8 seeds reached 100%" in out
    assert report["outputs"] == [str(tmp_path / "01_sweep.png")] and (tmp_path / "01_sweep.png").exists()


def test_sweep_counts_a_near_miss_as_a_failure(classifier, monkeypatch, capsys):
    near_misses = [100.0, 99.375, 93.75, 100.0, 50.0]
    monkeypatch.setattr(classifier, "run_accuracies", lambda weights, inputs, labels: near_misses[: len(weights)])
    results = classifier.sweep(5)
    assert results["sequential"]["succeeded"] == results["shuffled"]["succeeded"] == 2
    out = capsys.readouterr().out
    assert "2 of 5 seeds reached 100% on the held-out set; mean noisy held-out accuracy 88.6%" in out


class Terminal(io.StringIO):
    def isatty(self):
        return True


@pytest.mark.parametrize("chunk, seeds, shown", [(2, 3, (2, 3, 5, 6)),
                                                 (None, 150, (100, 150, 250, 300))])  # None: the script's 100
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
    monkeypatch.setattr(classifier, "initial_weights", lambda seed: weight)
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

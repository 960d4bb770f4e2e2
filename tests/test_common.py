"""common.py against independent references: hand-written tensors, a hand-derived
gradient, the closed form of the softmax cross-entropy, and the file system."""

import math
import os
import stat

import pytest
import torch

import common
from common import Test_Conv

# --- the article's data -----------------------------------------------------

def test_patterns_match_the_article_element_by_element():
    s = 3.0
    expected_a = [[0, s, 0, s]] * 4
    expected_b = [[s, s, s, s], [0, s, 0, s], [0, s, 0, s], [s, s, s, s]]
    for made, expected in ((common.pattern_a(s), expected_a), (common.pattern_b(s), expected_b)):
        assert made.shape == (1, 1, 4, 4) and made.dtype == torch.float32
        assert made.reshape(4, 4).tolist() == expected


def test_patterns_differ_except_at_scale_zero():
    assert torch.equal(common.pattern_a(0), common.pattern_b(0))
    assert not torch.equal(common.pattern_a(1), common.pattern_b(1))


def test_training_set_is_the_article_order():
    inputs, labels = common.training_set()
    assert inputs.shape == (40, 1, 4, 4) and labels.tolist() == [0] * 20 + [1] * 20
    for i in range(20):
        assert torch.equal(inputs[i], common.pattern_a(i)[0])
        assert torch.equal(inputs[20 + i], common.pattern_b(i)[0])


def test_held_out_set_avoids_training_scales_and_holds_the_article_check():
    inputs, labels = common.held_out_set()
    scales = inputs.amax(dim=(1, 2, 3)).tolist()
    assert not set(scales) & set(range(20)), "a held-out scale was used in training"
    assert 0 not in scales
    assert any(torch.equal(x, common.pattern_a(999999999)[0]) for x, y in zip(inputs, labels) if y == 0)
    assert labels.tolist().count(0) == labels.tolist().count(1)


def test_noisy_set_is_fixed_and_has_ten_percent_noise():
    noisy, labels = common.noisy_held_out_set()
    again, _ = common.noisy_held_out_set()
    assert torch.equal(noisy, again)
    clean, clean_labels = common.held_out_set()
    copies = noisy.shape[0] // clean.shape[0]
    assert torch.equal(labels, clean_labels.repeat(copies))
    scales = clean.amax(dim=(1, 2, 3), keepdim=True).repeat(copies, 1, 1, 1)
    relative_noise = (noisy - clean.repeat(copies, 1, 1, 1)) / scales
    assert relative_noise.std().item() == pytest.approx(0.1, rel=0.1)


# --- the network ------------------------------------------------------------

def test_test_conv_is_a_dot_product_per_filter_on_a_batch():
    torch.manual_seed(0)
    model = Test_Conv()
    assert model.conv.bias is None and model.conv.weight.shape == (4, 1, 4, 4)
    batch = torch.randn(5, 1, 4, 4)
    logits = model(batch)
    assert logits.shape == (5, 4)
    weight = model.conv.weight.detach()
    expected = torch.tensor([[float((weight[k, 0] * x[0]).sum()) for k in range(4)] for x in batch])
    torch.testing.assert_close(logits.detach(), expected)


def test_without_bias_a_positive_scale_never_changes_the_prediction():
    torch.manual_seed(1)
    model = Test_Conv()
    inputs = torch.randn(50, 1, 4, 4)
    for scale in (0.001, 7.0, 999999999.0):
        assert torch.equal(common.predict(model, inputs), common.predict(model, scale * inputs))


def test_test_conv_is_not_collected_by_pytest():
    assert Test_Conv.__test__ is False


# --- training ---------------------------------------------------------------

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
def test_train_matches_a_hand_written_loop_step_by_step(order, lr, momentum):
    torch.manual_seed(3)
    model = Test_Conv()
    start = model.conv.weight.detach().clone()
    inputs, labels = common.training_set()
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum)
    losses = common.train(model, optimizer, inputs, labels, epochs=2, order=order, seed=5)
    indices = sum(common.sample_order(40, 2, order, 5), [])
    expected_losses, expected_weight = reference_training(start, inputs, labels.tolist(), indices, lr, momentum)
    if order == "sequential":
        assert losses[0] == pytest.approx(math.log(4))  # scale 0: all logits 0, so the loss is ln 4
    assert losses == pytest.approx(expected_losses, rel=1e-4, abs=1e-5)
    torch.testing.assert_close(model.conv.weight.detach().double(), expected_weight, rtol=1e-4, atol=1e-5)


def test_shuffled_order_is_a_permutation_per_epoch_and_depends_on_the_seed():
    orders = common.sample_order(40, 3, "shuffled", seed=7)
    assert all(sorted(epoch) == list(range(40)) for epoch in orders)
    assert orders[0] != orders[1]
    assert orders == common.sample_order(40, 3, "shuffled", seed=7)
    assert orders != common.sample_order(40, 3, "shuffled", seed=8)


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4])
def test_shuffled_training_separates_the_patterns(seed):
    torch.manual_seed(seed)
    model = Test_Conv()
    inputs, labels = common.training_set()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.001, momentum=0.9)
    common.train(model, optimizer, inputs, labels, epochs=2, order="shuffled", seed=seed)
    held_out, held_out_labels = common.held_out_set()
    assert common.accuracy(model, held_out, held_out_labels) == 100.0


def test_a_non_finite_loss_stops_training_at_once():
    torch.manual_seed(0)
    model = Test_Conv()
    inputs, labels = common.training_set()
    optimizer = torch.optim.SGD(model.parameters(), lr=1e37, momentum=0.9)
    seen = []
    with pytest.raises(common.TrainingDiverged, match=r"epoch \d+, step \d+; try a smaller --lr"):
        common.train(model, optimizer, inputs, labels, epochs=2, on_step=lambda *step: seen.append(step))
    assert all(math.isfinite(loss) for _, _, loss in seen)
    assert len(seen) < 80


# --- writing files ----------------------------------------------------------

def test_atomic_write_leaves_nothing_when_writing_fails(tmp_path):
    target = tmp_path / "picture.png"

    def half_then_fail(file):
        file.write(b"half a picture")
        raise OSError(28, "No space left on device")

    with pytest.raises(common.RunFailure, match="No space left"):
        common.atomic_write(target, half_then_fail)
    assert list(tmp_path.iterdir()) == []


def test_atomic_write_keeps_the_old_file_when_interrupted(tmp_path):
    target = tmp_path / "picture.png"
    target.write_bytes(b"old")

    def interrupted(file):
        file.write(b"new but unfinished")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        common.atomic_write(target, interrupted)
    assert [p.name for p in tmp_path.iterdir()] == ["picture.png"] and target.read_bytes() == b"old"


def test_atomic_write_gives_ordinary_permissions(tmp_path):
    old_mask = os.umask(0o022)
    try:
        path = common.atomic_write(tmp_path / "a.bin", lambda f: f.write(b"x"))
    finally:
        os.umask(old_mask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644 and path.read_bytes() == b"x"


def test_out_dir_that_cannot_be_created_is_a_run_failure(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    with pytest.raises(common.RunFailure, match="cannot create --out-dir"):
        common.prepare_out_dir(blocker / "pictures")


# --- frames for GIFs ----------------------------------------------------------

@pytest.mark.parametrize("steps, frames", [(800, 120), (10, 11), (10, 2), (5, 3), (1000, 500)])
def test_pick_frames_are_strictly_increasing_from_first_to_last_step(steps, frames):
    picked = common.pick_frames(steps, frames)
    assert len(picked) == frames and picked[0] == 0 and picked[-1] == steps
    assert all(a < b for a, b in zip(picked, picked[1:]))


def test_pick_frames_show_every_early_step_and_reach_the_slow_end():
    picked = common.pick_frames(800, 120)
    assert picked[:10] == list(range(10))
    assert sum(step > 400 for step in picked) >= 5


@pytest.mark.parametrize("frames", [1, 12])
def test_pick_frames_refuses_impossible_counts(frames):
    with pytest.raises(ValueError):
        common.pick_frames(10, frames)


# --- how a run ends -----------------------------------------------------------

@pytest.mark.parametrize("raised, status, message", [
    (common.RunFailure("cannot write x"), 1, "error: cannot write x"),
    (KeyboardInterrupt(), 130, "interrupted"),
])
def test_run_cli_reports_failures_in_one_line(capsys, raised, status, message):
    def main():
        raise raised

    with pytest.raises(SystemExit) as stopped:
        common.run_cli(main)
    err = capsys.readouterr().err
    assert stopped.value.code == status and message in err and len(err.strip().splitlines()) == 1


def test_run_cli_stops_quietly_when_the_reader_goes_away(tmp_path, monkeypatch, capsys):
    with capsys.disabled(), open(tmp_path / "stdout", "w") as stdout:
        monkeypatch.setattr("sys.stdout", stdout)
        saved = os.dup(stdout.fileno())

        def main():
            raise BrokenPipeError  # what print() raises after `| head` has exited

        try:
            with pytest.raises(SystemExit) as stopped:
                common.run_cli(main)
        finally:
            os.dup2(saved, stdout.fileno())
            os.close(saved)
    assert stopped.value.code == 1

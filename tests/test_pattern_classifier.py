"""01_pattern_classifier.py: its flags, JSON, errors, pictures and the seed sweep."""

import json
import math
from pathlib import Path

import pytest
import torch

import common
from conftest import call_main, help_entries, help_text, last_json_line


@pytest.fixture(scope="module")
def default_run(end_to_end):
    """The article's run in a fresh process, as a learner starts it (started in conftest.py)."""
    return end_to_end["stage1"].result(), end_to_end["stage1"].out_dir


def test_default_run_reproduces_the_article_end_to_end(default_run):
    result, out_dir = default_run
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    report = last_json_line(result.stdout)
    assert len(report["losses"]) == 80
    assert report["first_loss"] == pytest.approx(math.log(4))  # the article's first loss, 1.3862943649291992
    assert report["final_loss"] == report["losses"][-1] < 1e-3
    assert report["accuracy_before"] < 100.0 and report["accuracy_after"] == 100.0
    assert report["article_check_before"] is False and report["article_check_after"] is True
    assert 0 <= report["noisy_accuracy_before"] <= 100 and report["noisy_accuracy_after"] >= 90
    assert sorted(report["outputs"]) == sorted(str(out_dir / n) for n in ("01_loss.png", "01_filters.png"))
    for path in report["outputs"]:
        assert Path(path).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "epoch 2  step 40/40" in result.stdout


def test_same_seed_gives_the_same_losses_and_the_same_bytes(classifier, default_run, tmp_path, capsys):
    result, first_dir = default_run
    status, out, _ = call_main(classifier, ["--out-dir", tmp_path, "--json", "--quiet"], capsys)
    assert status == 0
    assert last_json_line(out)["losses"] == last_json_line(result.stdout)["losses"]
    for name in ("01_loss.png", "01_filters.png"):
        assert (tmp_path / name).read_bytes() == (first_dir / name).read_bytes()


def test_quiet_json_prints_only_the_json(classifier, capsys):
    status, out, err = call_main(classifier, ["--no-plots", "--quiet", "--json", "--epochs", "1"], capsys)
    assert status == 0 and err == ""
    assert len(out.strip().splitlines()) == 1
    assert json.loads(out)["outputs"] == []


def test_flags_change_the_run(classifier, capsys):
    _, out, _ = call_main(classifier, ["--no-plots", "--quiet", "--json", "--epochs", "3", "--lr", "0",
                                       "--order", "shuffled", "--momentum", "0"], capsys)
    report = json.loads(out)
    assert len(report["losses"]) == 120
    assert report["accuracy_after"] == report["accuracy_before"]  # lr 0 learns nothing


def test_a_different_seed_gives_a_different_trace(classifier, capsys):
    _, first, _ = call_main(classifier, ["--no-plots", "--quiet", "--json", "--seed", "1"], capsys)
    _, second, _ = call_main(classifier, ["--no-plots", "--quiet", "--json", "--seed", "2"], capsys)
    assert json.loads(first)["losses"] != json.loads(second)["losses"]


BAD_INPUTS = [
    (["--lr", "-0.1"], "--lr"), (["--lr", "nan"], "--lr"), (["--lr", "inf"], "--lr"),
    (["--lr", "1e39"], "--lr"), (["--lr", "fast"], "--lr"),
    (["--momentum", "1"], "--momentum"), (["--momentum", "-0.5"], "--momentum"),
    (["--epochs", "0"], "--epochs"), (["--epochs", "two"], "--epochs"),
    (["--order", "random"], "--order"), (["--sweep", "0"], "--sweep"), (["--seed", "-1"], "--seed"),
    (["--device", "tpu"], "--device"),
]


@pytest.mark.parametrize("argv, flag", BAD_INPUTS)
def test_bad_input_is_a_usage_error_naming_the_flag(classifier, capsys, argv, flag):
    status, _, err = call_main(classifier, argv + ["--no-plots"], capsys)
    assert status == 2
    last_line = err.strip().splitlines()[-1]
    assert last_line.startswith("usage:") is False and flag in last_line and "Traceback" not in err


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
    entries = help_entries(help_text(classifier, capsys))
    for flag in ("--epochs", "--lr", "--momentum", "--order", "--seed", "--sweep", "--device",
                 "--out-dir", "--no-plots", "--quiet", "--json"):
        assert "(default: " in entries[flag], f"{flag} does not say its default"
    assert "(default: 0.001)" in entries["--lr"] and "(default: sequential)" in entries["--order"]


# --- the sweep --------------------------------------------------------------

@pytest.mark.parametrize("order", ["sequential", "shuffled"])
def test_sweep_trains_each_seed_as_a_separate_run_would(classifier, order):
    seeds = range(6)
    weights = classifier.train_many(seeds, order, 2, 0.001, 0.9, torch.device("cpu"))
    inputs, labels = common.training_set()
    held_out, held_out_labels = common.held_out_set()
    swept = classifier.run_accuracies(weights, held_out, held_out_labels)
    for seed in seeds:
        torch.manual_seed(seed)
        model = common.Test_Conv()
        optimizer = torch.optim.SGD(model.parameters(), lr=0.001, momentum=0.9)
        common.train(model, optimizer, inputs, labels, 2, order, seed)
        torch.testing.assert_close(weights[seed], model.conv.weight.detach(), rtol=1e-4, atol=1e-5)
        assert swept[seed] == common.accuracy(model, held_out, held_out_labels)


def test_sweep_json_and_picture(classifier, capsys, tmp_path):
    status, out, _ = call_main(classifier, ["--sweep", "4", "--out-dir", tmp_path, "--json"], capsys)
    report = last_json_line(out)
    assert status == 0 and set(report) == {"sweep", "outputs"}
    for order in ("sequential", "shuffled"):
        assert report["sweep"][order]["runs"] == 4 and 0 <= report["sweep"][order]["succeeded"] <= 4
    assert report["outputs"] == [str(tmp_path / "01_sweep.png")] and (tmp_path / "01_sweep.png").exists()
    assert "of 4 seeds reached 100%" in out


def test_sweep_stops_on_divergence(classifier, capsys):
    status, _, err = call_main(classifier, ["--sweep", "3", "--lr", "1e37", "--no-plots"], capsys)
    assert status == 1 and "diverged (seed" in err and "smaller --lr" in err

"""03_custom_optimizer.py's three parts against independent answers: the closed form,
stage 1's training, and descents with the derivative worked out on paper.
(SimpleGD and SimpleMomentum themselves are tested against torch.optim.SGD in test_optimizers.py.)"""

import math

import pytest
import torch

import common
from conftest import (
    articles_loop,
    call_main,
    dot_product_accuracy,
    gif_timing,
    help_entries,
    help_text,
    last_json_line,
    load_script,
)

# --- part 1: the parabola ------------------------------------------------------

def test_parabola_follows_the_closed_form(custom_optimizer):
    assert custom_optimizer.part_parabola(0.25, 20)[0] == [0.5**n for n in range(21)]  # exact in float32
    xs = custom_optimizer.part_parabola(0.1, 50)[0]
    for n in (1, 10, 50):
        assert xs[n] == pytest.approx(0.8**n, rel=2 * n * torch.finfo(torch.float32).eps)


def test_part_1_prints_the_run_and_its_relative_difference(custom_optimizer, capsys):
    xs, report = custom_optimizer.part_parabola(0.1, 20)
    expected = 0.8**20
    assert report == {"x_final": xs[-1], "x_expected": expected}
    assert capsys.readouterr().out.splitlines() == [
        "Part 1: SimpleGD(lr=0.1) on y = x^2 from x = 1.0, 20 steps",
        "  " + "  ".join(f"x{n}={xs[n]:.4g}" for n in range(0, 21, 2)),
        f"  closed form x0*(1 - 2*lr)^n = {expected:.9g}, measured {xs[-1]:.9g} "
        f"(relative difference {abs(xs[-1] - expected) / expected:.1e})"]


def test_part_1_prints_every_position_of_a_short_run(custom_optimizer, capsys):
    xs, _ = custom_optimizer.part_parabola(0.25, 5)
    assert capsys.readouterr().out.splitlines()[1] == "  " + "  ".join(f"x{n}={xs[n]:.4g}" for n in range(6))


def test_part_1_says_absolute_where_the_closed_form_is_zero(custom_optimizer, capsys):
    xs, report = custom_optimizer.part_parabola(0.5, 3)
    assert xs == [1.0, 0.0, 0.0, 0.0] and report["x_expected"] == 0.0
    assert capsys.readouterr().out.splitlines()[-1].endswith("measured 0 (absolute difference 0.0e+00)")


# --- part 2: the stage 1 network ----------------------------------------------

class ArticleGD(torch.optim.Optimizer):
    """The article's update, p.add_(grad * -lr): right in exact arithmetic, not to the bit."""

    def __init__(self, params, lr):
        super().__init__(params, {"lr": lr})

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    p.add_(p.grad * -group["lr"])


class ArticleMomentum(torch.optim.Optimizer):
    """Momentum written the same way: the velocity rebuilt each step, the update rounded twice."""

    def __init__(self, params, lr, momentum):
        super().__init__(params, {"lr": lr, "momentum": momentum})

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    v = self.state[p].get("v")
                    self.state[p]["v"] = v = p.grad.clone() if v is None else group["momentum"] * v + p.grad
                    p.add_(v * -group["lr"])


def largest_difference(model, other):
    return (model.conv.weight - other.conv.weight).abs().max().item()


def test_part_2_verdicts_are_the_weights_compared(custom_optimizer, monkeypatch, capsys):
    """With near-miss optimizers in place of ours, part 2 must say DIFFERENT, by as much as we measure here."""
    plain_gap = largest_difference(articles_loop(0, lr=0.1, momentum=0, optimizer_class=ArticleGD)[0],
                                   articles_loop(0, lr=0.1, momentum=0)[0])
    momentum_gap = largest_difference(articles_loop(0, optimizer_class=ArticleMomentum)[0], articles_loop(0)[0])
    assert plain_gap > 0 and momentum_gap > 0
    monkeypatch.setattr(custom_optimizer, "SimpleGD", ArticleGD)
    monkeypatch.setattr(custom_optimizer, "SimpleMomentum", ArticleMomentum)
    network = custom_optimizer.part_network()
    assert network["identical_to_sgd"] is False and network["max_abs_diff"] == plain_gap
    rebuilt = custom_optimizer.rebuild_stage1()
    assert rebuilt["identical_to_stage1"] is False and rebuilt["stage1_max_abs_diff"] == momentum_gap
    out = capsys.readouterr().out
    assert f"torch.optim.SGD(momentum=0) from the same start: DIFFERENT (largest difference {plain_gap:g})" in out
    assert f"rebuilds stage 1's run with torch.optim.SGD: DIFFERENT (largest difference {momentum_gap:g})" in out


def test_part_2_trains_with_stage_1s_loop_and_evaluates_honestly(custom_optimizer, capsys):
    model, _ = articles_loop(3, epochs=1, lr=0.2, momentum=0)
    network = custom_optimizer.part_network(lr=0.2, epochs=1, seed=3)
    rebuilt = custom_optimizer.rebuild_stage1(epochs=1, seed=3)
    torch.manual_seed(3)
    start = common.Test_Conv().conv.weight.detach()
    trained = model.conv.weight.detach()
    for name, samples in (("train", common.classifiable_training_set()), ("test", common.noisy_test_set())):
        assert network[f"{name}_accuracy_before"] == dot_product_accuracy(start, *samples)
        assert network[f"{name}_accuracy_after"] == dot_product_accuracy(trained, *samples)
    assert network["identical_to_sgd"] is rebuilt["identical_to_stage1"] is True
    assert network["max_abs_diff"] == rebuilt["stage1_max_abs_diff"] == 0.0
    out = capsys.readouterr().out
    assert not [line for line in out.splitlines() if line.startswith("  epoch ")]  # stage 1's loop trains quietly here
    assert "Part 2: SimpleGD(lr=0.2) trains Test_Conv with stage 1's loop, 1 epoch" in out.splitlines()
    assert (f"  training accuracy {network['train_accuracy_before']:.1f}% before, "
            f"{network['train_accuracy_after']:.1f}% after; test accuracy {network['test_accuracy_before']:.1f}% -> "
            f"{network['test_accuracy_after']:.1f}%") in out.splitlines()


# --- part 3: local minima, recomputed here by hand -----------------------------

def bumpy(x):
    return x * x / 4 + 0.5 * math.sin(5 * x)


def bumpy_slope(x):
    return x / 2 + 2.5 * math.cos(5 * x)


def descend_by_hand(x0, lr, steps, momentum=0.0):
    """Gradient descent in float64 with the derivative worked out on paper."""
    x, velocity = x0, 0.0
    for step in range(steps):
        slope = bumpy_slope(x)
        velocity = slope if step == 0 else momentum * velocity + slope
        x -= lr * velocity
    return x


def test_global_minimum_is_the_lowest_point(custom_optimizer):
    x_best, f_best = custom_optimizer.global_minimum()
    samples = [-4 + k * 1e-3 for k in range(8001)]
    assert f_best <= min(bumpy(x) for x in samples) + 1e-9
    assert abs(bumpy_slope(x_best)) < 1e-3  # a stationary point


def test_local_minima_claims_hold(custom_optimizer, capsys):
    status, out, _ = call_main(custom_optimizer, ["--no-plots", "--json", "--quiet"], capsys)
    runs = last_json_line(out)["local_minima"]
    assert status == 0 and len(runs) == 6
    _, f_best = custom_optimizer.global_minimum()
    for run in runs:
        momentum = {"SimpleGD": 0.0, "SimpleMomentum": 0.9}[run["optimizer"]]
        x_final = descend_by_hand(run["x0"], 0.05, 200, momentum)
        assert run["x_final"] == pytest.approx(x_final, abs=1e-3)
        assert run["f_final"] == pytest.approx(bumpy(x_final), abs=1e-4)
        assert run["is_global"] == (bumpy(x_final) - f_best < 1e-3)
    by_start = {(r["optimizer"], r["x0"]): r["is_global"] for r in runs}
    assert by_start[("SimpleGD", 2.5)] is False and by_start[("SimpleMomentum", 2.5)] is True
    assert by_start[("SimpleGD", 3.0)] is False and by_start[("SimpleMomentum", 3.0)] is False


def test_the_verdict_is_about_the_last_position(custom_optimizer, capsys):
    # after 30 steps, momentum from -2 has just come within reach of the global minimum: one step earlier it had not
    runs, (_, f_best) = custom_optimizer.part_local_minima([-2.0], 0.05, 30)
    x_final = descend_by_hand(-2.0, 0.05, 30, momentum=0.9)
    assert bumpy(x_final) - f_best < 1e-3 < bumpy(descend_by_hand(-2.0, 0.05, 29, momentum=0.9)) - f_best
    assert runs[1]["optimizer"] == "SimpleMomentum" and runs[1]["is_global"] is True


# --- the script ------------------------------------------------------------------

def test_script_end_to_end(end_to_end):
    result, tmp_path = end_to_end["stage3"].result(), end_to_end["stage3"].out_dir
    assert result.returncode == 0 and result.stderr == ""
    report = last_json_line(result.stdout)
    assert report["parabola"]["x_expected"] == pytest.approx(0.8**50, rel=1e-12)
    assert report["parabola"]["x_final"] == pytest.approx(0.8**50, rel=1e-5)
    network = report["network"]
    assert network["identical_to_sgd"] is True and network["max_abs_diff"] == 0.0
    assert network["identical_to_stage1"] is True and network["stage1_max_abs_diff"] == 0.0
    assert network["train_accuracy_before"] == 50.0 and network["train_accuracy_after"] == 100.0
    assert network["test_accuracy_before"] < 50.0 < 99.0 < network["test_accuracy_after"] < 100.0
    assert [run["optimizer"] for run in report["local_minima"]] == ["SimpleGD"] * 3 + ["SimpleMomentum"] * 3
    assert report["outputs"] == [str(tmp_path / "03_parabola.png"), str(tmp_path / "03_local_minima.gif")]
    assert gif_timing(tmp_path / "03_local_minima.gif")[0] == [50] * 79 + [1500]  # 20 a second, the last held
    assert result.stdout.count("identical, bit for bit (largest difference 0)") == 2
    lines = result.stdout.splitlines()
    for run in report["local_minima"]:
        where = "the global minimum" if run["is_global"] else "a local minimum"
        assert (f"  {run['optimizer']:<14} from x0 = {run['x0']:>5g}: stopped at x = {run['x_final']:8.4f}, "
                f"f = {run['f_final']:7.4f}, {where}") in lines
    assert lines[3] == f"wrote {tmp_path / '03_parabola.png'}"  # right after part 1, which it draws
    assert lines[-2] == f"wrote {tmp_path / '03_local_minima.gif'}"
    assert [line for line in lines if line.startswith("wrote ")] == [lines[3], lines[-2]]  # each picture once


def test_importing_the_script_runs_nothing(custom_optimizer, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    fresh = load_script("03_custom_optimizer.py")
    assert capsys.readouterr() == ("", "") and list(tmp_path.iterdir()) == []
    assert issubclass(fresh.SimpleGD, torch.optim.Optimizer)
    assert "bit for bit" in custom_optimizer.SimpleGD.__doc__ and "p.grad" in custom_optimizer.SimpleGD.__doc__


def test_same_seed_same_bytes(custom_optimizer, capsys, tmp_path):
    args = ["--minima-steps", "30", "--frames", "10", "--epochs", "1", "--quiet"]
    call_main(custom_optimizer, args + ["--out-dir", tmp_path / "a"], capsys)
    call_main(custom_optimizer, args + ["--out-dir", tmp_path / "b"], capsys)
    for name in ("03_parabola.png", "03_local_minima.gif"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


BAD_INPUTS = [
    (["--lr", "-1"], "--lr"), (["--lr", "nan"], "--lr"), (["--steps", "0"], "--steps"),
    (["--epochs", "0"], "--epochs"), (["--seed", "x"], "--seed"), (["--minima-lr", "inf"], "--minima-lr"),
    (["--minima-steps", "0"], "--minima-steps"), (["--starts", "a,b"], "--starts"), (["--starts", "9"], "--starts"),
    (["--starts", ""], "--starts"), (["--starts", "1,2,3,-1,0"], "--starts"), (["--frames", "1"], "--frames"),
    (["--frames", "500"], "--frames"), (["--device", "gpu"], "--device"),
    (["--steps", "10001"], "--steps"), (["--epochs", "1001"], "--epochs"), (["--epochs", str(10**20)], "--epochs"),
    (["--minima-steps", "10001"], "--minima-steps"), (["--minima-steps", "10", "--frames", "12"], "--frames"),
    (["--starts", "4.001"], "--starts"), (["--starts", "-4.001"], "--starts"), (["--seed", str(2**63)], "--seed"),
]


@pytest.mark.parametrize("argv, attribute, value", [
    (["--steps", "1"], "steps", 1), (["--steps", "10000"], "steps", 10000), (["--epochs", "1000"], "epochs", 1000),
    (["--minima-steps", "1"], "minima_steps", 1), (["--minima-steps", "10000"], "minima_steps", 10000),
    (["--seed", "0"], "seed", 0), (["--seed", str(2**63 - 1)], "seed", 2**63 - 1), (["--lr", "0"], "lr", 0.0),
    (["--starts=-4,4,0,1"], "starts", [-4.0, 4.0, 0.0, 1.0]), (["--minima-steps", "10"], "frames", 11),
    (["--minima-steps", "79"], "frames", 80), (["--minima-steps", "80"], "frames", 80),
    (["--minima-steps", "10", "--frames", "11"], "frames", 11), (["--frames", "2"], "frames", 2),
    (["--minima-steps", "10000", "--frames", "10001"], "frames", 10001),
])
def test_every_limit_itself_is_accepted(custom_optimizer, argv, attribute, value):
    assert getattr(custom_optimizer.parse_args(argv), attribute) == value


def test_defaults_are_the_articles(custom_optimizer):
    args = custom_optimizer.parse_args([])
    assert (args.lr, args.steps, args.seed, args.epochs) == (0.1, 50, 0, 2)
    assert (args.minima_lr, args.minima_steps, args.starts, args.frames) == (0.05, 200, [2.5, 3.0, -2.0], 80)


def test_frames_follow_a_short_run_without_being_asked(custom_optimizer, capsys, tmp_path):
    status, out, err = call_main(custom_optimizer, ["--minima-steps", "10", "--epochs", "1", "--out-dir", tmp_path,
                                                    "--json", "--quiet"], capsys)
    assert status == 0 and err == ""
    assert len(gif_timing(tmp_path / "03_local_minima.gif")[0]) == 11  # one duration per frame


@pytest.mark.parametrize("argv, flag", BAD_INPUTS)
def test_bad_input_is_a_usage_error_naming_the_flag(custom_optimizer, capsys, argv, flag):
    status, _, err = call_main(custom_optimizer, argv + ["--no-plots"], capsys)
    assert status == 2 and "Traceback" not in err and flag in err.strip().splitlines()[-1]


def test_frames_past_the_longest_run_are_refused_by_their_range(custom_optimizer, capsys):
    status, _, err = call_main(custom_optimizer, ["--frames", "10002", "--no-plots"], capsys)
    assert status == 2 and err.strip().splitlines()[-1].endswith("--frames: must be a whole number from 2 to 10001, "
                                                                 "got '10002'")


def first_escape(x, slope, lr, bound=1000):
    """The first step of plain gradient descent, in float64, after which |x| > bound."""
    for step in range(1, 100):
        x -= lr * slope(x)
        if abs(x) > bound:
            return step
    return None


@pytest.mark.parametrize("argv, where", [
    (["--lr", "1e37"], f"SimpleGD(lr=1e+37) from x0 = 1 diverged at step {first_escape(1.0, lambda x: 2 * x, 1e37)}"),
    (["--minima-lr", "100"],
     f"SimpleGD(lr=100) from x0 = 2.5 diverged at step {first_escape(2.5, lambda x: bumpy_slope(x), 100)}"),
])
def test_divergence_exits_1(custom_optimizer, capsys, argv, where):
    status, _, err = call_main(custom_optimizer, argv + ["--no-plots", "--quiet"], capsys)
    assert status == 1 and f"{where}: |x| passed 1000; try a smaller learning rate" in err
    assert len(err.strip().splitlines()) == 1


def test_unwritable_out_dir_exits_1(custom_optimizer, capsys, tmp_path):
    (tmp_path / "file").write_text("")
    status, _, err = call_main(custom_optimizer, ["--out-dir", tmp_path / "file" / "pictures"], capsys)
    assert status == 1 and "--out-dir" in err and len(err.strip().splitlines()) == 1


def test_help_says_which_part_each_flag_drives(custom_optimizer, capsys):
    text = help_text(custom_optimizer, capsys)
    flat = " ".join(text.split())
    assert flat.startswith("usage:")
    assert "Stage 3: write your own optimizer, SimpleGD, and check it against torch.optim.SGD." in flat
    entries = help_entries(text)
    for flag in ("--steps", "--seed", "--epochs", "--minima-lr", "--minima-steps", "--starts", "--frames"):
        assert "part " in entries[flag] and "(default: " in entries[flag]
    for flag in ("--lr", "--device", "--out-dir", "--no-plots", "--quiet", "--json"):
        assert "(default: " in entries[flag]

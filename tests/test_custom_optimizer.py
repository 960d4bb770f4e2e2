"""SimpleGD against torch.optim.SGD, the reference (as micrograd tests itself against
PyTorch), and 03_custom_optimizer.py's three parts against independent answers."""

import math

import pytest
import torch
from torch import nn

from conftest import call_main, help_entries, help_text, last_json_line, load_script


def mlp():
    return nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 16), nn.Tanh(), nn.Linear(16, 3))


def twin_models(seed=0):
    torch.manual_seed(seed)
    model = mlp()
    twin = mlp()
    twin.load_state_dict(model.state_dict())
    return model, twin


def batch(step):
    generator = torch.Generator().manual_seed(step)
    return torch.randn(32, 8, generator=generator), torch.randint(0, 3, (32,), generator=generator)


def train_step(model, optimizer, step):
    inputs, labels = batch(step)
    optimizer.zero_grad()
    loss = nn.functional.cross_entropy(model(inputs), labels)
    loss.backward()
    optimizer.step()
    return loss


def assert_same_bits(model, twin):
    for ours, theirs in zip(model.parameters(), twin.parameters()):
        assert torch.equal(ours, theirs)


# --- SimpleGD is SGD(momentum=0), bit for bit ---------------------------------

def test_same_parameters_bit_for_bit_over_many_steps(custom_optimizer):
    model, twin = twin_models()
    ours = custom_optimizer.SimpleGD(model.parameters(), lr=0.05)
    theirs = torch.optim.SGD(twin.parameters(), lr=0.05, momentum=0)
    for step in range(100):
        train_step(model, ours, step)
        train_step(twin, theirs, step)
        assert_same_bits(model, twin)
    assert not torch.equal(model[0].weight, mlp()[0].weight)  # it did move


def test_param_groups_with_their_own_learning_rates(custom_optimizer):
    model, twin = twin_models(1)

    def groups(m):
        return [{"params": m[0].parameters(), "lr": 0.2}, {"params": [*m[2].parameters(), *m[4].parameters()]}]

    ours = custom_optimizer.SimpleGD(groups(model), lr=0.01)
    theirs = torch.optim.SGD(groups(twin), lr=0.01)
    assert [g["lr"] for g in ours.param_groups] == [0.2, 0.01]
    for step in range(50):
        train_step(model, ours, step)
        train_step(twin, theirs, step)
    assert_same_bits(model, twin)


def test_a_learning_rate_scheduler_drives_it(custom_optimizer):
    model, twin = twin_models(2)
    ours = custom_optimizer.SimpleGD(model.parameters(), lr=0.1)
    theirs = torch.optim.SGD(twin.parameters(), lr=0.1)
    schedules = [torch.optim.lr_scheduler.StepLR(o, step_size=10, gamma=0.5) for o in (ours, theirs)]
    for step in range(35):
        train_step(model, ours, step)
        train_step(twin, theirs, step)
        for schedule in schedules:
            schedule.step()
    assert ours.param_groups[0]["lr"] == theirs.param_groups[0]["lr"] == 0.1 * 0.5**3
    assert_same_bits(model, twin)


def test_step_with_a_closure_returns_its_loss_and_enables_grad(custom_optimizer):
    model, twin = twin_models(3)
    ours = custom_optimizer.SimpleGD(model.parameters(), lr=0.1)
    theirs = torch.optim.SGD(twin.parameters(), lr=0.1)
    inputs, labels = batch(0)

    def closure_for(m, optimizer):
        def closure():
            optimizer.zero_grad()
            loss = nn.functional.cross_entropy(m(inputs), labels)
            loss.backward()
            return loss
        return closure

    with torch.no_grad():  # step() must turn gradients back on for the closure
        our_loss = ours.step(closure_for(model, ours))
        their_loss = theirs.step(closure_for(twin, theirs))
    assert torch.equal(our_loss, their_loss)
    assert_same_bits(model, twin)
    assert ours.step() is None


def test_parameters_without_gradients_are_skipped(custom_optimizer):
    model, twin = twin_models(4)
    ours = custom_optimizer.SimpleGD(model.parameters(), lr=0.1)
    theirs = torch.optim.SGD(twin.parameters(), lr=0.1)
    frozen_before = model[4].weight.clone()
    for m, optimizer in ((model, ours), (twin, theirs)):
        optimizer.zero_grad()
        m[:2](batch(0)[0]).sum().backward()  # the last layers take no part: their .grad stays None
        optimizer.step()
    assert model[4].weight.grad is None and torch.equal(model[4].weight, frozen_before)
    assert_same_bits(model, twin)


def raised(make):
    try:
        make()
    except Exception as error:  # noqa: BLE001 - we compare whatever both raise
        return type(error), str(error)
    return None


@pytest.mark.parametrize("case", ["negative lr", "empty list", "non-leaf tensor", "a tensor, not a list"])
def test_validation_matches_sgd(custom_optimizer, case):
    leaf = torch.zeros(3, requires_grad=True)
    params, lr = {
        "negative lr": ([leaf], -0.1),
        "empty list": ([], 0.1),
        "non-leaf tensor": ([leaf * 2], 0.1),
        "a tensor, not a list": (leaf, 0.1),
    }[case]
    ours = raised(lambda: custom_optimizer.SimpleGD(params, lr=lr))
    theirs = raised(lambda: torch.optim.SGD(params, lr=lr))
    assert theirs is not None and ours == theirs


def test_state_dict_round_trip(custom_optimizer):
    model, _ = twin_models(5)
    optimizer = custom_optimizer.SimpleGD([{"params": model[0].parameters(), "lr": 0.3},
                                           {"params": model[2].parameters()}], lr=0.01)
    train_step(model, optimizer, 0)
    saved = optimizer.state_dict()
    restored = custom_optimizer.SimpleGD([{"params": model[0].parameters(), "lr": 9.0},
                                          {"params": model[2].parameters()}], lr=9.0)
    restored.load_state_dict(saved)
    assert restored.state_dict() == saved
    assert [g["lr"] for g in restored.param_groups] == [0.3, 0.01]


def test_step_hooks_run(custom_optimizer):
    model, _ = twin_models(6)
    optimizer = custom_optimizer.SimpleGD(model.parameters(), lr=0.1)
    calls = []
    optimizer.register_step_pre_hook(lambda opt, args, kwargs: calls.append("pre"))
    optimizer.register_step_post_hook(lambda opt, args, kwargs: calls.append("post"))
    train_step(model, optimizer, 0)
    assert calls == ["pre", "post"]


def test_the_articles_update_is_close_but_not_always_the_same_bits(custom_optimizer):
    """Why SimpleGD writes add_(grad, alpha=-lr): p.add_(grad * -lr) rounds twice."""
    torch.manual_seed(0)
    param, grad = torch.randn(100_000), torch.randn(100_000)
    fused = param.clone().add_(grad, alpha=-0.1)
    article = param.clone().add_(grad * -0.1)
    torch.testing.assert_close(fused, article)
    assert not torch.equal(fused, article)


# --- part 1: the parabola ------------------------------------------------------

def test_parabola_follows_the_closed_form(custom_optimizer):
    assert custom_optimizer.part_parabola(0.25, 20)[0] == [0.5**n for n in range(21)]  # exact in float32
    xs = custom_optimizer.part_parabola(0.1, 50)[0]
    for n in (1, 10, 50):
        assert xs[n] == pytest.approx(0.8**n, rel=2 * n * torch.finfo(torch.float32).eps)


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
        momentum = 0.9 if "momentum" in run["optimizer"] else 0.0
        x_final = descend_by_hand(run["x0"], 0.05, 200, momentum)
        assert run["x_final"] == pytest.approx(x_final, abs=1e-3)
        assert run["f_final"] == pytest.approx(bumpy(x_final), abs=1e-4)
        assert run["is_global"] == (bumpy(x_final) - f_best < 1e-3)
    by_start = {(r["optimizer"], r["x0"]): r["is_global"] for r in runs}
    assert by_start[("SimpleGD", 2.5)] is False and by_start[("SGD momentum 0.9", 2.5)] is True
    assert by_start[("SimpleGD", 3.0)] is False and by_start[("SGD momentum 0.9", 3.0)] is False


# --- the script ------------------------------------------------------------------

def test_script_end_to_end(end_to_end):
    result, tmp_path = end_to_end["stage3"].result(), end_to_end["stage3"].out_dir
    assert result.returncode == 0 and result.stderr == ""
    report = last_json_line(result.stdout)
    assert report["parabola"]["x_expected"] == pytest.approx(0.8**50, rel=1e-12)
    assert report["parabola"]["x_final"] == pytest.approx(0.8**50, rel=1e-5)
    network = report["network"]
    assert network["identical_to_sgd"] is True and network["max_abs_diff"] == 0.0
    assert network["accuracy_before"] < 100.0 == network["accuracy_after"]
    assert report["outputs"] == [str(tmp_path / "03_parabola.png"), str(tmp_path / "03_local_minima.gif")]
    from PIL import Image

    with Image.open(tmp_path / "03_local_minima.gif") as gif:
        assert gif.n_frames == 80
    assert "identical, bit for bit" in result.stdout


def test_importing_the_script_runs_nothing(custom_optimizer, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    fresh = load_script("03_custom_optimizer.py")
    assert capsys.readouterr() == ("", "") and list(tmp_path.iterdir()) == []
    assert issubclass(fresh.SimpleGD, torch.optim.Optimizer)
    assert "bit for bit" in custom_optimizer.SimpleGD.__doc__ and "p.grad" in custom_optimizer.SimpleGD.__doc__


def test_same_seed_same_bytes(custom_optimizer, capsys, tmp_path):
    args = ["--minima-steps", "30", "--frames", "10", "--quiet"]
    call_main(custom_optimizer, args + ["--out-dir", tmp_path / "a"], capsys)
    call_main(custom_optimizer, args + ["--out-dir", tmp_path / "b"], capsys)
    for name in ("03_parabola.png", "03_local_minima.gif"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


BAD_INPUTS = [
    (["--lr", "-1"], "--lr"), (["--lr", "nan"], "--lr"), (["--steps", "0"], "--steps"),
    (["--epochs", "0"], "--epochs"), (["--seed", "x"], "--seed"), (["--minima-lr", "inf"], "--minima-lr"),
    (["--minima-steps", "0"], "--minima-steps"), (["--starts", "a,b"], "--starts"), (["--starts", "9"], "--starts"),
    (["--starts", ""], "--starts"), (["--starts", "1,2,3,4,5"], "--starts"), (["--frames", "1"], "--frames"),
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
])
def test_every_limit_itself_is_accepted(custom_optimizer, argv, attribute, value):
    assert getattr(custom_optimizer.parse_args(argv), attribute) == value


def test_defaults_are_the_articles(custom_optimizer):
    args = custom_optimizer.parse_args([])
    assert (args.lr, args.steps, args.seed, args.epochs) == (0.1, 50, 0, 2)
    assert (args.minima_lr, args.minima_steps, args.starts, args.frames) == (0.05, 200, [2.5, 3.0, -2.0], 80)


def test_frames_follow_a_short_run_without_being_asked(custom_optimizer, capsys, tmp_path):
    status, out, err = call_main(custom_optimizer, ["--minima-steps", "10", "--out-dir", tmp_path, "--json",
                                                    "--quiet"], capsys)
    assert status == 0 and err == ""
    from PIL import Image

    with Image.open(tmp_path / "03_local_minima.gif") as gif:
        assert gif.n_frames == 11


@pytest.mark.parametrize("argv, flag", BAD_INPUTS)
def test_bad_input_is_a_usage_error_naming_the_flag(custom_optimizer, capsys, argv, flag):
    status, _, err = call_main(custom_optimizer, argv + ["--no-plots"], capsys)
    assert status == 2 and "Traceback" not in err and flag in err.strip().splitlines()[-1]


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
    entries = help_entries(help_text(custom_optimizer, capsys))
    for flag in ("--steps", "--seed", "--epochs", "--minima-lr", "--minima-steps", "--starts", "--frames"):
        assert "part " in entries[flag] and "(default: " in entries[flag]
    for flag in ("--lr", "--device", "--out-dir", "--no-plots", "--quiet", "--json"):
        assert "(default: " in entries[flag]

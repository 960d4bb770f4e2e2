"""SimpleGD and SimpleMomentum against torch.optim.SGD, the reference (as micrograd
tests itself against PyTorch): the same parameters bit for bit (torch.equal) after
every step, in every situation SGD handles, and the same errors."""

import copy
import io

import pytest
import torch
from torch import nn

from twins import (
    assert_same_bits,
    descend_float64,
    loss_of,
    raised,
    train_both,
    train_both_by_closure,
    train_step,
    twin_models,
)

# Each hand-written optimizer and the torch.optim.SGD settings it must equal.
SETTINGS = {
    "SimpleGD": ({"lr": 0.05}, {"lr": 0.05, "momentum": 0}),
    "SimpleMomentum": ({"lr": 0.05, "momentum": 0.9}, {"lr": 0.05, "momentum": 0.9}),
}


@pytest.fixture(params=SETTINGS)
def pair(request, custom_optimizer):
    """make(params, **changes) -> (ours, SGD): the two optimizers, the same settings."""
    ours_class = getattr(custom_optimizer, request.param)
    ours_settings, sgd_settings = SETTINGS[request.param]

    def make(ours_params, sgd_params, **changes):
        return make.ours(ours_params, **changes), make.sgd(sgd_params, **changes)

    make.ours = lambda params, **changes: ours_class(params, **{**ours_settings, **changes})
    make.sgd = lambda params, **changes: torch.optim.SGD(params, **{**sgd_settings, **changes})
    make.name = request.param
    return make


# --- the same bits, step after step -------------------------------------------------

def test_same_parameters_bit_for_bit_over_100_steps(pair):
    model, twin = twin_models()
    start = copy.deepcopy(model)
    train_both(model, twin, *pair(model.parameters(), twin.parameters()), steps=range(100))
    assert not torch.equal(model[0].weight, start[0].weight)  # it did move


def test_two_param_groups_with_their_own_settings(pair):
    model, twin = twin_models(1)
    own = {"lr": 0.2} if pair.name == "SimpleGD" else {"lr": 0.2, "momentum": 0.5}

    def groups(m):
        return [{"params": m[0].parameters(), **own}, {"params": [*m[2].parameters(), *m[4].parameters()]}]

    ours, theirs = pair(groups(model), groups(twin), lr=0.01)
    assert [g["lr"] for g in ours.param_groups] == [0.2, 0.01]
    train_both(model, twin, ours, theirs, steps=range(100))


def test_a_learning_rate_scheduler_drives_it(pair):
    model, twin = twin_models(2)
    ours, theirs = pair(model.parameters(), twin.parameters(), lr=0.1)
    schedules = [torch.optim.lr_scheduler.StepLR(o, step_size=30, gamma=0.5) for o in (ours, theirs)]
    for step in range(100):
        train_step(model, ours, step)
        train_step(twin, theirs, step)
        for schedule in schedules:
            schedule.step()
        assert_same_bits(model, twin)
    assert ours.param_groups[0]["lr"] == theirs.param_groups[0]["lr"] == 0.1 * 0.5**3


def test_step_with_a_closure_returns_its_loss_and_enables_grad(pair):
    model, twin = twin_models(3)
    ours, theirs = pair(model.parameters(), twin.parameters())

    train_both_by_closure(model, twin, ours, theirs, steps=range(100))
    assert ours.step() is None


@pytest.mark.parametrize("where", ["first", "middle", "last"])
def test_a_layer_without_gradient_on_some_steps_is_left_alone(pair, where):
    """The middle Linear sits out every third step; the optimizers see its tensors first, in the middle or last."""
    model, twin = twin_models(4)

    def ordered(m):
        skipped, others = list(m[2].parameters()), [*m[0].parameters(), *m[4].parameters()]
        return {"first": skipped + others, "middle": others[:2] + skipped + others[2:], "last": others + skipped}[where]

    ours, theirs = pair(ordered(model), ordered(twin))
    for step in range(100):
        before = model[2].weight.clone()
        train_step(model, ours, step, skip_middle=step % 3 == 1)
        train_step(twin, theirs, step, skip_middle=step % 3 == 1)
        assert_same_bits(model, twin)
        if step % 3 == 1:
            assert model[2].weight.grad is None and torch.equal(model[2].weight, before)


def test_state_dict_at_step_50_continues_in_a_fresh_optimizer(pair, custom_optimizer):
    model, twin = twin_models(5)
    ours, theirs = pair(model.parameters(), twin.parameters())
    train_both(model, twin, ours, theirs, steps=range(50))
    saved = ours.state_dict()
    fresh = pair.ours(model.parameters(), lr=9.0)
    fresh.load_state_dict(saved)
    assert fresh.state_dict()["param_groups"] == saved["param_groups"]
    train_both(model, twin, fresh, theirs, steps=range(50, 100))


def test_the_velocity_is_sgds_momentum_buffer(custom_optimizer):
    model, twin = twin_models(6)
    ours = custom_optimizer.SimpleMomentum(model.parameters(), lr=0.05, momentum=0.9)
    theirs = torch.optim.SGD(twin.parameters(), lr=0.05, momentum=0.9)
    for step in range(3):
        train_step(model, ours, step)
        train_step(twin, theirs, step)
    for p, q in zip(model.parameters(), twin.parameters()):
        assert set(ours.state[p]) == {"velocity"}
        assert torch.equal(ours.state[p]["velocity"], theirs.state[q]["momentum_buffer"])


def test_simple_gd_keeps_no_state(custom_optimizer):
    model, _ = twin_models(6)
    optimizer = custom_optimizer.SimpleGD(model.parameters(), lr=0.05)
    train_step(model, optimizer, 0)
    assert len(optimizer.state) == 0


# --- every learning rate SGD accepts ------------------------------------------------

@pytest.mark.parametrize("lr", [0.0, 0.05, 1, torch.tensor(0.05), torch.tensor([0.05]), torch.tensor([[0.05]]),
                                torch.tensor(0.05, dtype=torch.float64), torch.tensor([0.05], dtype=torch.float64),
                                torch.tensor(0.05, dtype=torch.float16)], ids=str)
def test_every_learning_rate_sgd_accepts(pair, lr):
    model, twin = twin_models(7)
    train_both(model, twin, *pair(model.parameters(), twin.parameters(), lr=lr), steps=range(20))


@pytest.mark.parametrize("lr", [0.05, torch.tensor(0.05, dtype=torch.float64),
                                torch.tensor([0.05], dtype=torch.float64), torch.tensor(0.05)], ids=repr)
def test_float64_parameters_step_by_the_learning_rate_as_given(pair, lr):
    """A float32 parameter rounds any lr to float32 inside add_(alpha=), so only float64 parameters show
    whether a float64 lr is used as given or rounded: here the two differ, and ours must do what SGD does."""
    ours, theirs = descend_float64(pair.ours, lr), descend_float64(pair.sgd, lr)
    assert torch.equal(ours, theirs)
    other = torch.tensor(0.05) if isinstance(lr, float) or lr.dtype == torch.float64 else 0.05
    assert not torch.equal(ours, descend_float64(pair.sgd, other))  # the test can tell the two apart


INVALID = {
    "negative lr": {"lr": -0.1},
    "tiny negative lr": {"lr": -1e-300},
    "negative tensor lr": {"lr": torch.tensor([-0.1])},
    "two-element tensor lr": {"lr": torch.tensor([0.1, 0.1])},
    "empty tensor lr": {"lr": torch.tensor([])},
    "negative momentum": {"momentum": -0.1},
    "tiny negative momentum": {"momentum": -1e-300},
}


@pytest.mark.parametrize("case", INVALID)
def test_invalid_settings_raise_what_sgd_raises(pair, case):
    if "momentum" in case and pair.name == "SimpleGD":
        pytest.skip("SimpleGD has no momentum")
    leaf = torch.zeros(3, requires_grad=True)
    ours, theirs = raised(lambda: pair.ours([leaf], **INVALID[case])), raised(lambda: pair.sgd([leaf], **INVALID[case]))
    assert theirs is not None and ours == theirs


@pytest.mark.parametrize("settings", [{"lr": -0.1, "momentum": -0.1}, {"lr": torch.tensor([0.1, 0.1]), "momentum": -1},
                                      {"lr": -0.1, "params": []}, {"momentum": -0.1, "params": []}], ids=str)
def test_two_invalid_settings_raise_what_sgd_raises_first(pair, settings):
    """SGD checks the learning rate, then the momentum, then the parameters: with two wrong, the first one speaks."""
    if "momentum" in settings and pair.name == "SimpleGD":
        pytest.skip("SimpleGD has no momentum")
    settings = {"params": [torch.zeros(3, requires_grad=True)], **settings}
    ours, theirs = raised(lambda: pair.ours(**settings)), raised(lambda: pair.sgd(**settings))
    assert theirs is not None and ours == theirs


@pytest.mark.parametrize("case", ["empty list", "non-leaf tensor", "a tensor, not a list"])
def test_invalid_parameters_raise_what_sgd_raises(pair, case):
    leaf = torch.zeros(3, requires_grad=True)
    params = {"empty list": [], "non-leaf tensor": [leaf * 2], "a tensor, not a list": leaf}[case]
    ours, theirs = raised(lambda: pair.ours(params)), raised(lambda: pair.sgd(params))
    assert theirs is not None and ours == theirs


def test_the_defaults_are_sgds_and_the_articles(custom_optimizer):
    leaf = torch.zeros(3, requires_grad=True)
    assert custom_optimizer.SimpleGD([leaf]).defaults == {"lr": torch.optim.SGD([leaf]).defaults["lr"]} == {"lr": 1e-3}
    assert custom_optimizer.SimpleMomentum([leaf]).defaults == {"lr": 1e-3, "momentum": 0.9}


@pytest.mark.parametrize("settings", [{"lr": 0.0}, {"lr": -0.0}, {"momentum": 0.0}, {"momentum": 0},
                                      {"momentum": 1.0}, {"momentum": 1}, {"momentum": 1.5}, {"momentum": 0.999}],
                         ids=str)
def test_limits_sgd_accepts_are_accepted(pair, settings):
    """torch.optim.SGD refuses only a negative momentum: 1 and more are accepted, and must step alike."""
    if "momentum" in settings and pair.name == "SimpleGD":
        pytest.skip("SimpleGD has no momentum")
    model, twin = twin_models(8)
    train_both(model, twin, *pair(model.parameters(), twin.parameters(), **settings), steps=range(5))


# --- beyond plain float tensors ---------------------------------------------------

def test_complex_parameters(pair):
    torch.manual_seed(9)
    ours_z = torch.randn(6, dtype=torch.complex64, requires_grad=True)
    their_z = ours_z.detach().clone().requires_grad_()
    target = torch.randn(6, dtype=torch.complex64)
    ours, theirs = pair([ours_z], [their_z])
    for _ in range(50):
        for z, optimizer in ((ours_z, ours), (their_z, theirs)):
            optimizer.zero_grad()
            ((z - target).abs() ** 2).sum().backward()
            optimizer.step()
        assert torch.equal(ours_z, their_z)
    assert not torch.equal(ours_z, target)


def test_sparse_gradients(pair):
    model, twin = twin_models(10, build=lambda: nn.Embedding(20, 4, sparse=True))
    ours, theirs = pair(model.parameters(), twin.parameters())
    for step in range(50):
        words = torch.randint(0, 20, (6,), generator=torch.Generator().manual_seed(step))
        for m, optimizer in ((model, ours), (twin, theirs)):
            optimizer.zero_grad()
            (m(words) ** 2).sum().backward()
            assert m.weight.grad.is_sparse
            optimizer.step()
        assert torch.equal(model.weight, twin.weight)


def test_a_deep_copy_trains_on_as_the_original_would(pair):
    model, twin = twin_models(11)
    ours, theirs = pair(model.parameters(), twin.parameters())
    train_both(model, twin, ours, theirs, steps=range(10))
    copied = copy.deepcopy({"model": model, "optimizer": ours})
    train_both(copied["model"], twin, copied["optimizer"], theirs, steps=range(10))


def test_state_dict_survives_torch_save_and_weights_only_load(pair):
    model, twin = twin_models(12)
    ours, theirs = pair(model.parameters(), twin.parameters(), lr=torch.tensor([0.05]))
    train_both(model, twin, ours, theirs, steps=range(10))
    buffer = io.BytesIO()
    torch.save(ours.state_dict(), buffer)
    buffer.seek(0)
    loaded = pair.ours(model.parameters())
    loaded.load_state_dict(torch.load(buffer, weights_only=True))
    train_both(model, twin, loaded, theirs, steps=range(10, 30))


def test_step_hooks_run_around_the_update(pair):
    model, twin = twin_models(13)
    ours, theirs = pair(model.parameters(), twin.parameters())
    calls = []

    def halve_gradients(optimizer, args, kwargs):  # so the update must come after the pre hook
        for group in optimizer.param_groups:
            for p in group["params"]:
                p.grad.mul_(0.5)

    for optimizer in (ours, theirs):
        optimizer.register_step_pre_hook(halve_gradients)
        optimizer.register_step_post_hook(lambda opt, args, kwargs: calls.append(type(opt).__name__))
    train_both(model, twin, ours, theirs, steps=range(20))
    assert calls == [pair.name, "SGD"] * 20


def test_the_articles_update_is_close_but_not_always_the_same_bits():
    """Why SimpleGD writes add_(grad, alpha=-lr): p.add_(grad * -lr) rounds twice."""
    torch.manual_seed(0)
    param, grad = torch.randn(100_000), torch.randn(100_000)
    fused = param.clone().add_(grad, alpha=-0.1)
    article = param.clone().add_(grad * -0.1)
    torch.testing.assert_close(fused, article)
    assert not torch.equal(fused, article)


@pytest.mark.parametrize("set_to_none", [True, False])
def test_either_kind_of_zero_grad_keeps_them_equal(pair, set_to_none):
    """zero_grad(set_to_none=False) zeroes each .grad in place: an optimizer that kept p.grad
    itself (say, as its first velocity, without clone()) would see it wiped."""
    model, twin = twin_models(7)
    ours, theirs = pair(model.parameters(), twin.parameters())
    for step in range(5):
        for m, optimizer in ((model, ours), (twin, theirs)):
            optimizer.zero_grad(set_to_none=set_to_none)
            loss_of(m, step).backward()
            optimizer.step()
        assert_same_bits(model, twin)

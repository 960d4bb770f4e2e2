"""SimpleAdam (04_adam_by_hand.py) against torch.optim.Adam, the reference: the same parameters
bit for bit (torch.equal) after every step, in every situation Adam handles on the CPU, the same
state and the same errors; and TextbookAdam, the same formula in another order, close but not equal."""

import copy
import inspect
import io
import math
import re

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch import nn

from twins import (
    assert_same_bits,
    descend_float64,
    raised,
    train_both,
    train_both_by_closure,
    train_step,
    twin_models,
)

# Adam's single-tensor code, which SimpleAdam follows: asked for, and what Adam() picks by itself on the CPU.
REFERENCES = {"foreach=False": {"foreach": False}, "Adam()": {}}


@pytest.fixture
def simple_adam(adam_lesson):
    return adam_lesson.SimpleAdam


def adam(params, **settings):
    return torch.optim.Adam(params, foreach=False, **settings)


@pytest.fixture(params=REFERENCES)
def reference(request):
    """torch.optim.Adam with foreach=False, or as Adam() chooses."""
    return lambda params, **settings: torch.optim.Adam(params, **REFERENCES[request.param], **settings)


def raises_like_adam(make_adam):
    """pytest.raises for exactly what Adam raises here: its exception type, and its whole message."""
    adams = raised(make_adam)
    assert adams is not None, "Adam accepts this: the case tests nothing"
    return pytest.raises(adams[0], match=f"^{re.escape(adams[1])}$")


# --- the same bits, step after step -------------------------------------------------

def test_defaults_same_parameters_bit_for_bit_over_100_steps(simple_adam, reference):
    model, twin = twin_models()
    start = copy.deepcopy(model)
    train_both(model, twin, simple_adam(model.parameters()), reference(twin.parameters()), steps=range(100))
    assert not torch.equal(model[0].weight, start[0].weight)  # it did move


SETTINGS = [
    {"weight_decay": 0.1},
    {"maximize": True},
    {"amsgrad": True, "betas": (0.9, 0.9)},  # a quick v, which often falls below its maximum
    {"betas": (0.8, 0.99), "eps": 1e-4},
    {"betas": (0.0, 0.0), "eps": 1e-6},
    {"weight_decay": 0.05, "amsgrad": True, "maximize": True, "lr": 0.01},
    {"lr": 0.01, "betas": (0.5, 0.9), "eps": 1e-3, "weight_decay": 1, "amsgrad": True},  # a whole-number decay
]


@pytest.mark.parametrize("settings", SETTINGS, ids=str)
def test_each_setting_same_bits(simple_adam, settings):
    model, twin = twin_models(1)
    train_both(model, twin, simple_adam(model.parameters(), **settings), adam(twin.parameters(), **settings),
               steps=range(20))


def test_two_param_groups_with_their_own_settings(simple_adam):
    model, twin = twin_models(2)
    own = {"lr": 0.02, "betas": (0.5, 0.9), "amsgrad": True, "weight_decay": 0.1, "maximize": True}

    def groups(m):
        return [{"params": m[0].parameters(), **own}, {"params": [*m[2].parameters(), *m[4].parameters()]}]

    ours, theirs = simple_adam(groups(model), lr=0.005), adam(groups(twin), lr=0.005)
    assert [g["lr"] for g in ours.param_groups] == [0.02, 0.005]
    assert [g["amsgrad"] for g in ours.param_groups] == [True, False]
    train_both(model, twin, ours, theirs, steps=range(40))


@pytest.mark.parametrize("schedule", ["StepLR", "ExponentialLR"])
def test_a_learning_rate_scheduler_drives_it(simple_adam, schedule):
    model, twin = twin_models(3)
    ours, theirs = simple_adam(model.parameters(), lr=0.01), adam(twin.parameters(), lr=0.01)
    settings = {"StepLR": {"step_size": 10, "gamma": 0.5}, "ExponentialLR": {"gamma": 0.9}}[schedule]
    schedules = [getattr(torch.optim.lr_scheduler, schedule)(o, **settings) for o in (ours, theirs)]
    for step in range(40):
        train_step(model, ours, step)
        train_step(twin, theirs, step)
        for scheduler in schedules:
            scheduler.step()
        assert_same_bits(model, twin)
    expected = {"StepLR": 0.01 * 0.5**4, "ExponentialLR": 0.01 * 0.9**40}[schedule]
    assert ours.param_groups[0]["lr"] == theirs.param_groups[0]["lr"] == pytest.approx(expected)


def test_step_with_a_closure_returns_its_loss_and_enables_grad(simple_adam):
    model, twin = twin_models(4)
    ours, theirs = simple_adam(model.parameters()), adam(twin.parameters())

    train_both_by_closure(model, twin, ours, theirs, steps=range(30))
    assert ours.step() is None


@pytest.mark.parametrize("set_to_none", [True, False])
@pytest.mark.parametrize("where", ["first", "last"])
def test_a_layer_without_gradient_on_some_steps(simple_adam, set_to_none, where):
    """The middle Linear sits out step 0 and every third step. Before its first gradient it has no state,
    in Adam as in ours. Later, zero_grad(set_to_none=True) leaves it no gradient: no update, its step count
    stays; set_to_none=False leaves a zero gradient, which Adam does use: its averages decay and it moves."""
    model, twin = twin_models(5)

    def ordered(m):
        skipped, others = list(m[2].parameters()), [*m[0].parameters(), *m[4].parameters()]
        return skipped + others if where == "first" else others + skipped

    ours, theirs = simple_adam(ordered(model)), adam(ordered(twin))
    for step in range(20):
        sits_out = step % 3 == 0
        before = model[2].weight.clone()
        train_step(model, ours, step, skip_middle=sits_out, set_to_none=set_to_none)
        train_step(twin, theirs, step, skip_middle=sits_out, set_to_none=set_to_none)
        assert_same_bits(model, twin)
        if step == 0:
            assert model[2].weight not in ours.state and twin[2].weight not in theirs.state
            continue
        our_steps, their_steps = ours.state[model[2].weight]["step"], theirs.state[twin[2].weight]["step"]
        assert our_steps == their_steps.item()
        if sits_out:
            assert (model[2].weight.grad is None) == set_to_none
            assert torch.equal(model[2].weight, before) == set_to_none
    assert our_steps == (13 if set_to_none else 19)


@pytest.mark.parametrize("set_to_none", [True, False])
def test_either_kind_of_zero_grad_keeps_them_equal(simple_adam, set_to_none):
    """zero_grad(set_to_none=False) zeroes each .grad in place: an optimizer that kept p.grad
    itself (say, as its first average, without a copy) would see it wiped."""
    model, twin = twin_models(6)
    train_both(model, twin, simple_adam(model.parameters()), adam(twin.parameters()), steps=range(10),
               set_to_none=set_to_none)


@pytest.mark.parametrize("amsgrad", [False, True])
def test_the_state_is_adams_state(simple_adam, amsgrad):
    """step, exp_avg, exp_avg_sq (and max_exp_avg_sq) hold what Adam's hold; Adam keeps step in a tensor."""
    model, twin = twin_models(7)
    ours = simple_adam(model.parameters(), betas=(0.9, 0.9), amsgrad=amsgrad)
    theirs = adam(twin.parameters(), betas=(0.9, 0.9), amsgrad=amsgrad)
    train_both(model, twin, ours, theirs, steps=range(10))
    keys = {"step", "exp_avg", "exp_avg_sq"} | ({"max_exp_avg_sq"} if amsgrad else set())
    for p, q in zip(model.parameters(), twin.parameters()):
        assert set(ours.state[p]) == set(theirs.state[q]) == keys
        assert ours.state[p]["step"] == theirs.state[q]["step"].item() == 10
        for key in keys - {"step"}:
            assert torch.equal(ours.state[p][key], theirs.state[q][key])
    if amsgrad:  # the maximum is not simply the last v: the check above tells the two apart
        first = ours.state[model[0].weight]
        assert not torch.equal(first["max_exp_avg_sq"], first["exp_avg_sq"])


@pytest.mark.parametrize("through_a_file", [False, True])
def test_state_dict_at_step_20_continues_in_a_fresh_optimizer(simple_adam, through_a_file):
    model, twin = twin_models(8)
    settings = {"amsgrad": True, "weight_decay": 0.01, "lr": torch.tensor([0.002])}
    ours, theirs = simple_adam(model.parameters(), **settings), adam(twin.parameters(), **settings)
    train_both(model, twin, ours, theirs, steps=range(20))
    saved = ours.state_dict()
    if through_a_file:
        buffer = io.BytesIO()
        torch.save(saved, buffer)
        buffer.seek(0)
        saved = torch.load(buffer, weights_only=True)
    fresh = simple_adam(model.parameters(), lr=9.0)
    fresh.load_state_dict(saved)
    assert fresh.param_groups[0]["lr"] == torch.tensor([0.002])
    assert fresh.state[model[0].weight]["step"] == 20
    train_both(model, twin, fresh, theirs, steps=range(20, 40))


def test_adams_own_state_dict_continues_in_simple_adam(simple_adam):
    """Adam keeps its step count in a tensor: loaded into SimpleAdam, the steps go on with the same bits."""
    model, twin = twin_models(8)
    theirs, reference = adam(model.parameters(), amsgrad=True), adam(twin.parameters(), amsgrad=True)
    train_both(model, twin, theirs, reference, steps=range(10))
    ours = simple_adam(model.parameters(), amsgrad=True)
    ours.load_state_dict(theirs.state_dict())
    train_both(model, twin, ours, reference, steps=range(10, 20))


# What an older torch.optim.Adam saved: groups without the settings added since (PyTorch's own
# test_can_load_older_state_dict deletes these), and the step count as a number, not a tensor.
NEWER_ADAM_KEYS = ("amsgrad", "maximize", "foreach", "capturable", "differentiable", "fused", "decoupled_weight_decay")


def test_a_state_dict_from_an_older_adam_loads_as_adam_loads_it(simple_adam):
    """Adam's __setstate__ fills in the missing settings with their defaults; SimpleAdam must too, then step on
    with the same bits as Adam loaded from the same dict."""
    model, _ = twin_models(15)
    saver = adam(model.parameters(), lr=0.01, weight_decay=0.01)
    for step in range(5):
        train_step(model, saver, step)
    older = copy.deepcopy(saver.state_dict())
    for group in older["param_groups"]:
        assert set(NEWER_ADAM_KEYS) <= set(group)
        for key in NEWER_ADAM_KEYS:
            del group[key]
    for state in older["state"].values():
        state["step"] = state["step"].item()
    twin = copy.deepcopy(model)
    ours, theirs = simple_adam(model.parameters(), amsgrad=True), torch.optim.Adam(twin.parameters(), amsgrad=True)
    ours.load_state_dict(copy.deepcopy(older))  # each its own copy: loading keeps the dict's tensors as they are
    theirs.load_state_dict(older)
    assert ours.param_groups[0]["amsgrad"] is theirs.param_groups[0]["amsgrad"] is False  # the default, not ours
    train_both(model, twin, ours, theirs, steps=range(5, 15))


def test_a_group_with_its_own_eps_uses_it(simple_adam):
    """eps, like every setting, is each group's own: a large one in the first group changes its steps."""
    model, twin = twin_models(16)

    def groups(m):
        return [{"params": m[0].parameters(), "eps": 0.5}, {"params": [*m[2].parameters(), *m[4].parameters()]}]

    ours, theirs = simple_adam(groups(model), lr=0.01), adam(groups(twin), lr=0.01)
    assert [g["eps"] for g in ours.param_groups] == [0.5, 1e-8]
    train_both(model, twin, ours, theirs, steps=range(10))


def test_a_deep_copy_trains_on_as_the_original_would(simple_adam):
    model, twin = twin_models(9)
    ours, theirs = simple_adam(model.parameters(), amsgrad=True), adam(twin.parameters(), amsgrad=True)
    train_both(model, twin, ours, theirs, steps=range(10))
    copied = copy.deepcopy({"model": model, "optimizer": ours})
    train_both(copied["model"], twin, copied["optimizer"], theirs, steps=range(10, 30))


def test_step_hooks_run_around_the_update(simple_adam):
    model, twin = twin_models(10)
    ours, theirs = simple_adam(model.parameters()), adam(twin.parameters())
    calls = []

    def flip_gradients(optimizer, args, kwargs):  # Adam is blind to a gradient's scale, not to its sign
        for group in optimizer.param_groups:
            for p in group["params"]:
                p.grad.mul_(-2.0)

    def after(optimizer, args, kwargs):
        first = optimizer.param_groups[0]["params"][0]
        calls.append((type(optimizer).__name__, int(optimizer.state[first]["step"])))  # Adam's: a tensor, kept

    for optimizer in (ours, theirs):
        optimizer.register_step_pre_hook(flip_gradients)
        optimizer.register_step_post_hook(after)
    train_both(model, twin, ours, theirs, steps=range(10))
    assert calls == [(name, step) for step in range(1, 11) for name in ("SimpleAdam", "Adam")]


# --- every learning rate, dtype and kind of parameter Adam takes on the CPU --------

@pytest.mark.parametrize("lr", [0.0, 1e-12, 1e-3, 10.0, 1, torch.tensor(1e-3), torch.tensor([1e-3]),
                                torch.tensor([[1e-3]]), torch.tensor(1e-3, dtype=torch.float64),
                                torch.tensor([0.0])], ids=repr)
def test_every_learning_rate_adam_accepts(simple_adam, reference, lr):
    model, twin = twin_models(11)
    train_both(model, twin, simple_adam(model.parameters(), lr=lr), reference(twin.parameters(), lr=lr),
               steps=range(6))


@pytest.mark.parametrize("lr", [0.05, torch.tensor(0.05, dtype=torch.float64), torch.tensor([0.05]),
                                torch.tensor(0.05)], ids=repr)
def test_float64_parameters_step_by_the_learning_rate_as_given(simple_adam, lr):
    """On float64 parameters, a float32 tensor lr (0.05 rounded to float32) moves them otherwise than
    0.05 itself: ours must use each lr as Adam does."""
    ours = descend_float64(simple_adam, lr, seed=12, amsgrad=True)
    assert torch.equal(ours, descend_float64(adam, lr, seed=12, amsgrad=True))
    other = torch.tensor(0.05) if isinstance(lr, float) or lr.dtype == torch.float64 else 0.05
    assert not torch.equal(ours, descend_float64(adam, other, seed=12, amsgrad=True))  # the test tells them apart


@pytest.mark.parametrize("settings", [{}, {"amsgrad": True}, {"weight_decay": 0.1},
                                      {"amsgrad": True, "weight_decay": 0.1, "maximize": True}], ids=str)
def test_complex_parameters(simple_adam, reference, settings):
    """Adam updates a complex parameter as pairs of real numbers: its averages too, kept complex in its state."""
    torch.manual_seed(13)
    ours_z = torch.randn(6, dtype=torch.complex64, requires_grad=True)
    their_z = ours_z.detach().clone().requires_grad_()
    target = torch.randn(6, dtype=torch.complex64)
    sign = -1 if settings.get("maximize") else 1
    ours, theirs = simple_adam([ours_z], lr=0.05, **settings), reference([their_z], lr=0.05, **settings)
    for step in range(30):
        for z, optimizer in ((ours_z, ours), (their_z, theirs)):
            optimizer.zero_grad()
            (sign * ((z - target).abs() ** 2 + (0.3 * step) * z.real)).sum().backward()
            optimizer.step()
        assert torch.equal(ours_z, their_z)
    assert set(ours.state[ours_z]) == set(theirs.state[their_z])
    assert ours.state[ours_z]["step"] == theirs.state[their_z]["step"].item()
    for key in set(theirs.state[their_z]) - {"step"}:
        assert ours.state[ours_z][key].dtype == torch.complex64
        assert torch.equal(ours.state[ours_z][key], theirs.state[their_z][key])
    assert not torch.equal(ours_z, target)


# --- the same errors, the same defaults ---------------------------------------------

INVALID = {
    "negative lr": {"lr": -0.1},
    "NaN lr": {"lr": float("nan")},
    "negative tensor lr": {"lr": torch.tensor([-0.1])},
    "two-element tensor lr": {"lr": torch.tensor([0.1, 0.1])},
    "negative eps": {"eps": -1e-8},
    "beta 0 of 1": {"betas": (1.0, 0.999)},
    "negative beta 0": {"betas": (-0.1, 0.999)},
    "beta 1 of 1": {"betas": (0.9, 1.0)},
    "negative beta 1": {"betas": (0.9, -1e-300)},
    "negative weight_decay": {"weight_decay": -0.1},
    "float and tensor betas": {"betas": (0.9, torch.tensor(0.999))},
    "tensor and float betas": {"betas": (torch.tensor(0.9), 0.999)},
    "a whole-number beta": {"betas": (0, 0.999)},
    "all wrong at once": {"lr": -1.0, "eps": -1.0, "betas": (2.0, 2.0), "weight_decay": -1.0},
    "betas and decay wrong": {"betas": (0.9, 2.0), "weight_decay": -1.0},
}


@pytest.mark.parametrize("case", INVALID)
def test_invalid_settings_raise_what_adam_raises(simple_adam, case):
    leaf = torch.zeros(3, requires_grad=True)
    with raises_like_adam(lambda: adam([leaf], **INVALID[case])):
        simple_adam([leaf], **INVALID[case])


@pytest.mark.parametrize("case", ["empty list", "non-leaf tensor", "a tensor, not a list", "a tensor in two groups"])
def test_invalid_parameters_raise_what_adam_raises(simple_adam, case):
    leaf = torch.zeros(3, requires_grad=True)
    params = {"empty list": [], "non-leaf tensor": [leaf * 2], "a tensor, not a list": leaf,
              "a tensor in two groups": [{"params": [leaf]}, {"params": [leaf]}]}[case]
    with raises_like_adam(lambda: adam(params)):
        simple_adam(params)


def test_sparse_gradients_raise_what_adam_raises(simple_adam):
    embedding = nn.Embedding(20, 4, sparse=True)
    (embedding(torch.tensor([1, 5])) ** 2).sum().backward()
    assert embedding.weight.grad.is_sparse
    with raises_like_adam(lambda: adam(embedding.parameters()).step()):
        simple_adam(embedding.parameters()).step()


SHARED_OPTIONS = ("lr", "betas", "eps", "weight_decay", "amsgrad", "maximize")


def test_the_defaults_are_adams(simple_adam):
    ours, theirs = inspect.signature(simple_adam).parameters, inspect.signature(torch.optim.Adam).parameters
    assert [name for name in ours if name != "params"] == list(SHARED_OPTIONS)
    for name in SHARED_OPTIONS:
        assert (ours[name].default, ours[name].kind) == (theirs[name].default, theirs[name].kind), name
    leaf = torch.zeros(3, requires_grad=True)
    assert simple_adam([leaf]).defaults == {name: adam([leaf]).defaults[name] for name in SHARED_OPTIONS}


@pytest.mark.parametrize("option", ["capturable", "differentiable", "foreach", "fused", "decoupled_weight_decay"])
def test_adams_other_options_are_refused_as_unknown(simple_adam, option):
    leaf = torch.zeros(3, requires_grad=True)
    torch.optim.Adam([leaf], **{option: False})  # Adam knows it
    with pytest.raises(TypeError, match=f"unexpected keyword argument '{option}'"):
        simple_adam([leaf], **{option: False})


def test_betas_in_tensors_are_refused(simple_adam):
    """Adam takes both betas as tensors; the lesson leaves that out, and says so."""
    leaf = torch.zeros(3, requires_grad=True)
    betas = (torch.tensor(0.9), torch.tensor(0.999))
    adam([leaf], betas=betas)
    with pytest.raises(ValueError, match="^SimpleAdam takes betas as floats, not tensors$"):
        simple_adam([leaf], betas=betas)


# --- the textbook order: the same formula, other bits ------------------------------

def trained(optimizer_class, steps=10):
    model, _ = twin_models(14)
    optimizer = optimizer_class(model.parameters())
    for step in range(steps):
        train_step(model, optimizer, step)
    return list(model.parameters())


def test_textbook_adam_is_a_few_roundings_from_simple_adam_and_eps_inside_is_another_formula(adam_lesson):
    simple, textbook = trained(adam_lesson.SimpleAdam), trained(adam_lesson.TextbookAdam)
    eps_inside = trained(adam_lesson.EpsInsideAdam)
    for ours, theirs in zip(simple, textbook):
        spacing = torch.finfo(torch.float32).eps * ours.abs().max().item()  # float32's spacing at the largest weight
        torch.testing.assert_close(theirs, ours, rtol=0, atol=4 * spacing)
    assert not all(torch.equal(ours, theirs) for ours, theirs in zip(simple, textbook))
    assert not all(torch.equal(ours, theirs) for ours, theirs in zip(textbook, eps_inside))
    assert torch.equal(trained(adam_lesson.SimpleAdam)[0], simple[0])  # the runs are repeatable: not noise


# --- at any settings: drawn by Hypothesis, compared bit for bit ----------------------------------

def same_bits(ours, theirs):
    """Bit for bit, NaN included (torch.equal calls two NaNs different): each float32 as its 32 bits."""
    return all(torch.equal(a.detach().view(torch.int32), b.detach().view(torch.int32)) for a, b in zip(ours, theirs))


def train_and_compare(model, twin, ours, theirs, steps=3):
    for step in range(steps):
        train_step(model, ours, step)
        train_step(twin, theirs, step)
        assert same_bits(model.parameters(), twin.parameters()), f"step {step}"


UNIT = st.floats(0, 1)
BETA = st.floats(0, 1, exclude_max=True)


@given(lr=UNIT, betas=st.tuples(BETA, BETA), eps=UNIT, weight_decay=UNIT, amsgrad=st.booleans(),
       maximize=st.booleans())
def test_simple_adam_is_adam_at_any_settings(simple_adam, lr, betas, eps, weight_decay, amsgrad, maximize):
    settings = {"lr": lr, "betas": betas, "eps": eps, "weight_decay": weight_decay, "amsgrad": amsgrad,
                "maximize": maximize}
    model, twin = twin_models(18)
    train_and_compare(model, twin, simple_adam(model.parameters(), **settings), adam(twin.parameters(), **settings))


@given(lr=UNIT, alpha=BETA, eps=st.floats(1e-12, 1))
def test_simple_rmsprop_is_torch_rmsprop_at_any_settings(adam_lesson, lr, alpha, eps):
    """Lesson 04's RMSProp, SimpleAdam's update without m and bias correction, against PyTorch's own."""
    model, twin = twin_models(19)
    ours = adam_lesson.SimpleRMSprop(model.parameters(), lr=lr, alpha=alpha, eps=eps)
    theirs = torch.optim.RMSprop(twin.parameters(), lr=lr, alpha=alpha, eps=eps, foreach=False)
    train_and_compare(model, twin, ours, theirs, steps=5)


def test_simple_rmsprops_defaults_are_rmsprops(adam_lesson):
    ours, theirs = inspect.signature(adam_lesson.SimpleRMSprop).parameters, inspect.signature(torch.optim.RMSprop)
    assert all(ours[name].default == theirs.parameters[name].default for name in ("lr", "alpha", "eps"))
    model, twin = twin_models(20)
    train_and_compare(model, twin, adam_lesson.SimpleRMSprop(model.parameters()), torch.optim.RMSprop(
        twin.parameters()), steps=10)


# --- how far one Adam step can go: the bound, against torch.optim.Adam itself -------------------------

def step_bounds(steps, beta1, beta2):
    """B(1), ..., B(steps): Cauchy-Schwarz on m's sum against v's sum, then both bias corrections; the sum
    of (beta1^2/beta2)^j added up term by term here, not by its closed form."""
    t = torch.arange(1, steps + 1, dtype=torch.float64)
    sums = ((beta1**2 / beta2) ** (t - 1)).cumsum(0)
    return (1 - beta1) / math.sqrt(1 - beta2) * sums.sqrt() * (1 - beta2**t).sqrt() / (1 - beta1**t)


def adams_moves(gradients, **settings):
    """torch.optim.Adam (lr 1) fed gradients[k] at step k + 1: how far each step moved each coordinate."""
    point = torch.zeros(gradients.shape[1], dtype=torch.float64, requires_grad=True)
    optimizer, positions = torch.optim.Adam([point], lr=1.0, **settings), [torch.zeros(gradients.shape[1])]
    for gradient in gradients:
        point.grad = gradient.clone()
        optimizer.step()
        positions.append(point.detach().clone())
    return torch.stack(positions).diff(dim=0).abs()


def gradient_sequences(steps, beta1, beta2, seed=0):
    """Column 0 grows by beta2/beta1 a step, up to 1e76 (the case of equality); 3 random kinds in the rest:
    sizes drawn anywhere from 1e-6 to 1e6, a random walk of the size, and zeros broken by rare spikes."""
    draw = torch.Generator().manual_seed(seed)
    k = torch.arange(steps, dtype=torch.float64)[:, None]
    uniform = lambda columns: torch.rand(steps, columns, generator=draw, dtype=torch.float64)  # noqa: E731
    signs = lambda columns: torch.randn(steps, columns, generator=draw, dtype=torch.float64).sign()  # noqa: E731
    growing = 1e76 * (beta1 / beta2) ** (steps - 1 - k)  # eps counts for nothing but at the very start
    scattered = 10 ** (12 * uniform(20) - 6) * signs(20)
    walk = 10 ** (0.3 * torch.randn(steps, 20, generator=draw, dtype=torch.float64).cumsum(0)) * signs(20)
    spikes = (uniform(20) < 0.01) * 10 ** (12 * uniform(20) - 6)
    return torch.cat([growing, scattered, walk, spikes], dim=1)


@pytest.mark.parametrize("betas, steps", [((0.9, 0.999), 3000), ((0.5, 0.9), 400)], ids=str)
def test_adams_step_stays_within_the_bound_and_a_growing_gradient_nearly_reaches_it(betas, steps):
    beta1, beta2 = betas
    moves, bounds = adams_moves(gradient_sequences(steps, beta1, beta2), betas=betas), step_bounds(steps, *betas)
    assert (moves <= bounds[:, None] * (1 + 1e-12)).all()  # float64's rounding aside
    supremum = (1 - beta1) / math.sqrt((1 - beta2) * (1 - beta1**2 / beta2))  # 7.27 for the defaults
    assert bounds.max() <= supremum * (1 + 1e-12)
    assert moves[-1, 0] > 0.97 * supremum > (1 - beta1) / math.sqrt(1 - beta2)  # past the lesson's old bound
    assert torch.allclose(moves[-steps // 4 :, 0], bounds[-steps // 4 :], rtol=1e-9, atol=0)  # once eps is nothing


def test_the_lessons_bound_is_this_bound(adam_lesson):
    bounds = step_bounds(5000, 0.9, 0.999)
    for t in (1, 2, 10, 100, 1000, 5000):
        assert adam_lesson.adam_bound(t) == pytest.approx(bounds[t - 1].item(), rel=1e-12)
    assert adam_lesson.adam_bound(math.inf) == pytest.approx(7.2703, abs=5e-5)

"""Twin models for the optimizer tests (test_optimizers.py, test_adam.py): the same initial weights,
the same batches, one trained by a hand-written optimizer and the other by torch.optim's, compared
bit for bit (torch.equal) after every step."""

import copy

import torch
from torch import nn


def mlp():
    return nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 16), nn.Tanh(), nn.Linear(16, 3))


def twin_models(seed=0, build=mlp):
    torch.manual_seed(seed)
    model = build()
    return model, copy.deepcopy(model)


def batch(step):
    generator = torch.Generator().manual_seed(step)
    return torch.randn(32, 8, generator=generator), torch.randint(0, 3, (32,), generator=generator)


def loss_of(model, step, skip_middle=False):
    """Cross-entropy on batch `step`; with skip_middle, the middle Linear takes no part (its grad stays None)."""
    inputs, labels = batch(step)
    layers = [model[0], model[1], model[3], model[4]] if skip_middle else list(model)
    for layer in layers:
        inputs = layer(inputs)
    return nn.functional.cross_entropy(inputs, labels)


def train_step(model, optimizer, step, skip_middle=False, set_to_none=True):
    optimizer.zero_grad(set_to_none=set_to_none)
    loss = loss_of(model, step, skip_middle)
    loss.backward()
    optimizer.step()
    return loss


def assert_same_bits(model, twin):
    """The same parameters; and the same gradients, which a step must leave as backward() left them."""
    for ours, theirs in zip(model.parameters(), twin.parameters(), strict=True):
        assert torch.equal(ours, theirs)
        assert ours.grad is theirs.grad is None or torch.equal(ours.grad, theirs.grad)


def train_both(model, twin, ours, theirs, steps, **step_options):
    """Train both on the same batches, `steps` a range of batch numbers; the same bits after every step."""
    for step in steps:
        train_step(model, ours, step, **step_options)
        train_step(twin, theirs, step, **step_options)
        assert_same_bits(model, twin)


def closure_for(model, optimizer, step):
    """The closure that step(closure) calls: clear the gradients, compute batch `step`'s loss, backward()."""
    def closure():
        optimizer.zero_grad()
        loss = loss_of(model, step)
        loss.backward()
        return loss
    return closure


def train_both_by_closure(model, twin, ours, theirs, steps):
    """train_both, each step through step(closure) under no_grad: step() must turn gradients back on."""
    for step in steps:
        with torch.no_grad():
            our_loss = ours.step(closure_for(model, ours, step))
            their_loss = theirs.step(closure_for(twin, theirs, step))
        assert torch.equal(our_loss, their_loss)
        assert_same_bits(model, twin)


def descend_float64(optimizer_for, lr, steps=20, seed=14, **settings):
    """A float64 parameter on a float64 quadratic bowl: its values after `steps` steps."""
    torch.manual_seed(seed)
    param = torch.randn(1000, dtype=torch.float64, requires_grad=True)
    target, scales = torch.randn(1000, dtype=torch.float64), torch.rand(1000, dtype=torch.float64)
    optimizer = optimizer_for([param], lr=lr, **settings)
    for _ in range(steps):
        optimizer.zero_grad()
        (scales * (param - target) ** 2).sum().backward()
        optimizer.step()
    return param.detach()


def raised(make):
    """(exception type, message) of what make() raises; None if it raises nothing."""
    try:
        make()
    except Exception as error:  # noqa: BLE001 - we compare whatever both raise
        return type(error), str(error)
    return None

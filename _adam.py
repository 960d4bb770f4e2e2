"""Machinery, not lesson: a learner need not read this file.

What lesson 04's SimpleAdam needs around Adam's update to stand in for torch.optim.Adam,
so that the lesson shows the update alone (`update`). `AdamBase`:
  - takes Adam's settings, with Adam's defaults, and refuses what Adam refuses, with Adam's
    exception and message;
  - in step(), evaluates the closure (with gradients on), then calls update() for each
    parameter that has a gradient; a sparse gradient is refused, as Adam refuses it;
  - keeps each parameter's state as Adam keeps it (step, exp_avg, exp_avg_sq, and max_exp_avg_sq
    with AMSGrad): m and v start at 0 at the parameter's first gradient, and step counts its steps;
  - hands update() the gradient as Adam uses it: its sign flipped with maximize (to climb), then
    L2 weight decay added (weight_decay * p, the gradient of weight_decay/2 * p^2), both on the
    parameter's own numbers, complex ones too, in Adam's order;
  - hands update() the step count as a float t, and m, v, the parameter and that gradient as real
    tensors (a complex number as a pair of reals, the same memory, as Adam updates it), and a
    learning rate held in a one-element tensor as a 0-d one, as Adam uses it;
  - loads a state_dict saved by an older torch.optim.Adam, whose groups lack the settings added
    since, by filling in their defaults, as Adam's own __setstate__ does.
"""

import torch


class AdamBase(torch.optim.Optimizer):
    """torch.optim.Adam's settings, state and step(); a subclass writes update(p, grad, state, group)."""

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, amsgrad=False,
                 *, maximize=False):
        check_adam_settings(lr, betas, eps, weight_decay)
        super().__init__(params, {"lr": lr, "betas": betas, "eps": eps, "weight_decay": weight_decay,
                                  "amsgrad": amsgrad, "maximize": maximize})

    def __setstate__(self, state):
        super().__setstate__(state)
        for group in self.param_groups:  # an older Adam's groups: the settings it did not have yet
            group.setdefault("amsgrad", False)
            group.setdefault("maximize", False)

    @torch.no_grad()  # the update must not be recorded by autograd
    def step(self, closure=None):
        """Take one step; with a closure, first re-evaluate the loss and return it."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            settings = {**group, "lr": as_scalar(group["lr"])}
            for p in group["params"]:
                if p.grad is not None:
                    state = self.counted_state(p, group)
                    self.update(real_view(p), real_view(gradient_used(p, group)), state, settings)
        return loss

    def counted_state(self, p, group):
        """p's state, this step counted, as update() reads it: t a float, the tensors as real views."""
        if p.grad.is_sparse:
            raise RuntimeError("Adam does not support sparse gradients, please consider SparseAdam instead")
        state = self.state[p]  # p's own dict, kept between steps
        if not state:
            state.update(step=0, exp_avg=torch.zeros_like(p), exp_avg_sq=torch.zeros_like(p))
            if group["amsgrad"]:
                state["max_exp_avg_sq"] = torch.zeros_like(p)
        state["step"] += 1  # an int here; a tensor if loaded from Adam's state
        return {key: float(value) if key == "step" else real_view(value) for key, value in state.items()}

    def update(self, p, grad, state, group):
        raise NotImplementedError


def gradient_used(p, group):
    """p's gradient as Adam uses it: with maximize, its sign flipped; then L2 weight decay added."""
    grad = -p.grad if group["maximize"] else p.grad
    if group["weight_decay"] != 0:  # the gradient of weight_decay/2 * p^2, added
        grad = grad.add(p, alpha=group["weight_decay"])
    return grad


def check_adam_settings(lr, betas, eps, weight_decay):
    """Refuse what torch.optim.Adam refuses, in its order, with the same exception and message."""
    if isinstance(lr, torch.Tensor) and lr.numel() != 1:
        raise ValueError("Tensor lr must be 1-element")
    for ok, message in ((0.0 <= lr, f"Invalid learning rate: {lr}"), (0.0 <= eps, f"Invalid epsilon value: {eps}"),
                        (0.0 <= betas[0] < 1.0, f"Invalid beta parameter at index 0: {betas[0]}"),
                        (0.0 <= betas[1] < 1.0, f"Invalid beta parameter at index 1: {betas[1]}"),
                        (0.0 <= weight_decay, f"Invalid weight_decay value: {weight_decay}")):
        if not ok:
            raise ValueError(message)
    if not all(isinstance(beta, float) for beta in betas):
        both_tensors = all(isinstance(beta, torch.Tensor) for beta in betas)
        raise ValueError("SimpleAdam takes betas as floats, not tensors" if both_tensors
                         else "betas must be either both floats or both Tensors")


def as_scalar(lr):
    """A one-element tensor lr as a 0-d tensor, as Adam uses it; a float stays a float."""
    return lr.squeeze() if isinstance(lr, torch.Tensor) else lr


def real_view(tensor):
    """A complex tensor as real pairs (shape [..., 2], the same memory); a real one as it is."""
    return torch.view_as_real(tensor) if tensor.is_complex() else tensor

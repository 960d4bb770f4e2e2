"""03_custom_optimizer.py, run top to bottom as a learner runs it, against independent answers:
the closed form, stage 1's training (written out again in conftest, and 01's own `train`),
descents with the derivatives worked out on paper, torch.optim.SGD's own runs, and the pictures'
pixels; at the settings the issue named, and at settings that Hypothesis draws from the flags' ranges.
(SimpleGD and SimpleMomentum themselves are tested against torch.optim.SGD in test_optimizers.py.)"""

import ast
import functools
import io
import json
import math
import runpy
import sys

import matplotlib.colors
import nbformat
import numpy as np
import pytest
import torch
from hypothesis import example, given
from hypothesis import strategies as st

import _cli
import _figures
import _flags
import _gif
import common
from conftest import (
    REPO_DIR,
    articles_loop,
    dot_product_accuracy,
    frames_of,
    gif_timing,
    last_json_line,
    lesson_settings,
    run_in_terminal,
    run_lesson,
)
from settings_space import check_generic, lesson_flags, number_text, parser_of, run_quickly

LESSON = "03_custom_optimizer.py"
SOURCE = (REPO_DIR / LESSON).read_text()
QUICK = ("--epochs", "1", "--minima-steps", "10", "--no-plots")  # parts 2 and 3 as short as they go
# Runs that several tests read (each runs once): part 3 past every edge, with part 2 at a power of two;
# part 3 past plain descent's edges, with part 2 at the default lr, 0.1.
PAST_THE_EDGES = ("--lr", "0.5", "--minima-lr", "1", "--epochs", "1", "--no-plots", "--json")
OSCILLATING = ("--minima-lr", "0.3", "--epochs", "1", "--no-plots", "--json")


def settings_cell():
    return lesson_settings(LESSON)


@functools.cache
def lesson(*args):
    """(what the lesson defined, what it printed) after `python 03_custom_optimizer.py ARGS`; each run once."""
    return run_lesson(LESSON, args)


def terminal(args):
    """`python 03_custom_optimizer.py ARGS` in this process: (exit status, stdout, stderr)."""
    return run_in_terminal(LESSON, args)


def run_edited(tmp_path, replacements, args=()):
    """Run the lesson with some of its lines edited, as a learner edits a notebook: (namespace, printed)."""
    text = SOURCE
    for old, new in replacements.items():
        if old not in text:  # the mutation runner rewrites the lesson with ast.unparse, in single quotes
            old, new = old.replace('"', "'"), new.replace('"', "'")
        assert text.count(old) >= 1, old
        text = text.replace(old, new)
    path = tmp_path / LESSON
    path.write_text(text)
    saved = sys.argv, sys.excepthook, sys.stdout
    sys.argv, sys.stdout = [str(path), *map(str, args)], io.StringIO()
    try:
        defined = runpy.run_path(str(path), run_name="__main__")
        return defined, sys.stdout.getvalue()
    finally:
        sys.argv, sys.excepthook, sys.stdout = saved


@pytest.fixture
def apply(apply_settings):
    """apply(flags, in_a_kernel=False, **changed) -> the settings after _flags.apply, from the settings cell."""
    return functools.partial(apply_settings, LESSON)


# --- part 1: the parabola ------------------------------------------------------

def test_parabola_follows_the_closed_form(custom_optimizer):
    def run(lr, steps):
        x = torch.tensor(1.0, requires_grad=True)
        return custom_optimizer.descend(torch.square, custom_optimizer.SimpleGD([x], lr=lr), x, steps)

    assert run(0.25, 20) == [0.5**n for n in range(21)]  # exact in float32
    xs = run(0.1, 50)
    for n in (1, 10, 50):
        assert xs[n] == pytest.approx(0.8**n, rel=2 * n * torch.finfo(torch.float32).eps)


def test_part_1_prints_the_run_and_its_relative_difference():
    namespace, printed = lesson("--steps", "20", "--json", *QUICK)
    xs, expected = namespace.xs, 0.8**20
    assert len(xs) == 21 and xs[1] == pytest.approx(0.8)
    assert last_json_line(printed)["parabola"] == {"x_final": xs[-1], "x_expected": expected, "steps_done": 20}
    assert printed.splitlines()[:3] == [
        "Part 1: SimpleGD(lr=0.1) on y = x^2 from x = 1.0, 20 steps, each multiplying x by 1 - 2*lr = 0.8",
        "  " + "  ".join(f"x{n}={xs[n]:.4g}" for n in range(0, 21, 2)),
        f"  closed form after 20 steps, x0*(1 - 2*lr)^n = {expected:.9g}, measured {xs[-1]:.9g} "
        f"(relative difference {abs(xs[-1] - expected) / expected:.1e})"]


@pytest.mark.parametrize("steps, shown", [(5, range(6)), (23, [*range(0, 23, 2), 23]), (99, [*range(0, 99, 9), 99])])
def test_part_1_prints_about_ten_positions_the_last_among_them(steps, shown):
    namespace, printed = lesson("--lr", "0.25", "--steps", str(steps), *QUICK)
    assert len(namespace.xs) == steps + 1
    assert printed.splitlines()[1] == "  " + "  ".join(f"x{n}={namespace.xs[n]:.4g}" for n in shown)


def test_part_1_says_absolute_where_the_closed_form_is_zero():
    namespace, printed = lesson("--lr", "0.5", "--steps", "3", *QUICK)
    assert namespace.xs == [1.0, 0.0, 0.0, 0.0] and namespace.x_expected == 0.0
    assert printed.splitlines()[2].endswith("measured 0 (absolute difference 0.0e+00)")


def test_part_1_says_relative_where_x_underflowed_but_the_closed_form_did_not():
    namespace, printed = lesson("--lr", "0.4", "--steps", "80", *QUICK)  # 0.2**80 is 1.2e-56 in float64
    assert namespace.xs[-1] == 0.0 and namespace.x_expected == pytest.approx(0.2**80, rel=1e-12)
    assert printed.splitlines()[2].endswith("measured 0 (relative difference 1.0e+00)")


def test_a_diverging_part_1_says_so_and_the_lesson_goes_on():
    """lr 1.5: each step multiplies x by -2, so x9 = -512 and step 10 would pass 1000. Part 1 says so, checks
    the closed form where it stopped, and parts 2 and 3 still run (part 2 trains at lr 1.5 without diverging)."""
    status, out, err = terminal(["--lr", "1.5", "--json", *QUICK])
    assert (status, err) == (0, "")
    lines, report = out.splitlines(), last_json_line(out)
    assert lines[:4] == [
        "Part 1: SimpleGD(lr=1.5) on y = x^2 from x = 1.0, 50 steps, each multiplying x by 1 - 2*lr = -2",
        "  " + "  ".join(f"x{n}={(-2) ** n:g}" for n in range(10)),
        "  diverged: step 10 would take |x| past 1000 (|1 - 2*lr| = 2 > 1); part 1 stops there, parts 2 and 3 go on",
        "  closed form after 9 steps, x0*(1 - 2*lr)^n = -512, measured -512 (relative difference 0.0e+00)"]
    assert report["parabola"] == {"x_final": -512.0, "x_expected": -512.0, "steps_done": 9}
    assert report["network"]["identical_to_sgd"] is True and len(report["local_minima"]) == 6


def test_help_gives_the_range_where_part_1_converges():
    entries = help_entries(terminal(["--help"])[1])
    assert "part 1's x shrinks for lr between 0 and 1 (|1 - 2*lr| < 1) and grows past 1" in entries["--lr"]


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
    """Momentum written the same way: the update rounded twice."""

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


def test_part_2_verdicts_are_the_weights_compared(tmp_path):
    """With the article's update in our optimizers, part 2 must say DIFFERENT, by as much as we measure here."""
    plain_gap = largest_difference(articles_loop(0, lr=0.1, momentum=0, optimizer_class=ArticleGD)[0],
                                   articles_loop(0, lr=0.1, momentum=0)[0])
    momentum_gap = largest_difference(articles_loop(0, optimizer_class=ArticleMomentum)[0], articles_loop(0)[0])
    assert plain_gap > 0 and momentum_gap > 0
    edits = {"p.add_(p.grad, alpha=-lr)": "p.add_(p.grad * -lr)",
             'p.add_(state["velocity"], alpha=-lr)': 'p.add_(state["velocity"] * -lr)'}
    _, printed = run_edited(tmp_path, edits, ["--minima-steps", "5", "--no-plots", "--json"])
    network = last_json_line(printed)["network"]
    assert network["identical_to_sgd"] is False and network["max_abs_diff"] == plain_gap
    assert network["identical_to_stage1"] is False and network["stage1_max_abs_diff"] == momentum_gap
    assert f"torch.optim.SGD(momentum=0) from the same start: DIFFERENT (largest difference {plain_gap:g})" in printed
    assert (f"both lr=0.001 momentum=0.9 as in stage 1, seed 0: DIFFERENT (largest difference {momentum_gap:g})"
            in printed)


def lr_kind_in_float32(lr):
    """How the article's product p.grad * -lr rounds: never where float32's lr is 0 or a power of two."""
    lr32 = np.float32(lr)
    mantissa, exponent = np.frexp(lr32)
    return "0" if lr32 == 0 else f"2^{exponent - 1}" if mantissa == 0.5 else "not a power of two"


@pytest.mark.parametrize("lr, kind, identical, run", [("0.5", "2^-1", True, PAST_THE_EDGES),
                                                      ("0.1", "not a power of two", False, OSCILLATING)])
def test_the_articles_form_matches_sgd_where_lr_is_a_power_of_two(lr, kind, identical, run):
    """p.grad * -lr is exact for lr = 0.5 (one rounding, as in SGD), not for 0.1: the verdict and its reason."""
    reference = articles_loop(0, epochs=1, lr=float(lr), momentum=0)[0]
    article = articles_loop(0, epochs=1, lr=float(lr), momentum=0, optimizer_class=ArticleGD)[0]
    gap = largest_difference(article, reference)
    assert (gap == 0) is identical and lr_kind_in_float32(float(lr)) == kind
    _, printed = lesson(*run)
    network = last_json_line(printed)["network"]
    assert network["article_identical"] is identical and network["article_max_abs_diff"] == gap
    assert network["exact_product"] is identical and network["identical_to_sgd"] is True
    verdict = "identical, bit for bit" if identical else "DIFFERENT"
    assert (f"  weights after the article's p.add_(p.grad * -lr) vs torch.optim.SGD(momentum=0): {verdict} "
            f"(largest difference {gap:g}); lr {lr} in float32 is {kind}") in printed.splitlines()


def test_part_2_trains_with_stage_1s_loop_and_evaluates_honestly():
    model, _ = articles_loop(3, epochs=1, lr=0.2, momentum=0)
    _, printed = lesson("--lr", "0.2", "--epochs", "1", "--seed", "3", "--minima-steps", "5", "--no-plots", "--json")
    network = last_json_line(printed)["network"]
    torch.manual_seed(3)
    start = common.Test_Conv().conv.weight.detach()
    trained = model.conv.weight.detach()
    for name, samples in (("train", common.classifiable_training_set()), ("test", common.noisy_test_set())):
        assert network[f"{name}_accuracy_before"] == dot_product_accuracy(start, *samples)
        assert network[f"{name}_accuracy_after"] == dot_product_accuracy(trained, *samples)
    assert network["identical_to_sgd"] is network["identical_to_stage1"] is True
    assert network["max_abs_diff"] == network["stage1_max_abs_diff"] == 0.0
    assert network["train_accuracy_after"] != network["train_accuracy_before"]  # it did train, with lr 0.2
    article_gap = largest_difference(articles_loop(3, epochs=1, lr=0.2, momentum=0, optimizer_class=ArticleGD)[0],
                                     model)
    assert network["article_max_abs_diff"] == article_gap > 0 and network["article_identical"] is False
    lines = printed.splitlines()
    assert (f"  weights after the article's p.add_(p.grad * -lr) vs torch.optim.SGD(momentum=0): DIFFERENT "
            f"(largest difference {article_gap:g}); lr 0.2 in float32 is not a power of two") in lines
    assert not [line for line in lines if "epoch " in line and "Part 2" not in line]  # no loss lines, no progress
    assert "Part 2: SimpleGD(lr=0.2) trains Test_Conv with stage 1's loop, 1 epoch" in lines
    assert (f"  training accuracy {network['train_accuracy_before']:.1f}% -> "
            f"{network['train_accuracy_after']:.1f}%; test accuracy {network['test_accuracy_before']:.1f}% -> "
            f"{network['test_accuracy_after']:.1f}%") in lines


@pytest.mark.parametrize("seed, epochs, settings", [(0, 2, {"lr": 0.1, "momentum": 0}), (5, 3, {"lr": 0.001,
                                                                                                "momentum": 0.9})])
def test_the_lessons_loop_is_the_articles(custom_optimizer, seed, epochs, settings):
    """03's loop, with torch.optim.SGD, against the article's loop written out in conftest: same losses, same bits."""
    reference, losses = articles_loop(seed, epochs=epochs, **settings)
    model = common.new_network(seed)
    assert custom_optimizer.train(model, torch.optim.SGD(model.parameters(), **settings), epochs) == losses
    assert torch.equal(model.conv.weight, reference.conv.weight) and len(losses) == 40 * epochs


@pytest.mark.parametrize("seed, epochs, optimizer", [(0, 2, "SimpleMomentum"), (5, 1, "SimpleGD")])
def test_the_lessons_loop_gives_stage_1s_weights(custom_optimizer, classifier, seed, epochs, optimizer):
    """03 writes stage 1's loop again: its `train` and 01's `train` (the article's order) give the same weights."""
    settings = {"lr": classifier.LR, "momentum": classifier.MOMENTUM} if optimizer == "SimpleMomentum" else {"lr": 0.1}
    ours, theirs = common.new_network(seed), common.new_network(seed)
    make = getattr(custom_optimizer, optimizer)
    our_losses = custom_optimizer.train(ours, make(ours.parameters(), **settings), epochs)
    their_losses = classifier.train(theirs, make(theirs.parameters(), **settings), epochs=epochs, order="sequential",
                                    seed=seed, verbose=False)
    assert our_losses == their_losses and len(our_losses) == 40 * epochs
    assert torch.equal(ours.conv.weight, theirs.conv.weight)


def test_simple_momentum_rebuilds_stage_1_with_stage_1s_settings(custom_optimizer, classifier):
    assert (custom_optimizer.STAGE1_LR, custom_optimizer.STAGE1_MOMENTUM) == (classifier.LR, classifier.MOMENTUM)
    defaults = settings_cell()
    assert (defaults["EPOCHS"], defaults["SEED"]) == (classifier.EPOCHS, classifier.SEED) == (2, 0)


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_training_shows_its_progress_on_a_terminal_only(custom_optimizer, monkeypatch, capsys):
    model = common.new_network(0)
    custom_optimizer.train(model, custom_optimizer.SimpleGD(model.parameters(), lr=0.1), 2, "part 2, SimpleGD")
    assert capsys.readouterr().out == ""  # piped, or in the tests: nothing
    screen = Terminal()
    monkeypatch.setattr(sys, "stdout", screen)
    custom_optimizer.train(model, custom_optimizer.SimpleGD(model.parameters(), lr=0.1), 3, "part 2, SimpleGD")
    assert screen.getvalue() == "".join(f"\rpart 2, SimpleGD: epoch {epoch} of 3\033[K" for epoch in (1, 2, 3)) \
        + "\r\033[K"  # the line is cleared at the end


def test_a_diverging_training_stops_with_one_line_and_clears_its_progress(custom_optimizer, monkeypatch):
    model = common.new_network(0)
    screen = Terminal()
    monkeypatch.setattr(sys, "stdout", screen)
    with pytest.raises(_cli.TrainingDiverged, match=r"training diverged \(part 2, SimpleGD\): the loss became "
                                                    r"(nan|inf) at epoch 1, step \d+; try a smaller --lr"):
        custom_optimizer.train(model, custom_optimizer.SimpleGD(model.parameters(), lr=1e37), 2, "part 2, SimpleGD")
    assert screen.getvalue().endswith("\r\033[K")


# --- part 3: local minima, recomputed here by hand -----------------------------

def bumpy(x):
    return x * x / 4 + 0.5 * math.sin(5 * x)


def bumpy_slope(x):
    return x / 2 + 2.5 * math.cos(5 * x)


def bumpy_curvature(x):
    return 0.5 - 12.5 * math.sin(5 * x)


def descend_by_hand(x0, lr, steps, momentum=0.0):
    """Gradient descent in float64 with the derivative worked out on paper."""
    x, velocity = x0, 0.0
    for step in range(steps):
        slope = bumpy_slope(x)
        velocity = slope if step == 0 else momentum * velocity + slope
        x -= lr * velocity
    return x


def floors_by_hand():
    """Every local minimum of bumpy in [-4, 4]: where the slope turns from - to + on a grid, then bisection."""
    grid = np.linspace(-4, 4, 4001)
    slopes = grid / 2 + 2.5 * np.cos(5 * grid)
    turns = (slopes[:-1] < 0) & (slopes[1:] >= 0)
    floors = []
    for low, high in zip(grid[:-1][turns], grid[1:][turns]):
        for _ in range(60):
            middle = (low + high) / 2
            low, high = (middle, high) if bumpy_slope(middle) < 0 else (low, middle)
        floors.append(float((low + high) / 2))
    return floors


FLOORS = floors_by_hand()
F_BEST = min(map(bumpy, FLOORS))
MOMENTA = {"SimpleGD": 0.0, "SimpleMomentum": 0.9}
DEFAULT_STARTS = [2.5, 3.0, -2.0]


def positions_by_sgd(x0, lr, steps, momentum):
    """The run as torch.optim.SGD takes it, in float32 as the lesson's runs: every position, up to |x| > 1000."""
    x = torch.tensor(x0, requires_grad=True)
    optimizer = torch.optim.SGD([x], lr=lr, momentum=momentum)
    xs = [x.item()]
    for _ in range(steps):
        optimizer.zero_grad()
        (x**2 / 4 + 0.5 * torch.sin(5 * x)).backward()
        optimizer.step()
        xs.append(x.item())
        if not abs(xs[-1]) <= 1000:
            break
    return xs


def expected_verdict(positions, momentum, lr):
    """The lesson's rules for a run's verdict, applied here with the derivatives worked out on paper."""
    x, steps = positions[-1], [b - a for a, b in zip(positions, positions[1:])]
    at_rest = max(map(abs, steps)) < 1e-4 and abs(bumpy_slope(x)) < 1e-3
    if at_rest and bumpy_curvature(x) > 0 and lr * bumpy_curvature(x) < 2 * (1 + momentum):  # below the edge
        where = "the global" if bumpy(x) - F_BEST < 1e-3 else "a local"
        return f"settled at {where} minimum" + ("" if abs(x) <= 4 else ", outside the drawn range")
    if all(step == 0 for step in steps):
        return "stalled"
    if at_rest and bumpy_curvature(x) <= 0:
        return "at rest, not at a minimum"
    if abs(x) > 4:
        return "left the drawn range"
    if len(steps) > 1 and all(a * b < 0 for a, b in zip(steps, steps[1:])) and abs(steps[-1]) >= abs(steps[0]):
        return "oscillating"
    return "still moving"


def check_steps(positions, lr, momentum, from_start):
    """Each step is the optimizer's, in float32: -lr * f'(x), plus momentum times the step before (not on the
    run's first step), to within float32's roundings."""
    def ulp(x):
        return float(np.spacing(np.float32(abs(x))))

    for k in range(1 if momentum and not from_start else 0, len(positions) - 1):
        x, step = positions[k], positions[k + 1] - positions[k]
        before = positions[k] - positions[k - 1] if k > 0 else 0.0
        expected = momentum * before - lr * bumpy_slope(x)
        tolerance = (2 * (ulp(positions[k + 1]) + ulp(x)) + 4e-6 * lr * (1 + abs(x) + abs(bumpy_slope(x)))
                     + 2e-6 * (abs(step) + abs(before)))
        assert abs(step - expected) <= tolerance, (k, positions, lr, momentum)


def check_part_3(report, printed, lr, steps, starts):
    """Part 3's every claim against the recomputation here: the floors and their edges, each run's path,
    verdict and printed line."""
    valleys, lines = report["valleys"], printed.splitlines()
    curvatures = [bumpy_curvature(x) for x in FLOORS]
    assert valleys["floors"] == pytest.approx(FLOORS, abs=1e-9)
    assert valleys["curvatures"] == pytest.approx(curvatures, rel=1e-9)
    assert (f"  {len(FLOORS)} valley floors in [-4, 4], f'' = {min(curvatures):.4g} to {max(curvatures):.4g} there; "
            "a run can settle on one only below its edge 2(1 + momentum)/f'':") in lines
    for name, momentum in MOMENTA.items():
        edges = [2 * (1 + momentum) / curvature for curvature in curvatures]
        assert valleys["edges"][name] == pytest.approx(edges, rel=1e-9)
        assert (f"    {name:<14} edges {min(edges):.4f} to {max(edges):.4f}: lr {lr:g} is below "
                f"{sum(lr < edge for edge in edges)} of them") in lines
    runs = report["local_minima"]
    assert [(run["optimizer"], run["x0"]) for run in runs] == [(name, x0) for name in MOMENTA for x0 in starts]
    for run in runs:
        momentum, last = MOMENTA[run["optimizer"]], run["last_positions"]
        assert len(last) == min(steps, 10) + 1 and last[-1] == run["x_final"]
        if steps <= 10:
            assert last[0] == float(np.float32(run["x0"]))
        check_steps(last, lr, momentum, from_start=steps <= 10)
        assert run["verdict"] == expected_verdict(last, momentum, lr)
        assert run["is_global"] is (run["verdict"] == "settled at the global minimum")
        assert run["slope_final"] == pytest.approx(bumpy_slope(run["x_final"]), rel=1e-9, abs=1e-12)
        assert run["f_final"] == pytest.approx(bumpy(run["x_final"]), rel=1e-6, abs=1e-6)
        largest = max(abs(b - a) for a, b in zip(last, last[1:]))
        assert run["largest_last_step"] == largest
        assert (f"  {run['optimizer']:<14} from x0 = {run['x0']:>5g}: x = {run['x_final']:8.4f}, "
                f"f = {run['f_final']:7.4f}, f' = {run['slope_final']:8.1e}, last {len(last) - 1} steps <= "
                f"{largest:.2g}: {run['verdict']}") in lines
    assert "stopped at" not in printed


def check_against_sgd(report, lr, steps):
    """Each run ends where torch.optim.SGD ends, bit for bit (SimpleGD and SimpleMomentum are SGD's twins)."""
    for run in report["local_minima"]:
        assert run["last_positions"] == positions_by_sgd(run["x0"], lr, steps, MOMENTA[run["optimizer"]])[-11:]


def check_runs(runs, lr, steps):
    for run in runs:
        momentum = MOMENTA[run["optimizer"]]
        x_final = descend_by_hand(run["x0"], lr, steps, momentum)
        assert run["x_final"] == pytest.approx(x_final, abs=1e-3)
        assert run["f_final"] == pytest.approx(bumpy(x_final), abs=1e-4)
        assert run["verdict"] == expected_verdict(run["last_positions"], momentum, lr)
        assert run["is_global"] == (run["verdict"] == "settled at the global minimum")


def test_the_floors_and_the_global_minimum(custom_optimizer):
    assert custom_optimizer.floors.tolist() == pytest.approx(FLOORS, abs=1e-9) and len(FLOORS) == 7
    assert custom_optimizer.f_best == pytest.approx(F_BEST, abs=1e-12)
    assert abs(bumpy_slope(custom_optimizer.x_best)) < 1e-9 and bumpy_curvature(custom_optimizer.x_best) > 0
    assert min(bumpy(-4 + k * 1e-4) for k in range(80001)) >= F_BEST  # no point of the drawn range lies lower


def test_local_minima_claims_hold():
    namespace, printed = lesson("--no-plots", "--json", "--epochs", "1")
    report = last_json_line(printed)
    runs = report["local_minima"]
    check_part_3(report, printed, 0.05, 200, DEFAULT_STARTS)
    check_runs(runs, 0.05, 200)
    local, best = "settled at a local minimum", "settled at the global minimum"
    assert [run["verdict"] for run in runs] == [local, local, local, best, local, best]  # as the reading says
    assert all(len(run["xs"]) == len(run["fs"]) == 201 for run in namespace.runs)
    assert (f"Part 3: f(x) = x^2/4 + sin(5x)/2, global minimum f({namespace.x_best:.4f}) = {F_BEST:.4f}; "
            "lr 0.05, 200 steps, SimpleMomentum with momentum 0.9") in printed.splitlines()


def test_lr_1_a_run_that_left_the_drawn_range_is_not_a_minimum():
    """The issue's run "stopped at x = -10.0441, a local minimum": it ends outside [-4, 4], still moving fast."""
    report = last_json_line(printed := lesson(*PAST_THE_EDGES)[1])
    check_part_3(report, printed, 1.0, 200, DEFAULT_STARTS)
    check_against_sgd(report, 1.0, 200)
    run = report["local_minima"][4]
    assert (run["optimizer"], run["x0"], f"{run['x_final']:.4f}") == ("SimpleMomentum", 3.0, "-10.0441")
    assert run["verdict"] == "left the drawn range" and run["slope_final"] < -2 and run["largest_last_step"] > 7
    assert not [r for r in report["local_minima"] if r["verdict"].startswith("settled")]  # lr 1 is past every edge
    assert 1.0 > max(max(edges) for edges in report["valleys"]["edges"].values())


def test_lr_0_3_plain_descent_past_every_edge_oscillates_or_moves_on():
    report = last_json_line(printed := lesson(*OSCILLATING)[1])
    check_part_3(report, printed, 0.3, 200, DEFAULT_STARTS)
    check_against_sgd(report, 0.3, 200)
    plain = [run["verdict"] for run in report["local_minima"] if run["optimizer"] == "SimpleGD"]
    assert plain == ["oscillating", "still moving", "oscillating"] and 0.3 > max(report["valleys"]["edges"]["SimpleGD"])
    assert "    SimpleGD       edges 0.1541 to 0.2408: lr 0.3 is below 0 of them" in printed.splitlines()


def test_ten_steps_every_run_is_still_moving():
    report = last_json_line(printed := lesson("--steps", "20", "--json", *QUICK)[1])
    check_part_3(report, printed, 0.05, 10, DEFAULT_STARTS)
    check_against_sgd(report, 0.05, 10)
    assert [run["verdict"] for run in report["local_minima"]] == ["still moving"] * 6


def test_a_run_near_the_global_minimum_in_flight_is_not_settled(custom_optimizer):
    """After 30 steps, momentum from -2 is within 0.001 of the lowest value, but still moving: no verdict yet."""
    run = custom_optimizer.roll(-2.0, 0.9, 0.05, 30)
    assert bumpy(run["x_final"]) - F_BEST < 1e-3 and run["largest_last_step"] > 1e-3
    assert run["verdict"] == "still moving" == expected_verdict(run["xs"][-11:], 0.9, 0.05)
    assert run["is_global"] is False
    assert run["xs"] == positions_by_sgd(-2.0, 0.05, 30, 0.9)


@pytest.mark.parametrize("argv, verdicts", [
    (["--minima-lr", "0", "--minima-steps", "6"], ["stalled"] * 2),
    # a start on the global floor, at lr 0.16: past SimpleGD's edge there (0.1541), below SimpleMomentum's (0.2928)
    (["--minima-lr", "0.16", "--starts=-0.30207", "--minima-steps", "6"], ["oscillating", "settled at the global minimum"]),
    # lr 0.2 from 2.5: plain descent swings in a 2-cycle, every step as long; momentum still moves by 1.3e-4 a step
    (["--minima-lr", "0.2", "--starts=2.5"], ["oscillating", "still moving"]),
])
def test_verdicts_that_are_close_calls(argv, verdicts):
    status, out, err = terminal([*argv, "--steps", "1", "--epochs", "1", "--no-plots", "--json"])
    assert status == 0 and err == ""
    report, settings = last_json_line(out), vars(parser_of(LESSON).parse_args(argv))
    check_part_3(report, out, settings["MINIMA_LR"], settings["MINIMA_STEPS"], settings["STARTS"])
    runs = report["local_minima"]
    assert [run["verdict"] for run in runs][:: len(settings["STARTS"])] == verdicts
    if settings["MINIMA_LR"] == 0.2:
        steps = np.diff(runs[0]["last_positions"])
        assert abs(steps[0]) == abs(steps[-1]) and 1e-4 < runs[1]["largest_last_step"] < 1e-3
        assert abs(runs[1]["slope_final"]) < 1e-3  # only its steps keep it from settling


def test_a_smaller_learning_rate_takes_the_flags_value():
    runs = last_json_line(lesson("--minima-lr", "0.01", "--json", *QUICK[:2], "--no-plots")[1])["local_minima"]
    check_runs(runs, 0.01, 200)


def visible_share(recorder, artist):
    """The share of an artist's own pixels that still show in the frame, with every other artist drawn."""
    def render(shown):
        recorder.canvas.restore_region(recorder.background)
        for each in recorder.moving:
            if each in shown:
                each.axes.draw_artist(each)
        return np.asarray(recorder.canvas.buffer_rgba())[..., :3].astype(int).copy()

    others = [each for each in recorder.moving if each is not artist]
    own = np.any(render([artist]) != render([]), axis=2).sum()
    shows = np.any(render(recorder.moving) != render(others), axis=2).sum()
    return shows / own


def test_whole_numbers_in_the_settings_cell_and_every_final_marker_visible(tmp_path, monkeypatch):
    """STARTS = (-3.5, 1, 3.8) as typed in a notebook: it runs, and in the GIF's last frame each run's
    marker shows, also momentum's from -3.5 and from 1, which stop at the same place."""
    shares = []
    capture = _gif.FrameRecorder.capture

    def spy(self, captions=()):
        capture(self, captions)
        points = [artist for artist in self.moving if artist.get_marker() in _figures.MARKERS]
        shares[:] = [visible_share(self, point) for point in points]

    monkeypatch.setattr(_gif.FrameRecorder, "capture", spy)
    out_dir = tmp_path / "pictures"
    namespace, _ = run_edited(tmp_path, {"STARTS = (2.5, 3.0, -2.0)": "STARTS = (-3.5, 1, 3.8)",
                                         "FRAMES = None": "FRAMES = 3", "EPOCHS = 2": "EPOCHS = 1",
                                         'OUT_DIR = "outputs"': f"OUT_DIR = {str(out_dir)!r}"})
    assert namespace["STARTS"] == [-3.5, 1.0, 3.8] and all(type(x0) is float for x0 in namespace["STARTS"])
    check_runs(namespace["runs"], 0.05, 200)
    momentum = {run["x0"]: run for run in namespace["runs"] if run["optimizer"] == "SimpleMomentum"}
    assert momentum[3.8]["is_global"] is True and momentum[-3.5]["is_global"] is False
    assert momentum[-3.5]["x_final"] == pytest.approx(0.91, abs=0.005) == momentum[1.0]["x_final"]
    assert len(frames_of(out_dir / "03_local_minima.gif")) == 3  # the notebook's FRAMES reached the GIF
    assert len(shares) == 6 and min(shares) > 0.5, shares


def last_frame_of_the_minima_gif(runs, best, tmp_path, monkeypatch):
    """Draw part 3's GIF from these runs; return its recorder and every frame's captions."""
    recorders, captions = [], []
    capture = _gif.FrameRecorder.capture

    def spy(self, texts=()):
        recorders[:] = [self]
        captions.append([text for _, text in texts])
        capture(self, texts)

    monkeypatch.setattr(_gif.FrameRecorder, "capture", spy)
    steps = len(runs[0]["xs"]) - 1
    _figures.stage3_local_minima(runs, best, 4.0, steps, min(steps + 1, 3), 20, tmp_path / "minima.gif")
    return recorders[0], captions


def test_the_global_minimums_star_shows_among_the_rings_at_its_place(tmp_path, monkeypatch):
    """Default runs: momentum from 2.5 and from -2 ends at the global minimum, its rings around the star. In the
    last frame each panel's star must still show a green face of at least 25 pixels (about 5 by 5, which
    the eye finds among rings 3 pixels thick), drawn over the rings."""
    namespace = lesson("--no-plots", "--json", "--epochs", "1")[0]  # part 3 at its defaults, as another test runs it
    runs, best = namespace.runs, (namespace.x_best, namespace.f_best)
    recorder, _ = last_frame_of_the_minima_gif(runs, best, tmp_path, monkeypatch)
    frame = np.asarray(recorder.frames[-1].convert("RGB")).astype(int)
    green = np.round(255 * np.array(matplotlib.colors.to_rgb(_figures.MINIMUM_COLOUR)))
    is_green = np.abs(frame - green).max(axis=2) <= 8
    height = frame.shape[0]
    stars = [artist for artist in recorder.moving if artist.get_marker() == "*"]
    assert len(stars) == 2
    for star in stars:
        x, y = star.axes.transData.transform(best)
        row, column = round(height - y), round(x)
        assert is_green[row - 15 : row + 16, column - 15 : column + 16].sum() >= 25
    assert recorder.moving.index(stars[0]) > max(recorder.moving.index(a) for a in recorder.moving
                                                 if a.get_marker() in _figures.MARKERS)


def test_captions_never_show_minus_zero(tmp_path, monkeypatch):
    """The issue's run showed "x = -0.00": a value that rounds to 0 at two decimals is written 0.00."""
    xs = [-0.004, -0.0049, 0.003, 1.236]
    runs = [{"optimizer": name, "x0": xs[0], "xs": xs, "fs": [bumpy(x) for x in xs]}
            for name in ("SimpleGD", "SimpleMomentum")]
    _, captions = last_frame_of_the_minima_gif(runs, (-0.3, -0.5), tmp_path, monkeypatch)
    assert [texts[0] for texts in captions] == ["step 0: x = 0.00", "step 1: x = 0.00", "step 3: x = 1.24"]


# --- the lesson as a whole ---------------------------------------------------------

def test_script_end_to_end(end_to_end):
    result, tmp_path = end_to_end["stage3"].result(), end_to_end["stage3"].out_dir
    assert result.returncode == 0 and result.stderr == ""
    report = last_json_line(result.stdout)
    assert list(report) == ["parabola", "network", "valleys", "local_minima", "outputs"]
    assert report["parabola"]["x_expected"] == pytest.approx(0.8**50, rel=1e-12)
    assert result.stdout.splitlines()[0].endswith("50 steps, each multiplying x by 1 - 2*lr = 0.8")
    assert "× 0.8 per step" in (REPO_DIR / "README.md").read_text()  # README's reading, which the run prints
    assert report["parabola"]["x_final"] == pytest.approx(0.8**50, rel=1e-5)
    network = report["network"]
    assert network["identical_to_sgd"] is True and network["max_abs_diff"] == 0.0
    assert network["identical_to_stage1"] is True and network["stage1_max_abs_diff"] == 0.0
    assert network["train_accuracy_before"] == 50.0 and network["train_accuracy_after"] == 100.0
    assert network["test_accuracy_before"] < 50.0 < 99.0 < network["test_accuracy_after"] < 100.0
    assert [run["optimizer"] for run in report["local_minima"]] == ["SimpleGD"] * 3 + ["SimpleMomentum"] * 3
    check_runs(report["local_minima"], 0.05, 200)
    check_part_3(report, result.stdout, 0.05, 200, DEFAULT_STARTS)
    assert report["outputs"] == [str(tmp_path / "03_parabola.png"), str(tmp_path / "03_local_minima.gif")]
    assert gif_timing(tmp_path / "03_local_minima.gif")[0] == [50] * 79 + [1500]  # 20 a second, the last held
    assert result.stdout.count("identical, bit for bit (largest difference 0)") == 2
    lines = result.stdout.splitlines()
    assert lines[3] == f"wrote {tmp_path / '03_parabola.png'}"  # right after part 1, which it draws
    assert lines[-2] == f"wrote {tmp_path / '03_local_minima.gif'}"
    assert [line for line in lines if line.startswith("wrote ")] == [lines[3], lines[-2]]  # each picture once
    assert len(lines) == 23


def test_json_report_without_pictures_and_quiet():
    status, out, err = terminal(["--json", "--quiet", *QUICK])
    assert status == 0 and err == "" and len(out.splitlines()) == 1
    report = json.loads(out)
    assert report["outputs"] == [] and set(report["network"]) == {
        "train_accuracy_before", "train_accuracy_after", "test_accuracy_before", "test_accuracy_after",
        "identical_to_sgd", "max_abs_diff", "article_identical", "article_max_abs_diff", "exact_product",
        "identical_to_stage1", "stage1_max_abs_diff"}
    assert set(report["valleys"]) == {"floors", "curvatures", "edges"}
    assert list(report["local_minima"][0]) == ["optimizer", "x0", "x_final", "f_final", "slope_final",
                                               "largest_last_step", "last_positions", "verdict", "is_global"]


def test_same_seed_same_bytes_and_frames_follow_a_short_run(tmp_path):
    args = ["--steps", "5", "--minima-steps", "10", "--epochs", "1", "--quiet"]  # no --frames: one per position
    for folder in ("a", "b"):
        assert terminal(args + ["--out-dir", tmp_path / folder]) == (0, "", "")
    for name in ("03_parabola.png", "03_local_minima.gif"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    assert len(frames_of(tmp_path / "a" / "03_local_minima.gif")) == 11


def test_a_picture_cell_is_followed_by_its_reading_and_cells_stay_short():
    notebook = nbformat.read(REPO_DIR / "03_custom_optimizer.ipynb", as_version=4)
    cells = notebook.cells
    drawing = [i for i, cell in enumerate(cells) if cell.cell_type == "code" and "show_pictures" in cell.source]
    assert [("03_parabola.png" in cells[i].source, "03_local_minima.gif" in cells[i].source) for i in drawing] == [
        (True, False), (False, True)]
    for i in drawing:
        assert cells[i + 1].cell_type == "markdown" and cells[i + 1].source.startswith("**What to look at:**")
    for cell in cells:
        lines = [line for line in cell.source.splitlines() if line.strip()]
        if cell.cell_type == "code":
            assert len(lines) <= 30, cell.source[:40]


# A term the lesson uses, and the words that say what it is, in the markdown cell where it first appears
EXPLAINED = {"scheduler": "changes the learning rate", "hook": "a function", "torch.func.grad": "derivative"}


def test_terms_are_explained_where_they_first_appear():
    cells = nbformat.read(REPO_DIR / "03_custom_optimizer.ipynb", as_version=4).cells
    for term, explanation in EXPLAINED.items():
        first = next(cell for cell in cells if term in cell.source)
        assert first.cell_type == "markdown" and explanation in " ".join(first.source.split()), term


NESTED_SCOPES = (ast.FunctionDef, ast.Lambda, ast.ClassDef, ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)


def module_level(node):
    """node and what it holds, but for the functions, classes and comprehensions inside it."""
    yield node
    for child in ast.iter_child_nodes(node):
        if not isinstance(child, NESTED_SCOPES):
            yield from module_level(child)


def names_read_before_defined(source):
    """(name, the function or class that reads it, the line that defines it) for each module-level name that
    a function or class reads, where the lesson defines that name only further down."""
    tree = ast.parse(source)
    defined = {}
    for node in (node for statement in tree.body for node in module_level(statement)):
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names = [node.name]
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names = [(alias.asname or alias.name).split(".")[0] for alias in node.names]
        else:
            names = [node.id] if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store) else []
        for name in names:
            defined.setdefault(name, node.lineno)
    late = []
    for statement in tree.body:
        if isinstance(statement, (ast.FunctionDef, ast.ClassDef)):
            inside = list(ast.walk(statement))[1:]
            local = {node.arg for node in inside if isinstance(node, ast.arg)} | {
                node.id for node in inside if isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Load)}
            late += [(node.id, statement.name, defined[node.id]) for node in inside
                     if isinstance(node, ast.Name) and node.id not in local
                     and defined.get(node.id, 0) > statement.lineno]
    return late


def test_each_name_is_defined_above_the_code_that_reads_it():
    """Read top to bottom, the lesson shows each helper before the optimizer or function that calls it."""
    assert names_read_before_defined(SOURCE) == []
    assert names_read_before_defined("def f():\n    return g()\n\n\ndef g():\n    return 1\n") == [("g", "f", 5)]


BAD_INPUTS = [
    (["--lr", "-1"], "--lr"), (["--lr", "nan"], "--lr"), (["--steps", "0"], "--steps"),
    (["--epochs", "0"], "--epochs"), (["--seed", "x"], "--seed"), (["--minima-lr", "inf"], "--minima-lr"),
    (["--minima-steps", "0"], "--minima-steps"), (["--starts", "a,b"], "--starts"), (["--starts", "9"], "--starts"),
    (["--starts", ""], "--starts"), (["--starts", "1,2,3,-1,0"], "--starts"), (["--frames", "1"], "--frames"),
    (["--frames", "500"], "--frames"), (["--device", "gpu"], "--device"),
    (["--steps", "10001"], "--steps"), (["--epochs", "1001"], "--epochs"), (["--epochs", str(10**20)], "--epochs"),
    (["--minima-steps", "10001"], "--minima-steps"), (["--minima-steps", "10", "--frames", "12"], "--frames"),
    (["--starts", "4.001"], "--starts"), (["--starts", "-4.001"], "--starts"), (["--seed", str(2**63)], "--seed"),
    (["--steps", "2.5"], "--steps"), (["--seed", "-1"], "--seed"),
]


@pytest.mark.parametrize("argv, flag", BAD_INPUTS)
def test_bad_input_is_a_usage_error_naming_the_flag(argv, flag):
    status, out, err = terminal(argv + ["--no-plots"])
    assert status == 2 and out == "" and "Traceback" not in err and flag in err.strip().splitlines()[-1]


@pytest.mark.parametrize("argv, name, value", [
    (["--steps", "1"], "STEPS", 1), (["--steps", "10000"], "STEPS", 10000), (["--epochs", "1000"], "EPOCHS", 1000),
    (["--minima-steps", "1"], "MINIMA_STEPS", 1), (["--minima-steps", "10000"], "MINIMA_STEPS", 10000),
    (["--seed", "0"], "SEED", 0), (["--seed", str(2**63 - 1)], "SEED", 2**63 - 1), (["--lr", "0"], "LR", 0.0),
    (["--starts=-4,4,0,1"], "STARTS", [-4.0, 4.0, 0.0, 1.0]), (["--minima-steps", "10"], "FRAMES", 11),
    (["--minima-steps", "79"], "FRAMES", 80), (["--minima-steps", "80"], "FRAMES", 80),
    (["--minima-steps", "10", "--frames", "11"], "FRAMES", 11), (["--frames", "2"], "FRAMES", 2),
    (["--minima-steps", "10000", "--frames", "10001"], "FRAMES", 10001), (["--minima-steps", "1"], "FRAMES", 2),
    (["--no-plots"], "PLOTS", False), (["--device", "cpu"], "DEVICE", "cpu"), (["--minima-lr", "1"], "MINIMA_LR", 1.0),
])
def test_every_limit_itself_is_accepted(apply, argv, name, value):
    settings = apply(argv)
    assert settings[name] == value and type(settings[name]) is type(value)


def test_defaults_are_the_articles(apply):
    settings = apply()
    assert (settings["LR"], settings["STEPS"], settings["SEED"], settings["EPOCHS"]) == (0.1, 50, 0, 2)
    assert (settings["MINIMA_LR"], settings["MINIMA_STEPS"], settings["STARTS"], settings["FRAMES"]) == (
        0.05, 200, [2.5, 3.0, -2.0], 80)
    assert settings["PLOTS"] is True and settings["DEVICE"] == ("cuda" if torch.cuda.is_available() else "cpu")
    assert settings["OUT_DIR"] == REPO_DIR / "outputs"


EDITED = {"LR": 0.2, "STEPS": 7, "EPOCHS": 3, "SEED": 5, "MINIMA_LR": 0.01, "MINIMA_STEPS": 30, "STARTS": [1.0, -1.5],
          "FRAMES": 9, "DEVICE": "cpu", "PLOTS": False}


@pytest.mark.parametrize("in_a_kernel", [True, False], ids=["notebook", "terminal without flags"])
def test_every_setting_edited_in_the_settings_cell_is_kept(apply, in_a_kernel):
    assert all(EDITED[name] != value for name, value in settings_cell().items() if name in EDITED)
    settings = apply(in_a_kernel=in_a_kernel, **EDITED, OUT_DIR="/tmp/pictures")
    assert {name: settings[name] for name in EDITED} == EDITED and str(settings["OUT_DIR"]) == "/tmp/pictures"


def test_a_notebook_takes_whole_numbers_and_its_own_frames(apply):
    settings = apply(in_a_kernel=True, STARTS=(-3.5, 1, 3.8), LR=1, MINIMA_LR=0, FRAMES=7, MINIMA_STEPS=10)
    assert settings["STARTS"] == [-3.5, 1.0, 3.8] and all(type(x0) is float for x0 in settings["STARTS"])
    assert (settings["LR"], settings["MINIMA_LR"]) == (1.0, 0.0) and type(settings["LR"]) is float
    assert settings["FRAMES"] == 7  # a notebook's choice is kept, not replaced by the default
    assert apply(in_a_kernel=True, MINIMA_STEPS=10)["FRAMES"] == 11


@pytest.mark.parametrize("changed, message", [
    ({"FRAMES": 12, "MINIMA_STEPS": 10}, "--frames: must be from 2 to minima-steps+1 = 11, got 12"),
    ({"STARTS": (1, 5)}, "--starts"), ({"STEPS": 2.5}, "--steps"), ({"PLOTS": "no"}, "--no-plots"),
])
def test_a_bad_setting_in_a_notebook_raises_a_one_line_error(apply, changed, message):
    with pytest.raises(_flags.SettingError, match=message.replace("+", r"\+")):
        apply(in_a_kernel=True, **changed)


def test_frames_past_the_longest_run_are_refused_by_their_range():
    status, _, err = terminal(["--frames", "10002", "--no-plots"])
    assert status == 2 and err.strip().splitlines()[-1].endswith("--frames: must be a whole number from 2 to 10001, "
                                                                 "got '10002'")


def first_escape(x, slope, lr, bound=1000):
    """The first step of plain gradient descent, in float64, after which |x| > bound."""
    for step in range(1, 100):
        x -= lr * slope(x)
        if abs(x) > bound:
            return step
    return None


def test_divergence_in_part_2_or_3_exits_1_naming_the_flag():
    """lr 1e37: part 1 diverges at once and says so, then part 2's loss overflows, where the article's loop's
    does; --minima-lr 100: part 3's first run escapes where plain descent in float64 does."""
    losses = articles_loop(0, epochs=1, lr=1e37, momentum=0)[1]
    bad = next(i for i, loss in enumerate(losses) if not math.isfinite(loss))
    escape = first_escape(2.5, bumpy_slope, 100)
    for argv, message in [
        (["--lr", "1e37"], f"training diverged (part 2, SimpleGD): the loss became {losses[bad]} at epoch 1, "
                           f"step {bad + 1}; try a smaller --lr"),
        (["--minima-lr", "100"], f"SimpleGD(lr=100) from x0 = 2.5 diverged at step {escape}: |x| passed 1000; "
                                 "try a smaller --minima-lr"),
    ]:
        status, _, err = terminal(argv + ["--no-plots", "--quiet", "--epochs", "1"])
        assert (status, err) == (1, f"03_custom_optimizer.py: error: {message}\n")


def test_unwritable_out_dir_exits_1(tmp_path):
    (tmp_path / "file").write_text("")
    status, _, err = terminal(["--out-dir", tmp_path / "file" / "pictures", *QUICK[:4]])
    assert status == 1 and "--out-dir" in err and len(err.strip().splitlines()) == 1


def help_entries(text):
    options = text.split("options:", 1)[1]
    entries = options.split("\n  -")
    return {"-" + entry.split()[0].rstrip(","): " ".join(entry.split()) for entry in entries if entry.strip()}


def test_help_says_which_part_each_flag_drives():
    status, text, _ = terminal(["--help"])
    flat = " ".join(text.split())
    assert status == 0 and flat.startswith("usage:")
    assert "Stage 3: write your own optimizer, SimpleGD, and check it against torch.optim.SGD." in flat
    entries = help_entries(text)
    for flag in ("--steps", "--seed", "--epochs", "--minima-lr", "--minima-steps", "--starts", "--frames"):
        assert "part " in entries[flag] and "(default: " in entries[flag]
    for flag in ("--lr", "--device", "--out-dir", "--no-plots", "--quiet", "--json"):
        assert "(default: " in entries[flag]
    assert "(default: 2.5,3.0,-2.0)" in entries["--starts"] and "(default: 80, or minima-steps+1" in entries["--frames"]
    assert "(default: 0.1)" in entries["--lr"] and "(default: 200)" in entries["--minima-steps"]


# --- the settings space: every verdict at drawn settings, recomputed here ---------------------------

def rates(narrow, whole_range=True):
    """Learning rates from the flag's own range: mostly where the verdicts change, often a power of two."""
    powers_of_two = st.integers(-30, 1).map(lambda k: repr(2.0**k))
    return st.one_of(number_text(_cli.learning_rate, narrow), powers_of_two,
                     *[number_text(_cli.learning_rate)] * whole_range)


# Each run within about a second: parts 1 and 3 at most 300 steps, part 2 at most 3 epochs (a flag left
# out is 1 epoch and 100 steps in part 3, not the defaults). FRAMES and DEVICE are left out: no pictures
# are drawn, and part 2 runs where this machine can.
SPACE = {"STEPS": (1, 300), "EPOCHS": (1, 3), "MINIMA_STEPS": (1, 300), "FRAMES": None, "DEVICE": None,
         "LR": rates((0, 1.2), whole_range=False), "MINIMA_LR": rates((0, 1.5))}
SHORTER = ["--epochs=1", "--minima-steps=100"]  # a drawn flag comes after these, and wins


def parabola_by_sgd(lr, steps):
    """Part 1's run as torch.optim.SGD takes it: every position, up to |x| > 1000."""
    x = torch.tensor(1.0, requires_grad=True)
    optimizer = torch.optim.SGD([x], lr=lr)
    xs = [1.0]
    for _ in range(steps):
        optimizer.zero_grad()
        torch.square(x).backward()
        optimizer.step()
        xs.append(x.item())
        if not abs(xs[-1]) <= 1000:
            break
    return xs


def first_failure(settings):
    """The one line a run at these settings must stop with, worked out here; None if it must not stop.
    (Part 1 never stops the lesson: it says where it diverged, and the lesson goes on.)"""
    lr = settings["LR"]
    losses = articles_loop(settings["SEED"], epochs=settings["EPOCHS"], lr=lr, momentum=0)[1]
    bad = [i for i, loss in enumerate(losses) if not math.isfinite(loss)]
    if bad:
        return (f"training diverged (part 2, SimpleGD): the loss became {losses[bad[0]]} at epoch "
                f"{bad[0] // 40 + 1}, step {bad[0] % 40 + 1}; try a smaller --lr\n")
    for name, momentum in MOMENTA.items():
        for x0 in settings["STARTS"]:
            xs = positions_by_sgd(x0, settings["MINIMA_LR"], settings["MINIMA_STEPS"], momentum)
            if not abs(xs[-1]) <= 1000:  # the message gives the start as float32 holds it
                return (f"{name}(lr={settings['MINIMA_LR']:g}) from x0 = {xs[0]:g} diverged at step {len(xs) - 1}: "
                        "|x| passed 1000; try a smaller --minima-lr\n")
    return None


def check_part_1(report, printed, lr, steps):
    """The factor, the run as SGD takes it (up to the step that would pass 1000, said so), and the closed form."""
    xs = parabola_by_sgd(lr, steps)
    diverged = not abs(xs[-1]) <= 1000
    xs = xs[:-1] if diverged else xs
    x_final, expected, done = xs[-1], (1 - 2 * lr) ** (len(xs) - 1), len(xs) - 1
    assert report["parabola"] == {"x_final": x_final, "x_expected": expected, "steps_done": done}
    lines = printed.splitlines()
    assert lines[0].endswith(f", each multiplying x by 1 - 2*lr = {1 - 2 * lr:g}")
    note = (f"  diverged: step {done + 1} would take |x| past 1000 (|1 - 2*lr| = {abs(1 - 2 * lr):g} > 1); part 1 "
            "stops there, parts 2 and 3 go on")
    assert (lines[2] == note) is diverged
    assert abs(1 - 2 * lr) > 1 or not diverged  # |x| cannot grow while the factor is within [-1, 1]
    difference = (f"relative difference {abs(x_final - expected) / abs(expected):.1e}" if expected
                  else f"absolute difference {abs(x_final):.1e}")
    assert lines[2 + diverged] == (f"  closed form after {done} steps, x0*(1 - 2*lr)^n = {expected:.9g}, "
                                   f"measured {x_final:.9g} ({difference})")


def check_part_2(report, printed, settings):
    """SimpleGD and SimpleMomentum equal SGD; the article's form equals it where float32's lr is 0 or a power of
    two, and otherwise as this test's own run of it says."""
    network, lr = report["network"], settings["LR"]
    assert network["identical_to_sgd"] is network["identical_to_stage1"] is True
    assert network["max_abs_diff"] == network["stage1_max_abs_diff"] == 0.0
    kind = lr_kind_in_float32(lr)
    assert network["exact_product"] is (kind != "not a power of two")
    if network["exact_product"]:
        gap = 0.0
    else:
        sgd = articles_loop(settings["SEED"], epochs=settings["EPOCHS"], lr=lr, momentum=0)[0]
        gap = largest_difference(articles_loop(settings["SEED"], epochs=settings["EPOCHS"], lr=lr, momentum=0,
                                               optimizer_class=ArticleGD)[0], sgd)
    assert network["article_max_abs_diff"] == gap and network["article_identical"] is (gap == 0)
    verdict = "identical, bit for bit" if gap == 0 else "DIFFERENT"
    assert (f"  weights after the article's p.add_(p.grad * -lr) vs torch.optim.SGD(momentum=0): {verdict} "
            f"(largest difference {gap:g}); lr {lr:g} in float32 is {kind}") in printed.splitlines()
    assert printed.count("identical, bit for bit (largest difference 0)") == 2 + (gap == 0)


@given(lesson_flags(LESSON, SPACE).map(lambda drawn: SHORTER + drawn))
@example(SHORTER + ["--minima-lr=5.0", "--starts=2.2285584500509194e-171"])  # a start that float32 holds as 0
@example(SHORTER + ["--lr=1.5", "--steps=300"])  # part 1 diverges at step 10, says so, and the lesson goes on
@example(SHORTER + ["--lr=3e+38"])  # part 1's first step overflows to -inf: it stops at x0; part 2's loss overflows
def test_settings_space_every_verdict_is_recomputed(argv):
    """At drawn settings: part 1's closed form and run, part 2's three verdicts, part 3's floors, edges and each
    run's verdict, all recomputed here; a run that stops says where, as worked out here."""
    status, out, err, report = run_quickly(LESSON, argv)
    check_generic(LESSON, status, out, err, report)
    settings = vars(parser_of(LESSON).parse_args(argv))
    if status == 1:  # it must have stopped where this test's own runs stop
        failure = first_failure(settings)
        assert failure is not None, err
        assert err == f"{LESSON}: error: {failure}"
        return
    assert status == 0, err
    check_part_1(report, out, settings["LR"], settings["STEPS"])
    check_part_2(report, out, settings)
    check_part_3(report, out, settings["MINIMA_LR"], settings["MINIMA_STEPS"], settings["STARTS"])


def test_a_step_of_exactly_0_reverses_nothing(custom_optimizer):
    """Oscillating means each step reversed the one before: a step of 0 between two opposite ones does not."""
    assert custom_optimizer.verdict([1.0, 1.5, 1.5, 1.0], 0.0, 0.01) == "still moving"
    assert custom_optimizer.verdict([1.0, 1.5, 1.0, 1.5], 0.0, 0.01) == "oscillating"

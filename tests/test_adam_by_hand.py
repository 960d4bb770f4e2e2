"""04_adam_by_hand.py, run top to bottom as a learner runs it, against independent answers: the
rates worked out on paper (and numerically, as eigenvalues of each step's matrix), the stability
edges from both sides, torch.optim.Adam on stage 1's network, and what the lesson prints.
(SimpleAdam itself is tested against torch.optim.Adam, case by case, in test_adam.py.)"""

import functools
import io
import json
import math
import sys

import numpy as np
import pytest
import torch

import _figures
import _flags
from conftest import REPO_DIR, frames_of, gif_timing, last_json_line, lesson_settings, run_in_terminal, run_lesson

LESSON = "04_adam_by_hand.py"
QUICK = ("--steps", "30", "--epochs", "1", "--no-plots")
KAPPA = 4.0 / 0.2  # the default valley's curvatures, written out again
GD_RATE = (KAPPA - 1) / (KAPPA + 1)
MOMENTUM_RATE = (math.sqrt(KAPPA) - 1) / (math.sqrt(KAPPA) + 1)


@functools.cache
def lesson(*args):
    """(what the lesson defined, what it printed) after `python 04_adam_by_hand.py ARGS`; each run once."""
    return run_lesson(LESSON, args)


def terminal(args):
    """`python 04_adam_by_hand.py ARGS` in this process: (exit status, stdout, stderr)."""
    return run_in_terminal(LESSON, args)


def settings_cell():
    return lesson_settings(LESSON)


@pytest.fixture
def apply(apply_settings):
    """apply(flags, in_a_kernel=False, **changed) -> the settings after _flags.apply, from the settings cell."""
    return functools.partial(apply_settings, LESSON)


def distances(run):
    return run.norm(dim=1)


# --- part 1: the valley's rates, from the formulas and from the runs ---------------------------

def test_the_best_settings_give_the_textbook_rates(adam_lesson):
    assert adam_lesson.best_gd_lr == pytest.approx(2 / 4.2, rel=1e-15)
    assert adam_lesson.gd_rate(adam_lesson.best_gd_lr) == pytest.approx(GD_RATE, rel=1e-14)
    assert adam_lesson.best_momentum == pytest.approx(MOMENTUM_RATE**2, rel=1e-14)
    assert adam_lesson.momentum_rate(adam_lesson.best_momentum_lr, adam_lesson.best_momentum) == pytest.approx(
        MOMENTUM_RATE, rel=1e-6)  # a double root: its size is found to about half the digits


def step_matrix_rate(lr, momentum, curvatures=(0.2, 4.0)):
    """The rate as the largest eigenvalue size of one momentum step's matrix on (coordinate, velocity)."""
    sizes = []
    for lam in curvatures:
        # v' = momentum*v + lam*x ;  x' = x - lr*v'
        matrix = torch.tensor([[1 - lr * lam, -lr * momentum], [lam, momentum]], dtype=torch.float64)
        sizes.append(torch.linalg.eigvals(matrix).abs().max().item())
    return max(sizes)


@pytest.mark.parametrize("lr, momentum", [(0.3, 0.0), (0.5, 0.2), (0.1, 0.9), (0.7, 0.5), (0.9, 0.1), (0.05, 0.0)])
def test_the_rate_formulas_are_the_step_matrices_eigenvalues(adam_lesson, lr, momentum):
    assert adam_lesson.momentum_rate(lr, momentum) == pytest.approx(step_matrix_rate(lr, momentum), rel=1e-9)
    assert adam_lesson.gd_rate(lr) == pytest.approx(step_matrix_rate(lr, 0.0), rel=1e-12)


def test_gradient_descent_shrinks_the_distance_by_its_rate_at_every_step(adam_lesson):
    run = adam_lesson.descend(torch.optim.SGD, steps=150, lr=adam_lesson.best_gd_lr)
    ratios = distances(run)[1:] / distances(run)[:-1]
    assert torch.allclose(ratios, torch.full_like(ratios, GD_RATE), rtol=1e-13, atol=0)


def test_momentum_meets_its_rate_once_the_double_roots_factor_k_is_divided_out(adam_lesson):
    run = adam_lesson.descend(torch.optim.SGD, steps=150, lr=adam_lesson.best_momentum_lr,
                              momentum=adam_lesson.best_momentum)
    plain = adam_lesson.measured_rate(run, 50, 150)
    without_k = adam_lesson.measured_rate_without_k(run, 50, 150)
    assert plain == pytest.approx(0.641, abs=5e-4)  # the issue's figure, over steps 50 to 150
    assert abs(without_k - MOMENTUM_RATE) < 2e-4 < abs(plain - MOMENTUM_RATE)


def test_the_default_run_prints_the_rates_beside_the_formulas(end_to_end):
    out = end_to_end["stage4"].result().stdout
    assert out.splitlines()[:3] == [
        "Part 1: the valley f(x, y) = 0.1*x^2 + 2*y^2, curvatures 0.2 and 4, condition number 20",
        f"  gradient descent: lr {2 / 4.2:.6g} (the best, 2/(a + b)); formula max|1 - lr*lambda| = {GD_RATE:.6f}; "
        f"at the best lr, (kappa-1)/(kappa+1) = {GD_RATE:.6f}",
        f"  momentum: lr {(2 / (math.sqrt(0.2) + 2)) ** 2:.6g}, momentum {MOMENTUM_RATE**2:.6g} (the best pair); "
        f"formula (largest root) = {MOMENTUM_RATE:.6f}; at the best pair, (sqrt(kappa)-1)/(sqrt(kappa)+1) = "
        f"{MOMENTUM_RATE:.6f}"]
    assert f"at the best lr, (kappa-1)/(kappa+1) = {GD_RATE:.6f}" in out
    assert f"at the best pair, (sqrt(kappa)-1)/(sqrt(kappa)+1) = {MOMENTUM_RATE:.6f}" in out
    assert f"measured: gradient descent {GD_RATE:.6f} over steps 50 to 150; momentum 0.641379 over steps 50 to 150\n" \
        in out
    assert "momentum, with the double root's factor k divided out (d_k / k): 0.634372 over steps 50 to 150\n" in out
    gd, momentum, _ = last_json_line(out)["valley"]["runs"]
    assert (f"{gd['rate_measured']:.6f}", f"{momentum['rate_measured']:.6f}") == (f"{GD_RATE:.6f}", "0.641379")
    assert gd["rate_window"] == momentum["rate_window"] == [50, 150]
    assert f"{momentum['rate_measured_without_k']:.6f}" == "0.634372"  # --json holds what was printed


def test_in_float32_the_distance_reads_zero_before_the_point_gets_there(adam_lesson, end_to_end):
    point = torch.tensor([-4.5, 1.0], requires_grad=True)  # float32
    optimizer = torch.optim.SGD([point], lr=adam_lesson.best_momentum_lr, momentum=adam_lesson.best_momentum)
    step = 0
    while point.detach().norm() > 0 and step < 150:  # the distance, computed in float32
        optimizer.zero_grad()
        adam_lesson.valley(point).backward()
        optimizer.step()
        step += 1
    away = point.detach().double().norm().item()
    assert step < 150 and away > torch.finfo(torch.float32).smallest_normal * 1e10  # far from underflow itself
    out = end_to_end["stage4"].result().stdout
    assert f"in float32, momentum's sqrt(x^2 + y^2) reads exactly 0 from step {step}, where the point is still " \
           f"{away:.3g} away from (0, 0)\n" in out
    assert "in float64, momentum's sqrt(x^2 + y^2) never reads 0 while the point is away from (0, 0), in these 150 " \
           "steps\n" in out


# --- the edges of stability, both sides --------------------------------------------------------

@pytest.mark.parametrize("momentum", [0.0, 0.4026, 0.9])
@pytest.mark.parametrize("side, factor", [("below", 0.99), ("above", 1.01)])
def test_each_edge_splits_shrinking_from_growing(adam_lesson, momentum, side, factor):
    edge = (2 + 2 * momentum) / 4.0  # lr * lambda_max = 2 + 2 * momentum; 2/lambda_max without momentum
    run = adam_lesson.descend(torch.optim.SGD, steps=400, lr=factor * edge, momentum=momentum)
    assert (distances(run)[-1] < distances(run)[0]) == (side == "below")
    assert (adam_lesson.momentum_rate(factor * edge, momentum) < 1) == (side == "below")


def sgd_in_the_valley(lr, momentum, steps=150):
    """torch.optim.SGD on the default valley 0.1*x^2 + 2*y^2 from (-4.5, 1), in float64: its last distance."""
    point = torch.tensor([-4.5, 1.0], dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.SGD([point], lr=lr, momentum=momentum)
    for _ in range(steps):
        optimizer.zero_grad()
        (0.1 * point[0] ** 2 + 2 * point[1] ** 2).backward()
        optimizer.step()
    return point.detach().norm().item()


def test_the_lesson_prints_where_each_edge_run_ends_and_its_verdict(end_to_end):
    out = end_to_end["stage4"].result().stdout
    reported = last_json_line(out)["valley"]["edges"]
    for name, momentum in (("gradient descent", 0.0), ("momentum", MOMENTUM_RATE**2)):
        edge = (2 + 2 * momentum) / 4.0
        for side, factor in (("below", 0.99), ("above", 1.01)):
            final, told = sgd_in_the_valley(factor * edge, momentum), "shrinking" if side == "below" else "GROWING"
            assert f"edge lr = {edge:.6g}: lr {factor * edge:.6g} ({side}) -> distance 4.61 to {final:.3g} in 150 " \
                   f"steps: {told}; rate " in out
            report = reported[f"{name}, {side}"]
            assert report["distance_final"] == pytest.approx(final, rel=1e-9) and report["verdict"] == told
            assert report["rate_window"] == [50, 150] and report["steps_done"] == 150


def test_the_verdict_reads_the_trend_not_the_first_and_last_distances():
    """A start a little off the floor: above its edge, gradient descent first shrinks (along x), then grows (along
    y). After 60 steps it is nearer than it started, yet growing over the last two thirds, as its formula says."""
    _, printed = lesson("--start=-4.5,0.22", "--steps", "60", "--epochs", "1", "--no-plots")
    factors = torch.tensor([1 - 0.505 * 0.2, 1 - 0.505 * 4.0], dtype=torch.float64)
    run = torch.tensor([-4.5, 0.22], dtype=torch.float64) * factors ** torch.arange(61.0)[:, None]
    d = exact_distances(run)
    assert d[-1] < d[0] and d[20] < d[60]
    assert f"lr 0.505 (above) -> distance {d[0]:.3g} to {d[-1]:.3g} in 60 steps: GROWING; rate " \
           f"{rate_over(run, 20, 60):.6f} over steps 20 to 60, formula 1.020000\n" in printed


def test_a_run_that_keeps_its_distance_is_steady():
    """x alone, with the factor 1 - 2.02 * (2 / 2.02) = -1 exactly: x flips sign and keeps its size."""
    _, printed = lesson("--curvatures", f"{2 / 2.02!r},1", "--start", "1,0", *QUICK)
    assert 1 - 2.02 * (2 / 2.02) == -1.0
    assert "gradient descent edge lr = 2: lr 2.02 (above) -> distance 1 to 1 in 30 steps: steady; rate 1.000000 over " \
           "steps 10 to 30, formula 1.000000\n" in printed


def test_a_run_below_its_edge_that_ends_further_out_is_still_shrinking():
    """Below its edge, momentum 0.1 from (0, 1) overshoots at step 1 and is still further out than at the start
    after 3 steps, though nearer than at step 1: shrinking, as its formula says. (Worked out here: only y moves.)"""
    momentum, edge = 0.1, (2 + 2 * 0.1) / 4.0
    y, velocity, ys = 1.0, 0.0, []
    for _ in range(3):
        velocity = momentum * velocity + 4.0 * y
        y -= 0.99 * edge * velocity
        ys.append(abs(y))
    assert 1 < ys[-1] < ys[0]
    formula = step_matrix_rate(0.99 * edge, momentum, curvatures=(4.0,))  # only y moves: x starts at 0
    _, printed = lesson("--momentum", "0.1", "--start", "0,1", "--steps", "3", "--epochs", "1", "--no-plots")
    below = f"edge lr = {edge:.6g}: lr {0.99 * edge:.6g} (below)"
    assert f"{below} -> distance 1 to {ys[-1]:.3g} in 3 steps: shrinking; rate {(ys[2] / ys[0]) ** 0.5:.6f} over " \
           f"steps 1 to 3, formula {formula:.6f}\n" in printed


def test_lesson_02s_lr_1_05_is_the_same_edge_in_one_dimension():
    defined, _ = lesson("--curvatures", "2,2", "--start", "1,0", "--gd-lr", "1.05", *QUICK)
    grew = distances(defined.gd_run)
    assert defined.gd_edge == 1.0 and grew[-1] > grew[0]
    assert torch.allclose(defined.gd_run[:, 0], torch.tensor(-1.1, dtype=torch.float64) ** torch.arange(31), rtol=1e-12)


def test_a_run_that_flies_off_is_stopped_and_still_reported():
    status, out, err = terminal(["--gd-lr", "10", "--curvatures", "100,100", "--json", *QUICK])
    report = last_json_line(out)["valley"]["runs"][0]
    assert status == 0 and err == "" and report["distance_final"] >= 1e6
    # each step multiplies the distance by |1 - 10*100| = 999: past 1e6 at step 2, where the run stops
    assert report["steps_done"] == 2 and report["rate_measured"] == pytest.approx(999, rel=1e-12)


def test_a_run_that_reaches_the_bound_exactly_is_stopped_there():
    """The bound is 10**6 itself: |1 - 5.5*2| = 10, so from (1, 0) the distance is 10**k exactly."""
    status, out, _ = terminal(["--gd-lr", "5.5", "--curvatures", "2,2", "--start", "1,0", "--json", *QUICK])
    report = last_json_line(out)["valley"]["runs"][0]
    assert status == 0 and report["distance_final"] == 1e6 and report["steps_done"] == 6


# --- parts 2 and 3: SimpleAdam on the network, and the textbook forms ----------------------------

def test_script_end_to_end(end_to_end):
    result, out_dir = end_to_end["stage4"].result(), end_to_end["stage4"].out_dir
    assert result.returncode == 0 and result.stderr == ""
    report = last_json_line(result.stdout)
    assert list(report) == ["valley", "network", "textbook", "outputs"]
    network = report["network"]
    assert network["identical_to_adam"] is True and network["max_abs_diff"] == 0.0
    assert (network["train_accuracy_before"], network["train_accuracy_after"]) == (50.0, 100.0)
    assert (network["test_accuracy_before"], network["test_accuracy_after"]) == (35.625, 99.375)
    assert "weights after SimpleAdam vs torch.optim.Adam from the same start: identical, bit for bit " \
           "(largest difference 0)" in result.stdout
    assert "training accuracy 50.0% -> 100.0%; test accuracy 35.6% -> 99.4%" in result.stdout
    assert report["outputs"] == [str(out_dir / "04_valley.gif"), str(out_dir / "04_distances.png")]
    lines = result.stdout.splitlines()
    assert [line for line in lines if line.startswith("wrote ")] == [
        f"wrote {out_dir / '04_valley.gif'}", f"wrote {out_dir / '04_distances.png'}"]


def test_the_twins_are_torch_adams_run(adam_lesson):
    model = adam_lesson.common.new_network(0)
    optimizer = torch.optim.Adam(model.parameters())  # the default Adam, 1 epoch as the fixture ran
    adam_lesson.train(model, optimizer, 1)
    assert torch.equal(model.conv.weight, adam_lesson.model.conv.weight)


@pytest.mark.parametrize("edges", [{"eps": 0.0}, {"lr": 0.0, "betas": (0.0, 0.0), "weight_decay": 0.0}], ids=str)
def test_simple_adam_takes_the_lowest_settings_adam_takes(adam_lesson, edges):
    ours, theirs = (torch.tensor([1.0, -2.0], requires_grad=True) for _ in range(2))
    for point, optimizer_class in ((ours, adam_lesson.SimpleAdam), (theirs, torch.optim.Adam)):
        optimizer = optimizer_class([point], **{"lr": 0.1, **edges})
        for _ in range(3):
            optimizer.zero_grad()
            (point**2).sum().backward()
            optimizer.step()
    assert torch.equal(ours, theirs)


def grid_steps(difference, value, dtype):
    """How many steps of dtype's grid of numbers, at `value`, make up `difference`."""
    return difference / np.spacing(np.array(abs(value), dtype=dtype)).item()


def test_the_textbook_order_is_a_rounding_or_two_away(adam_lesson):
    other = adam_lesson.common.new_network(0)
    adam_lesson.train(other, adam_lesson.TextbookAdam(other.parameters(), lr=0.001), 1)
    differences = (other.conv.weight - adam_lesson.model.conv.weight).abs().flatten()
    worst = differences.argmax()
    value = adam_lesson.model.conv.weight.flatten()[worst].item()
    assert 1 <= grid_steps(differences[worst].item(), value, np.float32) <= 2
    path = adam_lesson.descend(adam_lesson.TextbookAdam, steps=150, lr=0.1)
    reference = adam_lesson.descend(adam_lesson.SimpleAdam, steps=150, lr=0.1)
    differences = (path - reference).abs()
    worst = (differences == differences.max()).nonzero()[0]
    assert 1 <= grid_steps(differences.max().item(), reference[tuple(worst)].item(), np.float64) <= 2


def test_the_textbook_forms_are_close_but_other_bits(end_to_end):
    textbook = last_json_line(end_to_end["stage4"].result().stdout)["textbook"]
    reordered, eps_inside = textbook["TextbookAdam"], textbook["EpsInsideAdam"]
    for form in (reordered, eps_inside):
        assert form["network_identical"] is False and 0 < form["network_max_abs_diff"] < 1e-6
    assert 0 < reordered["valley_max_abs_diff"] < 1e-14  # a few float64 roundings
    assert eps_inside["valley_max_abs_diff"] > 1e6 * reordered["valley_max_abs_diff"]  # "more than a million times"


# --- part 4: Adam in the valley, as the lesson describes it -----------------------------------------

def test_adams_valley_run_is_as_the_lesson_says(adam_lesson):
    run = adam_lesson.descend(adam_lesson.SimpleAdam, steps=150, lr=0.1)
    reference = adam_lesson.descend(torch.optim.Adam, steps=150, lr=0.1)
    assert torch.equal(run, reference)
    moves = (run[1:] - run[:-1]).abs()
    assert torch.allclose(moves[0], torch.tensor([0.1, 0.1], dtype=torch.float64), rtol=1e-7, atol=0)  # eps/|g|
    assert moves.max() <= 0.1 * (1 + 1e-12)  # "no step moves a coordinate more than lr"
    crossed = (run[:, 0] >= 0).nonzero()[0].item()
    assert crossed > 45  # more steps than the rule's 4.5 / lr
    gd = adam_lesson.descend(torch.optim.SGD, steps=150, lr=adam_lesson.best_gd_lr)
    assert (distances(run)[1:] > distances(gd)[1:]).all()  # "stays above both for the whole run"
    after = distances(run)[crossed:]
    assert (after[1:] > after[:-1]).any()  # it bounces: the distance goes up again


def test_the_default_run_prints_adams_crossing_and_distances(end_to_end):
    out = end_to_end["stage4"].result().stdout
    valley = last_json_line(out)["valley"]
    adam = valley["runs"][2]
    assert "its first step moves x by 0.1 and y by 0.1; no step moves a coordinate more than 0.1" in out
    assert "it first reaches x = 0 at step 73 (the rule of thumb: |x|/lr = 45 steps)\n" in out
    assert f"closest: {adam['closest_distance']:.3g} at step {adam['closest_step']}\n" in out
    assert adam["distance_final"] > valley["runs"][0]["distance_final"] > valley["runs"][1]["distance_final"]


# --- every setting reaches its run: one run with all of them changed --------------------------------

# The valley's curvatures given steep first, a start on the valley's floor (y = 0) on the side of positive x,
# and other learning rates and seed: each setting must reach the runs, the printout and the pictures.
OTHERS = ("--curvatures", "4,0.2", "--start=4.5,0", "--steps", "60", "--gd-lr", "0.3", "--adam-lr", "0.2",
          "--network-lr", "0.01", "--seed", "5", "--epochs", "1", "--frames", "2")


@pytest.fixture(scope="module")
def other_run(tmp_path_factory):
    """(what the lesson defined, what it printed, the rates its distance plot drew) for OTHERS."""
    import _figures  # matplotlib: only where a test draws

    draw, drawn = _figures.valley_distances, {}

    def recording(runs, rates, path):
        drawn.update(rates)
        return draw(runs, rates, path)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(_figures, "valley_distances", recording)
        defined, printed = run_lesson(LESSON, OTHERS, out_dir=tmp_path_factory.mktemp("others"))
    return defined, printed, drawn


def test_the_curvatures_may_come_in_either_order(other_run):
    defined, printed, _ = other_run
    assert defined.kappa == KAPPA and "curvatures 0.2 and 4, condition number 20" in printed
    assert defined.best_gd_lr == pytest.approx(2 / 4.2, rel=1e-15) and defined.gd_edge == 0.5
    assert defined.momentum_edge == pytest.approx((2 + 2 * MOMENTUM_RATE**2) / 4, rel=1e-14)


def test_the_network_lr_and_seed_reach_both_twins(other_run):
    defined, printed, _ = other_run
    reference = defined.common.new_network(5)
    defined.train(reference, torch.optim.Adam(reference.parameters(), lr=0.01), 1)
    assert torch.equal(defined.model.conv.weight, reference.conv.weight)
    assert defined.identical_to_adam is True and "SimpleAdam(lr=0.01) trains Test_Conv" in printed


def test_the_textbook_forms_run_with_the_twins_seed_and_adams_valley_lr(other_run):
    for form in other_run[0].textbook.values():  # a few roundings away, not another start or another lr
        assert 0 < form["network_max_abs_diff"] < 1e-5 and 0 < form["valley_max_abs_diff"] < 1e-6


def valley_path(make_optimizer, start, curvatures, scale, steps):
    """The valley's run, written out again, on `scale` times its loss: the positions, to 1e6 away at most."""
    point = torch.tensor(start, dtype=torch.float64, requires_grad=True)
    curvatures, optimizer = torch.tensor(curvatures, dtype=torch.float64), make_optimizer([point])
    positions = [point.detach().clone()]
    for _ in range(steps):
        optimizer.zero_grad()
        (scale * (0.5 * (curvatures * point**2).sum())).backward()
        optimizer.step()
        positions.append(point.detach().clone())
        if not point.detach().norm() < 1e6:
            break
    return torch.stack(positions)


def adam_in_the_valley(curvatures, start, lr, steps):
    """torch.optim.Adam on (a*x^2 + b*y^2)/2 in float64: its positions, one row per step."""
    return valley_path(lambda params: torch.optim.Adam(params, lr=lr), start, curvatures, 1, steps)


def test_part_4_prints_what_adam_did_from_the_other_start(other_run):
    run = adam_in_the_valley((4.0, 0.2), (4.5, 0.0), lr=0.2, steps=60)
    first_move, d = (run[1] - run[0]).abs(), distances(run)
    crossed = (run[:, 0] <= 0).nonzero()[0].item()  # from positive x, the first step at x = 0 or past it
    printed = other_run[1]
    assert f"its first step moves x by {first_move[0]:.6g} and y by {first_move[1]:.6g};" in printed  # y by 0
    assert f"it first reaches x = 0 at step {crossed} (the rule of thumb: |x|/lr = 22.5 steps)\n" in printed
    for step in (20, 40, 60):
        assert f"step {step}: distance to (0, 0) {d[step]:.3g}\n" in printed
    assert f"closest: {d.min():.3g} at step {d.argmin().item()}\n" in printed


def test_the_distance_plot_draws_the_rates_of_the_runs_it_shows(other_run):
    gd_rate = max(abs(1 - 0.3 * 4.0), abs(1 - 0.3 * 0.2))  # --gd-lr 0.3, not the best lr
    assert list(other_run[2].values()) == [pytest.approx(gd_rate, rel=1e-15), pytest.approx(MOMENTUM_RATE, rel=1e-6)]


# --- the pictures -------------------------------------------------------------------------------

def test_the_gif_fits_its_budget_and_holds_its_last_frame(end_to_end):
    gif = end_to_end["stage4"].result() and end_to_end["stage4"].out_dir / "04_valley.gif"
    assert gif.stat().st_size <= 400_000
    durations, loop = gif_timing(gif)
    assert loop == 0 and durations == [70] * 59 + [1500]  # 15 frames a second, the last held


def colour_pixels(frame, rgb, tolerance=30):
    """Pixels of colour rgb, drawn solid or (as the trails are) at 70% over white."""
    count = 0
    for shade in (rgb, [0.7 * c + 0.3 * 255 for c in rgb]):
        count += int((abs(frame - torch.tensor(shade).numpy()).max(axis=2) <= tolerance).sum())
    return count


def test_each_optimizer_moves_in_its_own_colour(end_to_end):
    frames = frames_of(end_to_end["stage4"].result() and end_to_end["stage4"].out_dir / "04_valley.gif")
    for rgb in ((31, 119, 180), (255, 127, 14), (148, 103, 189)):  # tab:blue, tab:orange, tab:purple
        assert colour_pixels(frames[-1], rgb) > colour_pixels(frames[0], rgb) + 50  # its trail grew


def test_same_settings_same_bytes(tmp_path):
    args = ["--steps", "20", "--epochs", "1", "--quiet"]
    for folder in ("a", "b"):
        assert terminal(args + ["--out-dir", tmp_path / folder]) == (0, "", "")
    for name in ("04_valley.gif", "04_distances.png"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    assert len(frames_of(tmp_path / "a" / "04_valley.gif")) == 21  # one per position: fewer than 60


# --- settings and flags -----------------------------------------------------------------------

def test_defaults(apply):
    settings = apply()
    assert (settings["CURVATURES"], settings["START"], settings["STEPS"]) == ((0.2, 4.0), (-4.5, 1.0), 150)
    assert (settings["GD_LR"], settings["MOMENTUM_LR"], settings["MOMENTUM"]) == (None, None, None)
    assert (settings["ADAM_LR"], settings["NETWORK_LR"], settings["EPOCHS"], settings["SEED"]) == (0.1, 0.001, 2, 0)
    assert settings["FRAMES"] == 60 and settings["PLOTS"] is True and settings["OUT_DIR"] == REPO_DIR / "outputs"


@pytest.mark.parametrize("in_a_kernel", [False, True])
def test_every_setting_from_the_settings_cell_reaches_the_lesson(apply, in_a_kernel):
    """No flag's default may stand in for the settings cell's value: each one below differs from the cell's."""
    changed = {"CURVATURES": (1.0, 2.0), "START": (3.0, -1.0), "STEPS": 40, "GD_LR": 0.3, "MOMENTUM_LR": 0.2,
               "MOMENTUM": 0.5, "ADAM_LR": 0.05, "NETWORK_LR": 0.01, "EPOCHS": 3, "SEED": 7, "FRAMES": 20,
               "DEVICE": "cpu", "PLOTS": False}
    assert set(changed) == set(settings_cell()) - {"OUT_DIR"}
    settings = apply(in_a_kernel=in_a_kernel, **changed)
    assert {name: settings[name] for name in changed} == changed


@pytest.mark.parametrize("argv, name, value", [
    (["--curvatures", "0.01,100"], "CURVATURES", (0.01, 100.0)), (["--start=-10,10"], "START", (-10.0, 10.0)),
    (["--start", "0,1"], "START", (0.0, 1.0)), (["--steps", "3"], "STEPS", 3), (["--steps", "1000"], "STEPS", 1000),
    (["--gd-lr", "0.0001"], "GD_LR", 0.0001), (["--gd-lr", "10"], "GD_LR", 10.0),
    (["--momentum-lr", "10"], "MOMENTUM_LR", 10.0), (["--momentum", "0"], "MOMENTUM", 0.0),
    (["--adam-lr", "0.0001"], "ADAM_LR", 0.0001), (["--network-lr", "1"], "NETWORK_LR", 1.0),
    (["--steps", "10"], "FRAMES", 11), (["--frames", "2"], "FRAMES", 2), (["--steps", "59"], "FRAMES", 60),
    (["--steps", "1000", "--frames", "1001"], "FRAMES", 1001), (["--seed", str(2**63 - 1)], "SEED", 2**63 - 1),
])
def test_every_limit_itself_is_accepted(apply, argv, name, value):
    settings = apply(argv)
    assert settings[name] == value and type(settings[name]) is type(value)


BAD_INPUTS = [
    (["--curvatures", "0,4"], "--curvatures"), (["--curvatures", "0.2"], "--curvatures"),
    (["--curvatures", "0.2,4,1"], "--curvatures"), (["--curvatures", "101,1"], "--curvatures"),
    (["--start", "0,0"], "--start"), (["--start", "11,0"], "--start"), (["--start", "a,1"], "--start"),
    (["--steps", "2"], "--steps"), (["--steps", "1001"], "--steps"), (["--gd-lr", "0"], "--gd-lr"),
    (["--gd-lr", "11"], "--gd-lr"), (["--momentum-lr", "nan"], "--momentum-lr"), (["--momentum", "1"], "--momentum"),
    (["--adam-lr", "-1"], "--adam-lr"), (["--network-lr", "2"], "--network-lr"), (["--epochs", "0"], "--epochs"),
    (["--frames", "1"], "--frames"), (["--steps", "10", "--frames", "12"], "--frames"), (["--seed", "-1"], "--seed"),
    (["--device", "gpu"], "--device"),
]


@pytest.mark.parametrize("argv, flag", BAD_INPUTS)
def test_bad_input_is_a_usage_error_naming_the_flag(argv, flag):
    status, out, err = terminal(argv)
    assert status == 2 and out == "" and "Traceback" not in err and flag in err.strip().splitlines()[-1]


def test_a_notebook_takes_whole_numbers_and_refuses_the_minimum_as_a_start(apply):
    settings = apply(in_a_kernel=True, CURVATURES=(1, 4), START=(-4, 1), GD_LR=1, STEPS=10)
    assert settings["CURVATURES"] == (1.0, 4.0) and all(type(a) is float for a in settings["CURVATURES"])
    assert type(settings["GD_LR"]) is float and settings["FRAMES"] == 11
    with pytest.raises(_flags.SettingError, match="--start: must not be the minimum"):
        apply(in_a_kernel=True, START=(0, 0))


def test_help_gives_every_flag_its_default():
    status, text, _ = terminal(["--help"])
    flat = " ".join(text.split())
    assert status == 0 and flat.startswith("usage:")
    for default in ("(default: 0.2,4.0)", "(default: -4.5,1.0)", "(default: 150)", "(default: the best, 2/(A+B))",
                    "(default: 0.1)", "(default: 0.001)", "(default: 60, or steps+1 if that is fewer)",
                    "--device {auto,cpu,cuda}", "--no-plots"):
        assert default in flat
    status, _, err = terminal(["--device", "tpu"])
    assert status == 2 and "--device: invalid choice: 'tpu'" in err


def test_json_and_quiet_print_one_line():
    status, out, err = terminal(["--json", "--quiet", *QUICK])
    assert status == 0 and err == "" and len(out.splitlines()) == 1
    report = json.loads(out)
    assert report["outputs"] == [] and [run["optimizer"] for run in report["valley"]["runs"]] == [
        "gradient descent", "momentum", "SimpleAdam"]


def test_chosen_settings_are_printed_without_the_best_label(other_run):
    _, printed, _ = other_run
    assert printed.splitlines()[:2] == [
        "Part 1: the valley f(x, y) = 2*x^2 + 0.1*y^2, curvatures 0.2 and 4, condition number 20",
        "  gradient descent: lr 0.3; formula max|1 - lr*lambda| = 0.940000; for comparison, the best lr's rate "
        f"(kappa-1)/(kappa+1) = {GD_RATE:.6f}"]


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_training_shows_its_progress_on_a_terminal_only(adam_lesson, monkeypatch, capsys):
    model = adam_lesson.common.new_network(0)
    adam_lesson.train(model, adam_lesson.SimpleAdam(model.parameters()), 1, "SimpleAdam")
    assert capsys.readouterr().out == ""  # piped, or in the tests: nothing
    screen = Terminal()
    monkeypatch.setattr(sys, "stdout", screen)
    adam_lesson.train(model, adam_lesson.SimpleAdam(model.parameters()), 2, "SimpleAdam")
    assert screen.getvalue() == "".join(f"\rSimpleAdam: epoch {epoch} of 2\033[K" for epoch in (1, 2)) + "\r\033[K"


def test_part_2_says_what_trains_for_how_long(end_to_end, other_run):
    assert "\nPart 2: SimpleAdam(lr=0.001) trains Test_Conv with stage 1's loop, 2 epochs\n" in \
        end_to_end["stage4"].result().stdout
    assert "\nPart 2: SimpleAdam(lr=0.01) trains Test_Conv with stage 1's loop, 1 epoch\n" in other_run[1]


def test_part_3_prints_each_forms_differences(end_to_end):
    out = end_to_end["stage4"].result().stdout
    textbook = last_json_line(out)["textbook"]
    assert ("\nPart 3: Adam in other forms against SimpleAdam: the largest difference in the final weights, "
            "and anywhere along the valley path\n") in out
    for name, form in textbook.items():
        line = f"  {name:<14} network weights (float32): DIFFERENT (largest difference " \
               f"{form['network_max_abs_diff']:.3g}); valley path (float64): {form['valley_max_abs_diff']:.3g}\n"
        assert line in out


def test_a_start_on_the_y_axis_is_at_x_0_from_step_0():
    _, printed = lesson("--start", "0,1", *QUICK)
    assert "  it first reaches x = 0 at step 0 (the rule of thumb: |x|/lr = 0 steps)\n" in printed


def test_the_pictures_go_to_a_new_folder_and_an_unwritable_one_exits_1(tmp_path):
    new = tmp_path / "new" / "pictures"
    status, _, err = terminal(["--out-dir", new, "--steps", "3", "--frames", "2", "--epochs", "1"])
    assert status == 0 and err == "" and sorted(p.name for p in new.iterdir()) == ["04_distances.png", "04_valley.gif"]
    (tmp_path / "file").write_text("")
    status, _, err = terminal(["--out-dir", tmp_path / "file" / "pictures", "--steps", "3", "--epochs", "1"])
    assert status == 1 and err.count("\n") == 1
    assert err.startswith("04_adam_by_hand.py: error: cannot create --out-dir ")


def test_the_contour_through_the_start_is_drawn():
    """The valley's contour levels are fractions of f at the start, worked out here; 1.0 is the start's own."""
    start = torch.tensor([[-3.0, -0.5]], dtype=torch.float64)  # y**2 differs from y**3 and from y here
    _, axes = _figures.valley_frame((0.2, 4.0), {"a run": start})
    level = (0.2 * 9 + 4.0 * 0.25) / 2
    assert np.allclose(axes.collections[0].levels, level * np.array([0.002, 0.01, 0.05, 0.2, 0.5, 1.0, 1.5]))


def test_the_frame_follows_a_run_only_while_it_is_nearer_than_twice_its_start():
    run = torch.tensor([[1.0, 0.0], [-2.0, 0.0], [4.0, 0.0]], dtype=torch.float64)  # distances 1, 2, 4
    _, axes = _figures.valley_frame((2.0, 2.0), {"a run": run})
    # (1, 0) and the minimum (0, 0) make the box; 2, twice the start's distance, is out already; pad 8%
    assert axes.get_xlim() == pytest.approx((-0.08, 1.08)) and axes.get_ylim() == pytest.approx((-0.08, 0.08))


# === Adam's parts (parts 2 and 3) and their settings: issue 24 ====================================

from hypothesis import example, given  # noqa: E402

import common  # noqa: E402 -- this block's own imports, kept with it
from conftest import articles_loop  # noqa: E402
from settings_space import lesson_flags  # noqa: E402


def network_lr_help():
    status, text, _ = terminal(["--help"])
    flat = " ".join(text.split())
    return flat[flat.index("--network-lr NETWORK_LR ") :].split(" --", 1)[0]


@pytest.mark.parametrize("value", ["0", "9.99e-07", "1.0001"])
def test_the_network_lr_range_is_the_one_its_help_states(apply, value):
    """The help says from 1e-06 to 1: below or above, a terminal and a notebook both refuse it."""
    assert "from 1e-06 to 1 (default: 0.001)" in network_lr_help()
    assert apply(["--network-lr", "1e-06"])["NETWORK_LR"] == 1e-06
    status, out, err = terminal(["--network-lr", value, *QUICK])  # accepted, it would run quickly
    assert status == 2 and out == "" and "argument --network-lr" in err.strip().splitlines()[-1]
    with pytest.raises(_flags.SettingError, match="--network-lr"):
        apply(in_a_kernel=True, NETWORK_LR=float(value))


# === The valley's parts (parts 1 and 4) at every setting: issue 24 ==================================

FLOOR = math.sqrt(torch.finfo(torch.float64).tiny)  # a distance below it: x^2 + y^2 is no normal float64
TINY = torch.finfo(torch.float64).tiny  # float64's smallest normal number: a rate is measured above it
BEST_LR, BEST_MOMENTUM = (2 / (math.sqrt(0.2) + 2)) ** 2, MOMENTUM_RATE**2  # the default valley's best pair


def sgd_path(lr, momentum=0.0, steps=150, curvatures=(0.2, 4.0), start=(-4.5, 1.0)):
    """torch.optim.SGD in the valley (a*x^2 + b*y^2)/2, float64, stopped once 1e6 away: its positions."""
    return valley_path(lambda params: torch.optim.SGD(params, lr=lr, momentum=momentum), start, curvatures, 1, steps)


def exact_distances(run):
    """hypot does not square: it has no floor at 1e-154, so it is the reference below that floor too."""
    return torch.hypot(run[:, 0], run[:, 1])


def rate_over(run, first, last):
    d = exact_distances(run)
    return (d[last] / d[first]).item() ** (1 / (last - first))


def test_a_1000_step_run_measures_momentum_below_the_floor_of_x_squared(adam_lesson):
    """--steps 1000, the flag's maximum: x^2 + y^2 leaves float64's normal numbers at step 796 and reads 0 from
    835, where the point is still 1e-162 away. hypot's distances do not: the rate is measured over the whole run,
    and the lesson's float64 line says where x^2 + y^2 reads 0."""
    run = sgd_path(BEST_LR, BEST_MOMENTUM, steps=1000)
    below = (exact_distances(run) < FLOOR).nonzero()[0].item()
    assert below == 796 and run.norm(dim=1)[835] == 0 < exact_distances(run)[835]
    assert (run.norm(dim=1)[:835] > 0).all() and exact_distances(run)[-1] > TINY
    rate = rate_over(run, 333, 1000)
    assert abs(rate - 0.6356) < 5e-4  # the issue's figure, over steps 333 to 1000
    assert adam_lesson.rate_window(run) == (333, 1000)
    assert adam_lesson.rate_text(run) == f"{rate:.6f} over steps 333 to 1000"
    assert adam_lesson.reads_0_from(run, torch.float64) == 835 and adam_lesson.reads_0_from(run, torch.float32) < 835


def test_the_window_starts_a_third_of_the_way_into_the_run(adam_lesson):
    """--steps 300: over steps 100 to 300 momentum measures 0.637972 (from step 50 it would read 0.639005)."""
    run = sgd_path(BEST_LR, BEST_MOMENTUM, steps=300)
    assert f"{rate_over(run, 100, 300):.6f}" == "0.637972" and f"{rate_over(run, 50, 300):.6f}" == "0.639005"
    assert adam_lesson.rate_text(run) == "0.637972 over steps 100 to 300"


def test_a_run_that_flies_off_prints_the_steps_its_rate_came_from():
    """--momentum-lr 2: the run passes 1e6 at step 8 and stops; its rate comes from steps 2 to 8."""
    run = sgd_path(2.0, BEST_MOMENTUM, steps=30)
    assert len(run) == 9
    _, printed = lesson("--momentum-lr", "2", *QUICK)
    assert f"; momentum {rate_over(run, 2, 8):.6f} over steps 2 to 8 (where it passed 1e+06 and stopped)\n" in printed
    assert "measured: gradient descent 0.904762 over steps 10 to 30; momentum" in printed  # each run its own steps


def test_a_round_valley_lands_on_the_minimum_in_one_step():
    """kappa = 1: the best lr, 1/lambda, takes every coordinate to 0 in one step, and the best momentum is 0."""
    run = sgd_path(1.0, 0.0, steps=30, curvatures=(1.0, 1.0))
    assert not run[1].any()
    _, printed = lesson("--curvatures", "1,1", *QUICK)
    assert ("  measured: gradient descent no rate (at step 1 it lands on (0, 0) exactly); momentum no rate "
            "(at step 1 it lands on (0, 0) exactly)\n") in printed
    assert "nan" not in printed.lower() and "still 0 away" not in printed
    for dtype in ("float32", "float64"):
        assert f"in {dtype}, momentum's sqrt(x^2 + y^2) never reads 0 while the point is away from (0, 0), in these " \
               "30 steps\n" in printed


def test_the_double_roots_are_printed_beside_2_sqrt_momentum(end_to_end):
    """At the best pair, 1 + momentum - lr*lambda is +2*sqrt(momentum) at lambda 0.2 and -2*sqrt(momentum) at 4."""
    twice_root = 2 * math.sqrt(BEST_MOMENTUM)
    low, high = 1 + BEST_MOMENTUM - BEST_LR * 0.2, 1 + BEST_MOMENTUM - BEST_LR * 4.0
    assert low == pytest.approx(twice_root, rel=1e-12) and high == pytest.approx(-twice_root, rel=1e-12)
    assert (f"  the best pair's double roots: 1 + momentum - lr*lambda = {low:.6f} at lambda 0.2 and {high:.6f} at "
            f"lambda 4; +-2*sqrt(momentum) = +-{twice_root:.6f}\n") in end_to_end["stage4"].result().stdout


def edge_verdict(run, formula):
    """The reference verdict: the distance's trend over the run's last two thirds, where its formula agrees."""
    last = len(run) - 1
    measured = rate_over(run, last // 3, last)
    if (measured < 1) != (formula < 1) or (measured > 1) != (formula > 1):
        return "too short to tell", measured
    return ("shrinking" if measured < 1 else "GROWING" if measured > 1 else "steady"), measured


def test_a_short_run_above_its_edge_is_too_short_to_tell():
    """--steps 3: both runs above their edges still shrink (their x shrinks faster than their y grows), but their
    formulas say they grow: the verdict may not call them shrinking."""
    _, printed = lesson("--steps", "3", "--epochs", "1", "--no-plots")
    momentum_edge = (2 + 2 * BEST_MOMENTUM) / 4
    for name, edge, momentum in (("gradient descent", 0.5, 0.0), ("momentum", momentum_edge, BEST_MOMENTUM)):
        for side, factor in (("below", 0.99), ("above", 1.01)):
            run = sgd_path(factor * edge, momentum, steps=3)
            formula = step_matrix_rate(factor * edge, momentum)
            told, measured = edge_verdict(run, formula)
            assert told == ("too short to tell" if side == "above" else "shrinking")
            d = exact_distances(run)
            assert (f"({side}) -> distance {d[0]:.3g} to {d[-1]:.3g} in 3 steps: {told}; rate {measured:.6f} over "
                    f"steps 1 to 3, formula {formula:.6f}\n") in printed
    assert "shrank" not in printed


def test_the_ranking_comes_from_the_final_distances(end_to_end):
    """The default valley: momentum, gradient descent, Adam at the grid's best lr (1), Adam at lr 0.1."""
    out = end_to_end["stage4"].result().stdout
    valley = last_json_line(out)["valley"]
    finals = {"gradient descent": exact_distances(sgd_path(2 / 4.2))[-1].item(),
              "momentum": exact_distances(sgd_path(BEST_LR, BEST_MOMENTUM))[-1].item()}
    grid = {lr: distances(adam_in_the_valley((0.2, 4.0), (-4.5, 1.0), lr, 150))[-1].item()
            for lr in (0.001, 0.01, 0.1, 1.0)}
    best = min(grid, key=grid.get)
    assert best == 1.0 and [row["lr"] for row in valley["adam_grid"]] == list(grid)
    tried = ", ".join(f"lr {lr:g} ends {d:.3g} away" for lr, d in grid.items())
    assert f"  SimpleAdam by trial, 150 steps each: {tried}; the best: lr 1\n" in out
    finals.update({"SimpleAdam, lr 1 (the grid's best)": grid[1.0], "SimpleAdam, lr 0.1": grid[0.1]})
    ranking = sorted(finals, key=finals.get)
    assert ranking == [row["run"] for row in valley["ranking"]]
    assert ranking[-1] == "SimpleAdam, lr 0.1"  # with the default settings Adam ends last
    assert "  final distances, nearest first: " + "; ".join(f"{name} {finals[name]:.3g}" for name in ranking) in out


def test_part_3_no_longer_holds_part_4s_run():
    """Each name is defined before its use, and Part 4's run is Part 4's: Part 3 keeps its own reference path."""
    source = (REPO_DIR / LESSON).read_text()
    assert source.index("adam_run") > source.index("# ## Part 4")
    assert "comes last" not in source and "comes in last" not in source


@pytest.fixture(scope="module")
def momentum_half(tmp_path_factory):
    """`--momentum 0.5 --json` with pictures on: (its --json report, the rates its distance plot was given)."""
    drawn = {}

    def recording(runs, rates, path):
        drawn.update(rates)
        return path

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(_figures, "valley_distances", recording)
        patch.setattr(_figures, "valley_animation", lambda runs, curvatures, steps, frames, fps, path: path)
        status, out, err = terminal(["--momentum", "0.5", "--steps", "30", "--epochs", "1", "--json",
                                     "--out-dir", tmp_path_factory.mktemp("momentum_half")])
    assert status == 0 and err == ""
    return last_json_line(out), drawn


def test_the_distance_plot_draws_the_rate_of_the_pair_that_ran(momentum_half):
    _, drawn = momentum_half
    assert list(drawn.values())[1] == pytest.approx(step_matrix_rate(BEST_LR, 0.5), rel=1e-9)
    assert list(drawn.values())[1] != pytest.approx(MOMENTUM_RATE, rel=1e-3)


def test_json_gives_the_momentum_each_run_used(momentum_half, end_to_end):
    assert momentum_half[0]["valley"]["runs"][1]["momentum"] == 0.5
    default = last_json_line(end_to_end["stage4"].result().stdout)["valley"]["runs"][1]
    assert default["momentum"] == pytest.approx(BEST_MOMENTUM, rel=1e-14)


# --- the valley's verdicts at drawn settings (Hypothesis; the profile sets how many) -----------------

import re  # noqa: E402 -- the property tests' own imports, kept with them

from hypothesis import example, given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from settings_space import check_generic, lesson_flags, run_quickly  # noqa: E402

RATE_TEXT = re.compile(r"(?P<rate>[\d.]+) over steps (?P<first>\d+) to (?P<last>\d+)(?: \((?P<ended>.*)\))?"
                       r"|no rate \((?P<none>.*)\)")
EDGE_LINE = re.compile(r"  (?P<name>gradient descent|momentum) +edge lr = \S+: lr \S+ \((?P<side>below|above)\) -> "
                       r"distance \S+ to (?P<final>\S+) in (?P<steps>\d+) steps: (?:(?P<verdict>[^;]+); rate )?"
                       r"(?P<text>.*), formula (?P<formula>\S+)")
# Quick runs: the network part trains one epoch; the valley's runs take 3 to 25 steps (fast rates reach
# float64's floor within them); every other valley setting is drawn from its whole range.
VALLEY_SETTINGS = st.tuples(
    lesson_flags(LESSON, {"STEPS": None, "EPOCHS": None, "NETWORK_LR": None, "SEED": None, "FRAMES": None,
                          "DEVICE": None}, fixed=["--epochs=1"]),
    st.integers(3, 25)).map(lambda drawn: [*drawn[0], f"--steps={drawn[1]}"])


def reference_window(run):
    """(first, last, the step where the distance first falls below TINY or None), from hypot's distances."""
    below = (exact_distances(run) < TINY).nonzero()
    cut = below[0].item() if len(below) else None
    last = len(run) - 1 if cut is None else cut - 1
    return last // 3, last, cut


def check_rate_text(text, run, report=None):
    """A printed rate text against the run that made it: its window, its rate, why it ends; and --json's."""
    first, last, cut = reference_window(run)
    printed = RATE_TEXT.fullmatch(text)
    assert printed, text
    if last < 1:
        assert printed["none"] == (f"at step {cut} it lands on (0, 0) exactly" if not run[cut].any()
                                   else f"at step {cut} its distance is below 2.23e-308")
        assert report is None or (report["rate_measured"], report["rate_window"]) == (None, None)
        return None
    assert (int(printed["first"]), int(printed["last"])) == (first, last) and last <= len(run) - 1
    rate = rate_over(run, first, last)
    assert abs(float(printed["rate"]) - rate) <= 5.1e-7 + 1e-12 * rate, (text, rate)
    ended = printed["ended"]
    if cut is not None:
        assert ended.startswith(f"at step {cut} "), text
    else:
        assert ended == (None if exact_distances(run)[-1] < 1e6 else "where it passed 1e+06 and stopped"), text
    if report is not None:
        assert report["rate_window"] == [first, last] and f"{report['rate_measured']:.6f}" == printed["rate"]
    return rate


def check_part_1(argv, out, report, steps):
    valley = report["valley"]
    curvatures, start = tuple(valley["curvatures"]), tuple(valley["start"])
    gd, momentum, _ = valley["runs"]
    runs = {"gradient descent": sgd_path(gd["lr"], 0.0, steps, curvatures, start),
            "momentum": sgd_path(momentum["lr"], momentum["momentum"], steps, curvatures, start)}
    assert gd["rate_formula"] == pytest.approx(step_matrix_rate(gd["lr"], 0.0, curvatures), rel=1e-9, abs=1e-12)
    assert momentum["rate_formula"] == pytest.approx(
        step_matrix_rate(momentum["lr"], momentum["momentum"], curvatures), rel=1e-6, abs=1e-6)
    measured = re.search(r"\n  measured: gradient descent (.*); momentum (.*)\n", out)
    for text, (name, run), json_run in zip(measured.groups(), runs.items(), (gd, momentum)):
        check_rate_text(text, run, json_run)
        assert json_run["steps_done"] == len(run) - 1
    if not any(flag.startswith(("--momentum=", "--momentum-lr=")) for flag in argv):  # the best pair
        beta, lr = momentum["momentum"], momentum["lr"]
        middles = [1 + beta - lr * lam for lam in sorted(curvatures)]
        assert abs(middles[0] - 2 * math.sqrt(beta)) < 1e-9 and abs(middles[1] + 2 * math.sqrt(beta)) < 1e-9
        assert f"= {middles[0]:.6f} at lambda {min(curvatures):g} and {middles[1]:.6f} at lambda" in out
        first, last, _ = reference_window(runs["momentum"])
        if last >= 1 and first >= 1:  # d_k / k: the double root's factor k divided out, from step 1 on
            d = exact_distances(runs["momentum"])
            without_k = ((d[last] / last) / (d[first] / first)).item() ** (1 / (last - first))
            printed = re.search(r"\(d_k / k\): ([\d.]+) over steps (\d+) to (\d+)\n", out)
            assert (int(printed[2]), int(printed[3])) == (first, last)
            assert abs(float(printed[1]) - without_k) <= 5.1e-7 + 1e-12 * without_k
            assert f"{momentum['rate_measured_without_k']:.6f}" == printed[1]
    return runs, curvatures, start


def check_edges(out, report, steps, curvatures, start):
    valley, beta = report["valley"], report["valley"]["runs"][1]["momentum"]
    moving = [lam for lam, coordinate in zip(curvatures, start) if coordinate != 0]
    lines = [EDGE_LINE.fullmatch(line) for line in out.splitlines() if " edge lr = " in line]
    assert len(lines) == 4 and all(lines), out
    for line in lines:
        name, side = line["name"], line["side"]
        edge = valley["edges"][f"{name}, {side}"]
        run = sgd_path(edge["lr"], beta if name == "momentum" else 0.0, steps, curvatures, start)
        measured = check_rate_text(line["text"], run, edge)
        formula = step_matrix_rate(edge["lr"], beta if name == "momentum" else 0.0, moving)
        assert abs(formula - float(line["formula"])) <= 5.1e-7 + 1e-6 * formula  # a double root: half the digits
        assert line["final"] == f"{exact_distances(run)[-1]:.3g}" and int(line["steps"]) == len(run) - 1
        if measured is None:
            assert line["verdict"] is None and edge["verdict"] == "no rate"
        elif abs(measured - 1) > 1e-9 and abs(formula - 1) > 1e-6:  # clear of the fence: the verdict is decided
            expected = edge_verdict(run[: reference_window(run)[1] + 1], formula)[0]
            assert line["verdict"] == edge["verdict"] == expected, (line[0], expected)


def check_part_4(out, report, steps, runs, curvatures, start):
    valley = report["valley"]
    adam_lr = valley["runs"][2]["lr"]
    grid = {lr: exact_distances(adam_in_the_valley(curvatures, start, lr, steps))[-1].item()
            for lr in (0.001, 0.01, 0.1, 1.0)}
    best = min(grid, key=grid.get)
    assert valley["adam_best_lr"] == best
    assert [row["distance_final"] for row in valley["adam_grid"]] == list(grid.values())
    tried = ", ".join(f"lr {lr:g} ends {final:.3g} away" for lr, final in grid.items())
    assert f"  SimpleAdam by trial, {steps} steps each: {tried}; the best: lr {best:g}\n" in out
    labels = {name: name if len(run) == steps + 1 else f"{name} (stopped at step {len(run) - 1})"
              for name, run in runs.items()}
    finals = {labels[name]: exact_distances(run)[-1].item() for name, run in runs.items()}
    adam_run = adam_in_the_valley(curvatures, start, adam_lr, steps)
    finals[f"SimpleAdam, lr {adam_lr:g}"] = exact_distances(adam_run)[-1].item()
    if best != adam_lr:
        finals[f"SimpleAdam, lr {best:g} (the grid's best)"] = grid[best]
    printed = re.search(r"\n  final distances, nearest first: (.*)\n", out)[1].split("; ")
    names = [entry.rsplit(" ", 1)[0] for entry in printed]
    assert sorted(names) == sorted(finals) and names == [row["run"] for row in valley["ranking"]]
    assert [finals[name] for name in names] == sorted(finals.values())  # nearest first, by the runs themselves
    assert printed == [f"{name} {finals[name]:.3g}" for name in names]


@given(VALLEY_SETTINGS)
@example(["--start=1e-160,0.0", "--epochs=1", "--steps=5"])  # a start below float64's floor: no rate at all
@example(["--curvatures=1,1.01", "--epochs=1", "--steps=100"])  # x^2 + y^2 underflows: hypot's distances do not
def test_settings_space_valley_verdicts_agree_with_the_runs(argv):
    status, out, err, report = run_quickly(LESSON, argv)
    check_generic(LESSON, status, out, err, report)
    if status != 0:
        return
    steps = int(next(flag for flag in argv if flag.startswith("--steps="))[len("--steps="):])
    runs, curvatures, start = check_part_1(argv, out, report, steps)
    check_edges(out, report, steps, curvatures, start)
    check_part_4(out, report, steps, runs, curvatures, start)


def scale_line(name, make_optimizer, start, curvatures, steps):
    """The line the lesson must print for one optimizer on the valley and on 1000 times its loss."""
    plain, scaled = (valley_path(make_optimizer, start, curvatures, scale, steps) for scale in (1, 1000))

    def ending(run):
        final = exact_distances(run)[-1]
        return f"ends {final:.3g} away" if final < 1e6 else f"flies off, past 1e+06 at step {len(run) - 1}"

    line = f"  {name}: {ending(plain)}; on 1000 x the loss it {ending(scaled)}"
    if len(plain) == len(scaled) and exact_distances(plain)[-1] < 1e6 and exact_distances(scaled)[-1] < 1e6:
        line += f"; the two paths differ by at most {(plain - scaled).abs().max():.3g}"
    return line + "\n"


def in_words(identical):
    return "identical, bit for bit" if identical else "DIFFERENT"


def ratio_in_words(inside, reordered):
    return f"{inside / reordered:.3g} times" if reordered > 0 else "no ratio (the reordering's difference is 0)"


def largest_difference(model, other):
    return max((a - b).abs().max().item() for a, b in zip(model.parameters(), other.parameters()))


def check_network_verdicts(defined, out, report, seed, epochs, lr, steps):
    """Part 2's and part 3's printed verdicts, against torch.optim.Adam, the textbook forms and the valley runs,
    trained again here; the lesson's own SimpleAdam network, `defined.model`, is what they are compared with."""
    simple, adam = defined.model, articles_loop(seed, epochs, lr, 0, optimizer_class=torch.optim.Adam)[0]
    identical = all(torch.equal(a, b) for a, b in zip(simple.parameters(), adam.parameters()))
    assert (f"weights after SimpleAdam vs torch.optim.Adam from the same start: {in_words(identical)} "
            f"(largest difference {largest_difference(simple, adam):g})\n") in out
    assert report["network"]["identical_to_adam"] is identical
    before, after = common.evaluate(common.new_network(seed)), common.evaluate(adam)  # Adam's, where identical
    if identical:
        assert (f"  training accuracy {before['train_accuracy']:.1f}% -> {after['train_accuracy']:.1f}%; test "
                f"accuracy {before['test_accuracy']:.1f}% -> {after['test_accuracy']:.1f}%\n") in out
        assert report["network"]["test_accuracy_after"] == after["test_accuracy"]
    valley = report["valley"]
    adam_lr = valley["runs"][2]["lr"]
    simple_path = valley_path(lambda params: torch.optim.Adam(params, lr=adam_lr), valley["start"],
                              valley["curvatures"], 1, steps)
    differences = {}
    for name in ("TextbookAdam", "EpsInsideAdam"):
        form = getattr(defined, name)
        network = largest_difference(articles_loop(seed, epochs, lr, 0, optimizer_class=form)[0], simple)
        path = valley_path(lambda params, form=form: form(params, lr=adam_lr), valley["start"], valley["curvatures"],
                           1, steps)
        differences[name] = network, (path - simple_path).abs().max().item()
        assert (f"  {name:<14} network weights (float32): {in_words(network == 0)} (largest difference "
                f"{network:.3g}); valley path (float64): {differences[name][1]:.3g}\n") in out
        assert report["textbook"][name]["network_max_abs_diff"] == network
    (reordered_network, reordered_valley), (inside_network, inside_valley) = differences.values()
    assert (f"against the reordering, largest difference over largest difference: on the network "
            f"{ratio_in_words(inside_network, reordered_network)}; in the valley "
            f"{ratio_in_words(inside_valley, reordered_valley)}\n") in out


# Drawn: the network's settings, and the valley's that part 2's runs use; a run of 10 steps in the valley.
NETWORK_AND_VALLEY = lesson_flags(LESSON, {"EPOCHS": (1, 3), "STEPS": None, "MOMENTUM_LR": None, "MOMENTUM": None,
                                           "FRAMES": None, "DEVICE": None}, fixed=["--steps=10", "--device=cpu"])


@given(NETWORK_AND_VALLEY)
@example(["--seed=5", "--network-lr=0.01", "--steps=10", "--device=cpu"])  # the ratio 29 times, not "twice"
@example(["--network-lr=1e-06", "--steps=10", "--device=cpu"])  # the textbook forms' steps vanish: the same bits
def test_settings_space_parts_2_and_3_print_what_an_independent_run_gives(argv):
    """(Every run's exit, stderr and NaNs: test_settings_space.py. Here, what parts 2 and 3 print.)"""
    try:
        defined, out = run_lesson(LESSON, [*argv, "--no-plots", "--json"])
    except SystemExit:  # a usage error, such as a start at the minimum
        return
    report = last_json_line(out)
    flags = dict(flag.removeprefix("--").split("=", 1) for flag in argv)
    seed, epochs, lr = int(flags.get("seed", 0)), int(flags.get("epochs", 2)), float(flags.get("network-lr", 0.001))
    valley = report["valley"]
    gd_lr, adam_lr, start, curvatures = valley["runs"][0]["lr"], valley["runs"][2]["lr"], valley["start"], \
        valley["curvatures"]
    for name, make in ((f"gradient descent, lr {gd_lr:.6g}", lambda params: torch.optim.SGD(params, lr=gd_lr)),
                       (f"SimpleAdam, lr {adam_lr:g}", lambda params: torch.optim.Adam(params, lr=adam_lr)),
                       (f"SimpleRMSprop, lr {adam_lr:g}",
                        lambda params: torch.optim.RMSprop(params, lr=adam_lr, foreach=False))):
        assert scale_line(name, make, start, curvatures, 10) in out
    assert "SimpleRMSprop vs torch.optim.RMSprop, both paths: identical, bit for bit\n" in out
    check_network_verdicts(defined, out, report, seed, epochs, lr, 10)


def test_part_2_prints_adams_step_bound_as_torch_adam_meets_it():
    """torch.optim.Adam, lr 1, fed the lesson's gradients: one growing by beta2/beta1 a step, 256 drawn as the
    lesson draws them; its moves against B(t), worked out here from the sums, not the closed form."""
    _, printed = lesson(*QUICK)
    draw = torch.Generator().manual_seed(0)
    sizes = 10 ** (12 * torch.rand(1000, 256, generator=draw, dtype=torch.float64) - 6)
    growing = (0.999 / 0.9) ** torch.arange(1000, dtype=torch.float64)
    signs = torch.randn(1000, 256, generator=draw, dtype=torch.float64).sign()
    gradients = torch.cat([growing[:, None], sizes * signs], dim=1)
    point = torch.zeros(257, dtype=torch.float64, requires_grad=True)
    optimizer, positions = torch.optim.Adam([point], lr=1.0), [torch.zeros(257, dtype=torch.float64)]
    for gradient in gradients:
        point.grad = gradient.clone()
        optimizer.step()
        positions.append(point.detach().clone())
    moves = torch.stack(positions).diff(dim=0).abs()
    t = torch.arange(1, 1001, dtype=torch.float64)
    sums = ((0.81 / 0.999) ** (t - 1)).cumsum(0)  # of (beta1^2/beta2)^j, term by term
    bounds = 0.1 / math.sqrt(0.001) * sums.sqrt() * (1 - 0.999**t).sqrt() / (1 - 0.9**t)
    assert ("  a gradient growing by beta2/beta1 a step moved " + ", ".join(
        f"{moves[k - 1, 0]:.6g} at step {k} (B {bounds[k - 1]:.6g})" for k in (1, 10, 100, 1000)) + "\n") in printed
    assert (moves <= bounds[:, None] * (1 + 1e-12)).all()
    assert f"  random gradients: largest step {moves[:, 1:].max():.4g}; every step of all 257 gradients within B(t), " \
           "to rounding: yes\n" in printed
    limit = 0.1 / math.sqrt(0.001 * (1 - 0.81 / 0.999))
    assert f"and B(t) stays below {limit:.6g} for every t\n" in printed and f"{limit:.3g}" == "7.27"


# === The learner review's items for 04 ================================================================

# One quick run for the printed words: gradient descent's distance falls below 1e-154 (x^2 + y^2 would read 0),
# Adam reaches x = 0 in one step by the rule of thumb, and the momentum is not the best pair's.
REVIEWED = ("--curvatures", "1,1.01", "--steps", "100", "--start=10,-10", "--adam-lr", "10", "--momentum", "0.5",
            "--epochs", "1", "--no-plots", "--json")


def test_a_distance_is_computed_without_underflow(adam_lesson):
    """-4.5e-195 and 4.5e-195 square to 0 in float64; their distance is 6.36e-195, as hypot says."""
    point = torch.tensor([[-4.5e-195, 4.5e-195]], dtype=torch.float64)
    assert point.norm(dim=1).item() == 0  # the pitfall itself
    assert adam_lesson.distances(point).item() == pytest.approx(4.5e-195 * math.sqrt(2), rel=1e-15, abs=0)


def test_printed_and_ranked_distances_do_not_underflow():
    _, printed = lesson(*REVIEWED)
    report = last_json_line(printed)["valley"]
    gd = sgd_path(2 / 2.01, 0.0, 100, (1.0, 1.01), (10.0, -10.0))
    final = exact_distances(gd)[-1].item()
    assert gd.norm(dim=1)[-1] == 0 < 1e-240 < final < 1e-200  # x^2 + y^2 reads 0; the point is not there
    assert report["runs"][0]["distance_final"] == final
    assert f"gradient descent {final:.3g}" in re.search(r"final distances, nearest first: (.*)\n", printed)[1]
    assert final in [row["distance_final"] for row in report["ranking"]]
    assert f"gradient descent, lr {2 / 2.01:.6g}: ends {final:.3g} away;" in printed
    assert " 0;" not in printed and " 0 away" not in printed


def test_the_distance_plot_draws_a_distance_below_1e_154(monkeypatch, tmp_path):
    import _cli

    figures = []
    monkeypatch.setattr(_cli, "save_figure", lambda figure, path: figures.append(figure) or path)
    run = torch.tensor([[-4.5, 1.0], [-4.5e-100, 1e-100], [-4.5e-195, 4.5e-195]], dtype=torch.float64)
    _figures.valley_distances({"a run": run}, {}, tmp_path / "distances.png")
    drawn = figures[0].axes[0].lines[0].get_ydata()
    assert drawn.tolist() == torch.hypot(run[:, 0], run[:, 1]).tolist()


def test_the_rate_stops_where_the_distance_leaves_float64s_normal_numbers(adam_lesson):
    """hypot keeps every digit down to float64's smallest normal number, 2.2e-308: the rate is measured to there."""
    run = sgd_path(2 / 2.01, 0.0, 150, (1.0, 1.01), (10.0, -10.0))
    below = (exact_distances(run) < torch.finfo(torch.float64).tiny).nonzero()[0].item()
    assert below < 150 and exact_distances(run)[below - 1] > 1e-308
    assert adam_lesson.rate_window(run) == ((below - 1) // 3, below - 1)


def test_the_rule_of_thumb_counts_one_step_in_the_singular():
    _, printed = lesson(*REVIEWED)
    assert "(the rule of thumb: |x|/lr = 1 step)\n" in printed


def test_the_best_pairs_rate_is_printed_as_a_comparison_where_another_pair_runs():
    _, printed = lesson(*REVIEWED)
    line = printed.splitlines()[2]
    best = (math.sqrt(1.01) - 1) / (math.sqrt(1.01) + 1)
    assert line.startswith("  momentum: lr ") and "at the best pair" not in line
    assert line.endswith(f"; for comparison, the best pair's rate (sqrt(kappa)-1)/(sqrt(kappa)+1) = {best:.6f}")
    assert printed.splitlines()[1].endswith(f"at the best lr, (kappa-1)/(kappa+1) = {(1.01 - 1) / 2.01:.6f}")


@pytest.mark.parametrize("curvatures, shape", [
    ((0.2, 4.0), "ellipses 4.47 times as long along x as along y"),
    ((100.0, 0.01), "ellipses 100 times as long along y as along x"), ((2.0, 2.0), "circles")])
def test_the_legend_says_which_way_the_ellipses_are_long(curvatures, shape):
    run = torch.tensor([[-4.5, 1.0], [-1.0, 0.2]], dtype=torch.float64)
    _, axes = _figures.valley_frame(curvatures, {"a run": run})
    assert f"contour lines: {shape}" in axes.get_legend_handles_labels()[1]
    if curvatures == (0.2, 4.0):  # the smallest contour is whole in this frame: measure it
        width, height = np.ptp(axes.collections[0].get_paths()[0].vertices, axis=0)
        assert width / height == pytest.approx(math.sqrt(20), rel=0.02)


def widest_blank_bands(frame):
    """The widest band of blank (white) columns, above the legend (in the top 3/4), and of blank rows in a frame,
    as fractions of its width and height."""
    blank = (frame >= 250).all(axis=2)
    widest = []
    for lines in (blank[: 3 * len(blank) // 4].all(axis=0), blank.all(axis=1)):
        run = best = 0
        for is_blank in lines:
            run = run + 1 if is_blank else 0
            best = max(best, run)
        widest.append(best / len(lines))
    return widest


def test_the_gif_has_no_wide_blank_band_at_the_defaults(end_to_end):
    """The axes keep x and y at one scale: the picture is as wide and tall as they need, no more."""
    frames = frames_of(end_to_end["stage4"].result() and end_to_end["stage4"].out_dir / "04_valley.gif")
    columns, rows = widest_blank_bands(frames[-1])
    assert columns < 0.06 and rows < 0.06, (columns, rows)


def test_the_gif_has_no_wide_blank_band_in_a_valley_steep_along_x(tmp_path):
    runs = {"gradient descent": sgd_path(2 / 100.01, 0.0, 150, (100.0, 0.01)),
            "momentum": sgd_path(0.0392, 0.961, 150, (100.0, 0.01))}
    path = _figures.valley_animation(runs, (100.0, 0.01), 150, 2, 15, tmp_path / "valley.gif")
    columns, rows = widest_blank_bands(frames_of(path)[-1])
    assert columns < 0.06 and rows < 0.06, (columns, rows)


def test_the_lessons_code_cells_stay_under_25_lines():
    import jupytext

    for cell in jupytext.read(REPO_DIR / LESSON).cells:
        if cell.cell_type == "code":
            assert len(cell.source.splitlines()) <= 25, cell.source[:60]


def test_momentum_at_its_edge_flips_and_keeps_its_size_as_the_lesson_explains():
    """The lesson's reasoning, step by step: y flips, so the velocity settles at gradient/(1 + momentum); a step
    lr*velocity = 2y flips y exactly when lr*lambda = 2 + 2*momentum."""
    for momentum, lam in ((0.4, 4.0), (0.9, 0.5)):
        lr, y = (2 + 2 * momentum) / lam, 1.0
        velocity = -lam * y / (1 + momentum)  # the settled velocity, from the step before (where y was -1)
        for _ in range(20):
            velocity = momentum * velocity + lam * y
            assert velocity == pytest.approx(lam * y / (1 + momentum), rel=1e-12)
            y, before = y - lr * velocity, y
            assert y == pytest.approx(-before, rel=1e-12)


@pytest.mark.parametrize("word, definition", [("eigenvalue", "stretches"), ("Hessian", "second derivatives"),
                                              ("Cauchy–Schwarz", "≤")])
def test_each_new_word_is_defined_where_it_first_appears(word, definition):
    """The lesson's first use of the word is in italics, the mark of a definition, and the definition follows."""
    source = re.sub(r"\n# ?", " ", (REPO_DIR / LESSON).read_text())  # the prose, its lines joined
    first = source.index(word)
    assert source[first - 1] == "*", source[first - 40 : first + 40]
    assert definition in source[first : first + 300], source[first : first + 300]

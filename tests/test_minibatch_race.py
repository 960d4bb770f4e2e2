"""Lesson 05 against independent recomputations: the sampling formula by enumeration, the minibatch
gradients and the per-sample spread by plain autograd, the noise floor by its own recursion and a float64
rerun, part 3 and the race by runs of a network built and trained here, the intervals by scipy and a
bisection, and every verdict from the numbers it rests on."""

import itertools
import math
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import example, given
from scipy import stats
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch import nn

from conftest import last_json_line, run_in_terminal, run_lesson
from settings_space import check_generic, lesson_flags, run_quickly

LESSON = "05_minibatch_race.py"
# Quick, yet every part runs: 30 steps, 5 rates, 3 tuning seeds, 12 test seeds (the check takes 10).
QUICK = ["--steps", "30", "--draws", "40", "--tune-seeds", "3", "--test-seeds", "12", "--grid-points", "5",
         "--floor-rates", "0.9,0.1,0.01", "--no-plots", "--json"]
DIGITS = load_digits()


@pytest.fixture(scope="module")
def lesson():
    """(what the quick run defined, what it printed, its --json report)."""
    defined, printed = run_lesson(LESSON, QUICK)
    return defined, printed, last_json_line(printed)


def mlp(seed):
    """The lesson's network, built here: 64 -> 32 (ReLU) -> 10, its layers drawn in the same order."""
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))


def batches(seed, n, size):
    """Each epoch a permutation from a generator seeded with `seed`, cut into whole batches of `size`."""
    generator = torch.Generator().manual_seed(seed)
    while True:
        order = torch.randperm(n, generator=generator)
        yield from (order[k * size : (k + 1) * size] for k in range(n // size))


def train_alone(seed, optimizer_class, lr, steps, images, labels, batch_size=32, **options):
    network = mlp(seed)
    optimizer = optimizer_class(network.parameters(), lr=lr, **options)
    losses = []
    for rows in itertools.islice(batches(seed, len(labels), batch_size), steps):
        optimizer.zero_grad()
        loss = F.cross_entropy(network(images[rows]), labels[rows])
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return network, losses


def t_interval(values, bounds=(0, 100)):
    """scipy's 95% t interval of the mean (a point where all values are equal), cut to `bounds`."""
    mean = np.mean(values)
    if np.ptp(values) == 0:
        return [mean, mean]
    low, high = stats.t.interval(0.95, len(values) - 1, loc=mean, scale=stats.sem(values))
    return [max(bounds[0], low), min(bounds[1], high)]


def accuracy(network, images, labels):
    with torch.no_grad():
        return 100.0 * (network(images).argmax(dim=1) == labels).sum().item() / len(labels)


# --- the data ------------------------------------------------------------------------------------

def test_the_split_is_disjoint_complete_and_stratified(lesson):
    defined, printed, report = lesson
    parts = [defined.train_rows, defined.val_rows, defined.test_rows]
    assert [len(part) for part in parts] == [1077, 360, 360] == list(report["split"].values())
    assert sorted(np.concatenate(parts).tolist()) == list(range(1797))
    everywhere = np.bincount(DIGITS.target, minlength=10) / len(DIGITS.target)
    for part in parts:
        counts = np.bincount(DIGITS.target[part], minlength=10)
        assert np.abs(counts - len(part) * everywhere).max() <= 1  # each digit keeps its share
    assert torch.equal(defined.train_images.cpu(), torch.tensor(DIGITS.data[defined.train_rows] / 16,
                                                                  dtype=torch.float32))
    assert "  training set:    1077 images, 104 to 109 of each digit" in printed.splitlines()


# --- part 1 --------------------------------------------------------------------------------------

def test_the_formula_is_the_exact_variance_over_every_batch():
    """Enumerate every batch of B of 7 vectors: the mean squared distance of a batch's mean from the mean of
    all is (sigma²/B)(N - B)/(N - 1), sigma² the mean squared distance of one vector from it."""
    values = torch.randn(7, 3, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    centre = values.mean(dim=0)
    sigma2 = ((values - centre) ** 2).sum(dim=1).mean().item()
    for size in range(1, 8):
        squared = [((values[list(batch)].mean(dim=0) - centre) ** 2).sum().item()
                   for batch in itertools.combinations(range(7), size)]
        assert sum(squared) / len(squared) == pytest.approx(sigma2 / size * (7 - size) / 6, abs=1e-12)


@pytest.fixture(scope="module")
def per_sample(lesson):
    """Each training sample's gradient at the initial weights, by a backward pass of its own."""
    defined = lesson[0]
    network = mlp(0)
    rows = []
    for image, label in zip(defined.train_images, defined.train_labels):
        network.zero_grad()
        F.cross_entropy(network(image[None]), label[None]).backward()
        rows.append(torch.cat([p.grad.flatten() for p in network.parameters()]))
    return network, torch.stack(rows)


def test_sigma2_and_the_full_gradient_match_backward_passes(lesson, per_sample):
    defined, _, report = lesson
    _, gradients = per_sample
    full = gradients.mean(dim=0)
    assert torch.allclose(defined.full_gradient, full, atol=1e-7)
    sigma2 = ((gradients - full) ** 2).sum(dim=1).mean().item()
    assert report["minibatch_noise"]["sigma2"] == pytest.approx(sigma2, rel=1e-5)
    for row in report["minibatch_noise"]["rows"]:
        size = row["batch_size"]
        assert row["formula"] == pytest.approx(sigma2 / size * (1077 - size) / 1076, rel=1e-5)


def test_the_measured_noise_is_what_the_same_batches_give(lesson, per_sample):
    """The same draws (the same generator, the same calls), each batch's gradient by a backward pass."""
    defined, printed, report = lesson
    network, gradients = per_sample
    full, draws = gradients.mean(dim=0), 40
    generator = torch.Generator().manual_seed(0)
    inside = 0
    for row in report["minibatch_noise"]["rows"]:
        squared, batch_gradients = [], []
        for _ in range(draws):
            rows = torch.randperm(1077, generator=generator)[: row["batch_size"]]
            network.zero_grad()
            F.cross_entropy(network(defined.train_images[rows]), defined.train_labels[rows]).backward()
            batch_gradients.append(torch.cat([p.grad.flatten() for p in network.parameters()]))
            squared.append(((batch_gradients[-1] - full) ** 2).sum().item())
        mean, half = np.mean(squared), 1.96 * np.std(squared, ddof=1) / math.sqrt(draws)
        assert row["measured"] == pytest.approx(mean, rel=1e-4)
        assert row["interval"] == pytest.approx([mean - half, mean + half], rel=1e-4)
        assert row["formula_inside"] == (mean - half <= row["formula"] <= mean + half)
        bias = (torch.stack(batch_gradients).mean(dim=0) - full).norm().item()
        assert row["bias_ratio"] == pytest.approx(bias / math.sqrt(row["formula"] / draws), rel=1e-3)
        inside += row["formula_inside"]
    assert f"-> the formula lies inside {inside} of 5 intervals" in printed


def test_the_full_gradient_is_the_mean_of_the_per_sample_ones_up_to_rounding(lesson, per_sample):
    """The printed length, and the gap between the mean of the per-sample gradients and the full gradient:
    float32 rounding (4e-9 at these settings), far below 1e-6."""
    _, printed, _ = lesson
    _, gradients = per_sample
    line = next(line for line in printed.splitlines() if line.startswith("full gradient: length"))
    length = float(line.split("length ")[1].split(";")[0])
    gap = float(line.split("differs from it by at most ")[1].split(" ")[0])
    assert length == pytest.approx(gradients.mean(dim=0).norm().item(), rel=1e-3)
    assert 0 <= gap <= 1e-6 and line.endswith("(float32 rounding)")


# --- part 2 --------------------------------------------------------------------------------------

def expected_square_by_recursion(lr, steps, noise=1.0, curvature=2.0, start=1.0):
    """E[x²] step by step: E[x'²] = (1 - lr·λ)²·E[x²] + lr²σ², the noise independent of x."""
    value = start**2
    for _ in range(steps):
        value = (1 - lr * curvature) ** 2 * value + (lr * noise) ** 2
    return value


def test_the_floor_formula_and_its_approach_follow_the_recursion(lesson):
    rows = lesson[2]["noise_floor"]["rows"]
    for row in rows:
        assert row["expected_last"] == pytest.approx(expected_square_by_recursion(row["lr"], 500), rel=1e-9)
        assert row["floor"] == pytest.approx(expected_square_by_recursion(row["lr"], 100_000), rel=1e-9)


def test_the_measured_floor_is_a_float64_rerun_of_the_same_noise(lesson):
    """The same normal draws (float32, in the same order), the step x' = (1 - lr·λ)x - lr·σ·noise in float64."""
    defined, printed, report = lesson
    rates = torch.tensor([0.9, 0.1, 0.01], dtype=torch.float64)[:, None]
    generator = torch.Generator().manual_seed(0)
    x = torch.ones(3, 5000, dtype=torch.float64)
    means = [x.square().mean(dim=1)]
    for _ in range(500):
        kick = torch.randn(3, 5000, generator=generator).double()
        x = (1 - 2 * rates) * x - rates * kick
        means.append(x.square().mean(dim=1))
    means = torch.stack(means)
    assert torch.allclose(defined.mean_squares.double(), means, rtol=1e-3)
    inside = 0
    for k, row in enumerate(report["noise_floor"]["rows"]):
        squares = x[k].square()
        mean, half = squares.mean().item(), 1.96 * squares.std().item() / math.sqrt(5000)
        assert row["measured_last"] == pytest.approx(mean, rel=1e-3)
        assert row["interval"] == pytest.approx([mean - half, mean + half], rel=1e-3)
        within = [t for t, m in enumerate(defined.mean_squares[:, k].tolist())
                  if row["floor"] / 2 <= m <= 2 * row["floor"]]
        assert row["steps_to_twice_floor"] == (within[0] if within else None)
        inside += row["interval"][0] <= row["expected_last"] <= row["interval"][1]
    assert report["noise_floor"]["inside"] == inside
    assert f"-> the formula lies inside {inside} of 3 intervals" in printed


def test_each_floor_comparison_says_what_the_steps_say(lesson):
    _, printed, report = lesson
    rows = sorted(report["noise_floor"]["rows"], key=lambda row: row["lr"])
    for small, large in zip(rows, rows[1:]):
        late, early = (math.inf if r["steps_to_twice_floor"] is None else r["steps_to_twice_floor"]
                       for r in (small, large))
        when = "reached later" if late > early else "reached sooner" if late < early else "reached at the same step"
        when = "neither reached within 500 steps" if late == early == math.inf else when
        assert (f"-> lr {small['lr']:g} against {large['lr']:g}: a floor {large['floor'] / small['floor']:.3g} "
                f"times lower, {when}") in printed


def test_the_approach_formula_holds_from_any_start(lesson):
    """The formula's E[x²] at step t from other starts than 1 (the cell's X_START, edited), by the recursion:
    the start's share is c^(2t)·x₀², so x₀ enters squared."""
    expected_square = lesson[0].expected_square
    for start in (2.0, 0.5, -3.0):
        edited = type(expected_square)(expected_square.__code__, {**expected_square.__globals__, "X_START": start},
                                       None, expected_square.__defaults__)
        for lr, t in ((0.9, 3), (0.1, 10), (0.01, 500)):
            assert edited(lr, t) == pytest.approx(expected_square_by_recursion(lr, t, start=start), rel=1e-9)


def test_part_2_says_what_it_ran(lesson):
    assert "5000 runs per rate, 500 steps from x = 1, noise σ = 1, λ = 2" in lesson[1].splitlines()


def test_two_rates_that_start_near_their_floors_reach_them_at_the_same_step():
    """From x = 1, lr 0.7 and 0.8 (floors 0.583 and 1) start within a factor of 2 of their floors: step 0."""
    printed = run_lesson(LESSON, [*QUICKEST, "--floor-rates", "0.7,0.8"])[1]
    assert "-> lr 0.7 against 0.8: a floor 1.71 times lower, reached at the same step" in printed.splitlines()


# --- part 3 --------------------------------------------------------------------------------------

def test_part_3_is_a_network_trained_here_step_for_step(lesson):
    defined, printed, report = lesson
    network, losses = train_alone(0, torch.optim.SGD, 0.1, 30, defined.train_images, defined.train_labels)
    assert losses == defined.part3_losses
    assert math.isfinite(losses[-1]) and "diverged" not in printed  # a finite run is not called diverged
    for name, (images, labels) in {"train": (defined.train_images, defined.train_labels),
                                   "val": (defined.val_images, defined.val_labels),
                                   "test": (defined.test_images, defined.test_labels)}.items():
        assert report["part3"][f"{name}_accuracy"] == accuracy(network, images, labels)


def test_part_3_prints_the_loss_of_its_first_and_last_steps(lesson):
    defined, printed, _ = lesson
    losses = defined.part3_losses  # the losses of a run trained here (the test above)
    assert [line for line in printed.splitlines() if line.startswith("  step ")] == [
        f"  step    1/30  this minibatch's loss {losses[0]:.4g}",
        f"  step   30/30  this minibatch's loss {losses[-1]:.4g}"]


# --- part 4 --------------------------------------------------------------------------------------

OPTIMIZERS = {"SGD": (torch.optim.SGD, {}), "momentum": (torch.optim.SGD, {"momentum": 0.9}),
              "Adam": (torch.optim.Adam, {})}


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_the_race_scores_what_runs_trained_alone_score(lesson, name):
    """10 test seeds (10..19) of each optimizer, each network trained here on its own."""
    defined, _, report = lesson
    optimizer_class, options = OPTIMIZERS[name]
    run = report["race"]["test"][name]
    for k, seed in enumerate(range(3, 13)[:10]):
        network, _ = train_alone(seed, optimizer_class, run["lr"], 30, defined.train_images, defined.train_labels,
                                 **options)
        assert run["test_accuracies"][k] == accuracy(network, defined.test_images, defined.test_labels)
    check = report["race"]["checks"][list(OPTIMIZERS).index(name)]
    assert (check["optimizer"], check["seeds"], check["same_accuracies"]) == (name, 3, True)
    assert 0 <= check["largest_weight_difference"] < 1e-4  # each alone run beside its own batched run


def test_the_race_does_not_depend_on_parts_1_and_2(lesson):
    """Other draws and other floor rates (their own generators), the same race to the last bit."""
    other = [*QUICK[: QUICK.index("--draws")], "--draws", "10", *QUICK[QUICK.index("--tune-seeds") :]]
    other[other.index("--floor-rates") + 1] = "0.5"
    report = last_json_line(run_lesson(LESSON, other)[1])
    assert report["minibatch_noise"] != lesson[2]["minibatch_noise"]
    assert report["race"] == lesson[2]["race"] and report["part3"] == lesson[2]["part3"]


def test_paired_seeds_start_every_optimizer_alike_and_feed_it_alike(lesson):
    """At lr 0 no run moves: every job of a seed holds that seed's initial weights. Two equal jobs end equal."""
    defined = lesson[0]
    still = defined.train_many([("SGD", 0.0), ("momentum", 0.0), ("Adam", 0.0)], [4, 7])
    for job in range(3):
        for k, seed in enumerate((4, 7)):
            initial = dict(mlp(seed).named_parameters())
            assert torch.equal(still["hidden.weight"][2 * job + k], initial["0.weight"])
            assert torch.equal(still["out.bias"][2 * job + k], initial["2.bias"])
    twins = defined.train_many([("Adam", 0.01), ("Adam", 0.01)], [5])
    assert all(torch.equal(weights[0], weights[1]) for weights in twins.values())


def test_the_tuning_table_and_the_chosen_rates_follow_from_the_validation_runs(lesson):
    _, printed, report = lesson
    header = f"{'lr':>9}  " + "  ".join(f"{name:>8}" for name in OPTIMIZERS)
    rows = printed.split(header + "\n", 1)[1].splitlines()[:5]  # the table: a row per rate, a column per optimizer
    for row, point in zip(rows, report["race"]["tuning"]["SGD"]):
        assert row.split()[:2] == [f"{point['lr']:.3g}", f"{point['val_mean']:.2f}%"]
    for name, points in report["race"]["tuning"].items():
        for point in points:
            scores = point["val_accuracies"]
            assert len(scores) == 3 and point["val_mean"] == pytest.approx(np.mean(scores))
            assert point["val_95ci"] == pytest.approx(t_interval(scores))
        best = max(points, key=lambda point: (point["val_mean"], -point["lr"]))  # the lowest of equal means
        assert report["race"]["chosen_lr"][name] == best["lr"]
        inside = points[0]["lr"] < best["lr"] < points[-1]["lr"]
        assert ("inside its grid" if inside else "AT AN END of its grid") in next(
            line for line in printed.splitlines() if line.startswith(f"{name:>8}: best rate"))


def wilson_by_bisection(successes, runs, z=1.96):
    """The rates p at which the score statistic |k/n - p| / sqrt(p(1-p)/n) equals z, found by bisection."""
    rate = successes / runs

    def outside(p):
        return abs(rate - p) > z * math.sqrt(p * (1 - p) / runs)

    def edge(inner, outer):
        for _ in range(100):
            middle = (inner + outer) / 2
            inner, outer = (inner, middle) if outside(middle) else (middle, outer)
        return inner

    return 100 * (edge(rate, 0.0) if rate > 0 else 0.0), 100 * (edge(rate, 1.0) if rate < 1 else 1.0)


def check_pairs(report):
    """Every pair's difference, interval, counts, Wilson share and verdict, from the test accuracies."""
    test = report["race"]["test"]
    for pair in report["race"]["pairs"]:
        first, second = pair["pair"]
        differences = np.subtract(test[first]["test_accuracies"], test[second]["test_accuracies"])
        mean = differences.mean()
        assert pair["mean_difference"] == pytest.approx(mean, abs=1e-9)
        assert pair["interval"] == pytest.approx(t_interval(differences, (-100, 100)), abs=1e-9)
        first_runs, second_runs = test[first]["test_accuracies"], test[second]["test_accuracies"]
        if np.ptp(first_runs) + np.ptp(second_runs) > 0:  # some spread: else scipy has no interval to give
            with warnings.catch_warnings():  # scipy warns when one of the two has no spread; its answer stands
                warnings.simplefilter("ignore", RuntimeWarning)
                unpaired = stats.ttest_ind(first_runs, second_runs).confidence_interval(0.95)  # equal variances
            assert pair["unpaired_half_width"] == pytest.approx((unpaired.high - unpaired.low) / 2, rel=1e-9)
        wins = int((differences > 0).sum())
        assert (pair["wins"], pair["losses"]) == (wins, int((differences < 0).sum()))
        assert pair["wins_share_95ci"] == pytest.approx(wilson_by_bisection(wins, len(differences)), abs=1e-6)
        low, high = pair["interval"]
        if not differences.any():
            assert pair["verdict"] == "the same accuracy on every seed"
        elif low > 0 or high < 0:
            better, worse = (first, second) if mean > 0 else (second, first)
            assert pair["verdict"] == f"{better} beats {worse} by {abs(mean):.2f} points"
        else:
            assert pair["verdict"] == "no difference that this budget can detect: the interval holds 0"


def test_each_pair_is_compared_seed_by_seed(lesson):
    _, printed, report = lesson
    check_pairs(report)
    for run in report["race"]["test"].values():
        assert len(run["test_accuracies"]) == 12
        assert run["interval"] == pytest.approx(t_interval(run["test_accuracies"]))
    assert all(f"  -> {pair['verdict']}" in printed.splitlines() for pair in report["race"]["pairs"])


def test_the_unfair_race_is_one_seed_at_one_rate(lesson):
    defined, printed, report = lesson
    unfair = report["race"]["unfair"]
    assert (unfair["lr"], unfair["seed"]) == (0.001, 0)
    for name, (optimizer_class, options) in OPTIMIZERS.items():
        network, _ = train_alone(0, optimizer_class, 0.001, 30, defined.train_images, defined.train_labels, **options)
        assert unfair["test_accuracy"][name] == accuracy(network, defined.test_images, defined.test_labels)
    assert unfair["ranking"] == sorted(OPTIMIZERS, key=lambda name: -unfair["test_accuracy"][name])
    fair = sorted(OPTIMIZERS, key=lambda name: -report["race"]["test"][name]["mean"])
    assert report["race"]["fair_ranking"] == fair
    check_contrast(report)
    assert all(f"   {line}" in printed.splitlines() for line in unfair["contrast"])


def check_contrast(report):
    """Each pair of the unfair race, in its order, beside the fair race's verdict on that pair."""
    unfair, verdicts = report["race"]["unfair"], {frozenset(p["pair"]): p["verdict"] for p in report["race"]["pairs"]}
    lines = iter(unfair["contrast"])
    for ahead, behind in itertools.combinations(unfair["ranking"], 2):
        scores = unfair["test_accuracy"]
        assert scores[ahead] >= scores[behind]
        verdict = verdicts[frozenset((ahead, behind))]
        said = (f"the fair race agrees: {verdict}" if verdict.startswith(f"{ahead} beats") else
                f"the fair race reverses it: {verdict}" if verdict.startswith(f"{behind} beats") else
                f"the fair race finds {verdict.split(':')[0]}")
        order = "ties with" if scores[ahead] == scores[behind] else "ahead of"
        assert next(lines) == f"{ahead} {order} {behind} by {scores[ahead] - scores[behind]:.2f} points; {said}"


def check_gaps(report, out):
    """The protocol's shortfalls, worked out from the runs the report holds."""
    race, expected = report["race"], []
    first = {name: [p["lr"] for p in points if p["lr"] not in race["widened"][name]]
             for name, points in race["tuning"].items()}  # the grid before it grew
    rates = next(iter(first.values()))
    decades = math.log10(rates[-1] / rates[0])
    if len(rates) < 7 or decades < 3 - 1e-9:
        expected.append(f"a grid of {len(rates)} rates over {decades:.3g} decades (the protocol: at least 7 over 3)")
    at_an_end = [name for name, points in race["tuning"].items()
                 if race["chosen_lr"][name] in (points[0]["lr"], points[-1]["lr"])]
    if at_an_end:
        expected.append(f"a best rate at an end of its grid ({', '.join(at_an_end)})")
    tune, test = len(race["tuning"]["SGD"][0]["val_accuracies"]), len(race["test"]["SGD"]["test_accuracies"])
    if tune < 10 or test < 50:
        expected.append(f"{tune} tuning and {test} test seeds (the protocol: at least 10 and 50)")
    assert race["gaps"] == expected
    said = ("-> this race kept the whole protocol: its verdicts are those of this network, data and budget"
            if not expected else f"-> caution: this race falls short of the protocol: {'; '.join(expected)}")
    assert said in out.splitlines()


def test_the_protocol_is_checked_and_each_shortfall_named(lesson):
    _, printed, report = lesson
    assert len(report["race"]["gaps"]) >= 2  # 5 rates; 3 and 12 seeds
    check_gaps(report, printed)


def test_seven_rates_over_three_decades_are_a_wide_enough_grid():
    """The protocol's edge: 7 rates from 0.001 to 1 fall short of it in neither the warning nor the gaps."""
    printed = run_lesson(LESSON, ["--grid", "0.001,1", "--grid-points", "7", *QUICKEST])[1]
    report = last_json_line(printed)
    assert "-> a narrow grid" not in printed
    assert not any(gap.startswith("a grid of") for gap in report["race"]["gaps"])
    check_gaps(report, printed)


def test_the_unfair_race_says_how_far_apart_its_first_and_last_are(lesson):
    _, printed, report = lesson
    unfair = report["race"]["unfair"]
    scores, ranking = unfair["test_accuracy"], unfair["ranking"]
    assert len(set(scores.values())) == 3  # the second differs from the last: a gap to the second would show
    assert (f"-> the unfair race ranks {' > '.join(ranking)}, first to last "
            f"{max(scores.values()) - min(scores.values()):.2f} points apart") in printed.splitlines()


# --- settings --------------------------------------------------------------------------------------

@pytest.mark.parametrize("flags, message", [
    (["--grid", "1,0.1"], "argument --grid: the first rate must be below the second, got 1,0.1"),
    (["--batch-size", "1078"], "argument --batch-size: must be a whole number from 1 to 1077, got '1078'"),
    (["--floor-rates", "0.5,1"], "argument --floor-rates: each value: must be a finite number from 0.0001 to 0.99"),
    (["--test-seeds", "1"], "argument --test-seeds: must be a whole number from 2 to 1000, got '1'"),
    (["--grid", "0.1,0.1"], "argument --grid: the first rate must be below the second, got 0.1,0.1"),
    (["--floor-rates", "0.1,0.5,0.1"], "argument --floor-rates: each rate once, got 0.1,0.5,0.1"),
])
def test_a_bad_setting_is_one_line_naming_what_is_allowed(flags, message):
    status, out, err = run_in_terminal(LESSON, flags)
    assert status == 2 and out == ""
    assert err.splitlines()[-1].startswith(f"{LESSON}: error: {message}")


QUICKEST = ["--steps", "3", "--draws", "10", "--tune-seeds", "2", "--test-seeds", "10", "--floor-rates", "0.5",
            "--no-plots", "--json"]


def test_a_grid_grows_downward_from_its_low_end():
    """At 1 and 10 most runs blow up or stall: the lower end scores best, and the grid grows below it, a
    factor of 10 at a time, until a better rate lies inside."""
    report = last_json_line(run_lesson(LESSON, ["--grid", "1,10", "--grid-points", "2", *QUICKEST])[1])
    downward = {name: added for name, added in report["race"]["widened"].items() if added}
    assert "SGD" in downward  # SGD at least: after 3 steps at 10 its runs have blown up
    for name, added in downward.items():
        assert added == pytest.approx([1 / 10**k for k in range(1, len(added) + 1)]), name
        rates = [point["lr"] for point in report["race"]["tuning"][name]]
        assert rates[0] < report["race"]["chosen_lr"][name] < rates[-1]


def test_a_grid_grows_by_twelve_rates_at_most():
    """Rates 0.01% apart give equal means: the grid grows 12 steps down, then stops and says so."""
    printed = run_lesson(LESSON, ["--grid", "0.001,0.0010001", "--grid-points", "2", *QUICKEST])[1]
    report = last_json_line(printed)
    assert all(len(added) == 12 for added in report["race"]["widened"].values())
    assert printed.count("a grid grows by 12 at most") == 3


def test_a_best_rate_at_the_grids_limit_is_said_to_be_at_an_end():
    """3 steps at 1e-6 or 1e-5 change no answer: the means tie, the lower rate counts as the best, and the grid
    cannot grow below 1e-6."""
    args = ["--grid", "1e-6,1e-5", "--grid-points", "2", "--steps", "3", "--draws", "10", "--tune-seeds", "2",
            "--test-seeds", "10", "--floor-rates", "0.5", "--no-plots", "--json"]
    printed = run_lesson(LESSON, args)[1]
    report = last_json_line(printed)
    assert report["race"]["chosen_lr"] == {"SGD": 1e-6, "momentum": 1e-6, "Adam": 1e-6}
    assert report["race"]["widened"] == {"SGD": [], "momentum": [], "Adam": []}
    assert printed.count("AT AN END of its grid") == printed.count("a better rate may lie beyond it") == 3


def split_of(seed):
    """The lesson's split, made here with scikit-learn: (training images, labels), (test images, labels)."""
    rows = np.arange(len(DIGITS.target))
    rest, test = train_test_split(rows, test_size=360, stratify=DIGITS.target, random_state=seed)
    train, _ = train_test_split(rest, test_size=360, stratify=DIGITS.target[rest], random_state=seed)
    images, labels = torch.tensor(DIGITS.data, dtype=torch.float32) / 16, torch.tensor(DIGITS.target)
    return (images[train], labels[train]), (images[test], labels[test])


def unfair_race_agrees(report):
    """The unfair race again, each optimizer trained here at the run's settings."""
    unfair, terms = report["race"]["unfair"], report["race"]["settings"]
    (train_images, train_labels), (test_images, test_labels) = split_of(unfair["seed"])
    for name, (optimizer_class, options) in OPTIMIZERS.items():
        options = {**options, "momentum": terms["momentum"]} if options else options
        network, _ = train_alone(unfair["seed"], optimizer_class, unfair["lr"], terms["steps"], train_images,
                                 train_labels, terms["batch_size"], **options)
        # float32 rounding, batched or alone, may flip the answer for one image on the edge of a decision
        assert unfair["test_accuracy"][name] == pytest.approx(accuracy(network, test_images, test_labels),
                                                              abs=100 / 360 + 1e-9), name


def race_verdicts_agree(report, out):
    """What test_settings_space_race_verdicts checks of one run."""
    check_pairs(report)
    check_contrast(report)
    check_gaps(report, out)
    unfair_race_agrees(report)
    for name, points in report["race"]["tuning"].items():
        best = max(points, key=lambda point: (point["val_mean"], -point["lr"]))
        assert report["race"]["chosen_lr"][name] == best["lr"]
    for row in report["minibatch_noise"]["rows"]:
        assert row["formula_inside"] == (row["interval"][0] <= row["formula"] <= row["interval"][1])
    for row in report["noise_floor"]["rows"]:  # --noise is left at 1
        assert row["expected_last"] == pytest.approx(expected_square_by_recursion(row["lr"], 500), rel=1e-6)
    for name, points in report["race"]["tuning"].items():
        chosen, line = report["race"]["chosen_lr"][name], f"{name:>8}: best rate"
        inside = points[0]["lr"] < chosen < points[-1]["lr"]
        said = next(printed for printed in out.splitlines() if printed.startswith(line))
        assert said.endswith("inside its grid" if inside else "AT AN END of its grid")
        assert inside or len(report["race"]["widened"][name]) == 12 or not 1e-6 < chosen < 10 or any(
            printed.startswith(" " * 10 + "the grid can grow no further") for printed in out.splitlines())


QUICK_LIMITS = {"STEPS": (1, 20), "DRAWS": (10, 30), "TUNE_SEEDS": (2, 3), "TEST_SEEDS": (2, 12),
                "GRID_POINTS": (2, 5), "NOISE": None}


@given(lesson_flags(LESSON, QUICK_LIMITS))
@example(["--steps=5", "--draws=10", "--tune-seeds=2", "--test-seeds=2", "--grid-points=2", "--batch-size=1077"])
@example(["--batch-size=1", "--steps=1", "--draws=10", "--grid-points=2", "--tune-seeds=2", "--test-seeds=2"])
@example(["--steps=9", "--draws=10", "--grid-points=2", "--tune-seeds=2", "--test-seeds=2"])  # Adam's: all 10%
@example(["--steps=5", "--draws=10", "--tune-seeds=2", "--test-seeds=2", "--grid=0.001,1", "--grid-points=7"])  # 3
# decades, where log10(1 / 0.001) is 2.9999999999999996: once called narrow
def test_settings_space_race_verdicts_follow_from_the_numbers(argv):
    status, out, err, report = run_quickly(LESSON, argv)
    check_generic(LESSON, status, out, err, report)
    if status == 0:
        race_verdicts_agree(report, out)

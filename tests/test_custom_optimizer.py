"""03_custom_optimizer.py, run top to bottom as a learner runs it, against independent answers:
the closed form, stage 1's training (written out again in conftest, and 01's own `train`),
descents with the derivative worked out on paper, and the pictures' pixels.
(SimpleGD and SimpleMomentum themselves are tested against torch.optim.SGD in test_optimizers.py.)"""

import functools
import io
import json
import math
import runpy
import sys

import nbformat
import numpy as np
import pytest
import torch

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

LESSON = "03_custom_optimizer.py"
SOURCE = (REPO_DIR / LESSON).read_text()
QUICK = ("--epochs", "1", "--minima-steps", "10", "--no-plots")  # parts 2 and 3 as short as they go


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
    assert last_json_line(printed)["parabola"] == {"x_final": xs[-1], "x_expected": expected}
    assert printed.splitlines()[:3] == [
        "Part 1: SimpleGD(lr=0.1) on y = x^2 from x = 1.0, 20 steps",
        "  " + "  ".join(f"x{n}={xs[n]:.4g}" for n in range(0, 21, 2)),
        f"  closed form x0*(1 - 2*lr)^n = {expected:.9g}, measured {xs[-1]:.9g} "
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
            f"(largest difference {article_gap:g})") in lines
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


def descend_by_hand(x0, lr, steps, momentum=0.0):
    """Gradient descent in float64 with the derivative worked out on paper."""
    x, velocity = x0, 0.0
    for step in range(steps):
        slope = bumpy_slope(x)
        velocity = slope if step == 0 else momentum * velocity + slope
        x -= lr * velocity
    return x


F_BEST = min(bumpy(-4 + k * 1e-4) for k in range(80001))


def test_global_minimum_is_the_lowest_point(custom_optimizer):
    x_best, f_best = custom_optimizer.global_minimum()
    assert F_BEST - 1e-9 <= f_best <= F_BEST + 1e-9
    assert abs(bumpy_slope(x_best)) < 1e-3  # a stationary point


def check_runs(runs, lr, steps):
    for run in runs:
        momentum = {"SimpleGD": 0.0, "SimpleMomentum": 0.9}[run["optimizer"]]
        x_final = descend_by_hand(run["x0"], lr, steps, momentum)
        assert run["x_final"] == pytest.approx(x_final, abs=1e-3)
        assert run["f_final"] == pytest.approx(bumpy(x_final), abs=1e-4)
        assert run["is_global"] == (bumpy(x_final) - F_BEST < 1e-3)


def test_local_minima_claims_hold():
    namespace, printed = lesson("--no-plots", "--json", "--epochs", "1")
    runs = last_json_line(printed)["local_minima"]
    assert len(runs) == 6 and [run["x0"] for run in runs] == [2.5, 3.0, -2.0] * 2
    assert [run["optimizer"] for run in runs] == ["SimpleGD"] * 3 + ["SimpleMomentum"] * 3
    check_runs(runs, 0.05, 200)
    by_start = {(r["optimizer"], r["x0"]): r["is_global"] for r in runs}
    assert by_start[("SimpleGD", 2.5)] is False and by_start[("SimpleMomentum", 2.5)] is True
    assert by_start[("SimpleGD", 3.0)] is False and by_start[("SimpleMomentum", 3.0)] is False
    assert by_start[("SimpleGD", -2.0)] is False and by_start[("SimpleMomentum", -2.0)] is True
    assert all(len(run["xs"]) == len(run["fs"]) == 201 for run in namespace.runs)
    lines = printed.splitlines()
    assert (f"Part 3: f(x) = x^2/4 + sin(5x)/2, global minimum f({namespace.x_best:.4f}) = {F_BEST:.4f}; "
            "lr 0.05, 200 steps, SimpleMomentum with momentum 0.9") in lines
    for run in runs:
        where = "the global minimum" if run["is_global"] else "a local minimum"
        assert (f"  {run['optimizer']:<14} from x0 = {run['x0']:>5g}: stopped at x = {run['x_final']:8.4f}, "
                f"f = {run['f_final']:7.4f}, {where}") in lines


def test_the_verdict_is_about_the_last_position(custom_optimizer):
    # after 30 steps, momentum from -2 has just come within reach of the global minimum: one step earlier it had not
    run = custom_optimizer.roll(-2.0, 0.9, 0.05, 30)
    x_final = descend_by_hand(-2.0, 0.05, 30, momentum=0.9)
    assert bumpy(x_final) - F_BEST < 1e-3 < bumpy(descend_by_hand(-2.0, 0.05, 29, momentum=0.9)) - F_BEST
    assert run["optimizer"] == "SimpleMomentum" and run["is_global"] is True and len(run["xs"]) == 31
    # after 26 steps it is 0.004 above the lowest value: close, but not within the 0.001 that counts
    assert 1e-3 < bumpy(descend_by_hand(-2.0, 0.05, 26, momentum=0.9)) - F_BEST < 1e-2
    assert custom_optimizer.roll(-2.0, 0.9, 0.05, 26)["is_global"] is False


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


# --- the lesson as a whole ---------------------------------------------------------

def test_script_end_to_end(end_to_end):
    result, tmp_path = end_to_end["stage3"].result(), end_to_end["stage3"].out_dir
    assert result.returncode == 0 and result.stderr == ""
    report = last_json_line(result.stdout)
    assert list(report) == ["parabola", "network", "local_minima", "outputs"]
    assert report["parabola"]["x_expected"] == pytest.approx(0.8**50, rel=1e-12)
    assert report["parabola"]["x_final"] == pytest.approx(0.8**50, rel=1e-5)
    network = report["network"]
    assert network["identical_to_sgd"] is True and network["max_abs_diff"] == 0.0
    assert network["identical_to_stage1"] is True and network["stage1_max_abs_diff"] == 0.0
    assert network["train_accuracy_before"] == 50.0 and network["train_accuracy_after"] == 100.0
    assert network["test_accuracy_before"] < 50.0 < 99.0 < network["test_accuracy_after"] < 100.0
    assert [run["optimizer"] for run in report["local_minima"]] == ["SimpleGD"] * 3 + ["SimpleMomentum"] * 3
    check_runs(report["local_minima"], 0.05, 200)
    assert report["outputs"] == [str(tmp_path / "03_parabola.png"), str(tmp_path / "03_local_minima.gif")]
    assert gif_timing(tmp_path / "03_local_minima.gif")[0] == [50] * 79 + [1500]  # 20 a second, the last held
    assert result.stdout.count("identical, bit for bit (largest difference 0)") == 2
    lines = result.stdout.splitlines()
    assert lines[3] == f"wrote {tmp_path / '03_parabola.png'}"  # right after part 1, which it draws
    assert lines[-2] == f"wrote {tmp_path / '03_local_minima.gif'}"
    assert [line for line in lines if line.startswith("wrote ")] == [lines[3], lines[-2]]  # each picture once
    assert len(lines) == 20


def test_json_report_without_pictures_and_quiet():
    status, out, err = terminal(["--json", "--quiet", *QUICK])
    assert status == 0 and err == "" and len(out.splitlines()) == 1
    report = json.loads(out)
    assert report["outputs"] == [] and set(report["network"]) == {
        "train_accuracy_before", "train_accuracy_after", "test_accuracy_before", "test_accuracy_after",
        "identical_to_sgd", "max_abs_diff", "article_identical", "article_max_abs_diff", "identical_to_stage1",
        "stage1_max_abs_diff"}
    assert set(report["local_minima"][0]) == {"optimizer", "x0", "x_final", "f_final", "is_global"}


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
            assert len(lines) <= (45 if cell.source.startswith("class Simple") else 30), cell.source[:40]


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


@pytest.mark.parametrize("argv, where", [
    (["--lr", "1e37"], f"SimpleGD(lr=1e+37) from x0 = 1 diverged at step {first_escape(1.0, lambda x: 2 * x, 1e37)}"),
    (["--lr", "1.5"], f"SimpleGD(lr=1.5) from x0 = 1 diverged at step {first_escape(1.0, lambda x: 2 * x, 1.5)}"),
    (["--minima-lr", "100"],
     f"SimpleGD(lr=100) from x0 = 2.5 diverged at step {first_escape(2.5, lambda x: bumpy_slope(x), 100)}"),
])
def test_divergence_exits_1(argv, where):
    status, _, err = terminal(argv + ["--no-plots", "--quiet", "--epochs", "1"])
    assert status == 1 and err == f"03_custom_optimizer.py: error: {where}: |x| passed 1000; try a smaller " \
                                  "learning rate\n"


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

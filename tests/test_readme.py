"""README.md keeps its word: every "try this" command does what README promises, every output
excerpt is what the scripts print, every sentence about a picture is true of the picture the
script draws, outputs/ holds those pictures, and every file README cites exists."""

import re
from importlib.metadata import version

import numpy as np
import pytest
import torch

import _gif
import _notebook
import common
from conftest import REPO_DIR, articles_loop, call_main, frames_of, gif_timing, last_json_line

README = (REPO_DIR / "README.md").read_text()
FLOAT32_LN4 = torch.tensor(2.0).log().mul(2).item()  # ln 4 in float32: the loss of an all-zero input


def try_this_commands():
    """Every command listed under a "Try this" heading, in README's order."""
    commands = []
    for section in README.split("### Try this")[1:]:
        listing = re.split(r"\n##", section)[0]
        commands += re.findall(r"^- `(python [^`]+)`", listing, flags=re.MULTILINE)
    return commands


def shuffled(report, out, modules, captions):
    assert "  highest loss 13.87 at epoch 1, step 7: B at scale 19" in out.splitlines()
    first_six = modules["01_pattern_classifier.py"].sample_order(40, 2, "shuffled", 0)[0][:6]
    assert sum(sample < 20 for sample in first_six) == 5  # five of the first six samples are A
    assert max(report["losses"][40:]) == FLOAT32_LN4 and report["test_accuracy_after"] == 100.0


def shuffled_without_momentum(report, out, modules, captions):
    assert max(report["losses"]) == pytest.approx(4.182, abs=5e-4) and "  highest loss 4.182 at epoch 1" in out


def no_momentum(report, out, modules, captions):
    assert max(report["losses"]) < 1.5 and "  highest loss 1.484 at" in out
    assert report["train_accuracy_after"] == 100.0


def unlucky_seed(report, out, modules, captions):
    assert report["final_loss"] == 0.0 and report["train_accuracy_after"] == 50.0
    assert report["article_check_after"] is False and report["predicted_after"] == [1, 1, 1]
    assert report["predicted_before"] == [2, 2, 2]  # README's filter picture: seed 5 starts with class 2 winning
    assert "  epoch 2  step 40/40  loss 0" in out.splitlines()  # the last loss printed, the last step's
    assert modules["01_pattern_classifier.py"].sample_order(40, 2, "sequential", 5)[-1][-1] == 39  # B at scale 19


def unlucky_seed_trained_longer(report, out, modules, captions):
    assert len(report["losses"]) == 200
    assert report["train_accuracy_after"] == report["test_accuracy_after"] == 100.0


def oscillates(report, out, modules, captions):
    rows = [line.split() for line in out.splitlines()[2:23]]
    assert [int(row[0]) for row in rows] == list(range(21))  # every step in the table
    xs = [float(row[1]) for row in rows]
    assert all(a * b < 0 and abs(a) == pytest.approx(5 * abs(b), rel=1e-5) for a, b in zip(xs, xs[1:]))
    assert report["behaviour"] == "oscillates and converges"
    assert report["x_final"] == pytest.approx(0.2**20, rel=1e-5) and f"{0.2**20:.3g}" == "1.05e-14"


def half_and_one(report, out, modules, captions):
    descend = modules["02_gd_parabola_anim.py"].descend
    assert descend(1.0, 0.5, 1) == [1.0, 0.0] and set(descend(1.0, 0.5, 800)[1:]) == {0.0}
    assert descend(1.0, 1.0, 4) == [1.0, -1.0, 1.0, -1.0, 1.0]
    assert [run["behaviour"] for run in report["runs"]] == ["converges", "oscillates forever"]


def diverges(report, out, modules, captions):
    assert report["behaviour"] == "diverges" and report["steps_done"] == 20
    note = "stopped: step 21 would take |x| past 1000"
    assert f"Behaviour: diverges ({note})" in out
    assert captions[-1].startswith("step 20:") and captions[-1].endswith(note)
    assert report["frames"] == 21 == len(frames_of(report["gif"])) and f"({report['frames']} frames)" in out
    durations, _ = gif_timing(report["gif"])
    assert durations[-1] == 5500 and sum(durations) == 100 * 50 + 1500  # as long as a full 100-step run's GIF
    assert modules["02_gd_parabola_anim.py"].single_panel(1.2, [0.0] * 21, 100)["title"] == \
        "Gradient descent on x², lr = 1.2, diverged, stopped after 20 of 100 steps"


def halves_exactly(report, out, modules, captions):
    assert report["x_final"] == report["x_expected"] == 0.5**20 and "exactly equal" in out


def other_weights(report, out, modules, captions):
    network = report["network"]
    assert network["train_accuracy_before"] == 0.0
    assert network["identical_to_sgd"] is network["identical_to_stage1"] is True
    assert out.count("identical, bit for bit") == 2


def small_steps(report, out, modules, captions):
    runs = {(run["optimizer"], run["x0"]): run for run in report["local_minima"]}
    for x0 in (2.5, 3.0, -2.0):
        plain, momentum = runs[("SimpleGD", x0)], runs[("SimpleMomentum", x0)]
        assert momentum["x_final"] == pytest.approx(plain["x_final"], abs=1e-3) and not momentum["is_global"]


def no_cure(report, out, modules, captions):
    momentum = {run["x0"]: run for run in report["local_minima"] if run["optimizer"] == "SimpleMomentum"}
    assert momentum[3.8]["is_global"] is True
    assert momentum[-3.5]["is_global"] is False and momentum[-3.5]["x_final"] == pytest.approx(0.91, abs=0.005)


PROMISES = {
    "python 01_pattern_classifier.py --order shuffled": shuffled,
    "python 01_pattern_classifier.py --order shuffled --momentum 0": shuffled_without_momentum,
    "python 01_pattern_classifier.py --momentum 0": no_momentum,
    "python 01_pattern_classifier.py --seed 5": unlucky_seed,
    "python 01_pattern_classifier.py --seed 5 --epochs 5": unlucky_seed_trained_longer,
    "python 02_gd_parabola_anim.py --lr 0.6 --steps 20": oscillates,
    "python 02_gd_parabola_anim.py --compare 0.5,1.0": half_and_one,
    "python 02_gd_parabola_anim.py --lr 1.2 --steps 100": diverges,
    "python 02_gd_parabola_anim.py --lr 0.25 --steps 20": halves_exactly,
    "python 03_custom_optimizer.py --seed 5": other_weights,
    "python 03_custom_optimizer.py --minima-lr 0.01": small_steps,
    "python 03_custom_optimizer.py --starts=-3.5,1,3.8": no_cure,
}


@pytest.fixture(scope="module")
def modules(classifier, parabola, custom_optimizer):
    return {"01_pattern_classifier.py": classifier, "02_gd_parabola_anim.py": parabola,
            "03_custom_optimizer.py": custom_optimizer}


def run_as_in_readme(command, modules, capsys, out_dir):
    """Run a README command in this process, adding --json and a temporary --out-dir."""
    script, *args = command.split()[1:]
    extra = ["--json", "--out-dir", out_dir] + ([] if script.startswith("02") else ["--no-plots"])
    status, out, err = call_main(modules[script], args + extra, capsys)
    assert status == 0 and err == ""
    return last_json_line(out), out


def test_every_try_this_command_has_its_promise_checked():
    assert try_this_commands() == list(PROMISES)
    assert len(re.findall("### Try this", README)) == 3


@pytest.mark.parametrize("command", PROMISES)
def test_try_this_keeps_its_promise(command, modules, capsys, tmp_path, monkeypatch):
    captions = []
    capture = _gif.FrameRecorder.capture
    monkeypatch.setattr(_gif.FrameRecorder, "capture",
                        lambda self, texts=(): (captions.append(texts[-1][1]), capture(self, texts))[1])
    report, out = run_as_in_readme(command, modules, capsys, tmp_path)
    PROMISES[command](report, out, modules, captions)


# --- the excerpts of output are what the scripts print ---------------------------------

EXCERPT_RUNS = {  # README's commands, in its order, and the end-to-end runs (conftest.py) that make their output
    "python 01_pattern_classifier.py": "stage1", "python 01_pattern_classifier.py --sweep 100": "stage1_sweep",
    "python 02_gd_parabola_anim.py": "stage2", "python 02_gd_parabola_anim.py --compare": "stage2_compare",
    "python 03_custom_optimizer.py": "stage3"}


def output_excerpts():
    """The text of README's plain ``` blocks (those with no language), in order."""
    blocks = re.findall(r"^```(\w*)\n(.*?)^```$", README, flags=re.MULTILINE | re.DOTALL)
    return [text for language, text in blocks if not language]


def without_folders(line):
    """A 'wrote' line names the picture alone: README runs in outputs/, the tests elsewhere."""
    return re.sub(r"^wrote \S*/", "wrote ", line)


def test_each_excerpt_follows_its_command():
    excerpts = output_excerpts()
    assert len(excerpts) == len(EXCERPT_RUNS)
    for command, excerpt in zip(EXCERPT_RUNS, excerpts):
        assert README.index(f"```bash\n{command}\n```") < README.index(excerpt)


@pytest.mark.parametrize("command, excerpt", list(zip(EXCERPT_RUNS, output_excerpts())))
def test_output_excerpts_are_real(command, excerpt, end_to_end):
    printed = [without_folders(line) for line in end_to_end[EXCERPT_RUNS[command]].result().stdout.splitlines()]
    for line in excerpt.splitlines():
        if line.strip() != "...":
            assert without_folders(line) in printed, f"README shows a line that `{command}` does not print: {line!r}"


PINNED = _notebook.pinned_versions()
OFF_PINS = [name for name in _notebook.LIBRARIES if _notebook.release(version(name)) != _notebook.release(PINNED[name])]


@pytest.mark.skipif(bool(OFF_PINS), reason=f"off the pinned versions ({', '.join(OFF_PINS)}), a picture may differ in "
                                           "many pixels (another FreeType in matplotlib shades all text): outputs/ "
                                           "was drawn with requirements.txt's versions")
@pytest.mark.parametrize("picture", sorted(p.name for p in (REPO_DIR / "outputs").iterdir()))
def test_outputs_show_what_the_scripts_draw(picture, end_to_end):
    """README shows outputs/: each picture, frame by frame, must be what the scripts draw now.

    Byte for byte on this machine; elsewhere, pixel by pixel, since a last-bit change of a float
    on another processor may shade a few anti-aliased pixels a little differently. But a moved
    point or another caption changes pixels from white to colour, and a faint change (the
    shading of pattern B's steps, at 15% grey, moved by one step) changes many pixels a little.
    """
    drawn = next(run.out_dir / picture for run in end_to_end.values() if (run.out_dir / picture).exists())
    if drawn.read_bytes() == (REPO_DIR / "outputs" / picture).read_bytes():
        return
    expected, actual = frames_of(REPO_DIR / "outputs" / picture), frames_of(drawn)
    assert len(actual) == len(expected) and actual[0].shape == expected[0].shape
    for index, (a, e) in enumerate(zip(actual, expected)):
        difference = np.abs(a - e).max(axis=2)
        changed, faintly_changed = (difference > 64).sum(), (difference > 8).sum()
        assert changed <= 4 and faintly_changed <= 40, \
            f"{picture}, frame {index}: {changed} pixels differ from what the scripts draw now with their defaults " \
            f"({faintly_changed} by more than 8 levels of 255). After a 'try this' command, run the lessons in " \
            "order again (README), or `git checkout outputs/`."


# --- what README says to look at in each picture ---------------------------------------

def test_the_loss_plot_reading_is_true(end_to_end):
    """The first loss is ln 4; the loss is highest, 11.03, at epoch 2, step 8, after epoch 2 returns to A."""
    losses = last_json_line(end_to_end["stage1"].result().stdout)["losses"]
    assert losses[0] == FLOAT32_LN4 and repr(losses[0]) == "1.3862943649291992"
    peak = max(range(80), key=lambda i: losses[i])
    assert peak == 40 + 7 and f"{losses[peak]:.4g}" == "11.03"
    for switch in (20, 60):  # the B samples start at steps 21 and 61: the loss climbs after each
        assert max(losses[switch : switch + 10]) > 5 * losses[switch - 1] + 1


def test_the_filter_reading_is_true():
    """Filters 2 and 3 end below zero for both patterns; filter 1 is positive and filter 0 negative
    on the four cells that only B has."""
    model, _ = articles_loop(seed=0)
    weight = model.conv.weight.detach()[:, 0]
    with torch.no_grad():
        logits = model(torch.cat([common.pattern_a(1), common.pattern_b(1)]))
    assert (logits[:, 2:] < 0).all()
    only_b = [(0, 0), (0, 2), (3, 0), (3, 2)]
    assert torch.equal(common.pattern_b(1)[0, 0] - common.pattern_a(1)[0, 0],
                       torch.zeros(4, 4).index_put_(tuple(torch.tensor(only_b).T), torch.tensor(1.0)))
    assert all(weight[1][cell] > 0 > weight[0][cell] for cell in only_b)


def test_the_sweep_reading_is_true(classifier):
    results = classifier.sweep(100)
    sequential, shuffled = results["sequential"], results["shuffled"]
    red = [t for a, t in zip(sequential["train_accuracy"], sequential["test_accuracy"]) if a < 100]
    green = [t for a, t in zip(sequential["train_accuracy"], sequential["test_accuracy"]) if a == 100]
    assert 50 <= min(red) and max(red) <= 72
    assert round(min(green)) == 78 and sum(t < 100 for t in green) > 3
    assert set(shuffled["train_accuracy"]) == {100.0} and sum(t < 100 for t in shuffled["test_accuracy"]) == 1


def test_a_large_sweep_gives_what_readme_says(classifier):
    summary = classifier.sweep(10_000)["sequential"]["summary"]
    low, high = summary["learned_training_set_95ci"]
    assert "gives 8288 of 10000,\n82.88%, with an interval from 82.13% to 83.61%" in README
    assert (summary["learned_training_set"], f"{low:.2f}", f"{high:.2f}") == (8288, "82.13", "83.61")
    low_100, high_100 = classifier.wilson_interval(77, 100)
    assert low_100 < low < high < high_100  # "A larger sample narrows it", inside the 100-run interval


def test_the_gif_readings_are_true(parabola):
    frames = _gif.pick_frames(800, 120)
    assert frames[:78] == list(range(78)) and frames[78] > 78  # every step up to step 77, then fewer
    diverging = parabola.descend(1.0, 1.05, 800)
    reach = parabola.panel("", diverging, 800)["reach"]
    assert min(step for step, x in enumerate(diverging) if abs(x) > 1.05 * reach) == 13 and len(diverging) == 73
    oscillating = [x for step, x in enumerate(parabola.descend(1.0, 0.9, 800)) if step in frames]
    assert all(a * b < 0 for a, b in zip(oscillating[:-1], oscillating[1:-1]))  # a new side at every frame
    assert oscillating[-2] * oscillating[-1] > 0  # but the last


def test_neither_optimizer_has_sgds_other_options(custom_optimizer):
    x = torch.zeros(1, requires_grad=True)
    for option in ("nesterov", "dampening", "weight_decay", "maximize"):
        for optimizer in (custom_optimizer.SimpleGD, custom_optimizer.SimpleMomentum):
            with pytest.raises(TypeError, match=option):
                optimizer([x], lr=0.1, **{option: True})


# --- README's commands, and what it cites ----------------------------------------------------

def test_the_test_command_is_what_ci_runs():
    command = "python -m pip install -r requirements.txt && python -m pytest"
    assert f"```bash\n{command}\n```" in README
    assert (REPO_DIR / ".ci" / "run").read_text().splitlines()[-1] == command


def test_every_file_readme_cites_exists():
    cited = set(re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", README))  # links and pictures
    cited |= set(re.findall(r"`((?:tests|docs|bench|outputs)/[\w./]+|\w+\.(?:py|md|txt|toml|ipynb))`", README))
    assert cited, "found no citation at all"
    missing = [path for path in sorted(cited) if not path.startswith("http") and not (REPO_DIR / path).exists()]
    assert missing == []


# Each glossary entry, and how README may word its first use.
GLOSSARY_WORDS = {"gradient": r"gradient", "autograd": r"autograd", "learning-rate": r"learning rate",
                  "logit": r"logits?", "softmax": r"softmax", "cross-entropy": r"cross-entropy", "epoch": r"epochs?",
                  "seed": r"seeds?", "training-set-and-test-set": r"training accuracy|training set|test accuracy",
                  "momentum": r"momentum", "95-interval": r"95% interval",
                  "float32-and-subnormal-numbers": r"float32", "param-group": r"param groups?",
                  "state_dict": r"`?state_dict`?", "closure": r"closure"}


def prose(markdown):
    """README without its code blocks and inline code spans, where words are not used but quoted."""
    return re.sub(r"`[^`\n]*`", "", re.sub(r"^```.*?^```$", "", markdown, flags=re.MULTILINE | re.DOTALL))


def test_each_glossary_word_is_linked_where_readme_first_uses_it():
    glossary = (REPO_DIR / "docs" / "glossary.md").read_text()
    anchors = [re.sub(r"[^\w\- ]", "", heading).strip().lower().replace(" ", "-")
               for heading in re.findall(r"^## (.+)$", glossary, flags=re.MULTILINE)]
    assert sorted(anchors) == sorted(GLOSSARY_WORDS)
    text = prose(README.replace("`state_dict`](docs", "state_dict](docs"))
    for anchor, words in GLOSSARY_WORDS.items():
        first = re.search(rf"(?i)(?<![\w-])({words})(?![\w-])", text)
        link = re.compile(rf"\[[^\]]*\]\(docs/glossary\.md#{re.escape(anchor)}\)")
        assert first and any(m.start() <= first.start() < m.end() for m in link.finditer(text)), \
            f"README's first {words!r} is not a link to the glossary's {anchor}: {text[first.start() - 40:first.end()]}"

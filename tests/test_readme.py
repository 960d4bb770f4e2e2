"""README.md keeps its word: every "try this" command does what README promises,
every output excerpt is what the scripts print, and every file it cites exists."""

import contextlib
import io
import re

import numpy as np
import pytest
import torch

import _gif
from conftest import REPO_DIR, call_main, frames_of, last_json_line

README = (REPO_DIR / "README.md").read_text()
FLOAT32_LN4 = torch.tensor(2.0).log().mul(2).item()  # ln 4 in float32: the loss of an all-zero input


def try_this_commands():
    """Every command listed under a "Try this" heading, in README's order."""
    commands = []
    for section in README.split("### Try this")[1:]:
        listing = re.split(r"\n##", section)[0]
        commands += re.findall(r"^- `(python [^`]+)`", listing, flags=re.MULTILINE)
    return commands


def shuffled(report, out, modules):
    assert max(report["losses"][40:]) == FLOAT32_LN4 and report["noisy_accuracy_after"] == 100.0


def no_momentum(report, out, modules):
    assert max(report["losses"]) < 1.5 and report["accuracy_after"] == 100.0


def unlucky_seed(report, out, modules):
    assert report["final_loss"] == 0.0 and report["accuracy_after"] == 50.0
    assert report["article_check_after"] is False


def unlucky_seed_trained_longer(report, out, modules):
    assert len(report["losses"]) == 200 and report["accuracy_after"] == 100.0


def oscillates(report, out, modules):
    xs = modules["02_gd_parabola_anim.py"].descend(1.0, 0.6, 20)
    assert all(a * b < 0 and abs(a) == pytest.approx(5 * abs(b), rel=1e-5) for a, b in zip(xs, xs[1:]))
    assert report["behaviour"] == "oscillates and converges"
    assert report["x_final"] == pytest.approx(0.2**20, rel=1e-5) and f"{0.2**20:.3g}" == "1.05e-14"


def half_and_one(report, out, modules):
    descend = modules["02_gd_parabola_anim.py"].descend
    assert descend(1.0, 0.5, 1) == [1.0, 0.0] and set(descend(1.0, 0.5, 800)[1:]) == {0.0}
    assert descend(1.0, 1.0, 4) == [1.0, -1.0, 1.0, -1.0, 1.0]
    assert [run["behaviour"] for run in report["runs"]] == ["converges", "oscillates forever"]


def diverges(report, out, modules, captions):
    assert report["behaviour"] == "diverges" and report["steps_done"] == 20
    note = "stopped: step 21 would take |x| past 1000"
    assert f"Behaviour: diverges ({note})" in out
    assert captions[-1].startswith("step 20:") and captions[-1].endswith(note)


def halves_exactly(report, out, modules):
    assert report["x_final"] == report["x_expected"] == 0.5**20 and "exactly equal" in out


def other_weights(report, out, modules):
    network = report["network"]
    assert network["accuracy_before"] == 0.0
    assert network["identical_to_sgd"] is network["identical_to_stage1"] is True
    assert out.count("identical, bit for bit") == 2


def small_steps(report, out, modules):
    runs = {(run["optimizer"], run["x0"]): run for run in report["local_minima"]}
    for x0 in (2.5, 3.0, -2.0):
        plain, momentum = runs[("SimpleGD", x0)], runs[("SimpleMomentum", x0)]
        assert momentum["x_final"] == pytest.approx(plain["x_final"], abs=1e-3) and not momentum["is_global"]


def no_cure(report, out, modules):
    momentum = {run["x0"]: run for run in report["local_minima"] if run["optimizer"] == "SimpleMomentum"}
    assert momentum[3.8]["is_global"] is True
    assert momentum[-3.5]["is_global"] is False and momentum[-3.5]["x_final"] == pytest.approx(0.91, abs=0.005)


PROMISES = {
    "python 01_pattern_classifier.py --order shuffled": shuffled,
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
    assert 2 <= len(re.findall("### Try this", README)) == 3


@pytest.mark.parametrize("command", PROMISES)
def test_try_this_keeps_its_promise(command, modules, capsys, tmp_path, monkeypatch):
    captions = []
    capture = _gif.FrameRecorder.capture
    monkeypatch.setattr(_gif.FrameRecorder, "capture",
                        lambda self, texts=(): (captions.append(texts[-1][1]), capture(self, texts))[1])
    report, out = run_as_in_readme(command, modules, capsys, tmp_path)
    check = PROMISES[command]
    check(report, out, modules, captions) if check is diverges else check(report, out, modules)


# --- the excerpts of output are what the scripts print ---------------------------------

EXCERPT_COMMANDS = ["python 01_pattern_classifier.py", "python 01_pattern_classifier.py --sweep 100",
                    "python 02_gd_parabola_anim.py", "python 02_gd_parabola_anim.py --compare",
                    "python 03_custom_optimizer.py"]


def output_excerpts():
    """The text of README's plain ``` blocks (those with no language), in order."""
    blocks = re.findall(r"^```(\w*)\n(.*?)^```$", README, flags=re.MULTILINE | re.DOTALL)
    return [text for language, text in blocks if not language]


def test_each_excerpt_follows_its_command():
    excerpts = output_excerpts()
    assert len(excerpts) == len(EXCERPT_COMMANDS)
    for command, excerpt in zip(EXCERPT_COMMANDS, excerpts):
        assert README.index(f"```bash\n{command}\n```") < README.index(excerpt)


@pytest.fixture(scope="module")
def readme_runs(modules, tmp_path_factory):
    """{command: (stdout, out_dir)} for the commands that make README's excerpts and pictures."""
    runs = {}
    for command in EXCERPT_COMMANDS:
        script, *args = command.split()[1:]
        out_dir = tmp_path_factory.mktemp("readme")
        with contextlib.redirect_stdout(io.StringIO()) as out:
            modules[script].main(args + ["--out-dir", str(out_dir)])
        runs[command] = out.getvalue(), out_dir
    return runs


@pytest.mark.parametrize("command, excerpt", list(zip(EXCERPT_COMMANDS, output_excerpts())))
def test_output_excerpts_are_real(command, excerpt, readme_runs):
    out = readme_runs[command][0]
    for line in excerpt.splitlines():
        if line.strip() != "...":
            assert line in out.splitlines(), f"README shows a line that `{command}` does not print: {line!r}"


@pytest.mark.parametrize("picture", sorted(p.name for p in (REPO_DIR / "outputs").iterdir()))
def test_outputs_show_what_the_scripts_draw(picture, readme_runs):
    """README shows outputs/: each picture, frame by frame, must be what the scripts draw now.

    Compared pixel by pixel rather than byte by byte: a last-bit change of a float on
    another processor may shade a few anti-aliased pixels a little differently. But a moved
    point or another caption changes pixels from white to colour, and a faint change (the
    shading of pattern B's steps, at 15% grey, moved by one step) changes many pixels a little.
    """
    drawn = next(out_dir / picture for _, out_dir in readme_runs.values() if (out_dir / picture).exists())
    expected, actual = frames_of(REPO_DIR / "outputs" / picture), frames_of(drawn)
    assert len(actual) == len(expected) and actual[0].shape == expected[0].shape
    for index, (a, e) in enumerate(zip(actual, expected)):
        difference = np.abs(a - e).max(axis=2)
        changed, faintly_changed = (difference > 64).sum(), (difference > 8).sum()
        assert changed <= 4 and faintly_changed <= 40, \
            f"{picture}, frame {index}: {changed} pixels differ from what the scripts draw now " \
            f"({faintly_changed} by more than 8 levels of 255)"


def test_the_loss_plot_reading_is_true(end_to_end):
    """README: the loss is highest, about 11, after epoch 2 returns to A (steps 41-50)."""
    losses = last_json_line(end_to_end["stage1"].result().stdout)["losses"]
    peak = max(range(80), key=lambda i: losses[i])
    assert 41 <= peak + 1 <= 50 and round(losses[peak]) == 11
    for switch in (20, 60):  # the B samples start at steps 21 and 61: the loss climbs after each
        assert max(losses[switch : switch + 10]) > 5 * losses[switch - 1] + 1


# --- README cites only what the repository holds -------------------------------------------

def test_every_file_readme_cites_exists():
    cited = set(re.findall(r"\]\(([^)#]+)\)", README))  # links and pictures
    cited |= set(re.findall(r"`((?:tests|docs|bench|outputs)/[\w./]+|\w+\.(?:py|md|txt|toml))`", README))
    assert cited, "found no citation at all"
    missing = [path for path in sorted(cited) if not path.startswith("http") and not (REPO_DIR / path).exists()]
    assert missing == []

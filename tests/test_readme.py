"""README.md keeps its word: it is a short map; its first command runs each lesson with one
command; every "try this" command does what README promises; every output excerpt is what the
lessons print; every sentence about a picture is true of what the lesson draws; outputs/ holds
those pictures; every file README cites exists; every glossary word is linked where first used."""

import functools
import re
from importlib.metadata import version

import numpy as np
import pytest

import _gif
import _notebook
from conftest import LESSONS, REPO_DIR, frames_of, last_json_line, run_lesson
from lesson_batch import outcomes_fixture

README = (REPO_DIR / "README.md").read_text()


def try_this_commands():
    """Every command listed under a "Try this" heading, in README's order."""
    commands = []
    for section in README.split("### Try this")[1:]:
        listing = re.split(r"\n##", section)[0]
        commands += re.findall(r"^- `(python [^`]+)`", listing, flags=re.MULTILINE)
    return commands


# --- the map ------------------------------------------------------------------------------------

def test_readme_is_a_map_of_at_most_250_lines():
    assert len(README.splitlines()) <= 250


def test_the_first_command_runs_each_lesson_with_one_command_in_order():
    first = re.search(r"```bash\n(python -m pip install -r requirements.txt &&\n.*?)\n```", README, re.DOTALL)
    lessons = re.findall(r"python (0\d_\w+\.py)(?: |$|\n)", first.group(1))
    assert lessons == [f"{lesson}.py" for lesson in LESSONS]  # one command each, no flags
    assert first.group(1).count("&&") == len(LESSONS)


def test_each_lesson_has_its_command_pictures_a_link_and_try_this():
    sections = re.split(r"\n## Lesson ", README)[1:]
    assert len(sections) == len(LESSONS)
    for lesson, section in zip(LESSONS, sections):
        assert f"```bash\npython {lesson}.py\n```" in section
        assert f"[Read the lesson]({lesson}.py)" in section and "### Try this" in section
        pictures = re.findall(r"!\[[^\]]*\]\(outputs/([\w.]+)\)", section)
        assert pictures and all(name.startswith(lesson[:2]) for name in pictures)
        for picture in pictures:  # a reading of one to three lines after each picture
            reading = section.split(f"(outputs/{picture})\n\n", 1)[1].split("\n\n", 1)[0]
            assert 1 <= len(reading.splitlines()) <= 3 and not reading.startswith(("!", "```")), reading


# --- "try this" -----------------------------------------------------------------------------------

def shuffled(report, out):
    losses = report["losses"]
    assert (f"{max(losses):.4g}", losses.index(max(losses))) == ("13.87", 6)
    assert "  highest loss 13.87 at epoch 1, step 7: B at scale 19" in out.splitlines()
    assert report["test_accuracy_after"] == 100.0


def unlucky_seed(report, out):
    assert report["final_loss"] == 0.0 and report["train_accuracy_after"] == 50.0
    assert report["article_check_after"] is False
    training = out.split("\nTraining:")[1].split("\n  step 1 took")[0]
    assert training.strip().splitlines()[-1].split()[-3:] == ["40/40", "loss", "0"]  # the last loss printed: 0


def unlucky_seed_trained_longer(report, out):
    assert len(report["losses"]) == 200
    assert report["train_accuracy_after"] == report["test_accuracy_after"] == 100.0


def reaches_zero(report, out):
    assert report["x_final"] == 0.0 and report["steps_done"] == 800
    assert "x0 * (1 - 2*lr)^n = 6.67e-560 " in out and "reached exactly 0 at step 65" in out


def stalls_and_reaches_zero(report, out):
    runs = report["compare"]["runs"]
    assert [run["lr"] for run in runs] == [0.1, 0.4]
    assert runs[0]["x_final"] == 2.802596928649634e-45 and "stalled at 2.8e-45 from step 459" in out
    assert runs[1]["x_final"] == 0.0 and "reached exactly 0 at step 65" in out


def diverges(report, out):
    assert report["behaviour"] == "diverges" and report["steps_done"] == 20 and report["compare"] is None
    assert "Behaviour: diverges (stopped: step 21 would take |x| past 1000)" in out
    assert report["frames"] == 21 == len(frames_of(report["gif"])) and "(21 frames)" in out


def other_weights(report, out):
    network = report["network"]
    assert network["train_accuracy_before"] == 0.0
    assert network["identical_to_sgd"] is network["identical_to_stage1"] is True
    assert out.count("identical, bit for bit") == 2


def small_steps(report, out):
    runs = {(run["optimizer"], run["x0"]): run for run in report["local_minima"]}
    for x0 in (2.5, 3.0, -2.0):
        plain, momentum = runs[("SimpleGD", x0)], runs[("SimpleMomentum", x0)]
        assert momentum["x_final"] == pytest.approx(plain["x_final"], abs=1e-3) and not momentum["is_global"]
        assert plain["verdict"] == momentum["verdict"] == "settled at a local minimum"


def no_cure(report, out):
    momentum = {run["x0"]: run for run in report["local_minima"] if run["optimizer"] == "SimpleMomentum"}
    assert momentum[3.8]["is_global"] is True and momentum[3.8]["verdict"] == "settled at the global minimum"
    assert momentum[-3.5]["is_global"] is False and momentum[-3.5]["x_final"] == pytest.approx(0.91, abs=0.005)
    assert momentum[-3.5]["verdict"] == "settled at a local minimum"


def narrower_valley(report, out):
    gd, momentum, _ = report["valley"]["runs"]
    assert report["valley"]["condition_number"] == pytest.approx(100)
    assert (f"{gd['rate_formula']:.6f}", f"{gd['rate_measured']:.6f}") == ("0.980198", "0.980198")
    assert f"{momentum['rate_formula']:.6f}" == "0.818182"
    assert (f"{gd['distance_final']:.3g}", f"{momentum['distance_final']:.3g}") == ("0.229", "2.55e-11")
    assert f"{report['valley']['runs'][2]['distance_final']:.3g}" == "0.00339"  # as in the default valley
    ranking = [row["run"] for row in report["valley"]["ranking"]]
    assert ranking.index("SimpleAdam, lr 0.1") < ranking.index("gradient descent")  # now ahead of it


def past_the_momentum_edge(report, out):
    momentum = report["valley"]["runs"][1]
    assert f"{report['valley']['momentum_edge']:.6f}" == "0.701303" and momentum["lr"] == 0.71 > 0.701303
    assert f"{momentum['rate_formula']:.6f}" == f"{momentum['rate_measured']:.6f}" == "1.056218"
    assert f"{momentum['distance_final']:.2g}" == "7.9e+03"
    assert "  momentum: lr 0.71, momentum 0.402605; formula (largest root) = 1.056218;" in out  # not "the best"
    assert "factor k" not in out  # the double root's correction belongs to the best pair only


def on_the_floor(report, out):
    above = report["valley"]["edge_final_distances"]["gradient descent, above"]
    assert above < report["valley"]["runs"][0]["distance_start"] == 4.5
    assert "edge lr = 0.5: lr 0.505 (above) -> distance 4.5 to 5.21e-07 in 150 steps: shrinking;" in out
    assert report["valley"]["edges"]["gradient descent, above"]["verdict"] == "shrinking"
    assert "its first step moves x by 0.1 and y by 0;" in out  # y = 0, where it stays


def verdicts(report):
    return {tuple(pair["pair"]): pair["verdict"] for pair in report["race"]["pairs"]}


def short_budget(report, out):
    assert verdicts(report)[("SGD", "momentum")] == "momentum beats SGD by 6.41 points"
    assert report["race"]["fair_ranking"][0] == "Adam"
    assert "  -> momentum beats SGD by 6.41 points" in out.splitlines()


def one_sample_batches(report, out):
    assert all(50 < run["mean"] < 60 for run in report["race"]["test"].values())  # "near 55%"
    assert all(verdict.startswith("no difference") for verdict in verdicts(report).values())


def narrow_grid(report, out):
    assert all(report["race"]["widened"].values())  # every grid grew
    assert report["race"]["chosen_lr"] == pytest.approx({"SGD": 10**-0.5, "momentum": 10**-1.5, "Adam": 0.01})
    assert out.count("its best lay at an end: the grid grew") == 3


PROMISES = {
    "python 01_pattern_classifier.py --order shuffled": shuffled,
    "python 01_pattern_classifier.py --seed 5": unlucky_seed,
    "python 01_pattern_classifier.py --seed 5 --epochs 5": unlucky_seed_trained_longer,
    "python 02_gd_parabola_anim.py --lr 0.6": reaches_zero,
    "python 02_gd_parabola_anim.py --compare 0.1,0.4": stalls_and_reaches_zero,
    "python 02_gd_parabola_anim.py --lr 1.2 --steps 100 --compare none": diverges,
    "python 03_custom_optimizer.py --seed 5": other_weights,
    "python 03_custom_optimizer.py --minima-lr 0.01": small_steps,
    "python 03_custom_optimizer.py --starts=-3.5,1,3.8": no_cure,
    "python 04_adam_by_hand.py --curvatures 0.04,4": narrower_valley,
    "python 04_adam_by_hand.py --momentum-lr 0.71": past_the_momentum_edge,
    "python 04_adam_by_hand.py --start=4.5,0": on_the_floor,
    "python 05_minibatch_race.py --steps 50": short_budget,
    "python 05_minibatch_race.py --batch-size 1": one_sample_batches,
    "python 05_minibatch_race.py --grid 0.001,0.01 --grid-points 3": narrow_grid,
}


def test_every_try_this_command_has_its_promise_checked():
    assert try_this_commands() == list(PROMISES)
    assert len(re.findall("### Try this", README)) == len(LESSONS)


# The promises about a picture: only their commands draw here. The others' pictures are drawn elsewhere:
# lr 0.6 reaching 0 and the comparison of 0.1 and 0.4 by test_picture_texts.py (02_reaches_zero, texts
# checked); the comparison of `--lr 0.6` and the run of `--compare 0.1,0.4` are byte for byte those of the
# README run of 02 (the default rates, the default run), which outputs/ holds.
ABOUT_ITS_PICTURE = (diverges,)
# The promises about 05's race: parts 1 and 2 run short (10 draws, one rate), as the race draws nothing from
# them (tests/test_minibatch_race.py checks that its results do not change).
ABOUT_THE_RACE = (short_budget, one_sample_batches, narrow_grid)


def try_this_printout(command, out_dir):
    """The command as README gives it, with --json, a temporary --out-dir, and --no-plots unless its promise
    is about its picture: what it prints."""
    lesson, *flags = command.split()[1:]
    extra = ["--json"] + ([] if PROMISES[command] in ABOUT_ITS_PICTURE else ["--no-plots"])
    extra += ["--draws", "10", "--floor-rates", "0.5"] if PROMISES[command] in ABOUT_THE_RACE else []
    return run_lesson(lesson, [*flags, *extra], out_dir=out_dir)[1]


# Run by tests/lesson_batch.py in a Python of its own, in the background, while this process tests on.
BATCH = {command: functools.partial(try_this_printout, command) for command in PROMISES}


try_this_runs = outcomes_fixture("test_readme")  # what BATCH's runs gave, done in the background (conftest.BATCHES)


@pytest.mark.parametrize("command", PROMISES)
def test_try_this_keeps_its_promise(command, try_this_runs):
    report_line = try_this_runs[command]
    PROMISES[command](last_json_line(report_line), report_line)


# --- the excerpts of output are what the lessons print -----------------------------------------

EXCERPT_RUNS = {f"python {lesson}.py": f"stage{lesson[1]}" for lesson in LESSONS}


def output_excerpts():
    """The text of README's plain ``` blocks (those with no language), in order."""
    blocks = re.findall(r"^```(\w*)\n(.*?)^```$", README, flags=re.MULTILINE | re.DOTALL)
    return [text for language, text in blocks if not language]


def test_each_excerpt_follows_its_command():
    excerpts = output_excerpts()
    assert len(excerpts) == len(EXCERPT_RUNS)
    for command, excerpt in zip(EXCERPT_RUNS, excerpts):
        assert README.index(f"```bash\n{command}\n```") < README.index(excerpt)


@pytest.mark.parametrize("command, excerpt", list(zip(EXCERPT_RUNS, output_excerpts())))
def test_output_excerpts_are_real_and_in_order(command, excerpt, end_to_end):
    """Each line is a line the command prints, in the order it prints them; "…" stands for lines left out,
    and only there are lines left out."""
    printed = end_to_end[EXCERPT_RUNS[command]].result().stdout.splitlines()
    position, gap_marked = -1, True  # the first line may come from anywhere
    for line in excerpt.splitlines():
        if line.strip() == "…":
            gap_marked = True
            continue
        assert line in printed[position + 1 :], f"README shows a line that `{command}` does not print: {line!r}"
        following = printed.index(line, position + 1)
        assert following == position + 1 or gap_marked, f"lines left out before {line!r} without a '…'"
        position, gap_marked = following, False


# --- what README says of each picture --------------------------------------------------------------

@pytest.fixture(scope="module")
def reports(end_to_end):
    return {name: last_json_line(end_to_end[name].result().stdout)
            for name in ("stage1", "stage2", "stage3", "stage4", "stage5")}


def test_the_lesson_01_readings_are_true(reports):
    report = reports["stage1"]
    losses = report["losses"]
    assert repr(losses[0]) == "1.3862943649291992"  # ln 4 in float32
    assert f"{max(losses):.4g}" == "11.03" and losses.index(max(losses)) == 40 + 7  # epoch 2 returns to A
    sequential, shuffled_ = report["sweep"]["sequential"], report["sweep"]["shuffled"]
    assert (sequential["runs"], sequential["learned_training_set"]) == (100, 77)
    assert sequential["learned_test_below_100"] == 51
    assert shuffled_["learned_training_set"] == 100


def test_the_lesson_02_readings_are_true(reports, end_to_end):
    report, out = reports["stage2"], end_to_end["stage2"].result().stdout
    assert report["behaviour"] == "converges"
    reading = " ".join(README.split())
    assert "In the inset, |x| falls along a line, × 0.98 (1 − 2·lr) a step." in reading
    assert out.splitlines()[0].endswith("; each step multiplies x by 1 - 2*lr = 0.98")
    assert "past step 77 the GIF skips more and more steps, so the point seems to speed up." in reading
    frames = _gif.pick_frames(report["steps"], report["frames"])  # the default GIF's steps
    gaps = [b - a for a, b in zip(frames, frames[1:])]
    assert frames[:78] == list(range(78)) and gaps[77] > 1 and gaps[-10] > gaps[80] > gaps[77]
    runs = {run["lr"]: run for run in report["compare"]["runs"]}
    assert [runs[lr]["behaviour"] for lr in (0.01, 0.1, 0.9, 1.05)] == [
        "converges", "converges", "oscillates and converges", "diverges"]
    assert runs[1.05]["steps_done"] == 72 and runs[0.1]["x_final"] == runs[0.9]["x_final"] == 2.802596928649634e-45
    assert out.count("stalled at 2.8e-45") == 2
    assert "at lr 0.1 and 0.9, among [float32's subnormal numbers](docs/glossary.md#float32-and-subnormal-numbers), " \
        "where x² rounds to 0." in " ".join(README.split())
    assert all(np.float32(runs[lr]["x_final"]) ** 2 == 0 != runs[lr]["x_final"] for lr in (0.1, 0.9))


def test_the_lesson_03_readings_are_true(reports):
    momentum = {run["x0"]: run["is_global"] for run in reports["stage3"]["local_minima"]
                if run["optimizer"] == "SimpleMomentum"}
    plain = [run["is_global"] for run in reports["stage3"]["local_minima"] if run["optimizer"] == "SimpleGD"]
    assert momentum == {2.5: True, 3.0: False, -2.0: True} and not any(plain)
    assert all(run["verdict"].startswith("settled at") for run in reports["stage3"]["local_minima"])  # none in flight


def test_the_lesson_04_readings_are_true(reports):
    gd, momentum, adam = reports["stage4"]["valley"]["runs"]
    assert gd["rate_measured"] == pytest.approx(gd["rate_formula"], rel=1e-9)  # on its line
    assert f"{gd['rate_formula']:.6f}" == "0.904762" and f"{momentum['rate_formula']:.6f}" == "0.634512"
    assert momentum["rate_formula"] < momentum["rate_measured"] < momentum["rate_formula"] + 0.01  # a little slower
    assert adam["distance_final"] > gd["distance_final"] > momentum["distance_final"]  # Adam ends last,
    ranking = [row["run"] for row in reports["stage4"]["valley"]["ranking"]]
    assert ranking[-2:] == ["SimpleAdam, lr 1 (the grid's best)", "SimpleAdam, lr 0.1"]  # even at the grid's best
    assert len(reports["stage4"]["valley"]["adam_grid"]) == 4  # "the four rates the lesson tries"
    assert reports["stage4"]["network"]["identical_to_adam"] is True


def test_the_lesson_05_readings_are_true(reports):
    race = reports["stage5"]["race"]
    for name, lr in race["chosen_lr"].items():  # each best rate inside the grid, each at another rate
        rates = [point["lr"] for point in race["tuning"][name]]
        assert rates[0] < lr < rates[-1] and not race["widened"][name]
    assert len(set(race["chosen_lr"].values())) == 3
    assert max(race["chosen_lr"].values()) / min(race["chosen_lr"].values()) > 30  # the lesson's reading
    verdicts = {tuple(pair["pair"]): pair["verdict"] for pair in race["pairs"]}
    assert verdicts[("SGD", "Adam")] == "Adam beats SGD by 1.31 points"
    assert verdicts[("momentum", "Adam")] == "Adam beats momentum by 1.35 points"  # "1.3 points above the others"
    assert verdicts[("SGD", "momentum")].startswith("no difference")  # "cannot be told apart"
    rows = reports["stage5"]["minibatch_noise"]["rows"]
    assert all(abs(row["measured"] / row["formula"] - 1) < 0.1 for row in rows)  # "lies on the formula's line",
    # within a tenth: the width of a dot on axes that span five decades
    floors = reports["stage5"]["noise_floor"]
    assert floors["inside"] == len(floors["rows"])  # each rate's mean x² ends where the formula puts it
    below = sorted((row for row in floors["rows"] if row["lr"] <= 0.5), key=lambda row: row["floor"])
    reached = [row["steps_to_twice_floor"] for row in below]
    assert len(reached) == 3 and reached[0] > reached[1] > reached[2]  # below lr 0.5: the lower, the later


# --- outputs/ holds what the lessons draw ----------------------------------------------------------

PINNED = _notebook.pinned_versions()
OFF_PINS = [name for name in _notebook.LIBRARIES if _notebook.release(version(name)) != _notebook.release(PINNED[name])]


@pytest.mark.skipif(bool(OFF_PINS), reason=f"off the pinned versions ({', '.join(OFF_PINS)}), a picture may differ in "
                                           "many pixels (another FreeType in matplotlib shades all text): outputs/ "
                                           "was drawn with requirements.txt's versions")
@pytest.mark.parametrize("picture", sorted(p.name for p in (REPO_DIR / "outputs").iterdir()))
def test_outputs_show_what_the_lessons_draw(picture, end_to_end):
    """README shows outputs/: each picture, frame by frame, must be what the lessons draw now.

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
            f"{picture}, frame {index}: {changed} pixels differ from what the lessons draw now with their " \
            f"defaults ({faintly_changed} by more than 8 levels of 255). After a 'try this' command, run the " \
            "lessons in order again (README), or `git checkout outputs/`."


def test_outputs_holds_exactly_the_pictures_readme_shows():
    shown = set(re.findall(r"!\[[^\]]*\]\(outputs/([\w.]+)\)", README))
    assert shown == {path.name for path in (REPO_DIR / "outputs").iterdir()}


# --- README's commands, and what it cites ---------------------------------------------------------

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


# Each glossary entry, and how its word may be written.
GLOSSARY_WORDS = {"gradient": r"gradient", "autograd": r"autograd", "learning-rate": r"learning rate",
                  "filter-conv2d": r"filters?", "bias": r"bias(?! correction)", "logit": r"logits?",
                  "softmax": r"softmax",
                  "cross-entropy": r"cross-entropy", "mean-squared-error": r"mean squared error",
                  "epoch": r"epochs?", "seed": r"seeds?",
                  "training-set-and-test-set": r"training accuracy|training set|test accuracy",
                  "momentum": r"momentum", "95-interval": r"95% interval", "standard-error": r"standard errors?",
                  "vmap": r"`?vmap`?", "float32-and-subnormal-numbers": r"float32", "param-group": r"param groups?",
                  "state_dict": r"`?state_dict`?", "closure": r"closure", "curvature-eigenvalue": r"curvatures?",
                  "condition-number": r"condition numbers?", "adam": r"Adam", "bias-correction": r"bias correction",
                  "minibatch": r"minibatch(es)?", "noise-floor": r"noise floor", "validation-set": r"validation set",
                  "tuning": r"tun(ed|ing)", "paired-comparison": r"paired( comparison)?"}


def prose(markdown):
    """Text without its code blocks and inline code spans, where words are not used but quoted."""
    markdown = re.sub(r"\[`(\w+)`\]", r"[\1]", markdown)  # a linked `name` is a use of the word
    markdown = re.sub(r"!\[[^\]]*\]\([^)]*\)", "", markdown)  # a picture's alternative text is no use either
    return re.sub(r"`[^`\n]*`", "", re.sub(r"^```.*?^```$", "", markdown, flags=re.MULTILINE | re.DOTALL))


def test_the_glossary_has_the_entries_the_lessons_need():
    glossary = (REPO_DIR / "docs" / "glossary.md").read_text()
    anchors = [re.sub(r"[^\w\- ]", "", heading).strip().lower().replace(" ", "-")
               for heading in re.findall(r"^## (.+)$", glossary, flags=re.MULTILINE)]
    assert sorted(anchors) == sorted(GLOSSARY_WORDS)


@pytest.mark.parametrize("anchor", GLOSSARY_WORDS)
def test_each_glossary_word_readme_uses_is_linked_where_first_used(anchor):
    text = prose(README)
    first = re.search(rf"(?i)(?<![\w-])({GLOSSARY_WORDS[anchor]})(?![\w-])", text)
    if first is None:
        return  # README does not use it; the lessons do
    link = re.compile(rf"\[[^\]]*\]\(docs/glossary\.md#{re.escape(anchor)}\)")
    assert any(m.start() <= first.start() < m.end() for m in link.finditer(text)), \
        f"README's first {first.group()!r} is not a link to the glossary's {anchor}: " \
        f"{text[first.start() - 40:first.end()]}"

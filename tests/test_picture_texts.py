"""Every text a picture draws can be read: no two texts overlap, and none is cut off at the picture's edge.

Each lesson runs with its pictures on, by run_lesson as in a test, all of them together in a Python of
their own in the background (BATCH, tests/lesson_batch.py), which reports what it finds. Every PNG that
`_cli.save_figure` writes is checked with the boxes of the texts its save drew, and every GIF frame that
`_gif.FrameRecorder` records with the boxes of the figure's texts (drawn once, as the background) and of
the captions Pillow writes on the frame. A box is the one matplotlib or Pillow lays the text out in, in the
saved picture's pixels (origin at the top left).
"""

import contextlib
import functools
import inspect
import itertools
import re

import pytest
import torch
from matplotlib.figure import Figure
from matplotlib.text import Text
from PIL import Image, ImageDraw

import _cli
import _gif
import common
from conftest import run_lesson
from lesson_batch import outcomes_fixture

TOLERANCE = 1  # pixels: two boxes may touch, or share a pixel's anti-aliased edge


# ---------------------------------------------------------------------------
# The boxes of what is drawn
# ---------------------------------------------------------------------------

@contextlib.contextmanager
def drawn_texts():
    """Record each matplotlib text drawn meanwhile, visible and not empty, as (its string, its box in display
    pixels: x0, y0 from the bottom left, x1, y1). A figure's draw starts the list afresh: savefig with
    bbox_inches="tight" lays the figure out before its last draw, and only that last draw is the picture."""
    texts = []
    draw_text, draw_figure = Text.draw, Figure.draw

    def text_draw(text, renderer):
        if text.get_visible() and text.get_text().strip():
            texts.append((text.get_text(), tuple(text.get_window_extent(renderer).extents)))
        return draw_text(text, renderer)

    def figure_draw(figure, renderer):
        texts.clear()
        return draw_figure(figure, renderer)

    Text.draw, Figure.draw = text_draw, figure_draw
    try:
        yield texts
    finally:
        Text.draw, Figure.draw = draw_text, draw_figure


@contextlib.contextmanager
def pillow_captions():
    """Record each text Pillow writes meanwhile (ImageDraw.text or multiline_text) as (its string, its box
    from multiline_textbbox: left, top, right, bottom, from the top left)."""
    captions = []
    originals = {name: getattr(ImageDraw.ImageDraw, name) for name in ("text", "multiline_text")}
    box_parameters = set(inspect.signature(ImageDraw.ImageDraw.multiline_textbbox).parameters) - {"self"}
    writing = []  # multiline_text may write each line with text(): count the outer call only

    def recording(name):
        def write(pen, *args, **kwargs):
            if not writing:
                bound = inspect.signature(originals[name]).bind(pen, *args, **kwargs)
                settings = {key: value for key, value in bound.arguments.items() if key in box_parameters}
                captions.append((str(settings["text"]), pen.multiline_textbbox(**settings)))
            writing.append(name)
            try:
                return originals[name](pen, *args, **kwargs)
            finally:
                writing.pop()
        return write

    for name in originals:
        setattr(ImageDraw.ImageDraw, name, recording(name))
    try:
        yield captions
    finally:
        for name, original in originals.items():
            setattr(ImageDraw.ImageDraw, name, original)


def from_top(texts, height):
    """Matplotlib's boxes (origin at the bottom left) as Pillow's (origin at the top left)."""
    return [(text, (x0, height - y1, x1, height - y0)) for text, (x0, y0, x1, y1) in texts]


# ---------------------------------------------------------------------------
# The check
# ---------------------------------------------------------------------------

def text_problems(boxes, size, tolerance=TOLERANCE):
    """What keeps texts from being read in a picture of `size` (width, height): each pair of texts whose
    boxes (left, top, right, bottom) overlap by more than `tolerance` pixels both ways, and each text whose
    box passes an edge by more than `tolerance`."""
    width, height = size
    problems = []
    for text, (left, top, right, bottom) in boxes:
        passed = {"left": -left, "top": -top, "right": right - width, "bottom": bottom - height}
        problems += [f"{shown(text)} is cut off at the {edge} edge by {amount:.1f} px"
                     for edge, amount in passed.items() if amount > tolerance]
    for (text, box), (other, other_box) in itertools.combinations(boxes, 2):
        across = min(box[2], other_box[2]) - max(box[0], other_box[0])
        down = min(box[3], other_box[3]) - max(box[1], other_box[1])
        if across > tolerance and down > tolerance:
            problems.append(f"{shown(text)} overlaps {shown(other)} ({across:.1f} x {down:.1f} px)")
    return problems


def shown(text):
    return repr(text if len(text) <= 50 else text[:47] + "...")


# ---------------------------------------------------------------------------
# The checker on pictures made to fail, and on one made to pass
# ---------------------------------------------------------------------------

def saved_problems(figure, tmp_path, save_figure=_cli.save_figure):
    """Save `figure` as the lessons do and check its texts."""
    with drawn_texts() as texts:
        path = save_figure(figure, tmp_path / "picture.png")
    with Image.open(path) as image:
        return text_problems(from_top(texts, image.height), image.size)


def test_a_clean_figure_passes(tmp_path):
    figure = Figure(figsize=(3, 2), dpi=50, layout="constrained")
    axes = figure.subplots()
    axes.set(title="a title", xlabel="x", ylabel="y")
    axes.plot([0, 1], [0, 1], label="a line")
    axes.legend()
    assert saved_problems(figure, tmp_path) == []


def test_overlapping_texts_and_a_text_cut_off_are_found(tmp_path):
    figure = Figure(figsize=(3, 2), dpi=50)
    figure.text(0.1, 0.5, "two texts")
    figure.text(0.2, 0.5, "in one place")
    figure.text(0.9, 0.1, "past the right edge")
    problems = saved_problems(figure, tmp_path)
    assert any(p.startswith("'two texts' overlaps 'in one place'") for p in problems), problems
    assert any(p.startswith("'past the right edge' is cut off at the right edge") for p in problems), problems
    assert len(problems) == 2, problems


def test_the_boxes_are_in_the_saved_pictures_pixels(tmp_path):
    """Saved at another dpi than the figure's and cropped to its texts, the picture's edges are the edges of
    the texts' boxes: the boxes are in the saved picture's pixels."""
    figure = Figure(figsize=(3, 2), dpi=50)
    figure.text(0.5, 0.6, "in the middle", ha="center")
    figure.text(0.0, 0.0, "the corner", fontsize=20)
    path = tmp_path / "picture.png"
    with drawn_texts() as texts:
        figure.savefig(path, dpi=120, bbox_inches="tight", pad_inches=0)
    with Image.open(path) as image:
        boxes = from_top(texts, image.height)
        assert text_problems(boxes, image.size) == []
    assert [text for text, _ in boxes] == ["in the middle", "the corner"]
    edges = [min(box[0] for _, box in boxes), min(box[1] for _, box in boxes),
             max(box[2] for _, box in boxes), max(box[3] for _, box in boxes)]
    assert edges == pytest.approx([0, 0, image.width, image.height], abs=TOLERANCE)


def test_a_caption_over_a_text_and_one_past_the_edge_are_found(monkeypatch):
    GIF_CHECKS.patch(monkeypatch)
    figure = Figure(figsize=(3, 2), dpi=50)
    axes = figure.subplots()
    axes.set_title("title")
    axes.text(0.5, 0.95, "a text inside, at the top", transform=axes.transAxes, ha="center", va="top")
    recorder = _gif.FrameRecorder(figure, [])
    recorder.capture([(axes, "the caption")])
    recorder.capture([(axes, "a caption far too long for a frame this narrow")])
    problems = GIF_CHECKS.found(recorder)
    assert problems[0].startswith("frames 0: 'a text inside, at the top' overlaps 'the caption'"), problems
    assert any(p.startswith("frames 1: 'a caption far too long for a frame this narrow' is cut off at the left")
               for p in problems), problems
    assert not any("'title'" in p for p in problems), problems


@pytest.mark.parametrize("scale", [1, 1e30])
def test_each_filters_title_gives_its_logits_for_a_and_b_and_can_be_read(scale, tmp_path, monkeypatch):
    """01 says each filter's logit for A and for B at scale 1 is in its title; a large --lr makes large logits."""
    import _figures

    model = common.new_network(0)
    with torch.no_grad():
        model.conv.weight.mul_(scale)
    logits = model.conv.weight.detach().double().reshape(4, 16) @ torch.stack(
        [common.pattern_a(1), common.pattern_b(1)]).double().reshape(2, 16).T
    figures, save_figure = [], _cli.save_figure
    monkeypatch.setattr(_cli, "save_figure", lambda figure, path: figures.append(figure) or path)
    _figures.stage1_filters(model, tmp_path / "filters.png")
    assert saved_problems(figures[0], tmp_path, save_figure) == []
    for k, axes in enumerate(figures[0].axes[2:6]):
        shown_logits = re.findall(r"logit for ([AB]): (\S+)", axes.get_title())
        assert [letter for letter, _ in shown_logits] == ["A", "B"]
        assert [float(value) for _, value in shown_logits] == pytest.approx(logits[k].tolist(), rel=5e-3, abs=5e-3)


# ---------------------------------------------------------------------------
# Every picture of every lesson
# ---------------------------------------------------------------------------

class GifChecks:
    """FrameRecorder, checked: each frame's captions and texts, those of the background among them."""

    def __init__(self):
        self.problems = {}  # {recorder: {problem: [frame, ...]}}
        self.init, self.capture, self.save_gif = (_gif.FrameRecorder.__init__, _gif.FrameRecorder.capture,
                                                  _gif.FrameRecorder.save_gif)

    def checked_init(self, recorder, figure, moving):
        with drawn_texts() as texts:
            self.init(recorder, figure, moving)
        recorder.background_texts = from_top(texts, recorder.canvas.get_width_height()[1])
        self.problems[recorder] = {}

    def checked_capture(self, recorder, captions=()):
        with drawn_texts() as texts, pillow_captions() as written:
            self.capture(recorder, captions)
        size = recorder.canvas.get_width_height()
        boxes = recorder.background_texts + from_top(texts, size[1]) + written
        for problem in text_problems(boxes, size):
            self.problems[recorder].setdefault(problem, []).append(len(recorder.frames) - 1)

    def found(self, recorder):
        """The problems of `recorder`'s frames, each once, with the frames that have it."""
        return [f"frames {', '.join(map(str, frames))}: {problem}"
                for problem, frames in self.problems.pop(recorder).items()]

    def patch(self, monkeypatch):
        monkeypatch.setattr(_gif.FrameRecorder, "__init__",
                            lambda recorder, *args, **kwargs: self.checked_init(recorder, *args, **kwargs))
        monkeypatch.setattr(_gif.FrameRecorder, "capture",
                            lambda recorder, *args, **kwargs: self.checked_capture(recorder, *args, **kwargs))


GIF_CHECKS = GifChecks()


def lesson_problems(monkeypatch, tmp_path, filename, args):
    """Run a lesson with its pictures on; {picture's name: what keeps its texts from being read}."""
    found = {}
    save_figure, save_gif = _cli.save_figure, GIF_CHECKS.save_gif

    def checked_save_figure(figure, path):
        with drawn_texts() as texts:
            path = save_figure(figure, path)
        with Image.open(path) as image:
            found[path.name] = text_problems(from_top(texts, image.height), image.size)
        return path

    def checked_save_gif(recorder, path, *args, **kwargs):
        found[path.name] = GIF_CHECKS.found(recorder)
        return save_gif(recorder, path, *args, **kwargs)

    monkeypatch.setattr(_cli, "save_figure", checked_save_figure)
    monkeypatch.setattr(_gif.FrameRecorder, "save_gif", checked_save_gif)
    GIF_CHECKS.patch(monkeypatch)
    run_lesson(filename, [*args, "--quiet"], out_dir=tmp_path)
    return found


# Each lesson at its defaults and at settings that change what its pictures write: longer numbers, more
# panels or starts, runs that fly off or stop early. Fewer frames and seeds, and one epoch where no picture
# shows the network (03, 04), keep it quick: the texts read the same.
SETTINGS = {
    "01_defaults": ("01_pattern_classifier.py", []),
    "01_shuffled": ("01_pattern_classifier.py", ["--order", "shuffled", "--epochs", "3", "--sweep", "3"]),
    "02_defaults": ("02_gd_parabola_anim.py", ["--frames", "6"]),
    "02_reaches_zero": ("02_gd_parabola_anim.py", ["--lr", "0.6", "--steps", "100", "--frames", "4",
                                                   "--compare", "0.1,0.4"]),  # as README's "try this" would draw
    "02_far_start_diverges_six_rates": ("02_gd_parabola_anim.py", ["--x0=-1e6", "--lr", "1.05", "--steps", "300",
                                                                   "--compare", "0.01,0.1,0.5,0.9,1.0,1.05",
                                                                   "--frames", "4"]),
    "03_defaults": ("03_custom_optimizer.py", ["--epochs", "1", "--frames", "6"]),
    "03_four_starts": ("03_custom_optimizer.py", ["--starts=-3.5,1,3.8,-0.5", "--minima-lr", "1", "--epochs", "1",
                                                  "--frames", "4"]),
    "04_defaults": ("04_adam_by_hand.py", ["--epochs", "1", "--frames", "6"]),
    "04_narrow_valley_far_start": ("04_adam_by_hand.py", ["--curvatures", "0.04,4", "--start=-10,10", "--epochs", "1",
                                                          "--frames", "4"]),
    "04_three_steps_from_the_floor": ("04_adam_by_hand.py", ["--steps", "3", "--start=0,1", "--epochs", "1",
                                                             "--frames", "4"]),
    # 05's texts are the same at its defaults but for their numbers: a short race, with a wide grid, a grown
    # one (SGD's), 100 dots a column and six floors
    "05_six_floors_wide_grid": ("05_minibatch_race.py", ["--steps", "20", "--draws", "10", "--tune-seeds", "2",
                                                         "--test-seeds", "100", "--grid", "1e-6,1", "--grid-points",
                                                         "7", "--floor-rates", "0.99,0.5,0.1,0.01,0.001,0.0001"]),
}


def problems_at(name, out_dir):
    with pytest.MonkeyPatch.context() as monkeypatch:
        return lesson_problems(monkeypatch, out_dir, *SETTINGS[name])


# Run by tests/lesson_batch.py in a Python of its own, in the background, while this process tests on.
BATCH = {name: functools.partial(problems_at, name) for name in SETTINGS}


picture_text_runs = outcomes_fixture("test_picture_texts")  # what BATCH's runs gave, done in the background (conftest.BATCHES)


@pytest.mark.parametrize("name", SETTINGS)
def test_every_text_of_every_picture_can_be_read(name, picture_text_runs):
    filename, args = SETTINGS[name]
    found = picture_text_runs[name]
    assert found, f"{filename} {' '.join(args)} drew no picture"
    unreadable = [f"{picture}: {problem}" for picture, problems in found.items() for problem in problems]
    assert not unreadable, "\n".join(unreadable)

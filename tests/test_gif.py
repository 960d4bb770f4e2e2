"""The pictures: GIFs decoded frame by frame and compared with the state each frame claims
to show, how _gif.py spaces, colours and encodes the frames, and what stage 1's loss
picture shades."""

import math
import re

import numpy as np
import pytest
from PIL import Image, ImageDraw

import _cli
import _figures
import _gif
from conftest import frames_of, gif_timing

BLUE, ORANGE = (31, 119, 180), (255, 127, 14)  # matplotlib's tab:blue and tab:orange


# --- frame spacing ---------------------------------------------------------------------

@pytest.mark.parametrize("steps, frames, expected", [
    (100, 5, [0, 3, 10, 31, 100]),  # round(101 ** (i / 4)) - 1 = 2, 9, 31, worked out by hand; 2 and 9 made odd gaps
    (5, 3, [0, 1, 5]),  # the log target for frame 1 is step 1.45 -> 1
    (10, 11, list(range(11))),  # as many frames as steps + 1: every step
    (10, 2, [0, 10]),
    (6, 6, [0, 1, 2, 3, 4, 6]),  # no room left to make the last gap odd: the last frame is the last step
])
def test_pick_frames_by_hand(steps, frames, expected):
    assert _gif.pick_frames(steps, frames) == expected


def test_pick_frames_gives_a_valid_choice_for_every_count_of_frames():
    for steps in range(1, 121):
        for frames in range(2, steps + 2):
            picked = _gif.pick_frames(steps, frames)
            assert len(picked) == frames and picked[0] == 0 and picked[-1] == steps, (steps, frames)
            assert all(a < b for a, b in zip(picked, picked[1:])), (steps, frames)


@pytest.mark.parametrize("steps, frames", [(800, 120), (1000, 500), (100_000, 120), (800, 800)])
def test_pick_frames_show_every_early_step_then_space_evenly_in_log_with_odd_gaps(steps, frames):
    picked = _gif.pick_frames(steps, frames)
    assert len(picked) == frames and picked[0] == 0 and picked[-1] == steps
    gaps = [b - a for a, b in zip(picked, picked[1:])]
    assert all(gap % 2 == 1 for gap in gaps[:-1])  # an oscillating run changes side at every frame
    ratio = math.log(steps + 1) / (frames - 1)  # the even step in log(step + 1)
    for i, step in enumerate(picked[1:-1], start=1):
        # rounding to a whole step, and one more step for an odd gap
        assert step == i or abs(math.log(step + 1) - i * ratio) <= math.log((step + 1) / (step - 1))


def test_an_oscillating_run_changes_side_at_every_frame(parabola):
    xs = parabola.descend(1.0, 0.9, 800)["x"]
    shown = [xs[step] for step in _gif.pick_frames(800, 120)]
    moving = [x for x in shown if abs(x) > 1e-40]  # before x stalls at float32's smallest values
    assert len(moving) > 100 and all(a * b < 0 for a, b in zip(moving, moving[1:]))


@pytest.mark.parametrize("frames", [1, 12])
def test_pick_frames_refuses_impossible_counts(frames):
    with pytest.raises(ValueError, match=rf"n_frames must be from 2 to 11, got {frames}"):
        _gif.pick_frames(10, frames)


# --- what the frames show ------------------------------------------------------------

def centre_column(frame, colour, columns):
    """Mean column of the pixels of exactly `colour` within `columns`, or None if there are none."""
    part = frame[:, columns]
    _, found = np.nonzero(np.all(part == colour, axis=2))
    return columns.start + found.mean() if len(found) else None


def record_captions(monkeypatch):
    """Captions handed to each frame, as lists of strings, one per panel."""
    captions = []
    capture = _gif.FrameRecorder.capture

    def spy(self, texts=()):
        captions.append([text for _, text in texts])
        return capture(self, texts)

    monkeypatch.setattr(_gif.FrameRecorder, "capture", spy)
    return captions


def straight_line(xs, columns):
    """(a, b) of the least-squares line column = a + b * x."""
    b, a = np.polyfit(xs, columns, 1)
    return a, b


# --- stage 2: every frame shows the step its caption names --------------------------------

@pytest.fixture
def two_descents(parabola, tmp_path, monkeypatch):
    """A --compare GIF of a halving run (lr 0.25) and a diverging one (lr 1.2), one frame per step."""
    captions = record_captions(monkeypatch)
    runs = [parabola.descend(1.0, lr, 30)["x"] for lr in (0.25, 1.2)]
    panels = [parabola.panel(f"lr {lr}", parabola.descend(1.0, lr, 30), 30, single=False) for lr in (0.25, 1.2)]
    path = tmp_path / "descents.gif"
    assert parabola.animate(panels, 30, 31, 20, path) == 31
    return runs, captions, frames_of(path), gif_timing(path)[1]


def test_each_caption_names_its_frames_step_and_stops_with_the_run(two_descents):
    runs, captions, frames, loop = two_descents
    assert len(frames) == len(captions) == 31 and loop == 0
    stopped = len(runs[1]) - 1  # 1.4 ** 20 = 837 but 1.4 ** 21 = 1171 > 1000: 20 steps, then stop
    assert stopped == 20 == min(n for n in range(30) if 1.4 ** (n + 1) > 1000)
    for step, (halving, diverging) in enumerate(captions):
        assert halving == f"step {step}\nx = {0.5 ** step:.3g}, f(x) = {0.25 ** step:.3g}"
        shown = min(step, stopped)
        assert diverging.startswith(f"step {shown}\nx = {runs[1][shown]:.3g}")
        note = "\nstopped: step 21 would take\n|x| past 1000"  # the stdout note, wrapped to the panel
        assert diverging.endswith(note) == (step >= stopped)


def test_the_halving_point_moves_as_x_does(two_descents):
    runs, _, frames, _ = two_descents
    left = slice(0, frames[0].shape[1] // 2)
    columns = [centre_column(frame, BLUE, left) for frame in frames]
    a, b = straight_line(runs[0], columns)
    for x, column in zip(runs[0], columns):
        assert column == pytest.approx(a + b * x, abs=1.0)  # within a pixel, at every step
    assert columns[0] - columns[1] > 20  # it did move: half the way to the minimum in one step


def test_a_diverging_panel_is_three_times_as_wide(parabola, tmp_path, monkeypatch):
    figures = []
    start_recording = _gif.FrameRecorder.__init__
    monkeypatch.setattr(_gif.FrameRecorder, "__init__",
                        lambda self, figure, moving: figures.append(figure) or start_recording(self, figure, moving))
    panels = [parabola.panel(f"lr {lr}", parabola.descend(-2.0, lr, 10), 10, single=False) for lr in (0.1, 1.2)]
    parabola.animate(panels, 10, 11, 20, tmp_path / "wide.gif")
    calm, diverging = figures[0].axes
    assert calm.get_xlim() == pytest.approx((-2.1, 2.1)) and diverging.get_xlim() == pytest.approx((-6.3, 6.3))


def test_the_stopped_panel_stops_changing(two_descents):
    runs, _, frames, _ = two_descents
    right = slice(frames[0].shape[1] // 2, None)
    changed = [not np.array_equal(a[:, right], b[:, right]) for a, b in zip(frames, frames[1:])]
    assert all(changed[:20]) and not any(changed[20:])  # moving until step 20, frozen after


def test_the_moving_parts_of_one_frame(parabola):
    """The frame a learner reads, built by the lesson: the point at (x, x²), the tangent through it with the
    slope autograd recorded, the trail through the last frames' positions, and the caption naming them."""
    import _figures

    history = parabola.descend(1.0, 0.3, 12)
    run = parabola.panel("t", history, 12, single=True)
    _, (axes,) = _figures.descent_figure(1)
    parts = parabola.draw_panel(axes, run)
    shown = [0, 1, 2, 3, 5, 7, 9, 12]
    caption = parabola.move_to_step(parts, run, shown)
    x, y, slope = history["x"][12], history["f"][12], history["slope"][12]
    assert caption == f"step 12:  x = {x:.3g}   f(x) = {y:.3g}   slope = {slope:.3g}"
    assert list(parts["point"].get_data()[0]) == [x] and list(parts["point"].get_data()[1]) == [y]
    (x1, x2), (y1, y2) = parts["tangent"].get_data()
    assert (x1 + x2) / 2 == pytest.approx(x) and (y2 - y1) / (x2 - x1) == pytest.approx(slope)
    assert (x2 - x1) == pytest.approx(0.3 * run["reach"])
    assert list(parts["trail"].get_data()[0]) == [history["x"][s] for s in shown[-parabola.TRAIL:]]
    assert list(parts["distance"].get_data()[0]) == [12]  # the inset's marker, at the same step
    assert not parts["arrow"].get_visible()  # x is on the panel: no arrow


@pytest.mark.parametrize("x0", [1.0, -1.0])
def test_an_arrow_at_the_edge_shows_the_side_of_a_point_off_the_panel(parabola, x0):
    import _figures

    history = parabola.descend(x0, 1.2, 30)  # diverges: the panel reaches 3, and |x| = 1.4^n passes 3.15 at step 4
    run = parabola.panel("t", history, 30, single=False)
    _, (axes,) = _figures.descent_figure(1)
    parts = parabola.draw_panel(axes, run)
    arrows = []
    for step, x in enumerate(history["x"]):
        parabola.move_to_step(parts, run, [step])
        arrow_x, arrow_y = parts["arrow"].get_data()
        if abs(x) <= 1.05 * run["reach"]:
            assert not parts["arrow"].get_visible(), step
        else:
            assert parts["arrow"].get_visible(), step
            assert list(arrow_x) == [math.copysign(3.0, x)] and list(arrow_y) == [1.2 * 9.0], step
            arrows.append(parts["arrow"].get_marker())
    assert len(arrows) == len(history["x"]) - 4 and arrows[0] == (">" if x0 > 0 else "<")  # x0 * 1.4^4 > 0
    assert all(a != b for a, b in zip(arrows, arrows[1:]))  # the sign flips at every step
    assert "distance" not in parts  # the |x| inset is for a panel alone


@pytest.mark.parametrize("x, arrow", [(3.15, False), (-3.15, False), (3.16, True), (-3.16, True), (1e9, True)])
def test_the_arrow_appears_once_the_point_leaves_the_panel(parabola, x, arrow):
    """The x axis reaches 1.05 times the panel's reach (3 here): up to there the point itself shows."""
    import _figures

    run = parabola.panel("t", parabola.descend(1.0, 1.2, 30), 30, single=False)
    assert run["reach"] == 3.0
    _, (axes,) = _figures.descent_figure(1)
    parts = parabola.draw_panel(axes, run)
    _figures.move_decorations(parts, 5, x, run["reach"])
    assert parts["arrow"].get_visible() == arrow and axes.get_xlim() == pytest.approx((-3.15, 3.15))


def test_a_gif_holds_at_most_its_frames_and_every_position_of_a_shorter_run(parabola, tmp_path, monkeypatch):
    captions = record_captions(monkeypatch)
    history = parabola.descend(1.0, 0.1, 7)
    assert parabola.animate([parabola.panel("t", history, 7, single=True)], 7, 120, 20, tmp_path / "a.gif") == 8
    assert [int(re.match(r"step (\d+):", texts[0]).group(1)) for texts in captions] == list(range(8))
    captions.clear()
    assert parabola.animate([parabola.panel("t", history, 7, single=True)], 7, 4, 20, tmp_path / "b.gif") == 4
    assert [int(re.match(r"step (\d+):", texts[0]).group(1)) for texts in captions] == _gif.pick_frames(7, 4)



def caption_grounds(monkeypatch):
    """For each caption a frame gets: (its text, the frame's pixels under its box just before it is written)."""
    found, frames = [], []
    draw, write = ImageDraw.Draw, ImageDraw.ImageDraw.multiline_text
    monkeypatch.setattr(ImageDraw, "Draw", lambda image, *args: frames.append(image) or draw(image, *args))

    def checked(pen, xy, text, *args, **kwargs):
        box = pen.multiline_textbbox(xy, text, font=kwargs["font"], anchor=kwargs["anchor"], align=kwargs["align"])
        found.append((text, np.asarray(frames[-1].crop(box))))
        return write(pen, xy, text, *args, **kwargs)

    monkeypatch.setattr(ImageDraw.ImageDraw, "multiline_text", checked)
    return found


@pytest.mark.parametrize("rates, single", [((1.2,), True), ((0.25, 1.2), False)])
def test_nothing_moving_runs_through_a_caption(parabola, tmp_path, monkeypatch, rates, single):
    """The review: at lr 1.2, the trail ran off the panel's top and through the caption (from step 4, where x
    leaves the panel). A caption's box holds nothing but white until the caption is written, on every frame,
    the taller captions of a run that stopped too."""
    found = caption_grounds(monkeypatch)
    panels = [parabola.panel("t", parabola.descend(1.0, lr, 30), 30, single) for lr in rates]
    parabola.animate(panels, 30, 12, 20, tmp_path / "captions.gif")
    assert len(found) == 12 * len(rates) and any(text.startswith("step 4") for text, _ in found)
    crossed = [text for text, ground in found if (ground != 255).any()]
    assert not crossed, crossed
    assert any("stopped" in text for text, _ in found)


def test_far_panels_label_their_ticks_without_an_offset_and_keep_their_titles_in_line(parabola):
    """The review: from x0 = -1e6, each panel's "1e12" above its axis crowded the titles, and matplotlib lifted
    the long title "lr = 0.9: oscillates and converges" above it, out of line with the others."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    rates = (0.1, 0.9, 1.05)
    runs = [parabola.descend(-1e6, lr, 100) for lr in rates]
    figure, all_axes = _figures.descent_figure(len(rates))
    for axes, lr, run in zip(all_axes, rates, runs):
        parabola.draw_panel(axes, parabola.panel(f"lr = {lr:g}: {parabola.behaviour(run['x'], 100)}", run, 100, False))
    FigureCanvasAgg(figure).draw()
    for axes in all_axes:
        assert axes.xaxis.get_offset_text().get_text() == axes.yaxis.get_offset_text().get_text() == ""
        for ticks, labels in ((axes.get_xticks(), axes.get_xticklabels()), (axes.get_yticks(), axes.get_yticklabels())):
            shown = [(tick, label.get_text()) for tick, label in zip(ticks, labels) if label.get_text()]
            assert shown and all(float(text.replace("−", "-")) == pytest.approx(tick, rel=1e-9, abs=1e-300)
                                 for tick, text in shown), shown
    assert len({round(axes.title.get_window_extent().y0, 3) for axes in all_axes}) == 1


def test_stage3s_log_panel_draws_an_x_of_0_on_its_bottom_edge_and_says_so(tmp_path, monkeypatch):
    """The review: 03 --lr 0.6 reaches x = 0, yet its log panel drew |x| flat at 1e-45, like float32's floor."""
    figures = []
    monkeypatch.setattr(_cli, "save_figure", lambda figure, path: figures.append(figure) or path)
    xs = [1.0, -0.2, 0.04, 2 * 2.0**-149, 2.0**-149, 0.0, 0.0]
    _figures.stage3_parabola(xs, 0.6, tmp_path / "parabola.png")
    distance = figures[0].axes[1]
    assert distance.get_title() == "Each step multiplies x by 1 − 2·lr = -0.2"
    [dots] = [line for line in distance.get_lines() if line.get_label() == "SimpleGD (float32)"]
    assert list(dots.get_xdata()) == [0, 1, 2, 3, 4] and list(dots.get_ydata()) == [abs(x) for x in xs[:5]]
    [zero] = [line for line in distance.get_lines() if line.get_gid() == "x = 0"]
    assert list(zero.get_xdata()) == [5, 6] and list(zero.get_ydata()) == [0, 0]
    bottom_edge = distance.transAxes.transform((0, 0))[1]
    assert [zero.get_transform().transform((step, 0))[1] for step in (5, 6)] == [bottom_edge] * 2
    legend = [text.get_text() for text in distance.get_legend().get_texts()]
    assert legend[-1] == "x = 0 exactly: on the bottom edge"
    figures.clear()
    _figures.stage3_parabola(xs[:5], 0.6, tmp_path / "parabola.png")  # no 0: nothing said of it
    assert not [line for line in figures[0].axes[1].get_lines() if line.get_gid() == "x = 0"]
    assert len(figures[0].axes[1].get_legend().get_texts()) == 2

# --- stage 3: the markers are where the runs were -------------------------------------------

def test_local_minima_markers_follow_their_runs(custom_optimizer, tmp_path, monkeypatch):
    captions = record_captions(monkeypatch)
    runs = [custom_optimizer.roll(2.5, momentum, 0.05, 40) for momentum in (0.0, 0.9)]
    best = custom_optimizer.x_best, custom_optimizer.f_best
    path = _figures.stage3_local_minima(runs, best, 4.0, 40, 41, 20, tmp_path / "minima.gif")
    frames = frames_of(path)
    assert len(frames) == len(captions) == 41
    middle = frames[0].shape[1] // 2
    for run, colour, columns, index in ((runs[0], BLUE, slice(0, middle), 0),
                                        (runs[1], ORANGE, slice(middle, None), 1)):
        steps = [int(re.match(r"step (\d+): x = ", texts[index]).group(1)) for texts in captions]
        assert steps == list(range(41))
        assert [texts[index] for texts in captions] == [f"step {s}: x = {run['xs'][s]:.2f}" for s in steps]
        found = [centre_column(frame, colour, columns) for frame in frames]
        a, b = straight_line(run["xs"], found)
        for x, column in zip(run["xs"], found):
            assert column == pytest.approx(a + b * x, abs=2.5)  # the star, drawn over it, hides a few pixels
    assert max(runs[1]["xs"]) - min(runs[1]["xs"]) > 2  # momentum travelled, and its marker with it


# --- encoding --------------------------------------------------------------------------------

def test_frames_hold_for_their_time_and_the_last_one_longer(parabola, tmp_path):
    path = tmp_path / "short.gif"
    parabola.animate([parabola.panel("t", parabola.descend(1.0, 0.25, 5), 5, single=True)], 5, 6, 10, path)
    durations, loop = gif_timing(path)
    assert durations == [100, 100, 100, 100, 100, 1500] and loop == 0


def test_the_slowest_frame_rate_holds_each_frame_ten_seconds(parabola, tmp_path):
    path = tmp_path / "slow.gif"
    parabola.animate([parabola.panel("t", parabola.descend(1.0, 0.25, 2), 2, single=True)], 2, 3, 0.1, path)
    assert gif_timing(path)[0] == [10_000] * 3


def test_a_frame_lasts_the_nearest_centisecond_and_a_short_hold_adds_nothing(parabola, tmp_path):
    path = tmp_path / "slow.gif"
    parabola.animate([parabola.panel("t", parabola.descend(1.0, 0.25, 2), 2, single=True)], 2, 3, 0.15, path)
    # 1/0.15 s = 6.666... s per frame
    assert gif_timing(path)[0] == [6670] * 3  # a GIF counts in centiseconds; the 1.5 s hold is shorter than a frame


def test_the_palette_starts_from_black_and_the_figures_own_colours():
    assert _gif.figure_colours(_figures.new_figure()) == [(0.0, 0.0, 0.0)]  # an empty figure: black alone
    figure = _figures.new_figure()
    figure.subplots().plot([0, 1], [0, 1], color="tab:orange", marker="o", markerfacecolor="tab:green")
    colours = _gif.figure_colours(figure)
    for colour in [(0.0, 0.0, 0.0), (1.0, 127 / 255, 14 / 255), (44 / 255, 160 / 255, 44 / 255)]:
        assert any(all(abs(a - b) < 1e-3 for a, b in zip(colour, found)) for found in colours)


def test_a_later_frame_keeps_only_the_pixels_that_changed():
    previous = Image.new("P", (4, 2), 3)
    frame = previous.copy()
    frame.putpixel((2, 1), 7)
    frame.putpalette([v for i in range(256) for v in (i, i, i)])
    changed = _gif.only_changes(previous, frame)
    assert np.asarray(changed).ravel().tolist() == [_gif.UNCHANGED] * 6 + [7, _gif.UNCHANGED]
    assert changed.getpalette() == frame.getpalette()


def test_the_palette_holds_every_colour_and_its_fades():
    palette = _gif.blended_palette([(0.0, 0.0, 0.0), (1.0, 0.5, 0.0)], shades=4)
    entries = [tuple(palette.getpalette()[i : i + 3]) for i in range(0, 3 * 9, 3)]
    assert entries[0] == (255, 255, 255)
    assert entries[1:5] == [(191, 191, 191), (128, 128, 128), (64, 64, 64), (0, 0, 0)]
    assert entries[5:9] == [(255, 223, 191), (255, 191, 128), (255, 159, 64), (255, 128, 0)]  # 127.5 -> 128


def test_log_axes_are_labelled_in_plain_decades():
    axes = _figures.new_figure().subplots()
    axes.semilogy([0, 1], [0.3, 1.0])  # less than a decade: matplotlib would label minor ticks
    _figures.label_decades(axes.yaxis)
    decade = axes.yaxis.get_major_formatter()
    assert [decade(v, 0) for v in (0.001, 1.0, 100.0, 0.0)] == ["10⁻³", "10⁰", "10²", ""]
    assert axes.yaxis.get_minor_formatter()(0.5, 0) == ""


# --- stage 1's loss picture -----------------------------------------------------

@pytest.mark.parametrize("epochs", [1, 2, 3])
def test_the_loss_plot_shades_pattern_b_steps_and_labels_them_once(epochs, tmp_path, monkeypatch):
    """Sequential order: steps 21..40 of each 40-step epoch are B, so [20.5, 40.5] is shaded."""
    drawn = []
    monkeypatch.setattr(_cli, "save_figure", lambda figure, path: drawn.append(figure))
    _figures.stage1_losses([1.0] * (40 * epochs), 40, "sequential", tmp_path / "loss.png")
    axes = drawn[0].axes[0]
    spans = [(patch.get_x(), patch.get_x() + patch.get_width()) for patch in axes.patches]
    assert spans == [(40 * epoch + 20.5, 40 * epoch + 40.5) for epoch in range(epochs)]
    assert all(patch.get_linewidth() == 0 for patch in axes.patches)  # no outline to mistake for a boundary
    assert axes.get_legend() is None  # the legend stands below the axes, where it hides no point
    assert [text.get_text() for text in drawn[0].legends[0].get_texts()] == [
        "ln 4: the loss of an all-zero input", "pattern B samples"]
    (ln4,) = [line for line in axes.get_lines() if line.get_linestyle() == "--"]
    assert ln4.get_ydata() == pytest.approx([math.log(4)] * 2)


def test_identical_frames_merge_into_one_that_shows_for_longer(parabola, tmp_path):
    history = parabola.descend(1.0, 1.2, 30)  # stops after step 20: later frames repeat its last picture
    path = tmp_path / "stopped.gif"
    frames = parabola.animate([parabola.panel("stopped", history, 30, single=True)], 30, 31, 10, path)
    durations, _ = gif_timing(path)
    assert frames == len(durations) == len(frames_of(path)) < 31
    assert sum(durations) == 30 * 100 + 1500  # the same time on screen: 30 frames of 0.1 s, the last held 1.5 s
    assert durations[:-1] == [100] * (frames - 1)


def test_move_to_step_is_an_update_function_that_funcanimation_can_drive(parabola, tmp_path):
    """README: FuncAnimation(figure, update, frames) could drive the lesson's update function as it stands;
    frame by frame, its GIF puts the point where the recorder's GIF puts it."""
    from matplotlib.animation import FuncAnimation, PillowWriter

    run = parabola.panel("halving", parabola.descend(1.0, 0.25, 3), 3, single=True)
    figure, (axes,) = _figures.descent_figure(1)
    parts = parabola.draw_panel(axes, run)

    def update(frame):
        parabola.move_to_step(parts, run, list(range(frame + 1)))
        return list(parts.values())

    FuncAnimation(figure, update, frames=4).save(tmp_path / "funcanimation.gif", writer=PillowWriter(fps=10))
    parabola.animate([run], 3, 4, 10, tmp_path / "recorder.gif")
    theirs, ours = frames_of(tmp_path / "funcanimation.gif"), frames_of(tmp_path / "recorder.gif")
    below_caption = slice(50, None)  # the recorder writes a caption at the top; FuncAnimation does not
    assert len(theirs) == len(ours) == 4
    for index, (their_frame, our_frame) in enumerate(zip(theirs, ours)):
        changed = np.abs(their_frame[below_caption] - our_frame[below_caption]).max(axis=2) > 64
        moved = np.abs(ours[index - 1][below_caption] - our_frame[below_caption]).max(axis=2) > 64
        assert changed.sum() == 0 and (index == 0 or moved.sum() > 200)  # the same picture, and it moves

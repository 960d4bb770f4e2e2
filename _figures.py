"""Machinery, not lesson: a learner need not read this file.

The pictures of the three stages, drawn with matplotlib off screen (no window,
no display needed) and written atomically. Each lesson says what to look at
in each, right after the cell that draws it. Colours are the same everywhere: blue for plain gradient descent,
orange for momentum, a green star for the lowest point.
"""

import functools
import math
import re

import numpy as np
import torch
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import FuncFormatter, MaxNLocator, NullFormatter
from matplotlib.transforms import Bbox, ScaledTranslation, TransformedBbox
from PIL import Image, ImageDraw, ImageFont

import _cli
from _gif import FrameRecorder, matplotlib_font_path, pick_frames
from common import pattern_a, pattern_b

PLAIN_GD_COLOUR = "tab:blue"
MOMENTUM_COLOUR = "tab:orange"
MINIMUM_COLOUR = "tab:green"
CURVE_COLOUR = "0.6"


def new_figure(**kwargs):
    """A matplotlib Figure that renders off screen: no window, no pyplot state to close."""
    return Figure(layout="constrained", **kwargs)


SUPERSCRIPT_DIGITS = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")


def label_decades(axis):
    """Label a log axis 10⁻³, 10⁰, ... in plain text: matplotlib's default labels go
    through its TeX-like mathtext, which costs a noticeable fraction of a second."""

    def decade(value, _position):
        return "10" + str(round(math.log10(value))).translate(SUPERSCRIPT_DIGITS) if value > 0 else ""

    axis.set_major_formatter(FuncFormatter(decade))
    axis.set_minor_formatter(NullFormatter())


ZERO = "x = 0"  # the id of what draws an x of exactly 0 on a log axis


def on_the_bottom_edge(axes, steps, **style):
    """Marks at `steps` on the bottom edge of a log axis, in the minimum's colour: where x is exactly 0. A log
    scale has no place for 0, and at any height a 0 would read as a number, like float32's smallest, 1.4e-45."""
    return axes.plot(steps, [0] * len(steps), transform=axes.get_xaxis_transform(), color=MINIMUM_COLOUR,
                     clip_on=False, gid=ZERO, **style)[0]


# ---------------------------------------------------------------------------
# Stage 1
# ---------------------------------------------------------------------------

MARKED_EPOCHS = 10  # 10 epochs of 40 steps put the epoch lines about 60 pixels apart in a 7-inch picture


def stage1_losses(losses, steps_per_epoch, order, path):
    """The loss at every step, ln 4 for reference; up to MARKED_EPOCHS epochs, a dotted line at each new
    epoch and, in the article's order, pattern B's steps shaded: more would merge into grey stripes."""
    figure = new_figure(figsize=(7, 3.8))
    axes = figure.subplots()
    epochs = math.ceil(len(losses) / steps_per_epoch)
    marked = epochs <= MARKED_EPOCHS
    axes.plot(range(1, len(losses) + 1), losses, color=MOMENTUM_COLOUR, marker="." if marked else "")
    axes.axhline(math.log(4), color="black", linestyle="--", lw=1, label="ln 4: the loss of an all-zero input")
    for start in range(0, len(losses), steps_per_epoch) if marked else ():
        if start:
            axes.axvline(start + 0.5, color="grey", linestyle=":")
        if order == "sequential":  # the second half of each epoch is pattern B
            axes.axvspan(start + steps_per_epoch / 2 + 0.5, start + steps_per_epoch + 0.5,
                         color="grey", alpha=0.15, lw=0, label="pattern B samples" if not start else None)
    # below the axes: inside, wherever it stood, it could hide a peak that the lesson points to
    figure.legend(loc="outside lower center", ncol=2, fontsize=9, frameon=False)
    shaded = " and pattern B's steps" if order == "sequential" else ""
    marks = " (dotted: new epoch)" if marked else f"\n({epochs} epochs: too many to mark each epoch{shaded})"
    axes.set(xlabel="step (one sample per step)", ylabel="cross-entropy loss",
             title=f"Stage 1: loss at each training step, {order} order{marks}")
    return _cli.save_figure(figure, path)


FILTER_ROLES = ("pattern A", "pattern B", "no sample", "no sample")  # the class each filter scores


def stage1_filters(model, path):
    """The two patterns beside the four learned filters, with each filter's logit for A and B."""
    weight = model.conv.weight.detach()
    with torch.no_grad():
        logits_a = model(pattern_a(1).to(weight.device)).cpu()
        logits_b = model(pattern_b(1).to(weight.device)).cpu()
    filters = weight.cpu().reshape(4, 4, 4)
    figure = new_figure(figsize=(12, 3.1))
    panels = figure.subplots(1, 6)
    for axes, image, title in ((panels[0], pattern_a(1), "pattern A"), (panels[1], pattern_b(1), "pattern B")):
        axes.imshow(image.reshape(4, 4).numpy(), cmap="Greys", vmin=0, vmax=1)
        axes.set_title(f"{title}\nblack 1, white 0", fontsize=10)
    limit = filters.abs().max().item() or 1.0
    for k in range(4):  # one short line each: side by side, long titles run into each other
        shown = panels[k + 2].imshow(filters[k].numpy(), cmap="RdBu_r", vmin=-limit, vmax=limit)
        panels[k + 2].set_title(f"filter {k}: class {k}\n({FILTER_ROLES[k]})\nlogit for A: {short(logits_a[0, k])}\n"
                                f"logit for B: {short(logits_b[0, k])}", fontsize=10)
    for axes in panels:
        axes.set(xticks=[], yticks=[])
    figure.colorbar(shown, ax=panels[2:], shrink=0.8, label="weight")
    figure.suptitle("Learned 4x4 filters (red +, blue -): each gives one logit; the largest is the predicted class")
    return _cli.save_figure(figure, path)


def short(value):
    """A number in at most 9 characters, 2 decimals while it is below 10⁴: a large --lr makes large logits."""
    return f"{value:.2f}" if abs(value) < 1e4 else f"{value:.3g}"


def stage1_sweep(results, orders, path):
    """One dot per run, at its seed (x), green if it learned its training set, red if not. For each order
    the runs at exactly 100% test accuracy lie in a strip of their own, above the runs below 100%, and each
    panel's title counts its dots: the counts the lesson prints can be checked by eye."""
    n_seeds = len(results[orders[0]]["test_accuracy"])
    below = [a for order in orders for a in results[order]["test_accuracy"] if a < 100.0]
    floor = min([40.0] + [10.0 * math.floor(a / 10) for a in below])  # 50%, guessing, always in view
    figure = new_figure(figsize=(7, 1.0 + 2.7 * len(orders)))
    for row, order in zip(figure.subfigures(len(orders), 1, squeeze=False)[:, 0], orders):
        sweep_panels(row, results[order], floor)
        summary = results[order]["summary"]
        low, high = summary["learned_training_set_95ci"]
        runs = "runs" if n_seeds > 1 else "run"
        row.suptitle(f"{order} order: {summary['learned_training_set']} of {n_seeds} {runs} learned their training "
                     f"set (95% interval {low:.2f}% to {high:.2f}%)", fontsize=10)
    seeds = f"seeds 0..{n_seeds - 1}" if n_seeds > 1 else "seed 0"
    figure.suptitle(f"Stage 1 on {seeds}: one dot per training run, at its seed")
    figure.legend(handles=SWEEP_LEGEND, loc="outside lower center", ncol=3, fontsize=8, frameon=False)
    return _cli.save_figure(figure, path)


SWEEP_COLOURS = {True: "tab:green", False: "tab:red"}  # learned its training set, or not
SWEEP_LEGEND = [Line2D([], [], ls="", marker="o", color="tab:green", label="learned its training set"),
                Line2D([], [], ls="", marker="o", color="tab:red", label="did not"),
                Line2D([], [], ls=":", color="grey", label="50%: always guessing one pattern")]


def sweep_panels(row, result, floor):
    """An order's two panels: the runs at exactly 100% test accuracy, and below them the runs under 100%."""
    seeds = np.arange(len(result["test_accuracy"]))
    learned = np.array(result["train_accuracy"]) == 100.0
    test = np.array(result["test_accuracy"])
    top, bottom = row.subplots(2, 1, sharex=True, height_ratios=(1, 4))
    size = 12 if len(seeds) <= 150 else 3  # more seeds than pixels: the titles' counts still hold
    for axes, shown in ((top, test == 100.0), (bottom, test < 100.0)):
        counts = []
        for colour in (True, False):
            mask = shown & (learned == colour)
            axes.scatter(seeds[mask], test[mask], s=size, color=SWEEP_COLOURS[colour], lw=0, clip_on=False)
            if mask.any():
                counts.append(f"{mask.sum()} {'green' if colour else 'red'}")
        runs = "run" if shown.sum() == 1 else "runs"
        where = "at exactly 100%" if axes is top else "below 100%"
        axes.set_title(f"{' and '.join(counts) or 'no'} {runs} {where}", loc="left", fontsize=9)
    top.set(ylim=(99, 101), yticks=[100])
    top.tick_params(labelbottom=False)
    bottom.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))  # seeds are whole numbers, 1 or more
    bottom.axhline(50, color="grey", ls=":", lw=1)
    bottom.set(ylim=(floor, 100), xlim=(-0.5, len(seeds) - 0.5), xlabel="seed", ylabel="test accuracy (%)")


# ---------------------------------------------------------------------------
# Stage 2: 02_gd_parabola_anim.py draws the parabola, the point, its trail, the tangent and the
# caption; these are the decorations: layout, colours, the |x| inset and the off-panel arrow
# ---------------------------------------------------------------------------

DESCENT_COLOURS = {"curve": CURVE_COLOUR, "minimum": MINIMUM_COLOUR, "point": PLAIN_GD_COLOUR, "tangent": "0.3"}


def descent_figure(n_panels):
    """A figure of n panels side by side, sized for a GIF; returns (figure, list of axes)."""
    single = n_panels == 1
    figure = new_figure(figsize=(6.4, 4.2) if single else (3.3 * n_panels, 3.6), dpi=80)
    all_axes = figure.subplots(1, n_panels, squeeze=False)[0]
    all_axes[0].set_ylabel("f(x) = x²")
    return figure, list(all_axes)


def descent_decorations(axes, xs, reach, single):
    """A panel's decorations, as moving parts: an arrow at the panel's edge while x is off it, and, in a
    panel alone, a small log plot of |x| per step, with a marker at the current step."""
    for axis, limits in ((axes.xaxis, axes.get_xlim()), (axes.yaxis, axes.get_ylim())):
        if max(map(abs, limits)) >= 1e5:  # no "1e12" atop the axis: it crowds the title, and lifts a long one
            axis.set_major_formatter(FuncFormatter(with_its_exponent))
    parts = {"arrow": axes.plot([], [], color=PLAIN_GD_COLOUR, markersize=9, linestyle="none")[0]}
    if single:  # |x| on a log scale shows the slow end, too small to see on the parabola
        inset = axes.inset_axes([0.3, 0.42, 0.4, 0.33])
        inset.semilogy(range(len(xs)), [abs(x) if x else math.nan for x in xs], color=PLAIN_GD_COLOUR, lw=1)
        zeros = [step for step, x in enumerate(xs) if x == 0]
        if zeros:  # the line stops where x reaches 0, and the bottom edge carries on
            on_the_bottom_edge(inset, zeros, lw=3, marker="s", markersize=3, markevery=[0])
            inset.text(zeros[-1], 0.06, "x = 0", transform=inset.get_xaxis_transform(), color=MINIMUM_COLOUR,
                       fontsize=7, ha="right", va="bottom")
        inset.set_title("|x|, log scale, per step", fontsize=8)
        inset.tick_params(labelsize=7)
        label_decades(inset.yaxis)
        parts["distance"] = inset.plot([], [], color=PLAIN_GD_COLOUR, marker="o", markersize=5)[0]
        parts["at_zero"] = inset.plot([], [], transform=inset.get_xaxis_transform(), color=PLAIN_GD_COLOUR,
                                      marker="o", markersize=5, clip_on=False, visible=False)[0]
    return parts


def with_its_exponent(value, _position):
    """A tick label that carries its own exponent: 2e12, where matplotlib writes 2 under a "1e12" atop the axis."""
    return re.sub(r"e\+?(-?)0*(\d)", r"e\1\2", f"{value:.3g}").replace("-", "−")


def move_decorations(parts, step, x, reach):
    """Show the arrow on x's side once x is off the panel (|x| > 1.05 reach); move the inset's marker to `step`,
    on the bottom edge where x is 0."""
    off_panel = abs(x) > 1.05 * reach
    parts["arrow"].set_visible(off_panel)  # an invisible artist costs nothing to draw
    if off_panel:
        parts["arrow"].set(data=([math.copysign(reach, x)], [1.2 * reach**2]), marker=">" if x > 0 else "<")
    if "distance" in parts:
        parts["distance"].set_visible(x != 0)
        parts["at_zero"].set_visible(x == 0)
        parts["distance" if x != 0 else "at_zero"].set_data([step], [abs(x)])


CAPTION_TOP = 6  # pixels: _gif.FrameRecorder.capture writes a caption this far below its axes' top, centred


@functools.cache
def caption_font(dpi):
    return ImageFont.truetype(matplotlib_font_path(), round(10 * dpi / 72))  # _gif.FrameRecorder's font


@functools.cache
def caption_depth(dpi, lines):
    """How far below its axes' top a caption of `lines` lines reaches, in pixels, with a little room: measured on
    letters that rise and fall the most, so that one depth serves every caption of that many lines."""
    pen = ImageDraw.Draw(Image.new("L", (1, 1)))
    return pen.multiline_textbbox((0, CAPTION_TOP), "\n".join(["Ág|y"] * lines), font=caption_font(dpi), anchor="ma",
                                  align="center")[3] + 2


def keep_below_caption(parts, caption):
    """Clip the trail and the tangent to the part of their axes below `caption`: where they leave the panel's top,
    they would otherwise run through it. (The point itself, while on the panel, stays below the caption.)"""
    figure = parts["trail"].axes.figure
    depth = caption_depth(figure.dpi, caption.count("\n") + 1)
    down = ScaledTranslation(0, -depth / figure.dpi, figure.dpi_scale_trans)
    below = TransformedBbox(Bbox.unit(), parts["trail"].axes.transAxes + down)  # its bottom is clipped by the axes
    for name in ("trail", "tangent"):
        parts[name].set_clip_box(below)


# ---------------------------------------------------------------------------
# Stage 3
# ---------------------------------------------------------------------------

def stage3_parabola(xs, lr, path):
    """SimpleGD's points on the parabola, and |x| per step against the closed form."""
    figure = new_figure(figsize=(9, 3.6))
    curve, distance = figure.subplots(1, 2)
    grid = np.linspace(-1.05, 1.05, 201)
    curve.plot(grid, grid**2, color=CURVE_COLOUR)
    steps = np.arange(len(xs))
    values = np.array(xs)
    shown = curve.scatter(values, values**2, c=steps, cmap="viridis", s=22, zorder=3)
    figure.colorbar(shown, ax=curve, label="step")
    curve.set(xlabel="x", ylabel="y = x²", title=f"SimpleGD(lr={lr:g}) on y = x²")
    reached = values != 0  # an x of exactly 0 has no place on the log scale: it goes on the bottom edge
    distance.semilogy(steps[reached], np.abs(values[reached]), "o", color=PLAIN_GD_COLOUR,
                      markersize=4, label="SimpleGD (float32)")
    distance.semilogy(steps, np.abs((1 - 2 * lr) ** steps), color="black", lw=1, label="closed form x0·(1−2·lr)ⁿ")
    if not reached.all():
        on_the_bottom_edge(distance, steps[~reached], marker="v", markersize=5, linestyle="none",
                           label="x = 0 exactly: on the bottom edge")
    distance.set(xlabel="step", ylabel="|x| (log scale)",
                 title=f"Each step multiplies x by 1 − 2·lr = {1 - 2 * lr:.9g}")
    label_decades(distance.yaxis)
    distance.legend()
    return _cli.save_figure(figure, path)


MARKERS = ("o", "s", "^", "D")  # one per starting point
# Each run ends as a ring, the first start's the largest: runs that stop at the same place show as
# rings inside each other, none hidden under another. The star is drawn last, over the rings, and
# large enough to show among them.
MARKER_SIZES = (20, 16, 12.5, 10)
STAR_SIZE = 13
TRAIL_STEPS = 12


def stage3_local_minima(runs, best, reach, steps, n_frames, fps, path):
    """Two panels, plain descent and momentum, one marker per starting point; best = (x, f) of the global minimum."""
    names = list(dict.fromkeys(run["optimizer"] for run in runs))
    starts = list(dict.fromkeys(run["x0"] for run in runs))
    figure = new_figure(figsize=(9, 4.3), dpi=80)
    panels = figure.subplots(1, 2, sharey=True)
    grid = torch.linspace(-reach, reach, 801)
    curve = grid**2 / 4 + 0.5 * torch.sin(5 * grid)
    moving, stars = [], []
    for axes, name, colour in zip(panels, names, (PLAIN_GD_COLOUR, MOMENTUM_COLOUR)):
        axes.plot(grid.numpy(), curve.numpy(), color=CURVE_COLOUR, lw=1.5)
        axes.set(xlabel="x", title=name, ylim=(curve.min().item() - 0.3, curve.max().item() + 1.2))
        for run in (run for run in runs if run["optimizer"] == name):
            which = starts.index(run["x0"])
            marker = {"marker": MARKERS[which], "markersize": MARKER_SIZES[which]}
            axes.plot(run["xs"][0], run["fs"][0], **marker, color=colour, alpha=0.3, linestyle="none")
            trail = axes.plot([], [], color=colour, alpha=0.6, lw=3)[0]
            point = axes.plot([], [], **marker, color=colour, markerfacecolor="none", markeredgewidth=2.5,
                              linestyle="none")[0]
            moving.append((axes, run, trail, point))
        stars.append(axes.plot(*best, marker="*", color=MINIMUM_COLOUR, markeredgecolor="black",
                               markersize=STAR_SIZE, linestyle="none")[0])
    panels[0].set_ylabel("f(x) = x²/4 + sin(5x)/2")
    entries = local_minima_legend(starts)
    figure.legend(handles=entries, loc="outside lower center", fontsize=9, frameon=False,
                  ncol=len(entries) if len(entries) <= 6 else math.ceil(len(entries) / 2))  # 7 fit in 2 rows only
    recorder = FrameRecorder(figure, [a for _, _, trail, point in moving for a in (trail, point)] + stars)
    for step in pick_frames(steps, n_frames):
        for _, run, trail, point in moving:
            recent = slice(max(0, step - TRAIL_STEPS), step + 1)
            trail.set_data(run["xs"][recent], run["fs"][recent])
            point.set_data([run["xs"][step]], [run["fs"][step]])
        captions = []
        for axes, name in zip(panels, names):
            xs = ", ".join(two_decimals(run["xs"][step]) for _, run, _, _ in moving if run["optimizer"] == name)
            captions.append((axes, f"step {step}: x = {xs}"))
        recorder.capture(captions)
    recorder.save_gif(path, fps)
    return path


def two_decimals(x):
    """x with two decimals; a value that rounds to 0 reads 0.00, not -0.00."""
    return f"{round(x, 2) + 0.0:.2f}"  # adding 0.0 turns -0.0 into 0.0


def local_minima_legend(starts):
    grey = "0.35"
    return ([Line2D([], [], marker="*", color=MINIMUM_COLOUR, markeredgecolor="black", markersize=STAR_SIZE,
                    linestyle="none", label="global minimum")]
            + [Line2D([], [], marker=MARKERS[i], color=grey, markerfacecolor="none", markeredgewidth=2,
                      markersize=min(MARKER_SIZES[i], 12), linestyle="none", label=f"run from x0 = {x0:g}")
               for i, x0 in enumerate(starts)]
            + [Line2D([], [], marker="o", color=grey, alpha=0.3, linestyle="none", label="its start"),
               Line2D([], [], color=grey, alpha=0.6, lw=3, label=f"its last {TRAIL_STEPS} steps")])


# ---------------------------------------------------------------------------
# Lesson 04
# ---------------------------------------------------------------------------

VALLEY_COLOURS = (PLAIN_GD_COLOUR, MOMENTUM_COLOUR, "tab:purple")  # gradient descent, momentum, Adam


def valley_frame(curvatures, runs):
    """The valley's contour lines around the runs' positions, with its minimum; returns (figure, axes)."""
    a, b = curvatures
    start = next(iter(runs.values()))[0]
    level = (a * start[0].item() ** 2 + b * start[1].item() ** 2) / 2
    box = torch.cat(list(runs.values()) + [torch.zeros(1, 2, dtype=start.dtype)])
    far = 2 * torch.hypot(*start)  # hypot: sqrt(x^2 + y^2) without underflow
    box = box[torch.hypot(box[:, 0], box[:, 1]) < far]  # a run that flies off is followed to the frame's edge only
    (left, bottom), (right, top) = box.amin(dim=0).tolist(), box.amax(dim=0).tolist()
    widen = max(0.0, (top - bottom) - (right - left)) / 2  # aspect="equal": a narrow box squeezes its ticks
    left, right = left - widen, right + widen
    pad = 0.08 * max(right - left, top - bottom)
    figure = new_figure(figsize=(8, 4.6), dpi=80)
    axes = figure.subplots()
    x, y = np.meshgrid(np.linspace(left - pad, right + pad, 241), np.linspace(bottom - pad, top + pad, 121))
    levels = level * np.array([0.002, 0.01, 0.05, 0.2, 0.5, 1.0, 1.5])
    axes.contour(x, y, (a * x**2 + b * y**2) / 2, levels=levels, colors=CURVE_COLOUR, linewidths=0.8)
    axes.plot(0, 0, marker="*", color=MINIMUM_COLOUR, markeredgecolor="black", markersize=14, linestyle="none",
              label="the minimum (0, 0)")
    axes.plot([], [], color=CURVE_COLOUR, lw=0.8, label=f"contour lines: {contour_shape(a, b)}")
    axes.set(xlim=(left - pad, right + pad), ylim=(bottom - pad, top + pad), xlabel="x", ylabel="y",
             aspect="equal", title=f"f(x, y) = {a / 2:g}·x² + {b / 2:g}·y²")
    return figure, axes


def contour_shape(a, b):
    """What the contour lines of (a*x^2 + b*y^2)/2 are: ellipses, longer along the gentler axis, or circles."""
    if a == b:
        return "circles"
    longer, shorter = ("x", "y") if a < b else ("y", "x")
    return f"ellipses {math.sqrt(max(a, b) / min(a, b)):.3g} times as long along {longer} as along {shorter}"


def valley_animation(runs, curvatures, steps, n_frames, fps, path):
    """The runs ({label: positions, one row per step}) moving on the valley's contours, each with its whole trail."""
    figure, axes = valley_frame(curvatures, runs)
    moving = []
    for (label, run), colour in zip(runs.items(), VALLEY_COLOURS):
        trail = axes.plot([], [], color=colour, lw=1.5, alpha=0.7)[0]
        point = axes.plot([], [], marker="o", color=colour, markersize=8, linestyle="none", label=label)[0]
        moving.append((run, trail, point))
    figure.legend(loc="outside lower center", ncol=2, fontsize=9, frameon=False)
    fit_figure_to_axes(figure, axes)
    recorder = FrameRecorder(figure, [artist for _, trail, point in moving for artist in (trail, point)])
    for step in pick_frames(steps, n_frames):
        for run, trail, point in moving:
            shown = run[: step + 1]  # a run stopped early (it flew off) keeps its last position
            trail.set_data(shown[:, 0].numpy(), shown[:, 1].numpy())
            point.set_data(shown[-1:, 0].numpy(), shown[-1:, 1].numpy())
        recorder.capture([(axes, f"step {step}")])
    recorder.save_gif(path, fps)
    return path


def fit_figure_to_axes(figure, axes, tallest=7.0, shortest_axes=1.0):
    """Resize a figure whose axes keep x and y at one scale, and its legend below them, so that the axes fill
    its width (growing it up to `tallest` inches) or its height (shrinking it, the axes `shortest_axes` inches
    tall at least): no blank band beside or above the axes."""
    figure.draw_without_rendering()  # lays the figure out: where the axes, their labels and the legend are
    dpi, (width, height) = figure.dpi, figure.get_size_inches()
    used, labelled = axes.get_window_extent(), axes.get_tightbbox()  # in pixels: the axes, and with their labels
    aspect = used.width / used.height  # the data's width over its height
    around_w, around_h = (labelled.width - used.width) / dpi, (labelled.height - used.height) / dpi
    legend = figure.legends[0].get_window_extent()
    below_h = legend.height / dpi + 0.1  # the legend, and a gap above it (inches)
    pads = figure.get_layout_engine().get()
    spare_w, spare_h = 2 * pads["w_pad"] + 0.05, 2 * pads["h_pad"] + 0.05
    axes_h = (width - around_w - spare_w) / aspect  # the axes' height when they fill the width
    axes_h = max(shortest_axes, min(axes_h, tallest - around_h - below_h - spare_h))
    new_width = max(min(aspect * axes_h, width - around_w - spare_w) + around_w, legend.width / dpi) + spare_w
    figure.set_size_inches(new_width, axes_h + around_h + below_h + spare_h)
    figure.draw_without_rendering()  # the layout at the new size takes one more pass to settle


def valley_distances(runs, rates, path):
    """Each run's distance to the minimum per step, on a log scale; rates ({label: rate}) drawn as d0·rate^k."""
    figure = new_figure(figsize=(8, 4.2))
    axes = figure.subplots()
    for (label, run), colour in zip(runs.items(), VALLEY_COLOURS):
        distances = torch.hypot(run[:, 0], run[:, 1]).numpy()  # sqrt(x^2 + y^2) without underflow
        steps = np.arange(len(distances))
        shown = distances > 0  # a distance of exactly 0 has no place on a log scale
        axes.semilogy(steps[shown], distances[shown], "o", color=colour, markersize=3, label=label)
        if label in rates:
            axes.semilogy(steps, distances[0] * rates[label] ** steps.astype(float), color="black", lw=1.2,
                          dashes=(4, 3), gapcolor=colour, zorder=3, label=f"formula: d₀·{rates[label]:.4f}ᵏ")
    axes.set(xlabel="step k", ylabel="distance to the minimum (log scale)",
             title="On a log scale, a rate is a slope")
    label_decades(axes.yaxis)
    axes.legend(fontsize=9)
    return _cli.save_figure(figure, path)


# ---------------------------------------------------------------------------
# Lesson 05
# ---------------------------------------------------------------------------

RACE_COLOURS = {"SGD": PLAIN_GD_COLOUR, "momentum": MOMENTUM_COLOUR, "Adam": "tab:purple"}  # as in lesson 04
FLOOR_COLOURS = ("tab:red", "tab:green", "tab:blue", "tab:brown", "tab:pink", "tab:olive")


def noise_pictures(noise_rows, n_train, sigma2, mean_squares, floor_rows, path):
    """Left: part 1's measured squared distances with their intervals, and the formula's line, log-log.
    Right: part 2's mean x² per step for each learning rate, with its floor dashed, on a log scale."""
    figure = new_figure(figsize=(10, 4.6))
    left, right = figure.subplots(1, 2)
    sizes = np.array([row["batch_size"] for row in noise_rows])
    measured = np.array([row["measured"] for row in noise_rows])
    spread = np.array([[m - row["interval"][0], row["interval"][1] - m] for m, row in zip(measured, noise_rows)]).T
    batch = np.geomspace(1, n_train - 1, 200)
    handles = [left.plot(batch, sigma2 / batch * (n_train - batch) / (n_train - 1), color="0.4",
                         label="formula: (σ²/B)·(N − B)/(N − 1)")[0],
               left.errorbar(sizes, measured, yerr=spread, fmt="o", color="black", markersize=4, capsize=3,
                             label="measured, with its 95% interval")]
    left.set(xscale="log", yscale="log", xlabel="batch size B", ylabel="mean squared distance from the full gradient",
             title="Part 1: a minibatch gradient's noise")
    label_decades(left.xaxis)
    label_decades(left.yaxis)
    steps = np.arange(len(mean_squares))
    for k, (row, colour) in enumerate(zip(floor_rows, FLOOR_COLOURS)):
        handles.append(right.plot(steps, mean_squares[:, k].numpy(), color=colour, lw=1.2,
                                  label=f"lr {row['lr']:g}")[0])
        right.axhline(row["floor"], color=colour, ls="--", lw=1)
    handles.append(Line2D([], [], color="0.4", ls="--", lw=1, label="its floor (formula)"))
    right.set(yscale="log", xlabel="step", ylabel="mean x² over the runs", title="Part 2: the noise floor on y = x²")
    label_decades(right.yaxis)
    figure.legend(handles=handles, loc="outside lower center", ncol=4, fontsize=8, frameon=False)
    return _cli.save_figure(figure, path)


def race_pictures(grids, widened, tuning, chosen, race, path):
    """Left: each optimizer's mean validation accuracy against the learning rate, with its 95% band and a star at
    the chosen rate. Right: each optimizer's test accuracy, one dot per seed, with its mean and 95% interval."""
    figure = new_figure(figsize=(10, 4.6))
    left, right = figure.subplots(1, 2)
    for name, rates in grids.items():
        colour = RACE_COLOURS[name]
        means = [tuning[(name, lr)][0] for lr in rates]
        low, high = (np.clip([tuning[(name, lr)][1][end] for lr in rates], 0, 100) for end in (0, 1))
        left.fill_between(rates, low, high, color=colour, alpha=0.25, lw=0)  # accuracies lie in 0..100%
        left.plot(rates, means, "o-", color=colour, markersize=3, label=name)
        added = [lr for lr in rates if lr in widened[name]]  # the rates the grid grew to: hollow
        left.plot(added, [tuning[(name, lr)][0] for lr in added], "o", color=colour, markerfacecolor="white",
                  markersize=6, zorder=3)
        left.plot(chosen[name], tuning[(name, chosen[name])][0], "*", color=colour, markersize=14,
                  markeredgecolor="black", markeredgewidth=0.6, zorder=4, clip_on=False)
    runs = len(next(iter(tuning.values()))[2])
    left.set(xscale="log", ylim=(0, 102), xlabel="learning rate", ylabel="validation accuracy (%)",
             title=f"Tuning: mean of {runs} seeds, 95% band; ★ chosen")
    label_decades(left.xaxis)
    for position, (name, result) in enumerate(race.items()):
        scores = np.array(result["test_accuracies"])
        offsets = np.linspace(-0.25, 0.25, len(scores))
        right.scatter(position + offsets, scores, s=10, color=RACE_COLOURS[name], lw=0, alpha=0.7)
        low, high = result["interval"]
        right.errorbar(position + 0.38, result["mean"], yerr=[[result["mean"] - low], [high - result["mean"]]],
                       fmt="_", color="black", markersize=12, capsize=4)  # the interval, cut to 0..100% already
    right.set_xticks(range(len(race)), [f"{name}\nlr {result['lr']:.3g}" for name, result in race.items()])
    right.set(xlim=(-0.5, len(race) - 0.3), ylabel="test accuracy (%)",
              title=f"Test: one dot per seed ({len(scores)}); mean, 95% interval")
    handles = [Line2D([], [], color=colour, marker="o", markersize=3, label=name) for name, colour in
               RACE_COLOURS.items()] + [Line2D([], [], ls="", marker="*", color="0.6", markeredgecolor="black",
                                               markersize=10, label="chosen rate")]
    figure.legend(handles=handles, loc="outside lower center", ncol=4, fontsize=8, frameon=False)
    return _cli.save_figure(figure, path)

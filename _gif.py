"""Machinery, not lesson: a learner need not read this file.

How the GIFs are made fast and small: the still parts of a figure are
rendered once, each frame redraws only what moves (blitting), captions are
written with Pillow, all frames share one small palette, and each frame keeps
only the pixels that changed. docs/reference.md explains the encoding.
Matplotlib and Pillow are imported here, not by the lessons, so a run that
draws nothing never pays for them.
"""

from pathlib import Path

import matplotlib
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import to_rgb
from matplotlib.lines import Line2D
from matplotlib.text import Text
from PIL import Image, ImageDraw, ImageFont

import _cli

UNCHANGED = 255  # the palette index that GIF viewers draw as transparent


class FrameRecorder:
    """Turns a figure into GIF frames, redrawing only the moving artists.

    The still parts (axes, curves, labels) are rendered once and saved as a
    background; each frame restores it, draws the `moving` artists over it in
    order and writes the captions with Pillow, which is far quicker than
    matplotlib text. Frames are kept as 1-byte palette images, on one palette
    made from the figure's own colours (see blended_palette).
    """

    def __init__(self, figure, moving):
        self.canvas = FigureCanvasAgg(figure)
        self.moving = moving
        for artist in moving:
            artist.set_animated(True)  # left out of the background render
        self.canvas.draw()
        self.background = self.canvas.copy_from_bbox(figure.bbox)
        self.font = ImageFont.truetype(matplotlib_font_path(), round(10 * figure.dpi / 72))
        self.palette = blended_palette(figure_colours(figure))
        self.frames = []

    def capture(self, captions=()):
        """Record one frame; `captions` is a list of (axes, text) written at the top centre of each axes."""
        self.canvas.restore_region(self.background)
        for artist in self.moving:
            artist.axes.draw_artist(artist)
        frame = Image.frombuffer("RGBA", self.canvas.get_width_height(), self.canvas.buffer_rgba()).convert("RGB")
        pen = ImageDraw.Draw(frame)
        for axes, text in captions:
            centre, top = (axes.bbox.x0 + axes.bbox.x1) / 2, frame.height - axes.bbox.y1
            pen.multiline_text((centre, top + 6), text, font=self.font, fill="black", anchor="ma", align="center")
        self.frames.append(frame.quantize(palette=self.palette, dither=Image.Dither.NONE))

    def save_gif(self, path, fps, hold_last_s=1.5):
        """Write the frames as a looping GIF; return how many it holds.

        A frame equal to the one before is merged into it, which then shows for
        longer: a run that stopped early holds its last picture. The last frame
        holds for `hold_last_s` seconds, then the GIF starts again.
        """
        frame_cs = round(100 / fps)  # a GIF counts time in centiseconds (--fps is at most 100)
        frames, durations = [], []
        for frame in self.frames:
            if frames and frame.tobytes() == frames[-1].tobytes():
                durations[-1] += frame_cs
            else:
                frames.append(frame)
                durations.append(frame_cs)
        durations[-1] += max(0, round(100 * hold_last_s) - frame_cs)
        encoded = [frames[0]] + [only_changes(previous, frame) for previous, frame in zip(frames, frames[1:])]

        def write(file):
            # disposal 1 keeps the previous frame on screen; transparent pixels let it show through
            encoded[0].save(file, format="GIF", save_all=True, append_images=encoded[1:],
                            duration=[10 * cs for cs in durations],
                            loop=0, disposal=1, transparency=UNCHANGED, optimize=False)

        _cli.atomic_write(path, write)
        return len(frames)


def figure_colours(figure):
    """Every line, marker and text colour in the figure, plus black."""
    colours = {(0.0, 0.0, 0.0)}
    for line in figure.findobj(Line2D):
        colours |= {to_rgb(line.get_color()), to_rgb(line.get_markerfacecolor())}
    colours |= {to_rgb(text.get_color()) for text in figure.findobj(Text)}
    return sorted(colours)


def blended_palette(colours, shades=8):
    """A palette image of white and each colour faded towards white in `shades` steps.

    Anti-aliased edges on a white background are exactly such blends, so a small
    palette built this way keeps every colour (a data-driven one drops the small
    coloured markers) and its few colours make the GIF compress well.
    """
    entries = [(255, 255, 255)]
    for colour in colours:
        for shade in range(1, shades + 1):
            weight = shade / shades
            entries.append(tuple(round(255 * (1 - weight * (1 - c))) for c in colour))
    entries = list(dict.fromkeys(entries))[:UNCHANGED]
    palette = Image.new("P", (1, 1))
    palette.putpalette([value for entry in entries for value in entry])
    return palette


def only_changes(previous, frame):
    """`frame` with every pixel equal to `previous` made transparent: long runs compress to almost nothing."""
    pixels = np.asarray(frame).copy()
    pixels[pixels == np.asarray(previous)] = UNCHANGED
    changed = Image.fromarray(pixels, mode="P")
    changed.putpalette(frame.getpalette())
    return changed


def matplotlib_font_path():
    """The DejaVu Sans file that ships with matplotlib, so captions match the axes' text."""
    return str(Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf")


def pick_frames(n_steps, n_frames):
    """`n_frames` strictly increasing step numbers from 0 to n_steps, spaced evenly in log(step+1).

    Gradient descent moves fast at first and slowly later: log spacing shows every
    early step and still reaches the end. Each frame but the last (always the last
    step) lies an odd number of steps after the one before, so a run that changes
    sign at every step changes side at every frame too: with even gaps it would
    look as calm as a converging one. (The log targets lie below the straight line
    from 0 to n_steps, so neither taking the next step up nor the odd gap ever
    runs past the end: the tests try every count of frames up to 120 steps.)
    """
    if not 2 <= n_frames <= n_steps + 1:
        raise ValueError(f"n_frames must be from 2 to {n_steps + 1}, got {n_frames}")
    frames = [0]
    for i in range(1, n_frames - 1):
        target = round((n_steps + 1) ** (i / (n_frames - 1))) - 1
        step = max(target, frames[-1] + 1)  # early targets crowd together: one step each
        if (step - frames[-1]) % 2 == 0:
            step += 1  # an odd gap, so that an oscillating run changes side at every frame
        frames.append(step)
    return frames + [n_steps]

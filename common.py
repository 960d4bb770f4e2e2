"""What the three lessons share: the article's data and network, the training
loop, evaluation, and the plumbing every script needs (flags, seeding, safe
file writing, GIF frames).

Matplotlib and Pillow are imported inside the functions that draw, so a run
with --no-plots never pays for them.
"""

import argparse
import json
import math
import os
import sys
import tempfile
from pathlib import Path

import torch
from torch import nn

REPO_DIR = Path(__file__).resolve().parent
DEFAULT_OUT_DIR = REPO_DIR / "outputs"
FLOAT32_MAX = torch.finfo(torch.float32).max

# One colour per optimizer, the same in every picture of the tutorial.
PLAIN_GD_COLOUR = "tab:blue"
MOMENTUM_COLOUR = "tab:orange"


# ---------------------------------------------------------------------------
# The article's data: two 4x4 patterns at many scales
# ---------------------------------------------------------------------------

LABEL_A, LABEL_B = 0, 1
TRAIN_SCALES = range(20)
ARTICLE_CHECK_SCALE = 999999999
# Scales never seen in training; 0 is left out because A and B are both all-zero there.
HELD_OUT_SCALES = (0.25, 0.5, 1.5, 20, 25, 100, 1000, ARTICLE_CHECK_SCALE)
NOISE_FRACTION = 0.1
NOISY_COPIES = 10
NOISE_SEED = 2024


def pattern_a(scale):
    """Columns 1 and 3 set to `scale`: shape (1, 1, 4, 4), float32."""
    image = torch.zeros(4, 4)
    image[:, [1, 3]] = scale
    return image.reshape(1, 1, 4, 4)


def pattern_b(scale):
    """Pattern A plus its top and bottom rows: shape (1, 1, 4, 4), float32."""
    image = pattern_a(scale).reshape(4, 4)
    image[[0, 3], :] = scale
    return image.reshape(1, 1, 4, 4)


def labelled_patterns(scales):
    """Pattern A at every scale, then pattern B at every scale, with their labels."""
    inputs = [pattern_a(s) for s in scales] + [pattern_b(s) for s in scales]
    labels = [LABEL_A] * len(scales) + [LABEL_B] * len(scales)
    return torch.cat(inputs), torch.tensor(labels)


def training_set():
    """The article's 40 samples in its order: A at scales 0..19, then B at 0..19."""
    return labelled_patterns(TRAIN_SCALES)


def held_out_set():
    """Both patterns at scales the network never trained on."""
    return labelled_patterns(HELD_OUT_SCALES)


def noisy_held_out_set():
    """The held-out set, each sample copied with Gaussian noise of 10% of its scale.

    Test_Conv has no bias, so rescaling an input only rescales its logits and the
    predicted class cannot change: clean held-out scales all test scale 1 again.
    Noise is what makes a held-out sample genuinely new.
    """
    inputs, labels = held_out_set()
    copies = inputs.repeat(NOISY_COPIES, 1, 1, 1)
    scales = copies.amax(dim=(1, 2, 3), keepdim=True)
    noise = torch.randn(copies.shape, generator=torch.Generator().manual_seed(NOISE_SEED))
    return copies + NOISE_FRACTION * scales * noise, labels.repeat(NOISY_COPIES)


def parabola_closed_form(x0, lr, n):
    """x after n gradient descent steps on y = x^2: each step multiplies x by (1 - 2*lr)."""
    return x0 * (1 - 2 * lr) ** n


# ---------------------------------------------------------------------------
# The network
# ---------------------------------------------------------------------------

class Test_Conv(nn.Module):
    """The article's network: four 4x4 filters, no bias, one logit per filter."""

    __test__ = False  # its name starts with "Test": tell pytest it is no test class

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(in_channels=1, out_channels=4, kernel_size=4, bias=False)

    def forward(self, x):
        return self.conv(x).flatten(start_dim=1)  # (N, 1, 4, 4) -> logits (N, 4)


@torch.no_grad()
def predict(model, inputs):
    """The class with the largest logit, one per input."""
    return model(inputs).argmax(dim=1)


def accuracy(model, inputs, labels):
    """Percentage of inputs whose predicted class is their label."""
    correct = (predict(model, inputs) == labels.to(inputs.device)).sum().item()
    return 100.0 * correct / len(labels)


def article_check(model, device):
    """The article's only test: is pattern A at scale 999999999 classified as A?"""
    return predict(model, pattern_a(ARTICLE_CHECK_SCALE).to(device)).item() == LABEL_A


def evaluate(model, device):
    """The article's check plus accuracy on the clean and noisy held-out sets."""
    held_out, held_out_labels = held_out_set()
    noisy, noisy_labels = noisy_held_out_set()
    return {
        "article_check": article_check(model, device),
        "accuracy": accuracy(model, held_out.to(device), held_out_labels),
        "noisy_accuracy": accuracy(model, noisy.to(device), noisy_labels),
    }


# ---------------------------------------------------------------------------
# Training, one sample at a time as in the article
# ---------------------------------------------------------------------------

class RunFailure(Exception):
    """A failure at run time, reported as one line and exit status 1."""


class TrainingDiverged(RunFailure):
    def __init__(self, epoch, step, loss, run=""):
        run = f" ({run})" if run else ""
        super().__init__(
            f"training diverged{run}: the loss became {loss} at epoch {epoch}, step {step}; "
            "try a smaller --lr"
        )


def sample_order(n_samples, epochs, order, seed):
    """Sample indices for each epoch: the article's order, or reshuffled every epoch."""
    if order == "sequential":
        return [list(range(n_samples))] * epochs
    shuffler = torch.Generator().manual_seed(seed)
    return [torch.randperm(n_samples, generator=shuffler).tolist() for _ in range(epochs)]


def train(model, optimizer, inputs, labels, epochs, order="sequential", seed=0, on_step=None):
    """Train on one sample per step; return every step's loss.

    `on_step(epoch, step, loss)` is called after each step (epochs and steps count
    from 1). A non-finite loss stops training at once with TrainingDiverged.
    """
    loss_fn = nn.CrossEntropyLoss()
    losses = []
    for epoch, indices in enumerate(sample_order(len(labels), epochs, order, seed), start=1):
        for step, i in enumerate(indices, start=1):
            # Forward pass
            optimizer.zero_grad()
            loss = loss_fn(model(inputs[i : i + 1]), labels[i : i + 1])
            loss_value = loss.item()
            if not math.isfinite(loss_value):
                raise TrainingDiverged(epoch, step, loss_value)
            # Backward pass and update
            loss.backward()
            optimizer.step()
            losses.append(loss_value)
            if on_step:
                on_step(epoch, step, loss_value)
    return losses


# ---------------------------------------------------------------------------
# Command-line flags shared by the scripts
# ---------------------------------------------------------------------------

class HelpWithDefaults(argparse.ArgumentDefaultsHelpFormatter):
    """Ends each flag's help with its default, unless the help already says it or it is an on/off switch."""

    def _get_help_string(self, action):
        if "default" in action.help or action.default is None or action.default is False:
            return action.help
        return super()._get_help_string(action)


def make_parser(description):
    return argparse.ArgumentParser(description=description, formatter_class=HelpWithDefaults)


def parse_number(text, kind=float):
    try:
        return kind(text)
    except ValueError:
        expected = "a whole number" if kind is int else "a number"
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None


def learning_rate(text):
    """A finite rate >= 0 that float32 can hold (torch's SGD overflows beyond that)."""
    value = parse_number(text)
    if not (0 <= value <= FLOAT32_MAX):
        raise argparse.ArgumentTypeError(
            f"must be a finite number from 0 to {FLOAT32_MAX:.4g} (float32's largest), got {text!r}"
        )
    return value


def positive_int(text):
    value = parse_number(text, int)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number >= 1, got {text!r}")
    return value


def seed_value(text):
    value = parse_number(text, int)
    if not 0 <= value < 2**63:
        raise argparse.ArgumentTypeError(f"must be a whole number from 0 to 2**63-1, got {text!r}")
    return value


def add_output_flags(parser, plots=True):
    parser.add_argument("--out-dir", type=Path, default=DEFAULT_OUT_DIR,
                        help="folder for the pictures (default: outputs/ beside the scripts)")
    if plots:
        parser.add_argument("--no-plots", action="store_true", help="draw no pictures (default: draw them)")
    parser.add_argument("--quiet", action="store_true",
                        help="print nothing but errors and the --json line (default: print progress)")
    parser.add_argument("--json", action="store_true",
                        help="print the results as one JSON object on the last line of stdout (default: off)")


def add_device_flag(parser):
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                        help="where to train: auto picks cuda when it is available, else cpu")


def pick_device(parser, name):
    """The torch.device for --device; a usage error when CUDA is asked for but absent."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        parser.error("argument --device: CUDA is not available on this machine; use cpu or auto")
    if name == "cuda":
        torch.backends.cudnn.deterministic = True  # same seed, same bits, on the GPU too
        torch.backends.cudnn.benchmark = False
    return torch.device(name)


def make_printer(quiet):
    """print(), or a function that prints nothing when --quiet is given."""
    return (lambda *args, **kwargs: None) if quiet else print


def print_json(results):
    print(json.dumps(results))


def run_cli(main):
    """Run main(); report run-time failures and Ctrl-C in one line, never a traceback."""
    prog = Path(sys.argv[0]).name
    try:
        main()
    except RunFailure as failure:
        print(f"{prog}: error: {failure}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        sys.exit(130)
    except BrokenPipeError:  # the reader went away (`| head`): stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(1)


# ---------------------------------------------------------------------------
# Writing files: whole or not at all
# ---------------------------------------------------------------------------

def prepare_out_dir(out_dir):
    """Create --out-dir if needed; a RunFailure if it cannot be written."""
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise RunFailure(f"cannot create --out-dir {out_dir}: {error.strerror}") from None
    if not os.access(out_dir, os.W_OK):
        raise RunFailure(f"cannot write to --out-dir {out_dir}: permission denied")
    return out_dir


def atomic_write(path, write):
    """Call write(file) on a temporary file beside `path`, then move it into place.

    Readers see the old file or the complete new one, never half of one, even if
    writing fails or is interrupted.
    """
    path = Path(path)
    try:
        handle, temp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as error:
        raise RunFailure(f"cannot write {path}: {error.strerror}") from None
    try:
        with os.fdopen(handle, "wb") as file:
            write(file)
        os.chmod(temp_name, 0o666 & ~current_umask())  # mkstemp makes files private (0600)
        os.replace(temp_name, path)
    except BaseException as error:
        os.unlink(temp_name)
        if isinstance(error, OSError):
            raise RunFailure(f"cannot write {path}: {error.strerror or error}") from None
        raise
    return path


def current_umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def save_figure(figure, path):
    """Save a matplotlib figure as PNG, atomically."""
    return atomic_write(path, lambda file: figure.savefig(file, format="png"))


# ---------------------------------------------------------------------------
# GIF frames: draw the still parts once, then only what moves (blitting)
# ---------------------------------------------------------------------------

def new_figure(**kwargs):
    """A matplotlib Figure that renders off screen; no window, no pyplot state to close."""
    from matplotlib.figure import Figure

    return Figure(**kwargs)


class FrameRecorder:
    """Turns a figure into GIF frames, redrawing only the moving artists.

    The still parts (axes, curves, labels) are rendered once and saved as a
    background; each frame restores it, draws the `moving` artists over it and
    writes the captions with Pillow, which is far quicker than matplotlib text.
    Frames are kept as 1-byte palette images, on one palette made from the
    figure's own colours (see blended_palette).
    """

    def __init__(self, figure, moving):
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from PIL import ImageFont

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
        from PIL import Image, ImageDraw

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
        """Write the frames as a looping GIF; the last frame holds for `hold_last_s` seconds."""
        frame_ms = round(1000 / fps)
        durations = [frame_ms] * (len(self.frames) - 1) + [max(frame_ms, round(1000 * hold_last_s))]
        frames = [self.frames[0]] + [
            only_changes(previous, frame) for previous, frame in zip(self.frames, self.frames[1:])
        ]

        def write(file):
            # disposal 1 keeps the previous frame on screen; transparent pixels let it show through
            frames[0].save(file, format="GIF", save_all=True, append_images=frames[1:], duration=durations,
                           loop=0, disposal=1, transparency=UNCHANGED, optimize=False)

        atomic_write(path, write)
        return len(frames)


UNCHANGED = 255  # the palette index that GIF viewers draw as transparent


def figure_colours(figure):
    """Every line, marker and text colour in the figure, plus black."""
    from matplotlib.colors import to_rgb
    from matplotlib.lines import Line2D
    from matplotlib.text import Text

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
    from PIL import Image

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
    import numpy as np
    from PIL import Image

    pixels = np.asarray(frame).copy()
    pixels[pixels == np.asarray(previous)] = UNCHANGED
    changed = Image.fromarray(pixels, mode="P")
    changed.putpalette(frame.getpalette())
    return changed


SUPERSCRIPT_DIGITS = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")


def label_decades(axis):
    """Label a log axis 10⁻³, 10⁰, ... in plain text: matplotlib's default
    labels go through its TeX-like mathtext, which costs a noticeable fraction
    of a second the first time."""
    from matplotlib.ticker import FuncFormatter, NullFormatter

    def decade(value, _position):
        return "10" + str(round(math.log10(value))).translate(SUPERSCRIPT_DIGITS) if value > 0 else ""

    axis.set_major_formatter(FuncFormatter(decade))
    axis.set_minor_formatter(NullFormatter())


def matplotlib_font_path():
    """The DejaVu Sans file that ships with matplotlib, so captions match the axes' text."""
    import matplotlib

    return str(Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf")


def pick_frames(n_steps, n_frames):
    """`n_frames` strictly increasing step numbers from 0 to n_steps, spaced evenly in log(step+1).

    Gradient descent moves fast at first and slowly later: log spacing shows every
    early step and still reaches the end.
    """
    if not 2 <= n_frames <= n_steps + 1:
        raise ValueError(f"n_frames must be from 2 to {n_steps + 1}, got {n_frames}")
    targets = [round((n_steps + 1) ** (i / (n_frames - 1))) - 1 for i in range(n_frames)]
    frames = []
    for i, target in enumerate(targets):
        earliest = frames[-1] + 1 if frames else 0
        latest = n_steps - (n_frames - 1 - i)  # leave room for the frames still to come
        frames.append(min(max(target, earliest), latest))
    return frames

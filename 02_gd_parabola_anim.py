# %% [markdown]
# # Stage 2: gradient descent on y = x², animated
#
# The article's stage first: x starts at 1.0 and takes 800 steps with a learning rate of 0.01,
# each one against the slope dy/dx, and the run becomes a GIF. The slope comes from
# autograd (PyTorch's automatic differentiation: it records how y is computed from x,
# and `backward()` works the slope out from that record). The closed form
# x_n = x0 * (1 - 2*lr)^n checks the run. Then, beyond the article, several
# learning rates side by side (by default four: slow, fast, oscillating, diverging).
#
# Run it: `python 02_gd_parabola_anim.py` (it writes outputs/02_gd_parabola.gif
# and outputs/02_learning_rates.gif).

# %% tags=["active-ipynb"]
# try:  # notebook only: the lesson's files must lie beside this notebook
#     import _notebook
# except ModuleNotFoundError:
#     raise FileNotFoundError("Put this notebook beside the lesson files: upload or clone the whole folder.") from None
# _notebook.show_versions()

# %% [markdown]
# ## Settings
#
# The article's values. In a notebook, change them here and run all the cells again.
# In a terminal, flags change them: `python 02_gd_parabola_anim.py --help` lists them.

# %%
X0 = 1.0  # where x starts
LR = 0.01  # the learning rate: each step moves x by lr times the slope
STEPS = 800  # gradient descent steps
FRAMES = 120  # each GIF shows at most this many positions: every early step, fewer later ones
FPS = 20.0  # GIF frames per second
COMPARE = (0.01, 0.1, 0.9, 1.05)  # beyond the article: slow, fast, oscillating, diverging; () skips it
OUT_DIR = "outputs"  # the GIFs go to this folder, beside the lessons
PLOTS = True  # False: draw no GIFs (the lesson prints the same, but for its "wrote" lines)

import _flags  # machinery, skip it: flags typed in a terminal replace the values above; all are checked

_flags.apply("02_gd_parabola_anim", globals())

# %% [markdown]
# ## The article's run
#
# The function to minimise: y = x², lowest at x = 0.

# %%
import math
import textwrap

import numpy as np
import torch

import _cli
import common


def f(x):
    """The function to minimise: y = x^2, lowest at x = 0."""
    return x**2


# %% [markdown]
# Each step computes y = x², calls `backward()` to get the slope dy/dx into
# `x.grad`, moves x against it under `torch.no_grad()`, and clears the slope.
# The run records x, f(x) and the slope at every position as it goes: the
# table and the animation read them from this history. A run whose x grows
# past a bound stops there, before float32 overflows to infinity.

# %%
ESCAPE_FACTOR = 1000  # a run has diverged once |x| would pass 1000 * max(1, |x0|), x0 in float32


def descend(x0, lr, steps):
    """Gradient descent on f from x0: x, f(x) and the slope at the start and after each step."""
    x = torch.tensor(x0, dtype=torch.float32, requires_grad=True)  # float32, even from a whole number
    bound = ESCAPE_FACTOR * max(1.0, abs(x.item()))  # from the start as float32 holds it, as stop_note says
    history = {"x": [], "f": [], "slope": []}
    for step in range(steps + 1):
        y = f(x)  # forward: autograd records how y is computed from x
        y.backward()  # backward: the slope dy/dx = 2x lands in x.grad
        for name, value in (("x", x), ("f", y), ("slope", x.grad)):
            history[name].append(value.item())
        if step == steps:  # the last position: its slope is for the table and the tangent
            break
        with torch.no_grad():  # the step is not part of f: autograd must not record it
            x -= lr * x.grad  # one step downhill, against the slope
        x.grad = None  # clear the slope, or the next backward() would add to it
        if not abs(x.item()) <= bound:  # inf and NaN fail this too
            break  # diverging: stop before float32 overflows, with fewer than steps + 1 positions
    return history


# %% [markdown]
# The slope is always 2x, so the steps shrink as x does. Once |x| is below
# about 2.6e-23, f(x) = x² reads 0 although x does not: x² is then no more
# than half of float32's smallest number above 0, 1.4e-45, and float32 rounds
# it to 0 (it *underflows*). The table below says so when that happens.

# %%
def underflow_note(history):
    """Where f(x) = x^2 first reads 0 while x does not: float32 rounds an x^2 of 2^-150 or less to 0."""
    step = next((n for n, (x, y) in enumerate(zip(history["x"], history["f"])) if y == 0 and x != 0), None)
    if step is None:
        return ""
    x = history["x"][step]
    return (f"f(x) first reads 0 at step {step}, where x = {x:.3g} is not 0: x^2 = {x * x:.2g} is no more than half "
            "of float32's smallest number, 1.4e-45, so float32 rounds it to 0")


# %% [markdown]
# The article's run, and a table of x, f(x) and the slope: every step of a
# short run, about ten steps of a long one. Its first line gives the factor
# 1 - 2*lr that each step multiplies x by (the closed form's section says
# why). x shows 6 significant digits, or all 9 that float32 needs where 6
# would show it as far from 0 as x0 while it is not: a tiny lr moves x by
# less than 6 digits show.

# %%
SHOW_EVERY_STEP_UP_TO = 20  # a longer run shows about ten of its steps


def x_text(x, x0):
    """x to 6 significant digits, or to 9 where 6 would read as far from 0 as x0 and not as x itself."""
    short = f"{x:.6g}"
    same_size = f"{abs(x):.6g}" == f"{abs(x0):.6g}"
    return f"{x:.9g}" if same_size and float(np.float32(short)) != x else short


def show_descent(history, lr):
    """Print x, f(x) and the slope at every step of a short run, at about ten steps of a long one."""
    xs = history["x"]
    steps_done = len(xs) - 1
    print(f"Gradient descent on f(x) = x^2 from x0 = {x_text(xs[0], xs[0])}, lr = {lr:g}; "
          f"each step multiplies x by 1 - 2*lr = {1 - 2 * lr:.9g}")
    print(f"  {'step':>6}  {'x':>13}  {'f(x)':>13}  {'slope':>13}")
    every = 1 if steps_done <= SHOW_EVERY_STEP_UP_TO else steps_done // 8
    for step in sorted({*range(0, steps_done + 1, every), steps_done}):
        print(f"  {step:>6}  {x_text(xs[step], xs[0]):>13}  {history['f'][step]:>13.6g}  "
              f"{history['slope'][step]:>13.6g}")
    if underflow_note(history):
        print(f"  {underflow_note(history)}")


history = descend(X0, LR, STEPS)
show_descent(history, LR)

# %% [markdown]
# What did the run do? Its trajectory alone tells, in one of five verdicts.
# It *converges* if x ends closer to 0 than it started, and *oscillates and
# converges* if x also changed sign on the way. It *oscillates forever* if x
# moved but |x| ends just where it started (lr 1 sends x to -x and back). It
# *stays put* if x never moved (lr 0, x0 = 0, or steps too small for float32
# to take). It *diverges* if x ends farther out, or the run had to stop early.

# %%
def behaviour(xs, steps):
    """Name what a run of `steps` steps did, from its trajectory alone."""
    if len(xs) <= steps or abs(xs[-1]) > abs(xs[0]):
        return "diverges"
    if all(x == xs[0] for x in xs):
        return "stays put"
    changed_sign = any(a * b < 0 for a, b in zip(xs, xs[1:]))
    if abs(xs[-1]) < abs(xs[0]):
        return "oscillates and converges" if changed_sign else "converges"
    return "oscillates forever"


def stop_note(xs, steps):
    """How a run ended early, in the same words on stdout and in the GIF; '' if it did not."""
    if len(xs) > steps:
        return ""
    return f"stopped: step {len(xs)} would take |x| past {ESCAPE_FACTOR * max(1.0, abs(xs[0])):g}"


def with_note(text, note):
    return f"{text} ({note})" if note else text


print(with_note(f"Behaviour: {behaviour(history['x'], STEPS)}", stop_note(history["x"], STEPS)))

# %% [markdown]
# ## The closed form, and float32's limits
#
# The slope of x² is 2x, so one step is x - lr * 2x = (1 - 2*lr) * x: every
# step multiplies x by the same factor, and n steps by that factor to the n.
# That closed form, x0 * (1 - 2*lr)^n, checks the run: float32 keeps about 7
# significant digits, and rounds once or twice a step.
#
# Those 7 digits hold lr too: the run multiplies by lr as float32 holds it
# (0.01 is 0.0099999998 there). Mostly, that moves only the last digits of x.
# Twice it does more:
#
# - An lr within about 1.5e-8 of 0.5 is held as exactly 0.5, and one within
#   about 3e-8 of 1 as exactly 1: x then lands on 0 at the first step, or
#   flips to exactly -x at every step.
# - A step can be too small to take. Next to x, float32's numbers lie about
#   x/10⁷ apart; a step lr*2x of at most half that gap rounds back to x, and
#   x stalls. With an lr below about 1.5e-8, that happens at every x down to
#   1.2e-38.
#
# Float32 has a floor, too. Below about 1.2e-38 its numbers are *subnormal*:
# evenly spaced, 1.4e-45 apart, down to the smallest above 0, 1.4e-45. Down
# there, the step lr * 2x is rounded to a whole number of 1.4e-45 before it is
# taken, and that rounding decides how the run ends. A step that rounds to 0
# leaves x where it is: x stalls (lr 0.1 at x = 2.8e-45: the step is 0.4 of
# 1.4e-45). A step that rounds to twice x sends x to -x and back: |x| stalls
# (lr 0.9). A step that rounds to all of x lands on 0 (lr 0.6 at x = 1.4e-45:
# the step is 1.2 of 1.4e-45, which rounds to 1.4e-45). From 1.4e-45 itself the
# step is 2*lr of 1.4e-45: lr between 0.25 and 0.75 reaches 0; below 0.25, or
# from 0.75 to 1.25, |x| stalls; above 1.25 it grows. At exactly 0.25, 0.75 or
# 1.25 the step is a tie, which rounds to the even neighbour (0, or twice x),
# so x stalls there too. Each run's line says when one of these decided how
# it ended.

# %%
FLOAT32_TINY = torch.finfo(torch.float32).tiny  # below it, float32's numbers are subnormal
SMALLEST = 2.0**-149  # float32's smallest number above 0, about 1.4e-45


def as_float32(value):
    return torch.tensor(value, dtype=torch.float32).item()


def step_rounding(x, lr32):
    """What float32 makes of the step lr * 2x at a subnormal x, in steps of the smallest number."""
    exact = 2 * lr32 * abs(x) / SMALLEST  # float64 holds lr32 * 2x exactly
    rounded = (torch.tensor(lr32) * torch.tensor(2 * abs(x))).item() / SMALLEST  # 2x is exact: the product rounds
    tie = ", a tie, which goes to the even neighbour," if exact % 1 == 0.5 else ""
    exact_text = f"{exact:.3g}"
    if (float(exact_text) % 1 == 0.5) != bool(tie):  # 0.49999999 must not read as a tie
        exact_text = f"{exact:.9g}"
    shown = "0, so x stays" if rounded == 0 else f"{rounded:g} x 1.4e-45"
    if rounded == 2 * abs(x) / SMALLEST:
        shown += ", twice |x|: x goes to -x"
    return f"the step lr*2x = {exact_text} x 1.4e-45 rounds{tie} to {shown}"


# %% [markdown]
# Each run's note says what float32 did at the end of the run, where the
# closed form says otherwise: x landed on exactly 0, lr as float32 holds it
# changed the factor's kind, or |x| stalled for good, and which rounding
# stalled it. Where float32 did not decide how a run ended, there is no note.

# %%
def stall_note(xs, lr32):
    """How float32 stalled |x| for good, where the closed form moves it on; '' if it did not."""
    x = abs(xs[-1])
    if len(xs) < 2 or abs(xs[-2]) != x or x == 0 or lr32 in (0, 1):  # lr 0 and 1: the closed form stays too
        return ""
    since = next((n for n in range(len(xs) - 1, 0, -1) if abs(xs[n - 1]) != x), 0)
    if x < FLOAT32_TINY:
        return (f"|x| stalled at {x:.2g} from step {since}: among float32's subnormal numbers, "
                f"1.4e-45 apart, {step_rounding(x, lr32)}")
    gap = x - np.nextafter(np.float32(x), np.float32(0)).item()  # to the next float32 number toward 0
    return (f"x stalled at {xs[-1]:.6g} from step {since}: the step lr*2x = {lr32 * 2 * x:.3g} is at most half "
            f"the gap between x and the next float32 number toward 0, {gap:.3g}, so x - lr*2x rounds back to x")


def float32_note(xs, lr):
    """Where float32, not the closed form, decided how a run ended: how; '' where it did not."""
    lr32 = as_float32(lr)  # the lr the run multiplies by
    if xs[0] == 0:
        return ""
    if xs[-1] == 0 and lr != 0.5:  # the closed form is not 0
        n = xs.index(0.0)
        if lr32 == 0.5:
            return f"reached exactly 0 at step 1: float32 holds lr = {lr!r} as 0.5, and 1 - 2*lr = 0"
        return (f"reached exactly 0 at step {n}, while the closed form is not 0: there "
                f"{step_rounding(xs[n - 1], lr32)}, all of x")  # the step took x to 0
    if lr32 == 1 != lr:
        return f"float32 holds lr = {lr!r} as 1, so every step takes x to exactly -x"
    return stall_note(xs, lr32)


# %% [markdown]
# The closed form needs care too. Where it is smaller than float64's own
# smallest number, about 4.9e-324, float64 rounds it to 0 as well; where
# (1 - 2*lr)^n is past float64's largest number, about 1.8e308, float64
# overflows to infinity. It is then worked out with logarithms.

# %%
def closed_form_text(x0, lr, n):
    """x0 * (1 - 2*lr)^n as text, worked out with logarithms where float64 rounds it to 0 or overflows."""
    value = common.parabola_closed_form(x0, lr, n)
    if math.isfinite(value) and (value != 0 or x0 == 0 or lr == 0.5):
        return f"{value:.9g}"
    log10 = math.log10(abs(x0)) + n * math.log10(abs(1 - 2 * lr))
    sign = "-" if (x0 < 0) != (1 - 2 * lr < 0 and n % 2 == 1) else ""
    why = "below float64's smallest number" if value == 0 else "float64 overflows on the way"
    return f"{sign}{10 ** (log10 % 1):.2f}e{math.floor(log10)} ({why}: by logarithms)"


# %% [markdown]
# The check compares the run with the closed form and says what the
# difference means: float32's note where float32 decided how the run ended,
# and otherwise how far apart the two are.

# %%
def check_against_closed_form(xs, lr):
    """Compare the float32 run with the exact x0 * (1 - 2*lr)^n; print what the difference means."""
    measured, steps_done = xs[-1], len(xs) - 1
    expected = common.parabola_closed_form(xs[0], lr, steps_done)
    print(f"Closed form after {steps_done} steps: x0 * (1 - 2*lr)^n = {closed_form_text(xs[0], lr, steps_done)}; "
          f"measured {measured:.9g}")
    if float32_note(xs, lr):
        print(f"  {float32_note(xs, lr)}")
    elif measured == expected:
        print("  exactly equal: no rounding error at all")
    elif expected != 0:
        held = f"holds lr as {as_float32(lr):.9g}, and " if as_float32(lr) != lr else ""
        subnormal = f"; below {FLOAT32_TINY:.3g} float32 keeps fewer digits" if abs(expected) < FLOAT32_TINY else ""
        print(f"  relative difference {abs(measured - expected) / abs(expected):.2e} "
              f"(float32 {held}rounds once or twice a step{subnormal})")
    else:  # the exact value is 0, so the whole of x is the error
        print(f"  absolute difference {abs(measured):.2e}")
    return expected if math.isfinite(expected) else None  # JSON has no infinity


expected = check_against_closed_form(history["x"], LR)

# %% [markdown]
# ## The animation: the still parts once, the moving parts frame by frame
#
# A frame has still parts (the parabola and its minimum) and moving parts (the
# point, its trail, and the tangent, whose slope autograd found). `draw_panel`
# draws the still parts and returns the moving ones, still empty. The layout,
# the colours, a small log plot of |x| and an arrow at the panel's edge while
# x is off the panel are decorations, in `_figures.py`.

# %%
import _figures  # decorations: the layout, the colours, the |x| inset, the off-panel arrow
import _gif  # the GIF encoding: fast and small

TRAIL = 6  # the point leaves a trail through the positions of the last 6 frames
COLOURS = _figures.DESCENT_COLOURS  # the same colours as the other lessons' pictures


def draw_panel(axes, panel):
    """Draw one panel's parabola and minimum; return its moving parts, with nothing to show yet."""
    reach = panel["reach"]
    grid = np.linspace(-reach, reach, 401)
    axes.plot(grid, grid**2, color=COLOURS["curve"], lw=1.5)
    axes.plot([0], [0], marker="*", color=COLOURS["minimum"], markersize=10, linestyle="none")
    axes.set(xlim=(-1.05 * reach, 1.05 * reach), ylim=(-0.06 * reach**2, 1.3 * reach**2), xlabel="x")
    axes.set_title(panel["title"], fontsize=10)
    parts = {"trail": axes.plot([], [], color=COLOURS["point"], alpha=0.35, marker="o", markersize=4, lw=1)[0],
             "tangent": axes.plot([], [], color=COLOURS["tangent"], linestyle="--", lw=1)[0],
             "point": axes.plot([], [], color=COLOURS["point"], marker="o", markersize=9, linestyle="none")[0]}
    return parts | _figures.descent_decorations(axes, panel["history"]["x"], reach, panel["single"])


# %% [markdown]
# The update function moves one panel's parts to a step and returns the
# panel's caption: the step, x and f(x), and under a panel alone the slope
# too. The article hands such a function to matplotlib's
# `FuncAnimation(figure, update, frames)`, which calls it once per frame.

# %%
def caption(panel, step):
    """A panel's caption at `step`: on one line under a single panel, wrapped under narrow ones."""
    history = panel["history"]
    x, y, slope = history["x"][step], history["f"][step], history["slope"][step]
    if panel["single"]:
        text = f"step {step}:  x = {x:.3g}   f(x) = {y:.3g}   slope = {slope:.3g}"
    else:
        text = f"step {step}\nx = {x:.3g}, f(x) = {y:.3g}"
    if y == 0 and x != 0:  # x² underflows: the table's note says why
        text += f"\n(x² = {x * x:.2g} rounds to 0)"
    if panel["stop_note"] and step == len(history["x"]) - 1:
        text += "\n" + (panel["stop_note"] if panel["single"] else textwrap.fill(panel["stop_note"], 30))
    return text


def move_to_step(parts, panel, shown_steps):
    """Move one panel's parts to the last of `shown_steps`; return its caption."""
    history = panel["history"]
    last = len(history["x"]) - 1
    step = min(shown_steps[-1], last)  # a run that stopped early stays at its last step
    x, y, slope = history["x"][step], history["f"][step], history["slope"][step]
    trail = [min(s, last) for s in shown_steps[-TRAIL:]]
    parts["trail"].set_data([history["x"][s] for s in trail], [history["f"][s] for s in trail])
    half_width = 0.15 * panel["reach"]
    parts["tangent"].set_data([x - half_width, x + half_width], [y - slope * half_width, y + slope * half_width])
    parts["point"].set_data([x], [y])
    _figures.move_decorations(parts, step, x, panel["reach"])
    text = caption(panel, step)
    _figures.keep_below_caption(parts, text)  # a trail that leaves the panel's top must not cross the caption
    return text


# %% [markdown]
# `animate` draws one panel per run and records a frame at each chosen step.
# A GIF holds at most FRAMES frames: one per step at first, as far as FRAMES
# allows, where a converging point moves fast, then fewer and fewer
# (`_gif.pick_frames`); a run of fewer steps shows every position.
# `_gif.FrameRecorder` draws the still parts once and only the moving parts
# per frame, where `FuncAnimation.save` redraws the whole figure for every
# frame: `bench/stage2_speed.py` measures the recorder over 30 times faster,
# and its file smaller.

# %%
def panel(title, history, steps, single):
    """What one panel shows: the run, its note, and how far its x axis reaches."""
    diverges = behaviour(history["x"], steps) == "diverges"
    reach = (3 if diverges else 1) * max(1.0, abs(history["x"][0]))  # a diverging run gets a wider view
    return {"title": title, "history": history, "stop_note": stop_note(history["x"], steps), "reach": reach,
            "single": single}


def animate(panels, steps, most_frames, fps, path):
    """One panel per run, the same steps in all; write the GIF and return its frame count."""
    figure, all_axes = _figures.descent_figure(len(panels))
    all_parts = [draw_panel(axes, panel) for axes, panel in zip(all_axes, panels)]
    recorder = _gif.FrameRecorder(figure, [part for parts in all_parts for part in parts.values()])
    frame_steps = _gif.pick_frames(steps, min(most_frames, steps + 1))
    for i in range(len(frame_steps)):
        recorder.capture([(axes, move_to_step(parts, panel, frame_steps[: i + 1]))
                          for axes, parts, panel in zip(all_axes, all_parts, panels)])
    return recorder.save_gif(path, fps)


# %% [markdown]
# The article's run as a GIF. Its title says whether the run went all the way.

# %%
if PLOTS:
    steps_done = len(history["x"]) - 1
    ran = f"{STEPS} steps" if steps_done == STEPS else f"diverged, stopped after {steps_done} of {STEPS} steps"
    gif = _cli.prepare_out_dir(OUT_DIR) / "02_gd_parabola.gif"
    frames = animate([panel(f"Gradient descent on x², lr = {LR:g}, {ran}", history, STEPS, single=True)],
                     STEPS, FRAMES, FPS, gif)
    _cli.show_pictures([gif], [f" ({frames} frames)"])

# %% [markdown]
# **What to look at:** each step is proportional to the slope (the dashed
# tangent), which shrinks with x, so the steps shrink as the point comes down
# (the caption gives the step, x, f(x) and the slope).
# In the inset, |x| on a log scale follows a straight line: every step
# multiplies x by the same factor, 1 - 2*lr, until float32's limits take over
# (the lines above say where). A log scale has no place for 0: where x
# reaches exactly 0 (try `--lr 0.6`), the line stops, and a green stretch on
# the inset's bottom edge, labelled x = 0, carries on. The frames lie one step
# apart at first, as far as FRAMES allows, then further and further apart.
# In the default run (lr 0.01, 800 steps, at most 120 frames), the factor is
# 0.98, and the GIF shows 120 of the 801 positions: one frame per step up to
# step 77, so that you see the point slow down; after that each frame jumps
# over more and more steps, and the point seems to speed up again for a while
# (watch the caption's step number).

# %% [markdown]
# ## Beyond the article: what a learning rate does
#
# The factor 1 - 2*lr tells the whole story: between 0 and 1 the point creeps
# or hurries to the minimum; between -1 and 0 it jumps across the minimum at
# every step and lands closer; below -1 it lands farther out every time. Each
# run's line says how it ended where that was not the closed form's doing:
# stopped as it diverged, or where float32 decided (stalled, at exactly 0, or
# with lr as float32 holds it), as the closed form's section explains.

# %%
def compare_learning_rates(lrs, x0, steps):
    """Descend from x0 with each learning rate; print what each run did; return their histories."""
    runs = [descend(x0, lr, steps) for lr in lrs]
    start = as_float32(x0)  # the x0 the runs start from
    print(f"Learning rates compared on f(x) = x^2 from x0 = {x_text(start, start)}, {steps} steps:")
    for lr, run in zip(lrs, runs):
        xs = run["x"]
        summary = f"{behaviour(xs, steps):<26} x after {len(xs) - 1} steps = {x_text(xs[-1], xs[0])}"
        print(f"  lr = {lr:<8g} {with_note(summary, stop_note(xs, steps) or float32_note(xs, lr))}")
    return runs


if COMPARE:
    compared = compare_learning_rates(COMPARE, X0, STEPS)

# %% [markdown]
# The runs side by side, one panel each, all on the same steps.

# %%
if PLOTS and COMPARE:
    compare_gif = _cli.prepare_out_dir(OUT_DIR) / "02_learning_rates.gif"
    panels = [panel(f"lr = {lr:g}: {behaviour(run['x'], STEPS)}", run, STEPS, single=False)
              for lr, run in zip(COMPARE, compared)]
    compare_frames = animate(panels, STEPS, FRAMES, FPS, compare_gif)
    _cli.show_pictures([compare_gif], [f" ({compare_frames} frames)"])

# %% [markdown]
# **What to look at:** the factor 1 − 2·lr tells the whole story, panel by
# panel. An arrow at a panel's edge shows on which side x is while it is off
# the panel. A caption that reads f(x) = 0 while x is not 0 gives x² too,
# which float32 rounds to 0 (the table's note explains why). In the default
# run (x0 = 1, 800 steps, at most 120 frames, rates 0.01, 0.1, 0.9 and 1.05):
# at lr 0.01 (factor 0.98) the point creeps; at 0.1 (0.8) it arrives
# quickly. At 0.9 (−0.8) it jumps across the minimum at every step: in the
# first frames, one per step, it swings from side to side, and the caption's
# x changes sign at every frame but the last. At 1.05 (−1.1) each jump lands
# farther out: from step 13 the point is off the panel, and the arrow flips
# at every frame while the caption's x grows, until the run stops at step 72
# and the panel stands still. In the last frames, at 0.1 and 0.9, x is
# 2.8e-45 and x² rounds to 0.

# %% [markdown]
# In a terminal, `--json` prints the results as one JSON object on the last line.

# %%
_flags.finish("02_gd_parabola_anim", globals())

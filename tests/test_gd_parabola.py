"""02_gd_parabola_anim.py against the closed form x_n = x0 * (1 - 2*lr)^n, and its GIFs."""

import math
import re
import warnings

import pytest
import torch
from PIL import Image

from conftest import call_main, gif_timing, help_entries, help_text, last_json_line

FLOAT32_EPS = torch.finfo(torch.float32).eps


def closed_form(x0, lr, n):
    return x0 * (1 - 2 * lr) ** n


def expected_behaviour(lr, x0=1.0):
    """What x_n = x0 * r^n with r = 1 - 2*lr does as n grows, read off r alone."""
    r = 1 - 2 * lr
    if lr == 0 or x0 == 0:
        return "stays put"
    if abs(r) > 1:
        return "diverges"
    if r == -1:
        return "oscillates forever"
    return "converges" if r >= 0 else "oscillates and converges"


@pytest.mark.parametrize("lr, x0", [(0.25, 1.0), (0.5, 1.0), (1.0, 1.0), (0.0, 1.0), (0.25, -0.75), (0.75, 2.0)])
def test_descent_is_exact_where_float32_can_hold_every_step(parabola, lr, x0):
    xs = parabola.descend(x0, lr, 100)
    assert len(xs) == 101
    assert [xs[n] for n in (0, 1, 7, 100)] == [closed_form(x0, lr, n) for n in (0, 1, 7, 100)]


@pytest.mark.parametrize("lr", [0.01, 0.1, 0.3, 0.9])
def test_descent_follows_the_closed_form_within_float32_rounding(parabola, lr):
    steps = 100
    xs = parabola.descend(1.0, lr, steps)
    for n in (1, 10, steps):
        expected = closed_form(1.0, lr, n)
        assert abs(xs[n] - expected) <= 2 * n * FLOAT32_EPS * abs(expected)


def test_slopes_come_from_autograd_and_equal_2x(parabola):
    xs = parabola.descend(0.7, 0.05, 30)
    fs, slopes = parabola.f_and_slope(xs)
    assert slopes == [2 * x for x in xs]  # doubling is exact in float32
    assert fs == [torch.tensor(x * x, dtype=torch.float32).item() for x in xs]  # x * x in float64, rounded once


@pytest.mark.parametrize("lr, x0", [(0.01, 1.0), (0.4, 1.0), (0.9, 1.0), (1.0, 1.0), (1.05, 1.0),
                                    (3.0, 1.0), (0.0, 1.0), (0.3, 0.0)])
def test_behaviour_matches_the_closed_form(parabola, lr, x0):
    assert parabola.behaviour(parabola.descend(x0, lr, 800), 800) == expected_behaviour(lr, x0)


@pytest.mark.parametrize("lr", [1.05, 50.0, 3e38])
def test_divergence_stops_at_the_bound_without_inf_or_warnings(parabola, lr):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        xs = parabola.descend(1.0, lr, 800)
        fs, slopes = parabola.f_and_slope(xs)
    assert len(xs) < 801
    assert all(math.isfinite(v) for v in xs + fs + slopes)
    assert max(abs(x) for x in xs) <= parabola.ESCAPE_FACTOR


def first_step_past(x0, lr, bound):
    """The first n with |x0 * (1 - 2*lr)^n| > bound, from the closed form."""
    return next(n for n in range(1, 10_000) if abs(closed_form(x0, lr, n)) > bound)


@pytest.mark.parametrize("x0, lr, bound", [(1.0, 1.05, 1000), (1.0, 1.2, 1000), (1.0, 3e38, 1000),
                                           (-5.0, 1.5, 5000), (0.5, 2.0, 1000)])
def test_a_diverging_run_stops_just_before_the_step_that_leaves_the_bound(parabola, x0, lr, bound):
    xs = parabola.descend(x0, lr, 800)
    assert len(xs) == first_step_past(x0, lr, bound)  # x0 and every step before that one
    assert parabola.stop_note(xs, 800) == f"stopped: step {len(xs)} would take |x| past {bound}"
    assert parabola.behaviour(xs, 800) == "diverges"


def test_a_run_that_ends_exactly_on_its_last_step_is_not_stopped(parabola):
    xs = parabola.descend(1.0, 1.2, 20)  # |x| reaches 837 at step 20, still inside the bound
    assert len(xs) == 21 and parabola.stop_note(xs, 20) == ""
    assert parabola.behaviour(xs, 20) == "diverges"  # |x| grew, so it diverges all the same


def test_a_nan_stops_the_run_too(parabola):
    assert parabola.descend(1.0, float("nan"), 10) == [1.0]


@pytest.mark.parametrize("lr", [0.01, 0.3])
def test_the_printed_check_is_the_relative_difference(parabola, capsys, lr):
    xs = parabola.descend(1.0, lr, 50)
    expected = closed_form(1.0, lr, 50)
    assert parabola.check_against_closed_form(xs, lr) == expected
    out = capsys.readouterr().out
    assert out.splitlines() == [
        f"Closed form after 50 steps: x0 * (1 - 2*lr)^n = {expected:.9g}; measured {xs[-1]:.9g}",
        f"  relative difference {abs(xs[-1] - expected) / expected:.2e} (float32 rounds once or twice a step)"]


def test_the_printed_check_when_exact_or_zero(parabola, capsys):
    parabola.check_against_closed_form([1.0, 0.5, 0.25], 0.25)
    parabola.check_against_closed_form([1.0, 0.0, 0.0], 0.5)
    parabola.check_against_closed_form([2.0, 1e-30], 0.5)
    lines = capsys.readouterr().out.splitlines()
    assert lines[1] == "  exactly equal: no rounding error at all"
    assert lines[3] == "  exactly equal: no rounding error at all"
    assert lines[5] == "  absolute difference 1.00e-30"


def test_the_table_shows_x_f_and_the_slope_at_nine_steps_of_a_long_run(parabola, capsys):
    xs = parabola.descend(1.0, 0.25, 40)
    parabola.show_descent(xs, 0.25)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "Gradient descent on f(x) = x^2 from x0 = 1, lr = 0.25"
    rows = [line.split() for line in lines[2:]]
    assert [int(row[0]) for row in rows] == [0, 5, 10, 15, 20, 25, 30, 35, 40]
    for step, x, f, slope in rows:
        assert (float(x), float(f), float(slope)) == pytest.approx((0.5 ** int(step), 0.25 ** int(step),
                                                                    2 * 0.5 ** int(step)), rel=1e-5)


def test_subnormal_stall_is_explained_not_reported_as_a_failed_check(parabola, capsys):
    xs = parabola.descend(1.0, 0.1, 800)
    assert 0 < xs[-1] < 1e-44  # stalled at the smallest float32 values
    parabola.check_against_closed_form(xs, 0.1)
    out = capsys.readouterr().out
    assert "subnormal" in out and not re.search(r"relative difference \d", out)


@pytest.mark.parametrize("steps", [125, 126, 127, 149])
def test_halving_stays_exact_at_and_below_the_smallest_normal_float32(parabola, capsys, steps):
    """lr = 0.25 halves x: exact in float32 down to 2^-149, through 2^-126 where subnormals start."""
    xs = parabola.descend(1.0, 0.25, steps)
    assert xs[-1] == 2.0**-steps  # computed here independently: float32 holds every power of 2 down to 2^-149
    parabola.check_against_closed_form(xs, 0.25)
    out = capsys.readouterr().out
    assert "exactly equal" in out and "subnormal" not in out


# --- the script ---------------------------------------------------------------

def test_default_run_end_to_end(end_to_end):
    result, tmp_path = end_to_end["stage2"].result(), end_to_end["stage2"].out_dir
    assert result.returncode == 0 and result.stderr == ""
    report = last_json_line(result.stdout)
    assert report["steps"] == 800 and report["frames"] == 120
    assert report["x_expected"] == pytest.approx(0.98**800, rel=1e-12)
    assert report["x_final"] == pytest.approx(report["x_expected"], rel=800 * 2 * FLOAT32_EPS)
    assert report["gif"] == str(tmp_path / "02_gd_parabola.gif")
    durations, loop = gif_timing(report["gif"])
    assert len(durations) == 120 and loop == 0
    assert durations[:-1] == [50] * 119 and durations[-1] > 50  # the last frame holds
    assert "relative difference" in result.stdout
    assert result.stdout.splitlines()[-2] == f"wrote {tmp_path / '02_gd_parabola.gif'} (120 frames)"


def test_same_arguments_give_the_same_gif_bytes(parabola, capsys, tmp_path):
    args = ["--steps", "60", "--frames", "15", "--quiet", "--json"]
    call_main(parabola, args + ["--out-dir", tmp_path / "a"], capsys)
    call_main(parabola, args + ["--out-dir", tmp_path / "b"], capsys)
    assert (tmp_path / "a" / "02_gd_parabola.gif").read_bytes() == (tmp_path / "b" / "02_gd_parabola.gif").read_bytes()


def test_flags_reach_the_run(parabola, capsys, tmp_path):
    status, out, _ = call_main(parabola, ["--lr", "0.25", "--steps", "20", "--x0", "-2", "--frames", "5",
                                          "--fps", "10", "--out-dir", tmp_path, "--json"], capsys)
    report = last_json_line(out)
    assert status == 0 and report["x_final"] == -2 * 0.5**20 == report["x_expected"]
    assert report["frames"] == 5 and report["behaviour"] == "converges"
    assert gif_timing(report["gif"])[0] == [100, 100, 100, 100, 1500]  # 5 frames


def test_compare_draws_one_panel_per_rate_and_classifies_each(parabola, capsys, tmp_path):
    status, out, _ = call_main(parabola, ["--compare", "--steps", "200", "--frames", "12", "--out-dir", tmp_path,
                                          "--json"], capsys)
    report = last_json_line(out)
    assert status == 0 and report["gif"] == str(tmp_path / "02_learning_rates.gif")
    assert [run["lr"] for run in report["runs"]] == [0.01, 0.1, 0.9, 1.05]
    assert [run["behaviour"] for run in report["runs"]] == [expected_behaviour(lr) for lr in (0.01, 0.1, 0.9, 1.05)]
    assert [run["x_final"] for run in report["runs"]] == [parabola.descend(1.0, lr, 200)[-1]
                                                          for lr in (0.01, 0.1, 0.9, 1.05)]
    assert len(gif_timing(report["gif"])[0]) == report["frames"] == 12
    assert not (tmp_path / "02_gd_parabola.gif").exists()  # --compare writes the panel GIF only
    with Image.open(report["gif"]) as gif:
        single_width = 6.4 * 80
        assert gif.width > 1.5 * single_width


def test_compare_takes_a_custom_list(parabola, capsys, tmp_path):
    _, out, _ = call_main(parabola, ["--compare", "0,1", "--steps", "10", "--out-dir", tmp_path, "--json"], capsys)
    assert [run["behaviour"] for run in last_json_line(out)["runs"]] == ["stays put", "oscillates forever"]
    assert out.splitlines()[:3] == ["Learning rates compared on f(x) = x^2 from x0 = 1, 10 steps:",
                                    "  lr = 0        stays put                  x after 10 steps = 1",
                                    "  lr = 1        oscillates forever         x after 10 steps = 1"]


@pytest.mark.parametrize("xs, steps, expected", [
    ([1.0, 0.2, 0.5], 2, "converges"),  # judged by the last x against the first, not by the steps between
    ([1.0, 2.0, 0.5], 2, "converges"),
    ([1.0, 4.0, 2.0, 0.5], 3, "converges"),
    ([1.0, -0.5, 1.0], 2, "oscillates forever"),
    ([1.0, 0.5, -1.0], 2, "oscillates forever"),
    ([1.0, -0.5, 0.25], 2, "oscillates and converges"),
    ([1.0, 1.0, 1.0], 2, "stays put"),
    ([1.0], 1, "diverges"),  # stopped before its only step, though x is where it started
    ([1.0, 0.5], 2, "diverges"),  # stopped before its last step
])
def test_behaviour_reads_any_trajectory(parabola, xs, steps, expected):
    assert parabola.behaviour(xs, steps) == expected


def test_a_run_exactly_on_the_bound_goes_on(parabola):
    assert parabola.descend(1.0, 500.5, 1) == [1.0, -1000.0]  # 1 - 500.5 * 2 = -1000, exact in float32
    assert parabola.descend(1.0, 500.5, 2) == [1.0, -1000.0]  # the next step leaves: stopped after step 1


def test_a_run_stopped_just_before_its_last_step_says_so(parabola):
    xs = parabola.descend(1.0, 1.2, 21)
    assert len(xs) == 21 and parabola.stop_note(xs, 21) == "stopped: step 21 would take |x| past 1000"
    assert parabola.behaviour(parabola.descend(1.0, 1000.0, 1), 1) == "diverges"


@pytest.mark.parametrize("steps, shown", [(5, list(range(6))), (20, list(range(21))),
                                          (21, [0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 21])])
def test_runs_of_up_to_20_steps_show_every_step_in_the_table(parabola, capsys, steps, shown):
    parabola.show_descent(parabola.descend(1.0, 0.6, steps), 0.6)
    rows = [line.split() for line in capsys.readouterr().out.splitlines()[2:]]
    assert [int(row[0]) for row in rows] == shown
    if steps <= 20:  # every step shown, so x changes sign from each row to the next, as README promises
        assert all((float(a[1]) > 0) != (float(b[1]) > 0) for a, b in zip(rows, rows[1:]))


@pytest.mark.parametrize("argv, attribute, value", [
    (["--steps", "1"], "steps", 1), (["--steps", "100000"], "steps", 100000), (["--x0=-1e6"], "x0", -1e6),
    (["--x0", "1e6"], "x0", 1e6), (["--fps", "0.1"], "fps", 0.1), (["--fps", "100"], "fps", 100.0),
    (["--lr", "0"], "lr", 0.0), (["--frames", "2"], "frames", 2), (["--steps", "5"], "frames", 6),
    (["--steps", "119"], "frames", 120), (["--steps", "120"], "frames", 120),
    (["--compare", "0,1,2,3,4,5"], "compare", [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]),
    (["--compare"], "compare", [0.01, 0.1, 0.9, 1.05]), ([], "compare", None),
])
def test_every_limit_itself_is_accepted(parabola, argv, attribute, value):
    assert getattr(parabola.parse_args(argv), attribute) == value


def test_defaults_are_the_articles(parabola):
    args = parabola.parse_args([])
    assert (args.lr, args.steps, args.x0, args.frames, args.fps) == (0.01, 800, 1.0, 120, 20.0)


BAD_INPUTS = [
    (["--lr", "-1"], "--lr"), (["--lr", "nan"], "--lr"), (["--lr", "inf"], "--lr"),
    (["--x0", "inf"], "--x0"), (["--x0", "nan"], "--x0"), (["--x0", "one"], "--x0"),
    (["--steps", "0"], "--steps"), (["--frames", "1"], "--frames"),
    (["--steps", "10", "--frames", "12"], "--frames"), (["--fps", "0"], "--fps"), (["--fps", "-5"], "--fps"),
    (["--compare", ""], "--compare"), (["--compare", "0.1,,0.2"], "--compare"),
    (["--compare", "0.1,fast"], "--compare"), (["--compare", "0.1,-1"], "--compare"),
    (["--compare", "0.1,0.2,0.3,0.4,0.5,0.6,0.7"], "--compare"), (["--steps", "100001"], "--steps"),
    (["--x0", "2e6"], "--x0"), (["--fps", "1000"], "--fps"), (["--lr", "1e39"], "--lr"),
    (["--x0", "1000000.1"], "--x0"), (["--x0=-1000000.1"], "--x0"), (["--fps", "0.09"], "--fps"),
    (["--fps", "100.1"], "--fps"), (["--steps", "-1"], "--steps"), (["--frames", "100002"], "--frames"),
]


@pytest.mark.parametrize("argv, flag", BAD_INPUTS)
def test_bad_input_is_a_usage_error_naming_the_flag(parabola, capsys, argv, flag):
    status, _, err = call_main(parabola, argv, capsys)
    assert status == 2 and "Traceback" not in err
    assert flag in err.strip().splitlines()[-1]


def test_unwritable_out_dir_exits_1(parabola, capsys, tmp_path):
    (tmp_path / "file").write_text("")
    status, _, err = call_main(parabola, ["--steps", "5", "--out-dir", tmp_path / "file" / "gifs"], capsys)
    assert status == 1 and "--out-dir" in err and len(err.strip().splitlines()) == 1


def test_ctrl_c_while_writing_leaves_no_gif(parabola, capsys, tmp_path, monkeypatch):

    def interrupted_save(self, *args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(Image.Image, "save", interrupted_save)
    status, _, err = call_main(parabola, ["--steps", "20", "--out-dir", tmp_path], capsys)
    assert status == 130 and "interrupted" in err
    assert list(tmp_path.iterdir()) == []


def test_help_names_every_flag_with_its_default(parabola, capsys):
    text = help_text(parabola, capsys)
    flat = " ".join(text.split())
    assert flat.startswith("usage:")
    assert "Stage 2: plain gradient descent on y = x^2, with autograd for the slope, as a GIF." in flat
    entries = help_entries(text)
    for flag in ("--lr", "--steps", "--x0", "--frames", "--fps", "--compare", "--out-dir", "--quiet", "--json"):
        assert "(default: " in entries[flag], f"{flag} does not say its default"


def test_the_frame_count_printed_is_the_count_in_the_file(parabola, capsys, tmp_path):
    """A run that stops early repeats its last frame; the GIF holds it once, for longer, and the script says so."""
    status, out, _ = call_main(parabola, ["--lr", "1.2", "--steps", "100", "--out-dir", tmp_path, "--json"], capsys)
    report = last_json_line(out)
    durations, _ = gif_timing(report["gif"])
    assert status == 0 and report["frames"] == len(durations) < 101
    assert f"wrote {report['gif']} ({len(durations)} frames)" in out.splitlines()


def test_compare_says_which_runs_stalled_among_float32s_smallest_numbers(parabola, capsys):
    runs = parabola.compare_learning_rates([0.01, 0.1, 0.9, 1.05], 1.0, 800)
    lines = capsys.readouterr().out.splitlines()[1:]
    assert abs(runs[1][-1]) == abs(runs[2][-1]) == 2.0**-148  # 2.8026e-45: twice the smallest float32 above 0
    for lr, line in zip((0.1, 0.9), lines[1:3]):
        assert line.endswith(f"x after 800 steps = 2.8026e-45 (stalled: among float32's subnormal numbers |x| "
                             f"times 0.8 rounds back to |x|; the closed form says {(1 - 2 * lr) ** 800:.2g})")
    assert torch.tensor(2.0**-148) * 0.8 == torch.tensor(2.0**-148)  # as docs/glossary.md says: 2.8e-45 stays
    assert "stalled" not in lines[0] and lines[3].endswith("(stopped: step 73 would take |x| past 1000)")


@pytest.mark.parametrize("xs, lr, stalled", [
    ([1.0, 0.5, 0.25], 0.25, False),  # exact halving, far from the subnormals
    ([1e-45, 1e-45], 0.1, True),  # stuck below float32's smallest normal number while the closed form shrinks
    ([1e-45, 0.0], 0.25, False),  # reached 0: nothing stalled
    ([1e-39, 8e-40], 0.1, False),  # subnormal, but still shrinking
    ([1.0], 0.1, False),  # no step at all
    ([1e-45, 1e-45, 1e-45], 0.0, False),  # lr 0: x stays put, exactly where the closed form stays
    ([1.0, 0.5, 1e-45, 1e-45], 0.25, False),  # below its closed form (0.125): float32 did not hold it back
    ([1e-39, 8.1e-40], 0.1, False),  # above its closed form (8e-40), but still shrinking
    ([2.0**-126, 2.0**-126], 1e-8, False),  # stuck at the smallest normal number: not yet subnormal
])
def test_stall_note_by_hand(parabola, xs, lr, stalled):
    assert bool(parabola.stall_note(xs, lr)) is stalled

"""Every lesson, at settings drawn from the ranges its flags allow: it finishes or stops with one line,
prints nothing on stderr, and never prints NaN or infinity as a measurement. Each lesson's own test file
checks its verdicts at drawn settings too (the tests named test_settings_space_*)."""

from hypothesis import example, given

from settings_space import check_generic, lesson_flags, out_of_range_flag, run_quickly


def every_run_finishes_or_says_why(lesson, quick, *regressions):
    """A test that runs `lesson` at drawn settings; `quick` narrows the slow ones (see lesson_flags);
    `regressions` are the argvs that once failed, run first every time."""
    @given(lesson_flags(f"{lesson}.py", quick))
    def test(argv):
        check_generic(f"{lesson}.py", *run_quickly(f"{lesson}.py", argv))

    for argv in regressions:
        test = example(argv)(test)
    return test


def out_of_range_is_a_usage_error(lesson):
    @given(out_of_range_flag(f"{lesson}.py"))
    def test(drawn):
        option, argv = drawn
        status, _, err, _ = run_quickly(f"{lesson}.py", argv)
        assert status == 2, (argv, err)
        assert err.splitlines()[-1].startswith(f"{lesson}.py: error: argument {option}"), (argv, err)

    return test


# Each keeps one run under about half a second; every other setting is drawn from its whole range.
test_settings_space_01_every_run_finishes_or_says_why = every_run_finishes_or_says_why(
    "01_pattern_classifier", {"EPOCHS": (1, 3), "SWEEP": (0, 3)})
test_settings_space_02_every_run_finishes_or_says_why = every_run_finishes_or_says_why(
    "02_gd_parabola_anim", {"STEPS": (1, 300)},
    ["--lr=2.0", "--x0=0.0"],  # the closed form overflowed: (1 - 2*lr)^800 for a run that stays at 0
)
test_settings_space_03_every_run_finishes_or_says_why = every_run_finishes_or_says_why(
    "03_custom_optimizer", {"STEPS": (1, 300), "EPOCHS": (1, 2), "MINIMA_STEPS": (1, 300)})
test_settings_space_04_every_run_finishes_or_says_why = every_run_finishes_or_says_why(
    "04_adam_by_hand", {"EPOCHS": (1, 2), "STEPS": (3, 300)})
test_settings_space_05_every_run_finishes_or_says_why = every_run_finishes_or_says_why(
    "05_minibatch_race", {"STEPS": (1, 20), "DRAWS": (10, 30), "TUNE_SEEDS": (2, 3), "TEST_SEEDS": (2, 12),
                          "GRID_POINTS": (2, 5)})

test_settings_space_01_out_of_range_is_a_usage_error = out_of_range_is_a_usage_error("01_pattern_classifier")
test_settings_space_02_out_of_range_is_a_usage_error = out_of_range_is_a_usage_error("02_gd_parabola_anim")
test_settings_space_03_out_of_range_is_a_usage_error = out_of_range_is_a_usage_error("03_custom_optimizer")
test_settings_space_04_out_of_range_is_a_usage_error = out_of_range_is_a_usage_error("04_adam_by_hand")
test_settings_space_05_out_of_range_is_a_usage_error = out_of_range_is_a_usage_error("05_minibatch_race")

"""Machinery, not lesson: a learner need not read this file.

How a lesson's settings cell meets the command line. Each lesson starts with
its settings as plain constants (EPOCHS = 2, ...), then calls

    _flags.apply("01_pattern_classifier", globals())

which, in a terminal, lets flags replace those constants (`--help` lists them,
each with its default: the value in the settings cell), and in a notebook
leaves them as the learner set them. In both, each value is checked against
its range and turned into the type the lesson needs (a whole number typed
where a decimal is meant becomes a float). A lesson ends with

    _flags.finish("01_pattern_classifier", globals())

which, with --json, prints the results as one JSON object on the last line.

In a terminal `apply` also installs the handler that turns a run-time failure
into one line on stderr (exit status 1) and Ctrl-C into one line (exit 130),
and --quiet silences everything the lesson prints. docs/reference.md lists
the flags' conventions and the JSON keys.
"""

import argparse
import json
import math
import os
import sys
from pathlib import Path

import torch

import _cli

LESSONS = {}  # lesson name -> Lesson


class Lesson:
    def __init__(self, description, add_flags, report, check=None):
        self.description, self.add_flags, self.report, self.check = description, add_flags, report, check


class SettingError(ValueError):
    """A setting out of its range, in a notebook: one line that says what is allowed."""

    def _render_traceback_(self):
        """The lines IPython shows for this error (a notebook, VS Code): one, not a traceback through this file."""
        return [f"{type(self).__name__}: {self}"]


class State:
    """What the terminal asked for beyond the settings: --quiet and --json, and where stdout was."""

    json = False
    stdout = None


def lesson(name, description, report, check=None):
    """Register a lesson's flags: decorates add_flags(parser, settings)."""

    def register(add_flags):
        LESSONS[name] = Lesson(description, add_flags, report, check)
        return add_flags

    return register


def parser_for(name, settings):
    """The lesson's argparse parser; each flag's default is its value in the settings cell."""
    spec = LESSONS[name]
    parser = _cli.make_parser(spec.description)
    spec.add_flags(parser, settings)
    parser.add_argument("--out-dir", dest="OUT_DIR", type=Path,
                        help=f"folder for the pictures (default: {settings['OUT_DIR']}/ beside the lessons)")
    parser.add_argument("--quiet", action="store_true",
                        help="print nothing but errors and the --json line (default: print everything)")
    parser.add_argument("--json", action="store_true",
                        help="print the results as one JSON object on the last line of stdout (default: off)")
    return parser


def apply(name, settings):
    """Check the settings cell's values and, where there are flags, let them replace the values first.

    A terminal has flags; so has `%run LESSON.py --flag` in a notebook. A notebook's own cells have
    none: there the values are the settings cell's, checked, and a bad one raises SettingError.
    """
    parser = parser_for(name, settings)
    in_a_kernel = _cli.running_in_a_kernel()
    if not in_a_kernel:
        sys.excepthook = report_failure
    flags = _cli.command_line_flags()
    if flags or not in_a_kernel:
        args = vars(parser.parse_args(flags))
    else:  # the settings as they are; argparse would pass a text setting through its flag's type and exit
        args = {action.dest: action.default for action in parser._actions}

    def fail(message):
        if flags or not in_a_kernel:
            parser.error(message)
        raise SettingError(message)

    for action in parser._actions:
        if action.dest.isupper() and action.dest != "OUT_DIR":
            settings[action.dest] = checked(action, args[action.dest], fail)
    settings["OUT_DIR"] = args["OUT_DIR"] or _cli.REPO_DIR / settings["OUT_DIR"]
    if LESSONS[name].check:
        LESSONS[name].check(settings, fail)
    State.json, State.stdout = args["json"], sys.stdout
    if args["quiet"]:
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 -- finish() puts stdout back


def checked(action, value, fail):
    """A setting's value, converted and checked as its flag would be; `fail` on a bad one."""
    shown = f"{action.option_strings[0]} ({action.dest} = {value!r})"
    if isinstance(action, argparse._StoreConstAction):  # on/off switches: PLOTS = True or False
        if not isinstance(value, bool):
            fail(f"{shown}: must be True or False")
        return value
    try:
        if action.type is not None and value is not None:
            value = action.type(value)
    except argparse.ArgumentTypeError as error:
        fail(f"argument {shown}: {error}")
    if action.choices is not None and value not in action.choices:
        fail(f"argument {shown}: must be one of {', '.join(map(repr, action.choices))}")
    return value


def finish(name, settings):
    """With --json, print the lesson's results as one JSON line; make sure all output is out."""
    if State.stdout is not None and sys.stdout is not State.stdout:  # --quiet: stdout back as it was
        sys.stdout.close()
        sys.stdout = State.stdout
    if State.json:
        print(json.dumps(LESSONS[name].report(settings)))
    sys.stdout.flush()  # a reader that went away (`| head`) shows up here, where report_failure handles it


def report_failure(kind, error, traceback):
    """sys.excepthook in a terminal: run-time failures and Ctrl-C in one line, never a traceback."""
    prog = Path(sys.argv[0]).name
    if issubclass(kind, _cli.RunFailure):
        print(f"{prog}: error: {error}", file=sys.stderr)  # Python then exits with status 1
    elif issubclass(kind, KeyboardInterrupt):
        print(f"{prog}: interrupted", file=sys.stderr)
        flush_and_exit(130)
    elif issubclass(kind, BrokenPipeError):  # the reader went away (`| head`): stop quietly
        flush_and_exit(1)
    else:
        sys.__excepthook__(kind, error, traceback)


def flush_and_exit(status):
    """Deliver what was printed, then exit at once: no flush at exit can fail on a pipe that has gone."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(status)


# ---------------------------------------------------------------------------
# Each lesson's flags: the settings cell's names, in capitals, as their `dest`
# ---------------------------------------------------------------------------


def add_plots_flag(parser, settings):
    parser.add_argument("--no-plots", dest="PLOTS", action="store_false", default=settings["PLOTS"],
                        help="draw no pictures (default: draw them)")


def add_device_flag(parser, settings):
    parser.add_argument("--device", dest="DEVICE", choices=("auto", "cpu", "cuda"), default=settings["DEVICE"],
                        help="where to train: auto picks cuda when it is available, else cpu")


def resolve_device(settings, fail):
    """DEVICE becomes 'cpu' or 'cuda'; asking for CUDA where there is none fails."""
    if settings["DEVICE"] == "auto":
        settings["DEVICE"] = "cuda" if torch.cuda.is_available() else "cpu"
    if settings["DEVICE"] == "cuda" and not torch.cuda.is_available():
        fail("argument --device: CUDA is not available on this machine; use cpu or auto")
    if settings["DEVICE"] == "cuda":
        torch.backends.cudnn.deterministic = True  # same seed, same bits, on the GPU too
        torch.backends.cudnn.benchmark = False


# ---------------------------------------------------------------------------
# Lesson 01
# ---------------------------------------------------------------------------

MAX_SWEEP = 10_000


def report01(settings):
    """01's --json: the article's run, the sweep's summary (None when skipped), the pictures."""
    report = {"first_loss": settings["losses"][0], "final_loss": settings["losses"][-1], "losses": settings["losses"]}
    for name in ("mse_a_from_zero", "mse_same_pattern", "mse_different_patterns"):
        report[name], report[f"{name}_after"] = settings["outputs_before"][name], settings["outputs_after"][name]
    report["predicted_before"] = settings["outputs_before"]["predicted"]
    report["predicted_after"] = settings["outputs_after"]["predicted"]
    for name in ("train_accuracy", "test_accuracy", "article_check"):
        report[f"{name}_before"], report[f"{name}_after"] = settings["before"][name], settings["after"][name]
    report["test_classes_before"] = settings["test_classes_before"]
    sweep = settings["SWEEP"] > 0
    report["sweep"] = {order: {**settings["results"][order]["summary"], "check": settings["results"][order]["check"]}
                       for order in settings["ORDERS"]} if sweep else None
    pictures = ["01_loss.png", "01_filters.png"] + (["01_sweep.png"] if sweep else [])
    report["outputs"] = [str(settings["OUT_DIR"] / name) for name in pictures] if settings["PLOTS"] else []
    return report


def check01(settings, fail):
    resolve_device(settings, fail)


@lesson("01_pattern_classifier", "Stage 1: teach a tiny CNN to tell two 4x4 patterns apart with torch.optim.SGD, "
        "then train many seeds to see whether one good run was luck.", report=report01, check=check01)
def flags01(parser, settings):
    parser.add_argument("--epochs", dest="EPOCHS", type=_cli.epochs_value, default=settings["EPOCHS"],
                        help=f"passes over the 40 training samples, 1 to {_cli.MAX_EPOCHS}")
    parser.add_argument("--lr", dest="LR", type=_cli.learning_rate, default=settings["LR"], help="SGD's learning rate")
    parser.add_argument("--momentum", dest="MOMENTUM", type=_cli.momentum_value, default=settings["MOMENTUM"],
                        help="SGD's momentum, from 0 (none) up to but not including 1")
    parser.add_argument("--order", dest="ORDER", choices=("sequential", "shuffled"), default=settings["ORDER"],
                        help="sample order: the article's (A0..A19, B0..B19) or reshuffled each epoch with --seed")
    parser.add_argument("--seed", dest="SEED", type=_cli.seed_value, default=settings["SEED"],
                        help="seeds the initial weights and the shuffling, 0 to 2**63-1")
    parser.add_argument("--sweep", dest="SWEEP", type=_cli.in_range(0, MAX_SWEEP, int), metavar="N",
                        default=settings["SWEEP"],
                        help=f"beyond the article: train seeds 0..N-1 in each order and count the runs that "
                             f"learn their training set; 0 skips it, N up to {MAX_SWEEP}")
    add_device_flag(parser, settings)
    add_plots_flag(parser, settings)

# ---------------------------------------------------------------------------
# Lesson 02
# ---------------------------------------------------------------------------

MAX_STEPS_02 = 100_000
MAX_X0_02 = 1e6
DEFAULT_COMPARE_02 = "0.01,0.1,0.9,1.05"
_compare_list = _cli.comma_list(_cli.learning_rate, 6,
                                f"learning rates such as {DEFAULT_COMPARE_02} (or none: no comparison)")


def compare_rates(value):
    """--compare: 1 to 6 learning rates as a tuple; `none` (in a notebook also () or None) skips the comparison."""
    if value is None or (isinstance(value, str) and value.strip().lower() == "none"):
        return ()
    if isinstance(value, (tuple, list)) and not value:
        return ()
    return tuple(_compare_list(value))


compare_rates.item, compare_rates.least, compare_rates.most = _cli.learning_rate, 0, 6  # 0: none


def report02(settings):
    """The --json object: the article's run at the top level, the comparison under "compare" (null if skipped)."""
    xs, steps = settings["history"]["x"], settings["STEPS"]
    report = {"x_final": xs[-1], "x_expected": settings["expected"], "steps": steps, "steps_done": len(xs) - 1,
              "behaviour": settings["behaviour"](xs, steps), "frames": settings.get("frames"),
              "gif": settings.get("gif") and str(settings["gif"]), "compare": None}
    if settings["COMPARE"]:
        runs = [{"lr": lr, "x_final": run["x"][-1], "steps_done": len(run["x"]) - 1,
                 "behaviour": settings["behaviour"](run["x"], steps)}
                for lr, run in zip(settings["COMPARE"], settings["compared"])]
        report["compare"] = {"runs": runs, "frames": settings.get("compare_frames"),
                             "gif": settings.get("compare_gif") and str(settings["compare_gif"])}
    return report


@lesson("02_gd_parabola_anim",
        "Stage 2: plain gradient descent on y = x^2, with autograd for the slope, as a GIF; "
        "then several learning rates side by side.",
        report=report02)
def flags02(parser, settings):
    parser.add_argument("--lr", dest="LR", type=_cli.learning_rate, default=settings["LR"],
                        help="step size (learning rate)")
    parser.add_argument("--steps", dest="STEPS", type=_cli.in_range(1, MAX_STEPS_02, int), default=settings["STEPS"],
                        help=f"gradient descent steps, 1 to {MAX_STEPS_02}")
    parser.add_argument("--x0", dest="X0", type=_cli.in_range(-MAX_X0_02, MAX_X0_02), default=settings["X0"],
                        help=f"starting point, from {-MAX_X0_02:g} to {MAX_X0_02:g}")
    parser.add_argument("--frames", dest="FRAMES", type=_cli.in_range(2, MAX_STEPS_02 + 1, int),
                        default=settings["FRAMES"],
                        help=f"most frames in each GIF, from 2 to {MAX_STEPS_02 + 1}, spaced to show the fast start "
                             "and the slow end; a run of fewer steps shows every position")
    parser.add_argument("--fps", dest="FPS", type=_cli.in_range(0.1, 100), default=settings["FPS"],
                        help="GIF frames per second, 0.1 to 100")
    try:
        shown = ",".join(f"{lr:g}" for lr in compare_rates(settings["COMPARE"])) or "none"
    except argparse.ArgumentTypeError:
        shown = repr(settings["COMPARE"])  # refused, with one line, once the values are checked
    parser.add_argument("--compare", dest="COMPARE", type=compare_rates, nargs="?", const=DEFAULT_COMPARE_02,
                        default=settings["COMPARE"], metavar="LR[,LR...]",
                        help="beyond the article: one panel per learning rate in outputs/02_learning_rates.gif; "
                             f"1 to 6 rates, or none to skip it; with no list: {DEFAULT_COMPARE_02} "
                             f"(default: {shown})")
    add_plots_flag(parser, settings)


# ---------------------------------------------------------------------------
# Lesson 03
# ---------------------------------------------------------------------------

STEPS_03 = 10_000  # the most steps of parts 1 and 3
STARTS_RANGE_03 = 4.0  # part 3 draws and searches f on [-4, 4]
GIF_FRAMES_03 = 80  # FRAMES = None: this many, or one per position for a run of fewer steps


def report03(settings):
    """--json: part 1's last x and its closed form, part 2's accuracies and verdicts, part 3's runs, the pictures."""
    before, after = settings["before"], settings["after"]
    network = {"train_accuracy_before": before["train_accuracy"], "train_accuracy_after": after["train_accuracy"],
               "test_accuracy_before": before["test_accuracy"], "test_accuracy_after": after["test_accuracy"],
               **{key: settings[key] for key in ("identical_to_sgd", "max_abs_diff", "article_identical",
                                                 "article_max_abs_diff", "exact_product", "identical_to_stage1",
                                                 "stage1_max_abs_diff")}}
    keys = ("optimizer", "x0", "x_final", "f_final", "slope_final", "largest_last_step", "last_positions", "verdict",
            "is_global")
    valleys = {"floors": settings["floors"].tolist(), "curvatures": settings["floor_curvatures"].tolist(),
               "edges": {name: edge.tolist() for name, edge in settings["edges"].items()}}
    pictures = ("parabola_picture", "minima_picture") if settings["PLOTS"] else ()
    return {"parabola": {"x_final": settings["xs"][-1], "x_expected": settings["x_expected"],
                         "steps_done": settings["steps_done"]},
            "network": network,
            "valleys": valleys,
            "local_minima": [{key: run[key] for key in keys} for run in settings["runs"]],
            "outputs": [str(settings[name]) for name in pictures]}


def check03(settings, fail):
    """The GIF's frames fit part 3's run (None: 80, or fewer for a shorter run); the device exists."""
    positions = settings["MINIMA_STEPS"] + 1
    if settings["FRAMES"] is None:
        settings["FRAMES"] = min(GIF_FRAMES_03, positions)
    elif settings["FRAMES"] > positions:
        fail(f"argument --frames: must be from 2 to minima-steps+1 = {positions}, got {settings['FRAMES']}")
    resolve_device(settings, fail)


@lesson("03_custom_optimizer", "Stage 3: write your own optimizer, SimpleGD, and check it against torch.optim.SGD.",
        report=report03, check=check03)
def flags03(parser, settings):
    steps = _cli.in_range(1, STEPS_03, int)
    starts = _cli.comma_list(_cli.in_range(-STARTS_RANGE_03, STARTS_RANGE_03), 4,
                             f"numbers in [-{STARTS_RANGE_03:g}, {STARTS_RANGE_03:g}]")
    parser.add_argument("--lr", dest="LR", type=_cli.learning_rate, default=settings["LR"],
                        help="SimpleGD learning rate in parts 1 (parabola) and 2 (network); part 1's x shrinks for "
                             "lr between 0 and 1 (|1 - 2*lr| < 1) and grows past 1")
    parser.add_argument("--steps", dest="STEPS", type=steps, default=settings["STEPS"],
                        help=f"part 1: steps on y = x^2, 1 to {STEPS_03}")
    parser.add_argument("--seed", dest="SEED", type=_cli.seed_value, default=settings["SEED"],
                        help="part 2: seeds the initial weights, 0 to 2**63-1")
    parser.add_argument("--epochs", dest="EPOCHS", type=_cli.epochs_value, default=settings["EPOCHS"],
                        help=f"part 2: passes over the 40 training samples, 1 to {_cli.MAX_EPOCHS}")
    parser.add_argument("--minima-lr", dest="MINIMA_LR", type=_cli.learning_rate, default=settings["MINIMA_LR"],
                        help="part 3: learning rate of both optimizers on the bumpy function")
    parser.add_argument("--minima-steps", dest="MINIMA_STEPS", type=steps, default=settings["MINIMA_STEPS"],
                        help=f"part 3: steps per run, 1 to {STEPS_03}")
    parser.add_argument("--starts", dest="STARTS", type=starts, default=settings["STARTS"], metavar="X[,X...]",
                        help=f"part 3: 1 to 4 starting points, each in [-{STARTS_RANGE_03:g}, {STARTS_RANGE_03:g}]; "
                             "write a list that starts with a minus sign as --starts=-2,1 "
                             f"(default: {','.join(map(str, settings['STARTS']))})")
    parser.add_argument("--frames", dest="FRAMES", type=_cli.in_range(2, STEPS_03 + 1, int), default=settings["FRAMES"],
                        help=f"part 3: frames in the GIF, from 2 to minima-steps+1 "
                             f"(default: {GIF_FRAMES_03}, or minima-steps+1 if that is fewer)")
    add_device_flag(parser, settings)
    add_plots_flag(parser, settings)


# ---------------------------------------------------------------------------
# Lesson 04
# ---------------------------------------------------------------------------

MAX_STEPS_04 = 1000
MIN_STEPS_04 = 3  # the rates are measured over the last two thirds of the steps
CURVATURE_RANGE_04 = (0.01, 100.0)
START_RANGE_04 = 10.0
VALLEY_LR_RANGE_04 = (1e-4, 10.0)
GIF_FRAMES_04 = 60


def pair(item, what):
    """An argparse type: exactly two comma-separated values (in a notebook, a pair), each parsed by `item`."""
    parse_list = _cli.comma_list(item, 2, what)

    def parse(value):
        values = parse_list(value)
        if len(values) != 2:
            raise argparse.ArgumentTypeError(f"must be 2 comma-separated {what}, got {value!r}")
        return tuple(values)

    parse.item, parse.least, parse.most = item, 2, 2  # for the tests that explore the settings
    return parse


def valley_run_report(settings, name, lr, run, rate):
    distances, window = settings["distances"](run), settings["rate_window"](run)
    return {"optimizer": name, "lr": lr, "steps_done": len(run) - 1, "distance_start": distances[0].item(),
            "distance_final": distances[-1].item(), "rate_formula": rate,
            "rate_measured": settings["measured_rate"](run, *window) if window else None,
            "rate_window": list(window) if window else None}


def report04(settings):
    """04's --json: the valley's runs and rates, the edges, the network twins, the textbook forms, the pictures."""
    s = settings
    gd = valley_run_report(s, "gradient descent", s["gd_lr"], s["gd_run"], s["gd_rate"](s["gd_lr"]))
    momentum = valley_run_report(s, "momentum", s["momentum_lr"], s["momentum_run"],
                                 s["momentum_rate"](s["momentum_lr"], s["momentum"]))
    momentum["momentum"] = s["momentum"]
    best_pair = s["MOMENTUM_LR"] is None and s["MOMENTUM"] is None  # the double root's factor k: there only
    window = momentum["rate_window"]
    momentum["rate_measured_without_k"] = (s["measured_rate_without_k"](s["momentum_run"], *window)
                                           if best_pair and window and window[0] >= 1 else None)
    adam = valley_run_report(s, "SimpleAdam", s["ADAM_LR"], s["adam_run"], None)
    adam["closest_distance"], adam["closest_step"] = s["adam_distances"][s["closest"]].item(), s["closest"]
    edges = {f"{name}, {side}": {"lr": edge["lr"], "steps_done": len(edge["run"]) - 1,
                                 "distance_final": s["distances"](edge["run"])[-1].item(),
                                 "rate_measured": edge["rate_measured"],
                                 "rate_window": list(edge["rate_window"]) if edge["rate_window"] else None,
                                 "rate_formula_from_start": edge["rate_formula"], "verdict": edge["verdict"]}
             for (name, side), edge in s["edge_runs"].items()}
    pictures = ("valley_gif", "distance_picture") if s["PLOTS"] else ()
    return {"valley": {"curvatures": list(s["CURVATURES"]), "condition_number": s["kappa"], "start": list(s["START"]),
                       "runs": [gd, momentum, adam], "gd_edge": s["gd_edge"], "momentum_edge": s["momentum_edge"],
                       "edge_final_distances": {key: edge["distance_final"] for key, edge in edges.items()},
                       "edges": edges,
                       "adam_grid": [{"lr": lr, "distance_final": final} for lr, final in s["grid_finals"].items()],
                       "adam_best_lr": s["best_adam_lr"],
                       "ranking": [{"run": name, "distance_final": s["final_distances"][name]}
                                   for name in s["ranking"]]},
            "network": {"identical_to_adam": s["identical_to_adam"], "max_abs_diff": s["max_abs_diff"],
                        "train_accuracy_before": s["before"]["train_accuracy"],
                        "train_accuracy_after": s["after"]["train_accuracy"],
                        "test_accuracy_before": s["before"]["test_accuracy"],
                        "test_accuracy_after": s["after"]["test_accuracy"]},
            "textbook": s["textbook"],
            "outputs": [str(s[name]) for name in pictures]}


def check04(settings, fail):
    """The start is not the minimum; the GIF's frames fit the run; the device exists."""
    if all(coordinate == 0 for coordinate in settings["START"]):
        fail("argument --start: must not be the minimum (0, 0), where there is nowhere to go")
    if settings["FRAMES"] is None:
        settings["FRAMES"] = min(GIF_FRAMES_04, settings["STEPS"] + 1)
    elif settings["FRAMES"] > settings["STEPS"] + 1:
        fail(f"argument --frames: must be from 2 to steps+1 = {settings['STEPS'] + 1}, got {settings['FRAMES']}")
    resolve_device(settings, fail)


@lesson("04_adam_by_hand", "Beyond the article: gradient descent and momentum in a narrow valley, their rates "
        "checked against formulas; SimpleAdam, Adam by hand, checked against torch.optim.Adam; the three in one GIF.",
        report=report04, check=check04)
def flags04(parser, settings):
    low, high = CURVATURE_RANGE_04
    valley_lr = _cli.in_range(*VALLEY_LR_RANGE_04)
    lr_range = "from {:g} to {:g}".format(*VALLEY_LR_RANGE_04)
    parser.add_argument("--curvatures", dest="CURVATURES", metavar="A,B", default=settings["CURVATURES"],
                        type=pair(_cli.in_range(low, high), f"numbers from {low:g} to {high:g}"),
                        help=f"the valley f = (A*x^2 + B*y^2)/2: its curvature along x and along y, each from "
                             f"{low:g} to {high:g} (default: {','.join(map(str, settings['CURVATURES']))})")
    parser.add_argument("--start", dest="START", metavar="X,Y", default=settings["START"],
                        type=pair(_cli.in_range(-START_RANGE_04, START_RANGE_04),
                                  f"numbers in [-{START_RANGE_04:g}, {START_RANGE_04:g}]"),
                        help=f"where the three optimizers start, each coordinate in [-{START_RANGE_04:g}, "
                             f"{START_RANGE_04:g}]; write a start that begins with a minus sign as --start=-4.5,1 "
                             f"(default: {','.join(map(str, settings['START']))})")
    parser.add_argument("--steps", dest="STEPS", type=_cli.in_range(MIN_STEPS_04, MAX_STEPS_04, int),
                        default=settings["STEPS"], help=f"steps in the valley, {MIN_STEPS_04} to {MAX_STEPS_04}")
    parser.add_argument("--gd-lr", dest="GD_LR", type=valley_lr, default=settings["GD_LR"],
                        help=f"gradient descent's learning rate, {lr_range} (default: the best, 2/(A+B))")
    parser.add_argument("--momentum-lr", dest="MOMENTUM_LR", type=valley_lr, default=settings["MOMENTUM_LR"],
                        help=f"momentum's learning rate, {lr_range} (default: the best pair's, with --momentum)")
    parser.add_argument("--momentum", dest="MOMENTUM", type=_cli.momentum_value, default=settings["MOMENTUM"],
                        help="momentum's momentum, from 0 up to but not including 1 "
                             "(default: the best pair's, with --momentum-lr)")
    parser.add_argument("--adam-lr", dest="ADAM_LR", type=valley_lr, default=settings["ADAM_LR"],
                        help=f"SimpleAdam's (and part 2's SimpleRMSprop's) learning rate in the valley, {lr_range}")
    parser.add_argument("--network-lr", dest="NETWORK_LR", type=_cli.in_range(1e-6, 1.0),
                        default=settings["NETWORK_LR"],
                        help="the learning rate of every Adam on stage 1's network (SimpleAdam, torch.optim.Adam "
                             "and the textbook forms), from 1e-06 to 1")
    parser.add_argument("--epochs", dest="EPOCHS", type=_cli.epochs_value, default=settings["EPOCHS"],
                        help=f"passes over the 40 training samples, 1 to {_cli.MAX_EPOCHS}")
    parser.add_argument("--seed", dest="SEED", type=_cli.seed_value, default=settings["SEED"],
                        help="seeds the network's initial weights, 0 to 2**63-1")
    parser.add_argument("--frames", dest="FRAMES", type=_cli.in_range(2, MAX_STEPS_04 + 1, int),
                        default=settings["FRAMES"],
                        help=f"frames in the GIF, from 2 to steps+1 "
                             f"(default: {GIF_FRAMES_04}, or steps+1 if that is fewer)")
    add_device_flag(parser, settings)
    add_plots_flag(parser, settings)


# ---------------------------------------------------------------------------
# Lesson 05
# ---------------------------------------------------------------------------

N_TRAIN_05 = 1077  # 1797 digits less 360 for validation and 360 for testing
MAX_SEED_05 = 1_000_000  # scikit-learn's split takes seeds below 2**32; the runs count on from the seed
MAX_STEPS_05 = 2000
LR_RANGE_05 = (1e-6, 10.0)
FLOOR_LR_RANGE_05 = (1e-4, 0.99)  # below lesson 02's edge, lr = 1 on y = x^2


def report05(settings):
    """05's --json: the split, part 1's rows, part 2's rows, part 3's accuracies, the race, the checks, the pictures."""
    s = settings
    tuning = {name: [{"lr": lr, "val_mean": s["tuning"][(name, lr)][0], "val_95ci": list(s["tuning"][(name, lr)][1]),
                      "val_accuracies": s["tuning"][(name, lr)][2]} for lr in s["grids"][name]]
              for name in s["OPTIMIZERS"]}
    pictures = ("05_noise.png", "05_race.png") if s["PLOTS"] else ()
    return {"split": {"train": len(s["train_rows"]), "validation": len(s["val_rows"]), "test": len(s["test_rows"])},
            "minibatch_noise": {"sigma2": s["sigma2"], "rows": s["noise_rows"]},
            "noise_floor": {"rows": s["floor_rows"], "inside": s["floors_inside"]},
            "part3": {**s["part3"],
                      "final_loss": s["part3_losses"][-1] if math.isfinite(s["part3_losses"][-1]) else None},
            "race": {"settings": {"steps": s["STEPS"], "batch_size": s["BATCH_SIZE"], "momentum": s["MOMENTUM"]},
                     "tuning": tuning, "widened": s["widened"], "chosen_lr": s["chosen"],
                     "test": {name: run for name, run in s["race"].items()}, "pairs": s["pairs"], "gaps": s["gaps"],
                     "unfair": {"lr": s["COMMON_LR"], "seed": s["SEED"], "test_accuracy": s["unfair"],
                                "ranking": s["unfair_ranking"], "contrast": s["contrast"]},
                     "fair_ranking": s["fair_ranking"], "checks": s["checks"]},
            "outputs": [str(s["OUT_DIR"] / name) for name in pictures]}


def check05(settings, fail):
    low, high = settings["GRID"]
    if not low < high:
        fail(f"argument --grid: the first rate must be below the second, got {low:g},{high:g}")
    rates = settings["FLOOR_RATES"]
    if len(set(rates)) < len(rates):
        fail(f"argument --floor-rates: each rate once, got {','.join(f'{lr:g}' for lr in rates)}")
    resolve_device(settings, fail)


@lesson("05_minibatch_race", "Beyond the article: the noise of minibatch gradients, the noise floor it sets, and a "
        "fair race of SGD, momentum and Adam on scikit-learn's handwritten digits.", report=report05, check=check05)
def flags05(parser, settings):
    lr_range = "from {:g} to {:g}".format(*LR_RANGE_05)
    any_lr = _cli.in_range(*LR_RANGE_05)
    parser.add_argument("--seed", dest="SEED", type=_cli.in_range(0, MAX_SEED_05, int), default=settings["SEED"],
                        help=f"seeds the split, the initial weights, the minibatch orders and the noise, 0 to "
                             f"{MAX_SEED_05}; the race's runs take the seeds that follow it")
    parser.add_argument("--batch-size", dest="BATCH_SIZE", type=_cli.in_range(1, N_TRAIN_05, int),
                        default=settings["BATCH_SIZE"],
                        help=f"samples per minibatch, 1 to {N_TRAIN_05} (the whole training set)")
    parser.add_argument("--steps", dest="STEPS", type=_cli.in_range(1, MAX_STEPS_05, int), default=settings["STEPS"],
                        help=f"the step budget of every training run, 1 to {MAX_STEPS_05}")
    parser.add_argument("--draws", dest="DRAWS", type=_cli.in_range(10, 10_000, int), default=settings["DRAWS"],
                        help="part 1: minibatches drawn for each batch size, 10 to 10000")
    parser.add_argument("--lr", dest="LR", type=any_lr, default=settings["LR"],
                        help=f"part 3: SGD's learning rate, {lr_range}")
    parser.add_argument("--grid", dest="GRID", metavar="LOW,HIGH", default=settings["GRID"],
                        type=pair(any_lr, f"learning rates {lr_range}"),
                        help=f"part 4: the ends of the learning-rate grid, each {lr_range}, the first below the "
                             f"second (default: {','.join(f'{lr:g}' for lr in settings['GRID'])})")
    parser.add_argument("--grid-points", dest="GRID_POINTS", type=_cli.in_range(2, 25, int),
                        default=settings["GRID_POINTS"], help="part 4: learning rates in the grid, log-spaced, 2 to 25")
    parser.add_argument("--tune-seeds", dest="TUNE_SEEDS", type=_cli.in_range(2, 100, int),
                        default=settings["TUNE_SEEDS"], help="part 4: seeds per learning rate while tuning, 2 to 100")
    parser.add_argument("--test-seeds", dest="TEST_SEEDS", type=_cli.in_range(2, 1000, int),
                        default=settings["TEST_SEEDS"],
                        help="part 4: fresh seeds per optimizer at its chosen rate, scored on the test set, 2 to 1000")
    parser.add_argument("--momentum", dest="MOMENTUM", type=_cli.momentum_value, default=settings["MOMENTUM"],
                        help="part 4: SGD with momentum's momentum, from 0 up to but not including 1")
    parser.add_argument("--common-lr", dest="COMMON_LR", type=any_lr, default=settings["COMMON_LR"],
                        help=f"part 4's unfair race: the one learning rate of every optimizer, {lr_range}")
    parser.add_argument("--noise", dest="NOISE", type=_cli.in_range(0.01, 10), default=settings["NOISE"],
                        help="part 2: the standard deviation of the gradient's noise, from 0.01 to 10")
    low, high = FLOOR_LR_RANGE_05
    rates = _cli.comma_list(_cli.in_range(low, high), 6, f"learning rates from {low:g} to {high:g}")
    parser.add_argument("--floor-rates", dest="FLOOR_RATES", type=rates, metavar="LR[,LR...]",
                        default=settings["FLOOR_RATES"],
                        help=f"part 2: 1 to 6 different learning rates on y = x^2, each from {low:g} to {high:g}, "
                             f"below lesson 02's edge at 1 "
                             f"(default: {','.join(f'{lr:g}' for lr in settings['FLOOR_RATES'])})")
    add_device_flag(parser, settings)
    add_plots_flag(parser, settings)

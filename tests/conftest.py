"""Helpers to load the numbered scripts as modules and to run them as a learner would."""

import asyncio
import atexit
import contextlib
import copy
import io
import json
import os
import queue
import re
import runpy
import shutil
import subprocess
import sys
import tempfile
import threading
import types
import warnings
from pathlib import Path

import jupyter_client.kernelspec
import nbclient
import nbformat
import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, settings
from PIL import Image
from torch import nn

import _cli
import _flags
import common

REPO_DIR = Path(__file__).resolve().parent.parent
# Tiny tensors gain nothing from threads, and idle threads spin: one thread each for this process and
# for the scripts and kernels it starts leaves both cores of a small machine to real work.
torch.set_num_threads(1)
ONE_THREAD = {**os.environ, "OMP_NUM_THREADS": "1"}

# Hypothesis explores the lessons' settings (tests/settings_space.py). The default suite draws a few
# fixed examples per test, the same on every run; `pytest --hypothesis-profile explore` draws hundreds
# of fresh ones (docs/reference.md). Each example runs a lesson: no deadline.
QUICK = {"deadline": None, "suppress_health_check": [HealthCheck.too_slow, HealthCheck.function_scoped_fixture]}
settings.register_profile("fixed", max_examples=3, derandomize=True,
                          database=None, print_blob=True, **QUICK)
settings.register_profile("explore", max_examples=300, print_blob=True, **QUICK)
settings.load_profile("fixed")


def run_lesson(filename, args=(), out_dir=None):
    """Run a lesson top to bottom in this process, as `python FILENAME ARGS` runs it in a terminal.

    Returns (what it defined, as attributes; what it printed). A usage error raises SystemExit(2).
    """
    argv = [str(REPO_DIR / filename), *map(str, args)] + (["--out-dir", str(out_dir)] if out_dir else [])
    saved = sys.argv, sys.excepthook, sys.stdout
    sys.argv, sys.stdout = argv, io.StringIO()
    printed = sys.stdout
    try:
        defined = runpy.run_path(str(REPO_DIR / filename), run_name="__main__")
    finally:
        if sys.stdout is not printed and sys.stdout is not saved[2]:  # --quiet left its /dev/null open
            sys.stdout.close()
        sys.argv, sys.excepthook, sys.stdout = saved
    return types.SimpleNamespace(**defined), printed.getvalue()


def run_in_terminal(filename, args):
    """`python FILENAME ARGS` in this process: (exit status, stdout, stderr), errors as one line."""
    stdout, stderr = io.StringIO(), io.StringIO()
    saved = sys.argv, sys.excepthook, sys.stdout, sys.stderr
    sys.argv, sys.stdout, sys.stderr = [str(REPO_DIR / filename), *map(str, args)], stdout, stderr
    status = 0
    try:
        runpy.run_path(str(REPO_DIR / filename), run_name="__main__")
    except SystemExit as exit_:
        status = exit_.code
    except _cli.RunFailure as error:  # what Python does with it in a terminal: the excepthook, then status 1
        sys.excepthook(type(error), error, error.__traceback__)
        status = 1
    finally:
        if sys.stdout is not stdout:  # --quiet left its /dev/null open
            sys.stdout.close()
        sys.argv, sys.excepthook, sys.stdout, sys.stderr = saved
    return status, stdout.getvalue(), stderr.getvalue()


def lesson_settings(filename):
    """The settings cell's values, as the lesson's file holds them, before _flags.apply()."""
    source = (REPO_DIR / filename).read_text()
    cell = source.split("\nimport _flags")[0].rsplit("# %%\n", 1)[-1]  # the runner of mutants drops "# %%"
    values = {}
    exec(cell, values)  # noqa: S102 -- our own lesson's settings cell
    return {name: value for name, value in values.items() if name.isupper()}


@pytest.fixture
def apply_settings(monkeypatch):
    """apply_settings(filename, flags=(), in_a_kernel=False, **changed) -> the lesson's settings after
    _flags.apply, from its settings cell, `changed` as a learner edits the cell, `flags` as typed."""
    monkeypatch.setattr(sys, "excepthook", sys.excepthook)

    def run(filename, flags=(), in_a_kernel=False, **changed):
        monkeypatch.setattr(_cli, "running_in_a_kernel", lambda: in_a_kernel)
        argv = ["ipykernel_launcher.py", "-f", "kernel.json"] if in_a_kernel else [filename, *flags]
        monkeypatch.setattr(sys, "argv", argv)
        settings = {**lesson_settings(filename), **changed}
        _flags.apply(filename.removesuffix(".py"), settings)
        return settings

    return run


def load_script(filename, *args):
    """What a lesson defines, after a run with `args` (pick quick settings): its functions and results."""
    return run_lesson(filename, args)[0]


def articles_loop(seed, epochs=2, lr=0.001, momentum=0.9, order_indices=None, optimizer_class=torch.optim.SGD):
    """The article's training, written out here again: the same operations, so the same bits."""
    torch.manual_seed(seed)
    model = common.Test_Conv()
    settings = {"lr": lr, "momentum": momentum} if momentum else {"lr": lr}
    optimizer = optimizer_class(model.parameters(), **settings)
    inputs, labels = common.training_set()
    losses = []
    for i in order_indices or list(range(40)) * epochs:
        optimizer.zero_grad()
        loss = nn.CrossEntropyLoss()(model(inputs[i : i + 1]), labels[i : i + 1])
        losses.append(loss.item())
        loss.backward()
        optimizer.step()
    return model, losses


def dot_product_accuracy(weight, inputs, labels):
    """Accuracy (%) of filters `weight` (4, 1, 4, 4) on any inputs, by dot products rather than the network."""
    logits = inputs.reshape(len(inputs), 16) @ weight.reshape(4, 16).T
    return 100.0 * (logits.argmax(dim=1) == labels).sum().item() / len(labels)


class Job:
    """Work done in a background thread (see Background); result() waits for it and returns its value."""

    def __init__(self):
        self.done, self.value, self.error = threading.Event(), None, None

    def run(self):
        try:
            self.value = self.work()
        except BaseException as error:  # noqa: BLE001 -- raised again by result(), in the test's own thread
            self.error = error
        finally:
            self.done.set()

    def result(self):
        if BACKGROUND.on_demand:
            if not self.done.is_set():
                self.run()
        else:
            BACKGROUND.waiting()
        if not self.done.wait(timeout=300):
            raise TimeoutError(f"{self} did not finish in 5 minutes")
        if self.error is not None:
            raise self.error
        return self.value


class BackgroundRun(Job):
    """A script run in its own Python, as a learner starts it from a terminal."""

    def __init__(self, filename, args, out_dir, reader_gone=False):
        super().__init__()
        self.command = [sys.executable, str(REPO_DIR / filename), *map(str, args), "--out-dir", str(out_dir)]
        self.out_dir, self.reader_gone, self.process = out_dir, reader_gone, None

    def work(self):
        environment = dict(ONE_THREAD)
        if self.reader_gone:  # stdout block-buffered, as a learner's shell has it when piped
            environment.pop("PYTHONUNBUFFERED", None)
        self.process = subprocess.Popen(self.command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                        cwd=REPO_DIR, env=environment)
        if self.reader_gone:
            self.process.stdout.close()  # `| head -0`: the reader is gone before the first line
        stdout, stderr = self.process.communicate(timeout=180)
        return subprocess.CompletedProcess(self.command, self.process.returncode, stdout, stderr)

    def stop(self):
        if self.process is not None and self.process.poll() is None:
            self.process.kill()


class ScriptInThisProcess(Job):
    """A lesson run in this process (run_lesson), in the test's own thread, when a test first asks for
    its result: the same printout and pictures as a fresh Python gives, without the torch import."""

    def __init__(self, filename, args, out_dir):
        super().__init__()
        self.filename, self.args, self.out_dir = filename, [*args, "--out-dir", str(out_dir)], out_dir

    def result(self):
        if not self.done.is_set():
            self.run()
        return super().result()

    def work(self):
        """Its stderr holds what the run wrote there and every warning it raised, as a terminal shows them:
        this thread's only. What notebooks' threads write or warn meanwhile goes where it went before."""
        stderr, raised, this_thread = io.StringIO(), [], threading.current_thread()
        with contextlib.redirect_stderr(OneThreadsStream(stderr, sys.stderr)), warnings.catch_warnings():
            warnings.simplefilter("always")
            warnings.simplefilter("ignore", ResourceWarning)  # raised when the garbage collector runs: not this run's
            shown_before = warnings.showwarning
            warnings.showwarning = lambda *warning: (raised.append(warning) if threading.current_thread() is this_thread
                                                     else shown_before(*warning))
            printed = run_lesson(self.filename, self.args)[1]
        stderr.writelines(warnings.formatwarning(*warning[:4]) for warning in raised)
        return subprocess.CompletedProcess([self.filename, *self.args], 0, printed, stderr.getvalue())


class OneThreadsStream(io.TextIOBase):
    """sys.stderr for one thread's run: that thread's writes go to `mine`, every other thread's to `others`."""

    def __init__(self, mine, others):
        super().__init__()
        self.thread, self.mine, self.others = threading.current_thread(), mine, others

    def write(self, text):
        return (self.mine if threading.current_thread() is self.thread else self.others).write(text)

    def flush(self):
        self.others.flush()


# The commands README.md runs in order (each with --json), a bad flag typed in a terminal, a run that
# diverges, and a short run piped into a reader that has gone. 01, 02 and 03 run in a fresh Python, as a
# learner starts them from a terminal; every lesson runs in a fresh kernel as a notebook (BackgroundNotebook).
# The README runs of 02, 04 and 05 run in this process, sparing two cores three imports of torch.
END_TO_END_RUNS = {
    "stage1": ("01_pattern_classifier.py", ["--json"]),
    "stage2": ("02_gd_parabola_anim.py", ["--json"]),
    "stage3": ("03_custom_optimizer.py", ["--json"]),
    "stage4": ("04_adam_by_hand.py", ["--json"]),
    "stage5": ("05_minibatch_race.py", ["--json"]),
    # 05's notebook runs with a shorter race (NOTEBOOK_SETTINGS): this is the script at the same settings
    "stage5_short": ("05_minibatch_race.py", ["--steps", "10", "--draws", "10", "--tune-seeds", "2",
                                              "--test-seeds", "4", "--grid-points", "3",
                                              "--floor-rates", "0.9,0.1", "--json"]),
    "stage1_bad_lr": ("01_pattern_classifier.py", ["--lr", "-1"]),
    "stage1_diverges": ("01_pattern_classifier.py", ["--lr", "1e37", "--sweep", "0", "--no-plots"]),
    "stage2_reader_gone": ("02_gd_parabola_anim.py", ["--steps", "5"]),
}
IN_THIS_PROCESS = ("stage2", "stage4", "stage5", "stage5_short")
LESSONS = ("01_pattern_classifier", "02_gd_parabola_anim", "03_custom_optimizer", "04_adam_by_hand",
           "05_minibatch_race")
# Cells a test appends to a notebook: a bad setting shows one line, not a traceback (a cell that starts
# with "# raises" may fail: the cells after it run all the same); inside the kernel, a script reads no
# flags from the kernel's own command line, and `%run SCRIPT --flags` reads its flags.
KERNEL_CHECKS = {"02_gd_parabola_anim": [
    '# raises: a bad setting, as a learner may type it\nFRAMES = 1\n_flags.apply("02_gd_parabola_anim", globals())',
    "import sys, _cli\nprint('kernel flags:', _cli.command_line_flags(), '-f' in sys.argv)",
    "%run 02_gd_parabola_anim.py --steps 3 --frames 2 --quiet --json --out-dir flags_read",
]}


# Notebooks whose own Run All edits the settings cell first, as a learner may, to keep the suite quick: the
# lines that replace the settings cell's lines, the same settings as END_TO_END_RUNS' "stage5_short".
NOTEBOOK_SETTINGS = {"05_minibatch_race": {
    "STEPS": "STEPS = 10", "DRAWS": "DRAWS = 10", "TUNE_SEEDS": "TUNE_SEEDS = 2", "TEST_SEEDS": "TEST_SEEDS = 4",
    "GRID_POINTS": "GRID_POINTS = 3", "FLOOR_RATES": "FLOOR_RATES = (0.9, 0.1)"}}


# Run All again, in the same kernel as the lesson's own run, with the settings cell edited as a learner
# would: whole numbers where a decimal is meant, and short runs. Each line replaces the settings cell's line
# for that name. (The same kernel spares a second import of torch; every cell runs again, settings first.)
EDITED_SETTINGS = {
    "02_whole_numbers": ("02_gd_parabola_anim", {"X0": "X0 = 1", "STEPS": "STEPS = 20", "LR": "LR = 1",
                                                 "COMPARE": "COMPARE = (1, 0.25)", "PLOTS": "PLOTS = False"}),
    "03_whole_numbers": ("03_custom_optimizer", {"STARTS": "STARTS = (-3.5, 1, 3.8)", "EPOCHS": "EPOCHS = 1",
                                                 "STEPS": "STEPS = 4", "MINIMA_STEPS": "MINIMA_STEPS = 30",
                                                 "PLOTS": "PLOTS = False"}),
}


def with_settings(cells, settings):
    """Copies of `cells`, each line that sets a NAME of `settings` replaced by settings[NAME]."""
    edited = copy.deepcopy(cells)
    for cell in edited:
        cell.source = "\n".join(settings.get(line.split(" = ")[0], line) for line in cell.source.split("\n"))
    return edited


class BackgroundNotebook(Job):
    """A lesson's notebook run by nbclient in a real Jupyter kernel (ipykernel), in a temporary copy
    of the lesson files, so that outputs/ is never touched. `again` ({name: settings}) runs all of it
    again afterwards with the settings cell edited (see EDITED_SETTINGS); again_cells[name] holds those
    cells, and result() the lesson's own. stop() shuts the kernel down, whatever happened."""

    def __init__(self, lesson, work_dir, again=None):
        super().__init__()
        self.lesson, self.work_dir, self.again, self.again_cells = lesson, work_dir, again or {}, {}
        self.loop, self.task, self.stopped = None, None, False

    def work(self):
        self.work_dir.mkdir(parents=True)
        for path in [*REPO_DIR.glob("*.py"), *REPO_DIR.glob("*.ipynb"), REPO_DIR / "requirements.txt"]:
            shutil.copy(path, self.work_dir)
        notebook = nbformat.read(self.work_dir / f"{self.lesson}.ipynb", as_version=4)
        notebook.cells = with_settings(notebook.cells, NOTEBOOK_SETTINGS.get(self.lesson, {}))
        own = len(notebook.cells) + len(KERNEL_CHECKS.get(self.lesson, []))
        again = {name: with_settings(notebook.cells, settings) for name, settings in self.again.items()}
        notebook.cells += [nbformat.v4.new_code_cell(code, metadata={"tags": ["raises-exception"]}
                                                     if code.startswith("# raises") else {})
                           for code in KERNEL_CHECKS.get(self.lesson, [])]
        notebook.cells += [cell for cells in again.values() for cell in cells]
        client = nbclient.NotebookClient(notebook, timeout=120, kernel_name="python3", resources={
            "metadata": {"path": str(self.work_dir)}}, shutdown_kernel="immediate")  # outputs are in: no need to wait
        self.loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self.loop)  # this thread's loop, where nbclient asks for it
        try:
            self.task = self.loop.create_task(client.async_execute(env=ONE_THREAD))
            if self.stopped:
                self.task.cancel()
            self.loop.run_until_complete(self.task)  # cancelled or failed: nbclient shuts the kernel down
        finally:
            if client.km is not None:  # cancelled during nbclient's own clean-up: finish it here
                with contextlib.suppress(Exception):
                    self.loop.run_until_complete(client._async_cleanup_kernel())
            atexit.unregister(client._cleanup_kernel)  # nothing is left for nbclient to clean up at exit
            pending = asyncio.all_tasks(self.loop)  # nbclient's watcher of the kernel, after a stop
            for task in pending:
                task.cancel()
            self.loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            self.loop.close()
        start = own
        for name, cells in again.items():
            self.again_cells[name], start = notebook.cells[start : start + len(cells)], start + len(cells)
        notebook.cells = notebook.cells[:own]
        return notebook

    def stop(self):
        self.stopped = True
        if self.loop is not None and not self.loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile: nothing left to stop
                self.loop.call_soon_threadsafe(self.task.cancel)
        if self.loop is not None:
            self.done.wait(timeout=30)


class RunAllAgain:
    """The second Run All of a BackgroundNotebook, with its settings cell edited: result() is a notebook
    of those cells, once the lesson's run has finished."""

    def __init__(self, first_run, name):
        self.first_run, self.name = first_run, name

    def result(self):
        self.first_run.result()
        return nbformat.v4.new_notebook(cells=self.first_run.again_cells[self.name])


class Background:
    """The slow runs (each imports torch afresh), done in threads while the in-process tests run.

    One run at a time while this process has tests of its own to run, so that the two share the
    two cores of a small machine; two at a time once a test waits for a result, when this process
    also does the runs that are its own (ScriptInThisProcess). The longest runs go first, so that
    no core sits idle at the end.
    """

    def __init__(self):
        self.jobs, self.queue, self.workers = {}, queue.Queue(), 0
        # tests/mutation.py: a run that stops at its first failure should not pay for runs it never waits for
        self.on_demand = bool(os.environ.get("LESSON_RUNS_ON_DEMAND"))

    def start(self, jobs):
        if self.on_demand:
            self.jobs.update(jobs)
            return
        if any(isinstance(job, BackgroundNotebook) for job in jobs.values()):
            # Import what starting a kernel imports (IPython among it) here, in the main thread: a module
            # half-imported by a worker while a test touches it fails in both threads.
            jupyter_client.kernelspec.KernelSpecManager().get_kernel_spec("python3")
        self.jobs.update(jobs)
        for job in jobs.values():
            self.queue.put(job)
        self.add_worker()

    def add_worker(self):
        self.workers += 1
        threading.Thread(target=self.work, daemon=True).start()

    def waiting(self):
        if self.workers == 1:
            self.add_worker()
            for job in self.jobs.values():
                if isinstance(job, ScriptInThisProcess) and not job.done.is_set():
                    job.run()

    def work(self):
        while True:
            try:
                job = self.queue.get_nowait()
            except queue.Empty:
                return
            job.run()

    def stop(self):
        while not self.queue.empty():
            self.queue.get_nowait()
        for job in self.jobs.values():
            if isinstance(job, (BackgroundRun, BackgroundNotebook)):
                job.stop()


BACKGROUND = Background()
WORK_DIR = Path(tempfile.gettempdir()) / f"lessons-{os.getpid()}"
# The lesson runs of test modules' BATCHes (run_lesson, as their tests did them in this process), done in
# one fresh Python by tests/lesson_batch.py while this process runs the other tests: {fixture: module}.
# It does the modules whose fixture (defined in the module) a collected test asks for.
BATCHES = {"try_this_runs": "test_readme", "picture_text_runs": "test_picture_texts"}
LONGEST_FIRST = ["lesson_batch", "stage5", *LESSONS, "stage3", "stage1", "stage4", "stage2",
                 "stage2_reader_gone", "stage1_bad_lr", "stage1_diverges"]


def pytest_collection_modifyitems(items):
    """The tests that wait for a background run go last, giving the runs time to finish meanwhile."""
    items.sort(key=lambda item: not {"end_to_end", "notebook_runs", *BATCHES}.isdisjoint(
        getattr(item, "fixturenames", ())))


def pytest_collection_finish(session):
    """Start the end-to-end runs and the notebooks that the collected tests need."""
    needed = {name for item in session.items for name in getattr(item, "fixturenames", ())}
    if session.config.option.collectonly:
        return
    jobs = {}
    if "end_to_end" in needed:
        jobs |= {name: BackgroundRun(filename, args, WORK_DIR / name, reader_gone=name.endswith("reader_gone"))
                 for name, (filename, args) in END_TO_END_RUNS.items() if name not in IN_THIS_PROCESS}
        BACKGROUND.jobs |= {name: ScriptInThisProcess(*END_TO_END_RUNS[name], WORK_DIR / name)
                            for name in IN_THIS_PROCESS}
    if "notebook_runs" in needed:
        jobs |= {lesson: BackgroundNotebook(lesson, WORK_DIR / lesson, {
            name: settings for name, (edited, settings) in EDITED_SETTINGS.items() if edited == lesson})
            for lesson in LESSONS}
    if batched := [module for name, module in BATCHES.items() if name in needed]:
        jobs["lesson_batch"] = BackgroundRun("tests/lesson_batch.py", batched, WORK_DIR / "lesson_batch")
    if jobs:
        BACKGROUND.start({name: jobs[name] for name in LONGEST_FIRST if name in jobs})


def pytest_sessionfinish(session):
    """Stop the runs that no test waited for (a partial session, `pytest -x` after a failure), shut
    down the kernels still running, and remove the runs' files."""
    BACKGROUND.stop()
    shutil.rmtree(WORK_DIR, ignore_errors=True)


@pytest.fixture(scope="session")
def end_to_end():
    """{name: BackgroundRun} for each script run of END_TO_END_RUNS."""
    return {name: BACKGROUND.jobs[name] for name in END_TO_END_RUNS}


@pytest.fixture(scope="session")
def notebook_runs():
    """{lesson: BackgroundNotebook} for each lesson, and {EDITED_SETTINGS name: RunAllAgain}."""
    return {**{lesson: BACKGROUND.jobs[lesson] for lesson in LESSONS},
            **{name: RunAllAgain(BACKGROUND.jobs[lesson], name) for name, (lesson, _) in EDITED_SETTINGS.items()}}


@pytest.fixture(scope="session", autouse=True)
def outputs_stay_untouched():
    """Tests write only to temporary folders: outputs/ holds what README shows."""
    def snapshot():
        return {path.name: path.stat().st_mtime_ns for path in (REPO_DIR / "outputs").iterdir()}

    before = snapshot()
    yield
    assert snapshot() == before, "a test wrote into outputs/"


def help_text(module, capsys):
    """What `python SCRIPT --help` prints, produced in this process."""
    with pytest.raises(SystemExit):
        module.main(["--help"])
    return capsys.readouterr().out


def help_entries(help_text):
    """{flag: its help, on one line} from a script's --help output."""
    options = help_text.split("options:", 1)[1]
    entries = re.split(r"\n  (?=-)", options)
    return {entry.split()[0].rstrip(","): " ".join(entry.split()) for entry in entries if entry.strip()}


def frames_of(path):
    """Every frame of a picture as the viewer shows it (a later GIF frame drawn over the one before),
    as integer RGB arrays."""
    with Image.open(path) as image:
        frames = []
        for index in range(getattr(image, "n_frames", 1)):
            image.seek(index)
            frames.append(np.asarray(image.convert("RGB")).astype(int))
        return frames


def gif_timing(path):
    """A GIF's frame durations (ms, one per frame) and its loop count (0: forever)."""
    with Image.open(path) as gif:
        durations = []
        for index in range(gif.n_frames):
            gif.seek(index)
            durations.append(gif.info["duration"])
        return durations, gif.info.get("loop")


def last_json_line(stdout):
    return json.loads(stdout.strip().splitlines()[-1])


def call_main(module, argv, capsys):
    """Run module.main(argv) through _cli.run_cli; return (exit status, stdout, stderr)."""
    status = 0
    try:
        _cli.run_cli(lambda: module.main([str(a) for a in argv]))
    except SystemExit as exit_:
        status = exit_.code
    out, err = capsys.readouterr()
    return status, out, err


@pytest.fixture(scope="session")
def classifier():
    """Lesson 01 run with a sweep of 50 seeds and no pictures: its functions, its model, its results."""
    return load_script("01_pattern_classifier.py", "--sweep", "50", "--no-plots")


@pytest.fixture(scope="session")
def parabola():
    return load_script("02_gd_parabola_anim.py", "--steps", "20", "--compare", "none", "--no-plots")


@pytest.fixture(scope="session")
def custom_optimizer():
    """Lesson 03 after a quick run (no pictures): its optimizers, its loop, its functions."""
    return load_script("03_custom_optimizer.py", "--epochs", "1", "--minima-steps", "10", "--no-plots")


@pytest.fixture(scope="session")
def adam_lesson():
    """Lesson 04 after a quick run (30 steps in the valley, one epoch, no pictures): its optimizers and results."""
    return load_script("04_adam_by_hand.py", "--steps", "30", "--epochs", "1", "--no-plots")

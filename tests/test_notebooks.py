"""The lessons as notebooks: each .ipynb is what jupytext makes of its .py (one source), its cells
read well in both forms, and it runs in a real Jupyter kernel, printing what the scripts print and
showing every picture they draw."""

import asyncio
import base64
import os
import re
import shutil
import subprocess
import sys
import threading
import time

import jupytext
import nbclient
import pytest

import _notebook
from conftest import (
    EDITED_SETTINGS,
    END_TO_END_RUNS,
    KERNEL_CHECKS,
    LESSONS,
    REPO_DIR,
    BackgroundNotebook,
    last_json_line,
)

pytestmark = pytest.mark.notebook

# The README commands each notebook stands for, as END_TO_END_RUNS names them, and the pictures they draw.
SCRIPT_RUNS = {"01_pattern_classifier": "stage1", "02_gd_parabola_anim": "stage2", "03_custom_optimizer": "stage3",
               "04_adam_by_hand": "stage4", "05_minibatch_race": "stage5_short"}  # 05: NOTEBOOK_SETTINGS
PICTURES = {"01_pattern_classifier": ["01_loss.png", "01_filters.png", "01_sweep.png"],
            "02_gd_parabola_anim": ["02_gd_parabola.gif", "02_learning_rates.gif"],
            "03_custom_optimizer": ["03_parabola.png", "03_local_minima.gif"],
            "04_adam_by_hand": ["04_valley.gif", "04_distances.png"],
            "05_minibatch_race": ["05_noise.png", "05_race.png"]}


def is_notebook_only(cell):
    return "active-ipynb" in cell.metadata.get("tags", [])


def printed(cells):
    """What the cells printed to stdout, each picture's folder left out of its 'wrote' line."""
    text = "".join(out.text for cell in cells for out in cell.get("outputs", [])
                   if out.output_type == "stream" and out.name == "stdout")
    return re.sub(r"^wrote \S*/", "wrote ", text, flags=re.MULTILINE)


# --- one source ------------------------------------------------------------------------------

def test_each_notebook_is_what_jupytext_makes_of_its_lesson(tmp_path):
    """`jupytext --update --to ipynb` on the lessons changes nothing: no notebook lags behind its .py."""
    for lesson in LESSONS:
        for suffix in (".py", ".ipynb"):
            shutil.copy(REPO_DIR / f"{lesson}{suffix}", tmp_path)
    command = [sys.executable, "-m", "jupytext", "--update", "--to", "ipynb", *(f"{lesson}.py" for lesson in LESSONS)]
    subprocess.run(command, cwd=tmp_path, check=True, capture_output=True)
    for lesson in LESSONS:
        regenerated = (tmp_path / f"{lesson}.ipynb").read_bytes()
        assert regenerated == (REPO_DIR / f"{lesson}.ipynb").read_bytes(), \
            f"{lesson}.ipynb is stale: run jupytext --update --to ipynb {lesson}.py"


@pytest.mark.parametrize("lesson", LESSONS)
def test_the_committed_notebook_has_no_outputs_and_a_python_kernel(lesson):
    notebook = jupytext.read(REPO_DIR / f"{lesson}.ipynb")
    assert all(not cell.get("outputs") and cell.get("execution_count") is None
               for cell in notebook.cells if cell.cell_type == "code")
    assert notebook.metadata["kernelspec"]["name"] == "python3"


# --- the lesson form: top to bottom, small cells, prose between, each picture read where it appears ----

def cells_of(lesson):
    return jupytext.read(REPO_DIR / f"{lesson}.py").cells


def lines_of(cell):
    return [line for line in cell.source.splitlines() if line.strip()]


@pytest.mark.parametrize("lesson", LESSONS)
def test_one_notebook_only_cell_of_five_lines_and_no_raw_or_script_only_cells(lesson):
    cells = cells_of(lesson)
    title = "# Beyond the article: " if lesson >= "04" else "# Stage "  # 04 and 05 go past the article
    assert cells[0].cell_type == "markdown" and cells[0].source.startswith(title)
    only = [cell for cell in cells if is_notebook_only(cell)]
    assert len(only) == 1 and only[0] is cells[1] and len(lines_of(only[0])) <= 5
    assert all(cell.cell_type in ("markdown", "code") for cell in cells)
    assert not any("active-py" in cell.metadata.get("tags", []) for cell in cells)


def is_optimizer_class(cell):
    return re.search(r"^class \w+\(torch\.optim\.Optimizer\):", cell.source, flags=re.MULTILINE) is not None


@pytest.mark.parametrize("lesson", LESSONS)
def test_code_cells_are_short(lesson):
    for cell in cells_of(lesson):
        if cell.cell_type == "code":
            limit = 45 if is_optimizer_class(cell) else 30
            assert len(lines_of(cell)) <= limit, f"{len(lines_of(cell))} lines:\n{cell.source}"


@pytest.mark.parametrize("lesson", LESSONS)
def test_a_paragraph_comes_before_each_code_cell(lesson):
    cells = cells_of(lesson)
    for before, cell in zip(cells, cells[1:]):
        if cell.cell_type == "code" and not is_notebook_only(before):
            assert before.cell_type == "markdown", f"no paragraph before:\n{cell.source}"


@pytest.mark.parametrize("lesson", LESSONS)
def test_each_picture_is_followed_by_what_to_look_at(lesson):
    cells = cells_of(lesson)
    drawing = [i for i, cell in enumerate(cells) if cell.cell_type == "code" and "show_pictures(" in cell.source]
    assert drawing
    for i in drawing:
        assert cells[i + 1].cell_type == "markdown" and len(cells[i + 1].source) > 80, cells[i].source


@pytest.mark.parametrize("lesson", LESSONS)
def test_no_commented_out_code_and_no_main(lesson):
    for cell in cells_of(lesson):
        if cell.cell_type != "code" or is_notebook_only(cell):
            continue
        assert not re.search(r"^(def main|def parse_args|if __name__)", cell.source, flags=re.MULTILINE)
        for line in cell.source.splitlines():
            comment = line.strip().removeprefix("#").strip()
            if line.strip().startswith("#") and re.search(r"\w\(.*\)$", comment):
                with pytest.raises(SyntaxError):  # prose, not a statement left commented out
                    compile(comment, lesson, "exec")


@pytest.mark.parametrize("lesson", LESSONS)
def test_the_settings_come_first_and_the_lesson_ends_with_finish(lesson):
    code = [cell for cell in cells_of(lesson) if cell.cell_type == "code" and not is_notebook_only(cell)]
    assert f'_flags.apply("{lesson}", globals())' in code[0].source
    assert all(re.match(r"^[A-Z][A-Z0-9_]* = ", line) or line.startswith(("#", "import _flags", "_flags.apply"))
               for line in lines_of(code[0])), code[0].source
    assert code[-1].source.strip() == f'_flags.finish("{lesson}", globals())'


def test_without_the_lesson_files_the_first_cell_says_what_to_do(tmp_path):
    setup = next(cell for cell in jupytext.read(REPO_DIR / "02_gd_parabola_anim.ipynb").cells if is_notebook_only(cell))
    alone = subprocess.run([sys.executable, "-c", setup.source], cwd=tmp_path, capture_output=True, text=True,
                           env={"PATH": os.environ.get("PATH", "")})  # a notebook uploaded alone: nothing beside it
    assert alone.returncode == 1 and alone.stderr.splitlines()[-1] == (
        "FileNotFoundError: Put this notebook beside the lesson files: upload or clone the whole folder.")


# --- in a real kernel ----------------------------------------------------------------------------

def without_wrote_lines(text):
    return [line for line in text.splitlines() if not line.startswith("wrote ")]


@pytest.mark.parametrize("lesson", LESSONS)
def test_run_all_prints_what_the_script_prints(lesson, notebook_runs, end_to_end):
    cells = [cell for cell in notebook_runs[lesson].result().cells if cell.cell_type == "code"]
    result = end_to_end[SCRIPT_RUNS[lesson]].result()
    assert result.returncode == 0 and END_TO_END_RUNS[SCRIPT_RUNS[lesson]][1][-1] == "--json"
    expected = result.stdout[: result.stdout.rstrip("\n").rfind("\n") + 1]  # all but the --json line
    lesson_cells = cells[1 : len(cells) - len(KERNEL_CHECKS.get(lesson, []))]  # cell 0: the version table
    assert without_wrote_lines(printed(lesson_cells)) == without_wrote_lines(expected)
    assert [line for line in printed(lesson_cells).splitlines() if line.startswith("wrote ")] == [
        line for line in re.sub(r"^wrote \S*/", "wrote ", expected, flags=re.MULTILINE).splitlines()
        if line.startswith("wrote ")]


@pytest.mark.parametrize("name", ["02_whole_numbers", "03_whole_numbers"])
def test_whole_numbers_in_the_settings_cell_run_in_a_kernel(name, notebook_runs):
    cells = notebook_runs[name].result().cells
    errors = [out for cell in cells for out in cell.get("outputs", []) if out.output_type == "error"]
    assert errors == [] and printed(cells[1:]).strip()
    settings = next(cell.source for cell in cells if "_flags.apply(" in cell.source)
    assert all(line in settings.splitlines() for line in EDITED_SETTINGS[name][1].values())


@pytest.mark.parametrize("lesson", LESSONS)
def test_run_all_shows_every_picture_inline(lesson, notebook_runs):
    run = notebook_runs[lesson]
    lesson_cells = run.result().cells[: len(run.result().cells) - len(KERNEL_CHECKS.get(lesson, []))]
    shown = [out.data for cell in lesson_cells for out in cell.get("outputs", []) if out.output_type == "display_data"]
    assert len(shown) == len(PICTURES[lesson])
    for data, picture in zip(shown, PICTURES[lesson]):
        mime = "image/gif" if picture.endswith(".gif") else "image/png"
        assert base64.b64decode(data[mime]) == (run.work_dir / "outputs" / picture).read_bytes()


def assert_version_table(text):
    pins = _notebook.pinned_versions()
    for name in _notebook.LIBRARIES:
        row = next((line.split() for line in text.splitlines() if line.split()[:1] == [name]), None)
        assert row is not None, f"no row for {name} in:\n{text}"
        assert row[1:4] == [_notebook.installed_version(name), pins[name], _notebook.OLDEST_CHECKED[name]]


@pytest.mark.parametrize("lesson", LESSONS)
def test_the_first_cell_prints_the_versions_beside_the_pins(lesson, notebook_runs):
    cell = notebook_runs[lesson].result().cells[1]
    assert is_notebook_only(cell) and not [out for out in cell.get("outputs", []) if out.output_type != "stream"]
    assert_version_table(printed([cell]))


@pytest.mark.parametrize("lesson", LESSONS)
def test_the_first_cell_calls_show_versions(lesson, capsys, monkeypatch):
    """Without a kernel: the notebook-only cell, run as Python beside the lessons, prints the table itself
    (a bare `_notebook.show_versions`, not called, would print nothing here and show a function there)."""
    monkeypatch.chdir(REPO_DIR)
    setup = next(cell for cell in jupytext.read(REPO_DIR / f"{lesson}.py").cells if is_notebook_only(cell))
    exec(compile(setup.source, f"{lesson} first cell", "exec"), {})
    assert_version_table(capsys.readouterr().out)


def test_in_a_kernel_a_script_reads_no_kernel_flags_but_run_reads_its_own(notebook_runs):
    cells = notebook_runs["02_gd_parabola_anim"].result().cells[-2:]
    assert printed(cells[:1]) == "kernel flags: [] True\n"
    report = last_json_line(printed(cells[1:]))
    assert report["steps"] == 3 and report["frames"] == 2 and report["gif"] == "flags_read/02_gd_parabola.gif"


def test_a_bad_setting_in_a_notebook_shows_one_line_not_a_traceback(notebook_runs):
    cells = notebook_runs["02_gd_parabola_anim"].result().cells
    bad_setting = cells[len(cells) - len(KERNEL_CHECKS["02_gd_parabola_anim"])]
    assert "FRAMES = 1" in bad_setting.source
    [error] = [out for out in bad_setting.outputs if out.output_type == "error"]
    assert error.ename == "SettingError" and error.traceback == [  # what Jupyter shows: these lines, and only these
        "SettingError: argument --frames (FRAMES = 1): must be a whole number from 2 to 100001, got 1"]


def test_a_notebook_stopped_midway_shuts_its_kernel_down(tmp_path):
    """What conftest does when `pytest -x` stops early: stop() ends the run and its kernel, and leaves
    nothing for nbclient to clean up at exit (which used to print errors, or hang)."""
    job = BackgroundNotebook("02_gd_parabola_anim", tmp_path / "run")
    thread = threading.Thread(target=job.run)
    thread.start()
    deadline = time.monotonic() + 60
    while not (job.task and job.loop.is_running()) and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(1)  # the kernel is starting or running cells
    job.stop()
    thread.join(timeout=30)
    assert job.done.is_set() and not thread.is_alive()
    # cancelled, or its kernel shut down under it: either way stopped, not failed for another reason
    assert isinstance(job.error, (asyncio.CancelledError, nbclient.exceptions.DeadKernelError)), job.error
    kernels = subprocess.run(["pgrep", "-f", f"ipykernel_launcher.*{tmp_path.name}"], capture_output=True)
    assert kernels.stdout == b""

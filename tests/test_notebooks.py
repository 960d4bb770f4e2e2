"""The lessons as notebooks: each .ipynb is what jupytext makes of its .py (one source), its cells
read well in both forms, and it runs in a real Jupyter kernel, printing what the scripts print and
showing every picture they draw."""

import base64
import os
import re
import shutil
import subprocess
import sys

import jupytext
import pytest

import _notebook
from conftest import END_TO_END_RUNS, KERNEL_CHECKS, LESSONS, REPO_DIR, last_json_line

pytestmark = pytest.mark.notebook

# The README commands each notebook stands for, as END_TO_END_RUNS names them, and the pictures they draw.
SCRIPT_RUNS = {"01_pattern_classifier": ["stage1", "stage1_sweep"], "02_gd_parabola_anim": ["stage2", "stage2_compare"],
               "03_custom_optimizer": ["stage3"]}
PICTURES = {"01_pattern_classifier": ["01_loss.png", "01_filters.png", "01_sweep.png"],
            "02_gd_parabola_anim": ["02_gd_parabola.gif", "02_learning_rates.gif"],
            "03_custom_optimizer": ["03_parabola.png", "03_local_minima.gif"]}


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


# --- cells chosen by hand, readable in both forms ------------------------------------------------

@pytest.mark.parametrize("lesson", LESSONS)
def test_cells_are_few_and_read_well_in_a_terminal(lesson):
    source = (REPO_DIR / f"{lesson}.py").read_text()
    notebook = jupytext.read(REPO_DIR / f"{lesson}.py")
    assert 8 <= len(notebook.cells) <= 12
    assert notebook.cells[0].cell_type == "markdown" and notebook.cells[0].source.startswith("# Stage ")
    blocks = re.split(r"^# %%.*\n", source, flags=re.MULTILINE)[1:]
    assert len(blocks) == len(notebook.cells)
    for cell, block in zip(notebook.cells, blocks):
        if cell.cell_type == "markdown" or is_notebook_only(cell):  # comments in the .py, nothing to run
            assert all(line == "#" or line.startswith("# ") for line in block.strip().splitlines()), block
    only = [cell for cell in notebook.cells if is_notebook_only(cell)]
    assert only and all(len(cell.source.splitlines()) <= 5 for cell in only)
    assert notebook.cells[-1].cell_type == "raw" and "def main(" in notebook.cells[-1].source  # the CLI: not run


@pytest.mark.parametrize("lesson", LESSONS)
def test_notebook_only_cells_are_code_in_the_notebook_and_comments_in_the_script(lesson):
    script_cells = jupytext.read(REPO_DIR / f"{lesson}.py").cells
    notebook_cells = jupytext.read(REPO_DIR / f"{lesson}.ipynb").cells
    for script_cell, notebook_cell in zip(script_cells, notebook_cells, strict=True):
        if is_notebook_only(script_cell):
            assert notebook_cell.cell_type == "code"
            compile(notebook_cell.source, lesson, "exec")  # Python, not comments


def test_without_the_lesson_files_the_first_cell_says_what_to_do(tmp_path):
    setup = next(cell for cell in jupytext.read(REPO_DIR / "02_gd_parabola_anim.ipynb").cells if is_notebook_only(cell))
    alone = subprocess.run([sys.executable, "-c", setup.source], cwd=tmp_path, capture_output=True, text=True,
                           env={"PATH": os.environ.get("PATH", "")})  # a notebook uploaded alone: nothing beside it
    assert alone.returncode == 1 and alone.stderr.splitlines()[-1] == (
        "FileNotFoundError: Put this notebook beside the lesson files: upload or clone the whole folder.")


# --- in a real kernel ----------------------------------------------------------------------------

@pytest.mark.parametrize("lesson", LESSONS)
def test_run_all_prints_what_the_scripts_print(lesson, notebook_runs, end_to_end):
    cells = [cell for cell in notebook_runs[lesson].result().cells if cell.cell_type == "code"]
    first_lesson_cell = 1  # cell 0 is the notebook-only check, which prints the versions
    expected = ""
    for name in SCRIPT_RUNS[lesson]:
        result = end_to_end[name].result()
        assert result.returncode == 0 and END_TO_END_RUNS[name][1][-1] == "--json"
        expected += result.stdout[: result.stdout.rstrip("\n").rfind("\n") + 1]  # all but the --json line
    lesson_cells = cells[first_lesson_cell : len(cells) - len(KERNEL_CHECKS.get(lesson, []))]
    assert printed(lesson_cells) == re.sub(r"^wrote \S*/", "wrote ", expected, flags=re.MULTILINE)


@pytest.mark.parametrize("lesson", LESSONS)
def test_run_all_shows_every_picture_inline(lesson, notebook_runs):
    run = notebook_runs[lesson]
    lesson_cells = run.result().cells[: len(run.result().cells) - len(KERNEL_CHECKS.get(lesson, []))]
    shown = [out.data for cell in lesson_cells for out in cell.get("outputs", []) if out.output_type == "display_data"]
    assert len(shown) == len(PICTURES[lesson])
    for data, picture in zip(shown, PICTURES[lesson]):
        mime = "image/gif" if picture.endswith(".gif") else "image/png"
        assert base64.b64decode(data[mime]) == (run.work_dir / "outputs" / picture).read_bytes()


def test_the_first_cell_prints_the_versions_beside_the_pins(notebook_runs):
    text = printed(notebook_runs["03_custom_optimizer"].result().cells[1:2])
    pins = _notebook.pinned_versions()
    for name in _notebook.LIBRARIES:
        row = next(line.split() for line in text.splitlines() if line.split()[:1] == [name])
        assert row[1:4] == [_notebook.installed_version(name), pins[name], _notebook.OLDEST_CHECKED[name]]


def test_in_a_kernel_a_script_reads_no_kernel_flags_but_run_reads_its_own(notebook_runs):
    cells = notebook_runs["02_gd_parabola_anim"].result().cells[-2:]
    assert printed(cells[:1]) == "kernel flags: [] True\n"
    report = last_json_line(printed(cells[1:]))
    assert report["steps"] == 3 and report["frames"] == 2 and report["gif"] == "flags_read/02_gd_parabola.gif"

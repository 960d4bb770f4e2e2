"""Mutation testing, run by hand (never by CI): plant one small bug at a time in the
lesson code, run the test suite, and count the bugs it catches.

    python tests/mutation.py                      # every mutant, 2 at a time
    python tests/mutation.py --list               # what would be planted, without running
    python tests/mutation.py --only _gif.py       # the mutants of one file
    python tests/mutation.py --ids 01_pattern_classifier.py:17 _cli.py:3   # chosen mutants
    python tests/mutation.py --sample 240 --seed 0   # a random sample
    python tests/mutation.py --changed-since da5ee32 # the mutants on lines changed since a commit
    python tests/mutation.py --show _cli.py:3     # the planted bug, as a diff
    python tests/mutation.py --summarize all.json _cli.json   # the score of saved reports

Each mutant changes one thing, the way a slip of the keyboard would: a comparison
(< to <=, == to !=, in to not in), an arithmetic operator (+ to -, * to /), a
number (n to n + 1), True to False, and to or, a minus sign or a `not` dropped,
break to continue, a loop over nothing, a decorator removed, or a call statement
deleted (a forgotten `optimizer.zero_grad()`). Strings and docstrings are left
alone. Only the statement that holds the mutated node is rewritten (ast.unparse),
so the rest of the file keeps its comments, and a lesson its notebook cells. The
mutated file goes into a copy of the repository, one copy per job (the suite must
first pass there unmutated), and `python -m pytest -x` runs there, the tests of
the mutated file first. A mutant is killed when the suite fails, survives when it
passes. The tests marked `notebook` are left out: they run the notebooks in
Jupyter kernels, which would make each mutant several times slower (the lessons'
code is the same in both forms, and the rest of the suite tests it).
The report, every mutant with its verdict, goes to mutation-report.json (--report),
rewritten after each mutant so that a run cut short keeps what it found.
tests/MUTANTS.md lists the survivors judged equivalent, and why, and those that only the
notebook tests kill.
"""

import argparse
import ast
import copy
import difflib
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO_DIR = Path(__file__).resolve().parent.parent
EQUIVALENT_LIST = REPO_DIR / "tests" / "MUTANTS.md"
TARGETS = ["common.py", "_cli.py", "_flags.py", "_gif.py", "_figures.py", "_notebook.py", "_adam.py",
           "01_pattern_classifier.py", "02_gd_parabola_anim.py", "03_custom_optimizer.py", "04_adam_by_hand.py",
           "05_minibatch_race.py"]
FOCUS = {  # the tests that run first for each file; the rest of the suite follows
    "common.py": ["test_common.py"],
    "_cli.py": ["test_cli.py", "test_flags.py"],
    "_flags.py": ["test_flags.py", "test_pattern_classifier.py", "test_gd_parabola.py", "test_custom_optimizer.py",
                  "test_adam_by_hand.py", "test_minibatch_race.py"],
    "_gif.py": ["test_gif.py"],
    "_figures.py": ["test_gif.py", "test_pattern_classifier.py", "test_custom_optimizer.py", "test_adam_by_hand.py",
                    "test_readme.py"],
    "_notebook.py": ["test_cli.py"],
    "_adam.py": ["test_adam.py", "test_adam_by_hand.py"],
    "01_pattern_classifier.py": ["test_pattern_classifier.py"],
    "02_gd_parabola_anim.py": ["test_gd_parabola.py", "test_gif.py"],
    "03_custom_optimizer.py": ["test_optimizers.py", "test_custom_optimizer.py"],
    "04_adam_by_hand.py": ["test_adam.py", "test_adam_by_hand.py"],
    "05_minibatch_race.py": ["test_minibatch_race.py"],
}
ORDERING_PLUGIN = '''
import os

import pytest


@pytest.hookimpl(trylast=True)  # after tests/conftest.py's own ordering, which this one overrides
def pytest_collection_modifyitems(items):
    focus = os.environ.get("MUTATION_FOCUS", "").split(",")
    items.sort(key=lambda item: item.path.name not in focus)
'''

COMPARISONS = {ast.Lt: ast.LtE, ast.LtE: ast.Lt, ast.Gt: ast.GtE, ast.GtE: ast.Gt, ast.Eq: ast.NotEq,
               ast.NotEq: ast.Eq, ast.Is: ast.IsNot, ast.IsNot: ast.Is, ast.In: ast.NotIn, ast.NotIn: ast.In}
OPERATORS = {ast.Add: ast.Sub, ast.Sub: ast.Add, ast.Mult: ast.Div, ast.Div: ast.Mult, ast.FloorDiv: ast.Div,
             ast.Mod: ast.FloorDiv, ast.Pow: ast.Mult, ast.MatMult: ast.Mult}


# ---------------------------------------------------------------------------
# Planting: every place a small bug can go, as (description, mutate(tree))
# ---------------------------------------------------------------------------

def mutation_points(tree):
    """[(line, description, apply)] where apply(node) mutates a copy of the node in place."""
    points = []
    docstrings = {id(body[0].value) for body in bodies(tree) if is_docstring(body[0])}
    for node in ast.walk(tree):
        line = getattr(node, "lineno", 0)
        if isinstance(node, ast.Compare):
            for i, op in enumerate(node.ops):
                points.append((line, f"{type(op).__name__} -> {COMPARISONS[type(op)].__name__}",
                               node, lambda n, i=i: n.ops.__setitem__(i, COMPARISONS[type(n.ops[i])]())))
        elif isinstance(node, (ast.BinOp, ast.AugAssign)) and type(node.op) in OPERATORS:
            points.append((line, f"{type(node.op).__name__} -> {OPERATORS[type(node.op)].__name__}",
                           node, lambda n: setattr(n, "op", OPERATORS[type(n.op)]())))
        elif isinstance(node, ast.BoolOp):
            points.append((line, "and <-> or", node,
                           lambda n: setattr(n, "op", ast.Or() if isinstance(n.op, ast.And) else ast.And())))
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.Not)):
            points.append((line, f"drop {type(node.op).__name__}", node, None))  # replaced by its operand
        elif isinstance(node, ast.Constant) and id(node) not in docstrings:
            if isinstance(node.value, bool):
                points.append((line, f"{node.value} -> {not node.value}", node,
                               lambda n: setattr(n, "value", not n.value)))
            elif isinstance(node.value, (int, float)):
                points.append((line, f"{node.value!r} -> {node.value + 1!r}", node,
                               lambda n: setattr(n, "value", n.value + 1)))
        elif isinstance(node, (ast.Break, ast.Continue)):
            points.append((line, f"{type(node).__name__} -> {'Continue' if isinstance(node, ast.Break) else 'Break'}",
                           node, None))
        elif isinstance(node, ast.For):
            points.append((line, "loop over nothing", node, lambda n: setattr(n, "iter", ast.List([], ast.Load()))))
        elif isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            for i, _ in enumerate(node.decorator_list):
                points.append((line, f"remove decorator {i}", node, lambda n, i=i: n.decorator_list.pop(i)))
        elif isinstance(node, ast.Expr) and isinstance(node.value, ast.Call):
            points.append((line, "delete call statement", node, None))
    return sorted(points, key=lambda point: point[0])


def bodies(tree):
    yield tree.body
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and node.body:
            yield node.body


def is_docstring(statement):
    return isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Constant) \
        and isinstance(statement.value.value, str)


class Replace(ast.NodeTransformer):
    """Swap one node of a tree (found by identity) for its mutation."""

    def __init__(self, target, description, apply):
        self.target, self.description, self.apply = target, description, apply

    def visit(self, node):
        if node is not self.target:
            return super().visit(node)
        if self.description.startswith("drop "):
            return node.operand
        if self.description.startswith(("Break", "Continue")):
            return ast.Continue() if isinstance(node, ast.Break) else ast.Break()
        if self.description == "delete call statement":
            return ast.Pass()
        self.apply(node)
        return node


def mutants_of(filename):
    """[(id, line, description, mutated source)] for one file."""
    source = (REPO_DIR / filename).read_text()
    tree = ast.parse(source)
    parents = {id(child): node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    mutants = []
    for number, (line, description, node, apply) in enumerate(mutation_points(tree), start=1):
        mutated = copy.deepcopy(tree)
        twins = dict(zip(map(id, ast.walk(tree)), ast.walk(mutated)))  # a deep copy walks alike
        statement = node
        while not isinstance(statement, ast.stmt):
            statement = parents[id(statement)]
        path = path_to(statement, parents)
        mutated = ast.fix_missing_locations(Replace(twins[id(node)], description, apply).visit(mutated))
        mutants.append((f"{filename}:{number}", line, description,
                        with_statement(source, statement, follow(mutated, path))))
    return mutants


def path_to(node, parents):
    """[(field, index)] from the module down to `node`."""
    path = []
    while id(node) in parents:
        parent = parents[id(node)]
        field, index = next((name, values.index(node)) for name, values in ast.iter_fields(parent)
                            if isinstance(values, list) and node in values)
        path.append((field, index))
        node = parent
    return path[::-1]


def follow(tree, path):
    for field, index in path:
        tree = getattr(tree, field)[index]
    return tree


def with_statement(source, original, mutated):
    """`source` with the lines of statement `original` replaced by `mutated`, unparsed and indented alike."""
    lines = source.splitlines(keepends=True)
    first = min([original.lineno] + [d.lineno for d in getattr(original, "decorator_list", [])])
    indent = " " * original.col_offset
    new = "".join(f"{indent}{text}\n" if text else "\n" for text in ast.unparse(mutated).split("\n"))
    return "".join(lines[: first - 1]) + new + "".join(lines[original.end_lineno:])


# ---------------------------------------------------------------------------
# Running: one copy of the repository per job
# ---------------------------------------------------------------------------

def make_workspace(root, job):
    workspace = root / f"job{job}"
    listing = ["git", "ls-files", "--cached", "--others", "--exclude-standard"]  # what a clean clone would hold
    files = subprocess.run(listing, cwd=REPO_DIR, capture_output=True, text=True, check=True).stdout
    for name in files.split():
        (workspace / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO_DIR / name, workspace / name)
    (workspace / "conftest.py").write_text(ORDERING_PLUGIN)
    return workspace


def run_suite(workspace, focus, timeout):
    env = {**os.environ, "MUTATION_FOCUS": ",".join(focus), "PYTHONDONTWRITEBYTECODE": "1", "OMP_NUM_THREADS": "1",
           "LESSON_RUNS_ON_DEMAND": "1"}  # end-to-end runs only when a test waits for one: most mutants fail first
    start = time.perf_counter()
    try:
        result = subprocess.run([sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", "-m",
                                 "not notebook", "tests"],
                                cwd=workspace, env=env, capture_output=True, text=True, timeout=timeout)
        verdict = "survived" if result.returncode == 0 else "killed"
        tail = result.stdout.strip().splitlines()[-1:] or [""]
    except subprocess.TimeoutExpired:
        verdict, tail = "killed (timeout)", [""]
    return verdict, time.perf_counter() - start, tail[0]


def run_mutant(workspace, mutant, timeout):
    mutant_id, line, description, source = mutant
    filename = mutant_id.rsplit(":", 1)[0]
    original = (workspace / filename).read_text()
    (workspace / filename).write_text(source)
    try:
        verdict, seconds, tail = run_suite(workspace, FOCUS[filename], timeout)
    finally:
        (workspace / filename).write_text(original)
    return {"id": mutant_id, "line": line, "mutation": description, "verdict": verdict,
            "seconds": round(seconds, 1), "pytest": tail}


def run_all(mutants, jobs, timeout, report_path):
    root = Path(tempfile.mkdtemp(prefix="mutation_"))
    workspaces = [make_workspace(root, job) for job in range(jobs)]
    verdict, seconds, tail = run_suite(workspaces[0], [], timeout)
    if verdict != "survived":
        raise SystemExit(f"the suite fails on the unmutated code: {tail}")
    print(f"baseline: the suite passes in {seconds:.0f} s; {len(mutants)} mutants, {jobs} at a time", flush=True)
    free = list(workspaces)
    results = []

    def work(mutant):
        workspace = free.pop()
        try:
            return run_mutant(workspace, mutant, timeout)
        finally:
            free.append(workspace)

    with ThreadPoolExecutor(jobs) as pool:
        for done, result in enumerate(pool.map(work, mutants), start=1):
            results.append(result)
            save_report(results, report_path)  # so that a run cut short keeps what it found
            if result["verdict"] == "survived":
                print(f"  survived {result['id']} (line {result['line']}: {result['mutation']})", flush=True)
            if done % 25 == 0:
                print(f"{done} of {len(mutants)} done", flush=True)
    shutil.rmtree(root)
    return results


def save_report(results, report_path):
    if str(REPO_DIR) not in sys.path:
        sys.path.insert(0, str(REPO_DIR))
    import _cli  # the scripts' own atomic write; only a run needs it (and torch with it)

    _cli.atomic_write(report_path, lambda file: file.write(json.dumps(results, indent=1).encode()))


def accounted_for():
    """{id: mutation} for the rows of the tables in tests/MUTANTS.md: survivors accounted for."""
    rows = re.findall(r"^\| `([\w.]+:\d+)` \| \d+ \| `([^`]+)` \|", EQUIVALENT_LIST.read_text(), re.MULTILINE)
    return dict(rows)


def summary(results):
    killed = sum(r["verdict"] != "survived" for r in results)
    lines = [f"{killed} of {len(results)} mutants killed ({100 * killed / len(results):.1f}%)"]
    for filename in TARGETS:
        mine = [r for r in results if r["id"].startswith(filename + ":")]
        if mine:
            mine_killed = sum(r["verdict"] != "survived" for r in mine)
            lines.append(f"  {filename:<26} {mine_killed:4d} of {len(mine):4d} killed")
    equivalent = accounted_for()
    survivors = [r for r in results if r["verdict"] == "survived"]
    for r in survivors:
        if r["id"] not in equivalent:
            lines.append(f"  not accounted for: {r['id']} (line {r['line']}: {r['mutation']})")
        elif equivalent[r["id"]] != r["mutation"]:
            lines.append(f"  tests/MUTANTS.md is out of date: {r['id']} is now {r['mutation']!r}")
    listed = [r for r in survivors if equivalent.get(r["id"]) == r["mutation"]]
    scored = len(results) - len(listed)
    lines.append(f"{killed} of {scored} non-equivalent mutants killed ({100 * killed / max(scored, 1):.1f}%); "
                 f"{len(listed)} survivors accounted for in tests/MUTANTS.md")
    return "\n".join(lines)


def changed_lines(revision):
    """{file: the line numbers that the working tree adds or changes since `revision`}, from git diff."""
    diff = subprocess.run(["git", "diff", "-U0", revision, "--", *TARGETS], cwd=REPO_DIR, capture_output=True,
                          text=True, check=True).stdout
    changed, filename = {}, None
    for line in diff.splitlines():
        if line.startswith("+++ "):
            filename = line[len("+++ b/"):]
        elif line.startswith("@@"):
            start, _, count = re.search(r"\+(\d+)(,(\d+))?", line).groups()
            changed.setdefault(filename, set()).update(range(int(start), int(start) + int(count or 1)))
    return changed


def merged(report_paths):
    results = {}
    for path in report_paths:
        results.update((r["id"], r) for r in json.loads(path.read_text()))
    order = {filename: rank for rank, filename in enumerate(TARGETS)}
    return sorted(results.values(), key=lambda r: (order[r["id"].rsplit(":", 1)[0]], int(r["id"].rsplit(":", 1)[1])))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--only", nargs="+", choices=TARGETS, default=TARGETS, help="files to mutate")
    parser.add_argument("--ids", nargs="+", help="run only these mutants (FILE:NUMBER)")
    parser.add_argument("--changed-since", metavar="REV", help="run only the mutants on lines changed since REV (git)")
    parser.add_argument("--sample", type=int, help="run only N mutants drawn at random (with --seed)")
    parser.add_argument("--seed", type=int, default=0, help="seeds the --sample draw")
    parser.add_argument("--list", action="store_true", help="list the mutants and stop")
    parser.add_argument("--show", metavar="ID", help="print one mutant as a diff and stop")
    parser.add_argument("--jobs", type=int, default=2, help="mutants tested at a time")
    parser.add_argument("--timeout", type=float, default=400,
                        help="seconds before a run counts as killed (two suites at once take about 140 s each)")
    parser.add_argument("--report", type=Path, default=Path("mutation-report.json"), help="where to write results")
    parser.add_argument("--summarize", nargs="+", type=Path, metavar="REPORT",
                        help="summarize saved reports instead of running; a mutant's result in a later "
                             "report replaces its result in an earlier one")
    args = parser.parse_args()
    if args.summarize:
        print(summary(merged(args.summarize)))
        return
    mutants = [m for filename in args.only for m in mutants_of(filename)]
    if args.ids:
        mutants = [m for m in mutants if m[0] in set(args.ids)]
    if args.changed_since:
        changed = changed_lines(args.changed_since)
        mutants = [m for m in mutants if m[1] in changed.get(m[0].rsplit(":", 1)[0], ())]
    if args.sample:
        mutants = sorted(random.Random(args.seed).sample(mutants, args.sample), key=mutants.index)
    if args.show:
        mutant_id, _, _, source = next(m for m in mutants if m[0] == args.show)
        filename = mutant_id.rsplit(":", 1)[0]
        original = (REPO_DIR / filename).read_text()
        sys.stdout.writelines(difflib.unified_diff(original.splitlines(True), source.splitlines(True),
                                                   filename, mutant_id))
        return
    if args.list:
        for mutant_id, line, description, _ in mutants:
            print(f"{mutant_id:<34} line {line:4d}  {description}")
        print(f"{len(mutants)} mutants")
        return
    results = run_all(mutants, args.jobs, args.timeout, args.report)
    print(summary(results))


if __name__ == "__main__":
    main()

"""Machinery, not lesson: a learner need not read this file.

What the notebooks' first cell prints: the versions of the libraries that
this kernel runs, beside those the lessons were tested with (requirements.txt)
and the oldest ones checked (docs/reference.md says how; the tests with those
oldest versions also need pyparsing below 3.3, the lessons do not). Hosted
notebooks such as Colab come with their own, often older, torch: the lessons
do not reinstall it.
"""

import re
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

REQUIREMENTS = Path(__file__).resolve().parent / "requirements.txt"
LIBRARIES = ("torch", "numpy", "matplotlib", "pillow")
OLDEST_CHECKED = {"torch": "2.11.0", "numpy": "2.1.3", "matplotlib": "3.10.0", "pillow": "11.0.0"}


def pinned_versions(requirements=REQUIREMENTS):
    """{name: version} of every `name==version` line in requirements.txt."""
    pins = {}
    for line in requirements.read_text().splitlines():
        name, separator, pinned = line.partition("#")[0].strip().partition("==")
        if separator:
            pins[name.lower()] = pinned
    return pins


def installed_version(name):
    try:
        return version(name)
    except PackageNotFoundError:
        return "not installed"


def release(text):
    """A version's release numbers, for comparing: '2.13.0+cpu' -> (2, 13, 0), '3.10.0rc1' -> (3, 10, 0)."""
    numbers = []
    for part in text.split("+")[0].split("."):
        leading = re.match(r"\d+", part)
        if leading is None:
            break
        numbers.append(int(leading.group()))
        if leading.group() != part:  # '0rc1': a pre-release, nothing after it counts
            break
    return tuple(numbers)


def show_versions():
    """Print each library's version here, the tested pin, and the oldest version checked."""
    try:
        pins = pinned_versions()
    except FileNotFoundError:  # the lesson files were copied without it: say so, and go on
        pins = {}
        print("requirements.txt was not found beside the lessons: the versions they were tested with are unknown.")
    print(f"  {'library':<12}{'here':<16}{'tested with':<14}oldest checked")
    off_pins = []
    for name in LIBRARIES:
        here = installed_version(name)
        if here == "not installed":
            flag = "  <- missing"
        elif release(here) < release(OLDEST_CHECKED[name]):
            flag = "  <- older than any version checked"
        else:
            flag = ""
        print(f"  {name:<12}{here:<16}{pins.get(name, '?'):<14}{OLDEST_CHECKED[name]}{flag}")
        if name in pins and release(here) != release(pins[name]):
            off_pins.append(name)
    if off_pins:
        print(f"Off the tested versions ({', '.join(off_pins)}), numbers may differ in their last digits "
              "and pictures by a few pixels.")

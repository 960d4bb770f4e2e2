"""_gif.py: frame spacing, and the GIFs decoded pixel by pixel."""

import pytest

import _gif


@pytest.mark.parametrize("steps, frames", [(800, 120), (10, 11), (10, 2), (5, 3), (1000, 500)])
def test_pick_frames_are_strictly_increasing_from_first_to_last_step(steps, frames):
    picked = _gif.pick_frames(steps, frames)
    assert len(picked) == frames and picked[0] == 0 and picked[-1] == steps
    assert all(a < b for a, b in zip(picked, picked[1:]))


def test_pick_frames_show_every_early_step_and_reach_the_slow_end():
    picked = _gif.pick_frames(800, 120)
    assert picked[:10] == list(range(10))
    assert sum(step > 400 for step in picked) >= 5


@pytest.mark.parametrize("frames", [1, 12])
def test_pick_frames_refuses_impossible_counts(frames):
    with pytest.raises(ValueError):
        _gif.pick_frames(10, frames)



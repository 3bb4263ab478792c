"""The newest slide's count from per-position counts (what the job's window computes)."""
from __future__ import annotations

import random

import pytest

from scoring.features import newest_slide_posts, slide_count_aggregates, slide_count_name, slide_position

SLIDE = 60_000


@pytest.mark.parametrize("event_ms, slides, position", [
    (0, 10, 0), (59_999, 10, 0), (60_000, 10, 1), (9 * SLIDE, 10, 9), (10 * SLIDE, 10, 0),
    (10 * SLIDE + 1, 5, 0), (7 * SLIDE, 5, 2), (1_764_600_000_000, 10, (1_764_600_000_000 // SLIDE) % 10),
])
def test_slide_position(event_ms, slides, position):
    assert slide_position(event_ms, SLIDE, slides) == position


def test_slide_count_aggregates_are_one_sum_per_position():
    aggregates = slide_count_aggregates(3)
    assert list(aggregates) == ["slide_posts_0", "slide_posts_1", "slide_posts_2"]
    assert aggregates["slide_posts_2"] == "SUM(CASE WHEN slide_pos = 2 THEN 1 ELSE 0 END)"


def _window_row(events: list[int], end_ms: int, slides: int) -> dict[str, int]:
    """What the SQL window yields: the posts of [end - slides*slide, end) counted per position."""
    row = {slide_count_name(j): 0 for j in range(slides)}
    for ms in events:
        if end_ms - slides * SLIDE <= ms < end_ms:
            row[slide_count_name(slide_position(ms, SLIDE, slides))] += 1
    return row


@pytest.mark.parametrize("slides", [1, 3, 10])
def test_newest_slide_posts_equals_a_direct_count_in_every_window(slides):
    rng = random.Random(slides)
    base = 1_764_600_000_000 // SLIDE * SLIDE
    # bursts and gaps; the order of arrival does not matter to sums (a late post too)
    events = [base + rng.randrange(0, 40 * SLIDE) for _ in range(500)]
    events += [base + 17 * SLIDE + rng.randrange(SLIDE) for _ in range(80)]
    for k in range(1, 45):
        end = base + k * SLIDE
        expected = sum(1 for ms in events if end - SLIDE <= ms < end)
        assert newest_slide_posts(_window_row(events, end, slides), end, SLIDE, slides) == expected


def test_newest_slide_posts_of_a_row_without_counts_is_zero():
    assert newest_slide_posts({"slide_posts_9": None}, 10 * SLIDE, SLIDE, 10) == 0


def test_author_hash_is_stable_across_processes_and_tells_authors_apart():
    """Checkpointed distinct-author state outlives the process: the id must not depend on
    Python's per-process hash seed."""
    import subprocess
    import sys

    from scoring.features import author_hash

    keys = ["weibo:u1", "weibo:u2", "douyin:u1", "weibo:@张三", "p-42"]
    here = [author_hash(k) for k in keys]
    code = f"from scoring.features import author_hash; print([author_hash(k) for k in {keys!r}])"
    for seed in ("1", "2"):
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                             env={"PYTHONHASHSEED": seed, "PATH": ""}, timeout=60)
        assert out.stdout.strip() == str(here)
    assert len(set(here)) == len(keys) and all(0 <= h < 2 ** 63 for h in here)

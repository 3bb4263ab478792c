"""Risk levels and playbooks (core.levels): the shipped playbooks load, and a broken
playbooks file fails with one line naming the file, the level and what is wrong."""
from __future__ import annotations

import pytest

from core.levels import LEVEL_ZH, LEVELS, PLAYBOOKS_PATH, PlaybookError, load_playbooks
from core.times import format_ms

GOOD_LOW = {"title": "内部整改", "owner": "业务线负责人", "steps": ["记录并归档相关帖子"],
            "deadlines": [{"name": "内部核实", "hours": 24}]}


def write(tmp_path, text: str, encoding: str = "utf-8"):
    path = tmp_path / "playbooks.yaml"
    path.write_bytes(text.encode(encoding))
    return path


def levels_yaml(**entries) -> str:
    import yaml

    return yaml.safe_dump({"levels": entries}, allow_unicode=True)


def test_the_shipped_playbooks_cover_every_level_with_chinese_titles():
    books = load_playbooks()
    assert PLAYBOOKS_PATH.parent.name == "core"
    assert tuple(books) == LEVELS and set(LEVEL_ZH) == set(LEVELS)
    assert books["medium"].deadlines[0].hours == 2  # first statement within 2 h
    assert all(any("\u4e00" <= ch <= "\u9fff" for ch in b.title) for b in books.values())


def test_deadlines_count_from_first_detection_in_utc():
    pb = load_playbooks()["medium"]
    t0 = 1_796_124_960_000
    due = pb.deadlines_from(t0)
    assert due[0] == {"name": pb.deadlines[0].name, "due_at": format_ms(t0 + 2 * 3_600_000),
                      "hours_after_detection": 2.0}
    assert format_ms(t0) == "2026-12-01T11:36:00+00:00"  # 19:36 in Beijing


@pytest.mark.parametrize("entries, says", [
    ({"low": GOOD_LOW}, "level medium: missing"),
    ({"low": {**GOOD_LOW, "steps": []}, "medium": GOOD_LOW, "high": GOOD_LOW}, "level low: steps must be"),
    ({"low": GOOD_LOW, "medium": {**GOOD_LOW, "deadlines": [{"name": "首次回应", "hours": -1}]}, "high": GOOD_LOW},
     "level medium: each deadline needs"),
    ({"low": GOOD_LOW, "medium": GOOD_LOW, "high": {**GOOD_LOW, "owner": ""}}, "level high: owner must be"),
])
def test_a_broken_playbook_names_the_level_and_the_fault(tmp_path, entries, says):
    path = write(tmp_path, levels_yaml(**entries))
    with pytest.raises(PlaybookError, match=says) as err:
        load_playbooks(path)
    assert str(path) in str(err.value) and "\n" not in str(err.value)


def test_an_unreadable_or_shapeless_file_is_one_line_too(tmp_path):
    with pytest.raises(PlaybookError, match="expected a 'levels' mapping"):
        load_playbooks(write(tmp_path, "- 内部整改\n- 公开回应\n"))
    with pytest.raises(PlaybookError, match="playbooks file"):
        load_playbooks(write(tmp_path, "levels: {low: 内部整改", encoding="gb18030"))  # not UTF-8, not YAML
    with pytest.raises(PlaybookError, match="playbooks file"):
        load_playbooks(tmp_path / "missing.yaml")

"""The weekly report's section on the judge's persona weights (reports/judge.py)."""

from __future__ import annotations

from datetime import date

from alphaloop.home import LabHome
from arena.memory import JudgeWeights, MemoryStore
from reports.html import Paragraph, Table
from reports.judge import judge_section
from reports.weekly import parse_week


def test_judge_section_shows_the_weeks_weights_and_the_next(lab_home: LabHome) -> None:
    with MemoryStore(lab_home.memory_db) as store:
        store.write_judge_weights(
            JudgeWeights(effective_from=date(2023, 5, 22), aggressive=0.5, conservative=0.5)
        )
        store.write_judge_weights(
            JudgeWeights(
                effective_from=date(2023, 5, 29), aggressive=0.6, conservative=0.4,
                basis={"aggressive_record": 0.01, "conservative_record": 0.002, "edge": 0.008,
                       "reason": "weekly update from the attributed records"},
            )
        )  # fmt: skip
    section, data = judge_section(lab_home, parse_week("2023-W21"))
    table = next(b for b in section.blocks if isinstance(b, Table))
    assert [row[0] for row in table.rows] == ["2023-05-22", "2023-05-29"]
    assert table.rows[1][1:6] == ("0.600", "0.400", "+1.00%", "+0.20%", "+0.80%")
    assert [w["effective_from"] for w in data["in_force"]] == ["2023-05-22"]
    assert data["next"]["aggressive"] == 0.6
    # The next week shows its own weights in force (carried from its Monday).
    _, later = judge_section(lab_home, parse_week("2023-W22"))
    assert [w["effective_from"] for w in later["in_force"]] == ["2023-05-29"]


def test_judge_section_without_memory_says_so(lab_home: LabHome) -> None:
    section, data = judge_section(lab_home, parse_week("2023-W21"))
    assert data == {"in_force": [], "next": None}
    assert isinstance(section.blocks[0], Paragraph)
    assert not lab_home.memory_db.exists()

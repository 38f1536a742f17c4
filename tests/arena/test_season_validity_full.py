"""Research validity of the closed loop over a full season: the bootstrap stand-ins exploiting
the edge are demoted after the break and trade no more; none is on the stable twin (the control).

The experiment, its market and seeds are described in ``tests/arena/season_validity.py``.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from season_validity import season_module


def test_a_full_season_demotes_the_stand_ins_exploiting_the_edge_after_the_break(
    tmp_path_factory,
) -> None:
    # The whole path: weekly evolution, the real gate (200 trades, deflated Sharpe 0.95), the
    # 20-day paper stage in which a challenger must beat its incumbents, the loop judging the
    # bootstrap stand-ins the personas trade; the edge stops after week 7 of 12.
    from alphaloop.home import LabHome
    from arena.ledger import Ledger

    season = season_module()
    root = tmp_path_factory.mktemp("full")
    closed = season.full_season(root, season.Market(seed=300), closed=True)
    stand_ins = closed["stand_ins_demoted"]
    assert stand_ins, closed
    # Every one caught 1 to 20 trading days after the break, none before it.
    assert all(0 < c["days_after_break"] <= 20 for c in stand_ins), stand_ins
    # Demoted stand-ins trade no more: no sleeve of them after their demotion day.
    demoted = {c["genome"]: c["demoted"] for c in stand_ins}
    with Ledger(LabHome(root / "full-decay-closed").ledger_db) as ledger:
        after = [
            (row.genome_id, row.day.isoformat())
            for row in ledger.genome_days()
            if row.genome_id in demoted and row.day.isoformat() > demoted[row.genome_id]
        ]
    assert after == []
    # The control: on the stable twin (the edge never stops) the same path demotes no
    # stand-in in those 20 days.
    stable = season.full_season(root, season.Market(seed=300), closed=True, decaying=False)
    assert not [
        c for c in stable["stand_ins_demoted"] if 0 < c["days_after_break"] <= 20
    ], stable  # fmt: skip

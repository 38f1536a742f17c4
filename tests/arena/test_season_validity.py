"""Research validity of the closed loop: a decaying edge's champion is demoted after the break,
the same champion on the stable twin is not (the control).

The experiment, its market and seeds are described in ``tests/arena/season_validity.py``; the
driftless and full-season parts are in ``test_season_validity_driftless.py`` and
``test_season_validity_full.py``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from season_validity import SEEDS, season_module


@pytest.fixture(scope="module")
def demotions(tmp_path_factory) -> dict[int, dict[str, dict]]:
    season = season_module()
    out: dict[int, dict[str, dict]] = {}
    for seed in SEEDS:
        root = tmp_path_factory.mktemp(f"seed{seed}")
        market = season.Market(seed=seed, edge_strength=12.0)
        out[seed] = {
            # The decaying season stops after the day its champion is demoted: the test reads
            # only that day, which the later days cannot change (their equity is not asserted).
            # The stable twin runs all 30 days: no demotion in all of them is the claim.
            kind: season.demotion_run(
                root,
                market,
                decaying=kind == "decay",
                closed=True,
                pre=10,
                horizon=20,
                stop_when_demoted=kind == "decay",
            )
            for kind in ("decay", "stable")
        }
    return out


def _applicable(demotions) -> dict[int, dict[str, dict]]:
    return {
        seed: runs
        for seed, runs in demotions.items()
        if not any("skipped" in run for run in runs.values())
    }


def test_decaying_edge_champion_is_demoted_after_the_break_far_more_often_than_on_the_stable_twin(
    demotions,
) -> None:
    applicable = _applicable(demotions)
    assert len(applicable) >= 4, demotions
    caught = [
        seed
        for seed, runs in applicable.items()
        if runs["decay"]["days_after_break"] is not None
        and 0 < runs["decay"]["days_after_break"] <= 20
    ]
    false = [seed for seed, runs in applicable.items() if runs["stable"]["demoted_on"] is not None]
    # The targets: demoted within 20 trading days after the break in at least 80% of
    # the seeds...
    assert len(caught) * 5 >= len(applicable) * 4, (caught, applicable)
    # ...and the control: the same rule on the same champions without a break falsely demotes
    # in at most 10% of them.
    assert len(false) * 10 <= len(applicable), false

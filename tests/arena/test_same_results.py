"""The arena's outputs are bit-identical to the reference fixture (see ``same_results.py``).

Written before the arena's day was split into stages (issue 17) from the code of that time,
so a refactor that changes any ledger row, report, gene-pool row or stress result shows here,
named. A deliberate change of behaviour rewrites the fixture (``python
tests/arena/same_results.py``) in the commit that explains it.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from same_results import FIXTURE, outputs


def test_ledger_reports_pool_and_stress_results_match_the_reference(tmp_path: Path) -> None:
    expected = json.loads(FIXTURE.read_text())
    got = outputs(tmp_path)
    assert sorted(got) == sorted(expected), "a different set of outputs"
    changed = sorted(k for k in expected if got[k] != expected[k])
    assert not changed, f"{len(changed)} of {len(expected)} outputs differ: {changed[:20]}"
    # The digests cover what they claim: the season traded, the stress replay checked.
    assert {k.split("/")[0] for k in got} == {"default", "season", "stress"}
    assert any(k.startswith("season/ledger/fills") for k in got)

"""What "the same results" means for a refactor of the arena's day: digests of its outputs.

:func:`outputs` runs the arena the way its users do, on three paths, and returns one sha256
per output, named so a difference says where it is:

* ``default/...``: one ``arena run`` day on the embedded default market;
* ``season/...``: a two-week season replay with the loop closed (promotions, demotions) on a
  small synthetic market, its experience memory and judge weights included (issue 15);
* ``stress/...``: the stress replay of two scenarios at small size.

Per output: every ledger and gene-pool table (all rows; the commit time and the
hash chain over it left out: :data:`CLOCK_COLUMNS`), every file the day or
the replay wrote under the home (the home's own path replaced by ``<home>``, so the digests
do not depend on where the test runs), and the stress replay's JSON.

``python tests/arena/same_results.py`` rewrites ``tests/fixtures/same_results/digests.json``
from the current code: run it only on code whose outputs are the reference (the commit that
wrote the fixture says which).
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import sys
from datetime import date
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
FIXTURE = ROOT / "tests" / "fixtures" / "same_results" / "digests.json"
SEASON_SPEC = "synthetic:seed=11,assets=5,start=2021-06-01,end=2023-12-31"
SEASON = (date(2023, 5, 22), date(2023, 6, 2))
DEFAULT_DAY = date(2024, 6, 28)
STRESS = ("black-swan-gap", "broker-faults", "cn-circuit-breaker-2016")
STRESS_DATE = date(2026, 1, 5)
# The wall-clock time a day was committed, and the hashes that chain it: the only ledger
# fields that differ between two runs of the same code.
CLOCK_COLUMNS = {"days": ("committed_at", "chain_hash", "review_hash")}


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _tables(path: Path, prefix: str) -> dict[str, str]:
    conn = sqlite3.connect(str(path))
    try:
        names = [
            r[0]
            for r in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' "
                "AND name NOT LIKE 'sqlite_%' ORDER BY name"
            )
        ]
        out = {}
        for name in names:
            columns = [r[1] for r in conn.execute(f'PRAGMA table_info("{name}")')]
            kept = ", ".join(f'"{c}"' for c in columns if c not in CLOCK_COLUMNS.get(name, ()))
            rows = conn.execute(f'SELECT {kept} FROM "{name}"').fetchall()
            if name == "meta":  # a verified mark is "<day> <chain hash>": keep the day
                rows = [(k, v.split()[0] if k.startswith("verified:") else v) for k, v in rows]
            text = json.dumps(sorted(rows, key=repr), default=str)
            out[f"{prefix}/{name}"] = _sha(text.encode())
        return out
    finally:
        conn.close()


def _parquet(path: Path) -> bytes:
    # The table's rows, column types and AlphaLoop's metadata (units), not the file's bytes
    # (those carry the writer's version).
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    found = table.schema.metadata or {}
    metadata = {k: v for k, v in found.items() if k.startswith(b"alphaloop")}
    schema = [(f.name, str(f.type)) for f in table.schema]
    return json.dumps([schema, repr(sorted(metadata.items())), table.to_pylist()],
                      default=str).encode()  # fmt: skip


def _files(home: Path, folder: Path, prefix: str) -> dict[str, str]:
    out = {}
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        name = f"{prefix}/{path.relative_to(folder).as_posix()}"
        if path.suffix == ".sqlite":
            out |= _tables(path, name)
            continue
        data = _parquet(path) if path.suffix == ".parquet" else path.read_bytes()
        out[name] = _sha(data.replace(str(home).encode(), b"<home>"))
    return out


def _default_day(work: Path) -> dict[str, str]:
    from alphaloop.home import LabHome
    from arena.day import LocalAccounts, run_arena_day
    from arena.market import load_arena_data
    from arena.personas import load_arena_config

    home = LabHome(work / "default").ensure()
    config = load_arena_config()
    data = load_arena_data(None, home)
    accounts = LocalAccounts(home, config, data.rules())
    try:
        summary = run_arena_day(accounts, data, DEFAULT_DAY, home=home, config=config)
    finally:
        accounts.close()
    out = _tables(home.ledger_db, "default/ledger")
    out |= _files(home.root, home.root / "runs", "default/runs")
    text = json.dumps(summary, sort_keys=True, default=str).replace(str(home.root), "<home>")
    out["default/summary"] = _sha(text.encode())
    return out


def _season(work: Path) -> dict[str, str]:
    from alphaloop.home import LabHome
    from arena.day import LocalAccounts
    from arena.market import load_arena_data
    from arena.personas import load_arena_config
    from arena.season import closed_loop, replay_season

    home = LabHome(work / "season").ensure()
    config = load_arena_config()
    data = load_arena_data(SEASON_SPEC, home)
    accounts = LocalAccounts(home, config, data.rules())
    try:
        summary = replay_season(
            accounts, data, *SEASON, home=home, config=config, evolve_weekday=None,
            close=closed_loop(home, data),
        )  # fmt: skip
    finally:
        accounts.close()
    out = _tables(home.ledger_db, "season/ledger")
    out |= _tables(home.gene_pool_db, "season/gene_pool")
    out |= _tables(home.memory_db, "season/memory")
    out |= _tables(home.root / "adjustments.sqlite", "season/adjustments")
    out |= _files(home.root, home.root / "runs", "season/runs")
    text = json.dumps(summary, sort_keys=True, default=str).replace(str(home.root), "<home>")
    out["season/summary"] = _sha(text.encode())
    return out


def _stress(work: Path) -> dict[str, str]:
    from alphaloop.home import LabHome
    from arena.stress import replay

    home = LabHome(work / "stress").ensure()
    result = replay(list(STRESS), home=home, size="small", seed=0, run_date=STRESS_DATE,
                    track=False)  # fmt: skip
    text = json.dumps(result, sort_keys=True, default=str).replace(str(home.root), "<home>")
    out = {"stress/result": _sha(text.encode())}
    out |= _files(home.root, home.root / "stress", "stress/files")
    return out


def outputs(work: Path) -> dict[str, Any]:
    """Run the three paths under ``work`` and return their digests (see the module doc)."""
    return {**_default_day(work), **_season(work), **_stress(work)}


if __name__ == "__main__":
    import tempfile

    sys.path.insert(0, str(ROOT))
    with tempfile.TemporaryDirectory() as folder:
        digests = outputs(Path(folder))
    FIXTURE.parent.mkdir(parents=True, exist_ok=True)
    FIXTURE.write_text(json.dumps(digests, indent=1, sort_keys=True) + "\n")
    print(f"{len(digests)} digests -> {FIXTURE}")

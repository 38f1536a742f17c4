"""``alphaloop pool approve|reject|pause|resume``: stored acts, and one error line on bad input."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from alphaloop.home import LabHome
from evolution.engine import EvolutionConfig
from evolution.refine import RefineConfig
from evolution.session import EvolutionSession, SessionConfig
from evolution.store import GenePoolStore, TransitionRecord
from simulators.synthetic import SyntheticSpec, generate_daily


def _cli(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "ALPHALOOP_HOME": str(home)}
    return subprocess.run(
        [sys.executable, "-m", "alphaloop.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )


def _dump(home: Path) -> list[tuple]:
    conn = sqlite3.connect(home / "gene_pool.sqlite")
    rows = conn.execute("SELECT genome_id, status, paused FROM genomes ORDER BY genome_id")
    out = [*rows.fetchall(), *conn.execute("SELECT * FROM transitions").fetchall()]
    conn.close()
    return out


@pytest.fixture(scope="module")
def pool_home(tmp_path_factory) -> tuple[Path, list[str]]:
    """A real pool of 8 genomes; two are made candidates as the gate would (system moves)."""
    root = tmp_path_factory.mktemp("pool-home")
    panel = generate_daily(SyntheticSpec(seed=5, assets=5, start="2020-01-01", end="2023-12-29"))
    config = SessionConfig(
        evolution=EvolutionConfig(population=8, immigrants=2), refine=RefineConfig(top=0)
    )
    session = EvolutionSession(
        home=LabHome(root), panel=panel, data_spec="synthetic:seed=5", as_of="2023-12-29",
        seed=1, config=config, workers=0, track=False,
    )  # fmt: skip
    try:
        session.run(1)
    finally:
        session.close()
    with GenePoolStore(root / "gene_pool.sqlite") as store:
        alive = [g["genome_id"] for g in store.list_genomes("alive")]
        others = [g["genome_id"] for g in store.list_genomes() if g["genome_id"] not in alive]
        for gid in alive[:2]:
            store.transition(
                TransitionRecord(
                    genome_id=gid, from_status="alive", to_status="candidate", reason="gate"
                )
            )
    # Two candidates, then a genome that never passed the gate (alive or culled).
    return root, [*alive[:2], *(alive[2:] + others)[:1]]


def _home_copy(pool_home, tmp_path: Path) -> Path:
    root, _ = pool_home
    target = tmp_path / "home"
    shutil.copytree(root, target)
    return target


def test_pool_approve_moves_a_candidate_to_probation_with_who_and_why(pool_home, tmp_path):
    home = _home_copy(pool_home, tmp_path)
    candidate = pool_home[1][0]
    done = _cli(
        "pool", "approve", candidate[:10], "--by", "alice", "--reason", "looks sane", "--json",
        home=home,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert (result["from_status"], result["status"], result["actor"]) == (
        "candidate",
        "probation",
        "alice",
    )
    shown = json.loads(_cli("pool", "show", candidate, "--json", home=home).stdout)
    last = shown["transitions"][-1]
    assert (last["to_status"], last["actor"], last["reason"]) == (
        "probation",
        "alice",
        "looks sane",
    )
    listed = json.loads(_cli("pool", "list", "--status", "probation", "--json", home=home).stdout)
    assert [g["genome_id"] for g in listed] == [candidate]


def test_pool_reject_retires_and_a_retired_genome_cannot_be_paused(pool_home, tmp_path):
    home = _home_copy(pool_home, tmp_path)
    candidate = pool_home[1][1]
    done = _cli("pool", "reject", candidate, "--reason", "too concentrated", home=home)
    assert done.returncode == 0, done.stderr
    before = _dump(home)
    refused = _cli("pool", "pause", candidate, home=home)
    assert refused.returncode == 2
    lines = refused.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")
    assert candidate in lines[0] and "retired" in lines[0]
    assert _dump(home) == before


def test_pool_pause_and_resume_take_a_genome_out_of_trading_and_back(pool_home, tmp_path):
    home = _home_copy(pool_home, tmp_path)
    candidate = pool_home[1][0]
    assert _cli("pool", "approve", candidate, home=home).returncode == 0
    paused = _cli("pool", "pause", candidate, "--reason", "odd fills", "--json", home=home)
    assert json.loads(paused.stdout)["paused"] is True
    resumed = _cli("pool", "resume", candidate, "--json", home=home)
    assert json.loads(resumed.stdout)["paused"] is False
    before = _dump(home)
    again = _cli("pool", "resume", candidate, home=home)
    assert again.returncode == 2 and "is not paused" in again.stderr and candidate in again.stderr
    assert _dump(home) == before


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("approve", "ffffffffffff"), "ffffffffffff"),
        (("approve", ""), "needs a genome id"),  # an empty prefix would match every genome
        (("approve", "ALIVE"), "never passed the promotion gate"),
        (("reject", "ALIVE", "--reason", "no"), "applies to candidate"),
        (("reject", "CANDIDATE", "--reason", " "), "--reason"),
    ],
)
def test_pool_bad_acts_exit_2_with_one_line_and_store_nothing(pool_home, tmp_path, args, needle):
    home = _home_copy(pool_home, tmp_path)
    alive = pool_home[1][2]
    candidate = pool_home[1][0]
    args = tuple(alive if a == "ALIVE" else candidate if a == "CANDIDATE" else a for a in args)
    needle = alive if needle == "ALIVE" else needle
    before = _dump(home)
    refused = _cli("pool", *args, home=home)
    assert refused.returncode == 2, refused.stdout
    lines = refused.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and needle in lines[0]
    if args[0] == "approve" and args[1] == alive:
        assert alive in lines[0]
    assert _dump(home) == before


def test_pool_feedback_lists_the_records_and_export_writes_the_catalog(pool_home, tmp_path):
    from evolution.feedback import DayFigures, summarise

    home = _home_copy(pool_home, tmp_path)
    genome = pool_home[1][0]
    days = [
        DayFigures(day="2023-12-04", allocation=1000.0, pnl=12.0, avg_slippage_bps=3.0),
        DayFigures(day="2023-12-05", allocation=1000.0, pnl=-2.0, order_reject_count=1),
    ]
    record = summarise(genome, "aggressive", days, periods_per_year=252.0, config_hash="cfg")
    with GenePoolStore(home / "gene_pool.sqlite") as store:
        store.write_feedback([record])
    shown = _cli("pool", "feedback", genome[:8], "--json", home=home)
    assert shown.returncode == 0, shown.stderr
    payload = json.loads(shown.stdout)
    assert payload["genome_id"] == genome and len(payload["records"]) == 1
    row = payload["records"][0]
    assert (row["period_start"], row["period_end"], row["days"]) == ("2023-12-04", "2023-12-05", 2)
    assert row["total_return"] == pytest.approx(1.012 * 0.998 - 1.0)
    assert row["order_reject_count"] == 1 and row["config_hash"] == "cfg"
    other = _cli("pool", "feedback", pool_home[1][1], "--json", home=home)
    assert json.loads(other.stdout)["records"] == []
    out = tmp_path / "export"
    assert _cli("pool", "export", "--out", str(out), home=home).returncode == 0
    catalog = json.loads((out / "feedback.json").read_text())
    assert catalog["kind"] == "alphaloop.feedback_catalog" and catalog["schema_version"] == 1
    assert [r["genome_id"] for r in catalog["records"]] == [genome]


def test_pool_feedback_on_an_empty_pool_or_unknown_id_exits_2(pool_home, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    GenePoolStore(empty / "gene_pool.sqlite").close()
    refused = _cli("pool", "feedback", home=empty)
    lines = refused.stderr.strip().splitlines()
    assert refused.returncode == 2 and len(lines) == 1 and "empty" in lines[0]
    home = _home_copy(pool_home, tmp_path)
    unknown = _cli("pool", "feedback", "ffffffffffff", home=home)
    assert unknown.returncode == 2 and "ffffffffffff" in unknown.stderr


HOLD_POOL = """
import sys, time
from pathlib import Path
from alphaloop.home import LabHome
from alphaloop.locks import store_lock
with store_lock(LabHome(Path(sys.argv[1])), "gene_pool", purpose="an evolution"):
    print("held", flush=True)
    time.sleep(120)
"""


def test_pool_act_waits_for_the_pools_writer_and_past_the_timeout_stores_nothing(
    pool_home, tmp_path
):
    home = _home_copy(pool_home, tmp_path)
    candidate = pool_home[1][0]
    before = _dump(home)
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_POOL, str(home)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        env = {**os.environ, "ALPHALOOP_HOME": str(home), "ALPHALOOP_LOCK_TIMEOUT": "0.3"}
        done = subprocess.run(
            [sys.executable, "-m", "alphaloop.cli", "pool", "approve", candidate],
            capture_output=True, text=True, env=env, timeout=300,
        )  # fmt: skip
        errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
        assert done.returncode == 2 and len(errors) == 1
        assert "gene_pool store" in errors[0] and "an evolution" in errors[0]
        assert _dump(home) == before
    finally:
        holder.kill()
        holder.wait(timeout=60)
    # Control: with the writer gone the same act is stored.
    done = _cli("pool", "approve", candidate, home=home)
    assert done.returncode == 0, done.stderr
    assert _dump(home) != before

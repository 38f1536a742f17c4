"""The experience memory (issue 15 item 2): store, forgetting, retrieval without look-ahead,
the quant view's citation and the judge's memory rule, the CLI."""

from __future__ import annotations

import json
import math
import sqlite3
import sys
from datetime import date, timedelta
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from alphaloop import cli_memory
from alphaloop.home import LabHome
from arena.debate import DebateConfig, DebateRecord, RegimeStats, TargetPosition, run_debate
from arena.memory import (
    SCHEMA_VERSION,
    Episode,
    MemoryStore,
    MemoryStoreError,
    account_contrast,
    importance,
    nearest_days,
)
from arena.perceive import AssetRisk, Perception

sys.path.insert(0, str(Path(__file__).resolve().parent))
from perceptions import perception

DAY = date(2024, 3, 5)
EQUITY = 1_000_000.0
GOOD_STATS = {"g1": {"bull": RegimeStats(trades=120, win_rate=0.56, expected_return=0.008)}}


def _context(trend: float, vol: float = 0.15, rank: float = 0.4, breadth: float = 0.6) -> dict:
    return {
        "trend_return": trend, "index_volatility": vol, "vol_percentile": rank,
        "breadth": breadth,
    }  # fmt: skip


def _day_episode(day: date, context: dict, styles: dict[str, float], *, tag: str = "") -> Episode:
    ret = sum(styles.values()) / max(len(styles), 1)
    return Episode(
        episode_id=f"d-{day.isoformat()}{tag}",
        kind="day",
        day=day,
        known=day,
        account="arena",
        regime="bull",
        style=None,
        genome_id=None,
        context=context,
        outcome={"return": ret, "styles": styles},
        importance=importance(max(abs(v) for v in styles.values()) if styles else 0.0),
    )


def _perception(trend: float = 0.12) -> Perception:
    asset = AssetRisk(
        symbol="A", last_close=50.0, volatility=0.10, drawdown=0.01, max_drawdown=0.05,
        avg_volume=2e7, avg_turnover=1e9, tradable=True,
    )  # fmt: skip
    return perception(asset, trend=trend, day=DAY.isoformat())


def _proposal(style: str = "breakout") -> tuple[TargetPosition, ...]:
    return (TargetPosition(symbol="A", weight=0.05, genome_id="g1", style=style),)


def _past(n: int, value: float, style: str = "breakout") -> list[Episode]:
    return [
        _day_episode(DAY - timedelta(days=k + 1), _context(0.12 + 0.001 * k), {style: value})
        for k in range(n)
    ]


# --------------------------------------------------------------------------- the store
def test_memory_store_round_trips_episodes_and_reopens(tmp_path: Path) -> None:
    path = tmp_path / "memory.sqlite"
    episode = _day_episode(DAY, _context(0.1), {"trend": 0.01})
    with MemoryStore(path) as store:
        assert store.schema_version() == SCHEMA_VERSION
        store.write_day(DAY, [episode])
        assert store.is_recorded(DAY)
    with MemoryStore(path) as store:
        assert store.episodes() == [episode]
        assert store.episode(episode.episode_id) == episode
        assert store.episode("nope") is None


def test_memory_store_refuses_a_newer_schema_and_leaves_it(tmp_path: Path) -> None:
    path = tmp_path / "memory.sqlite"
    MemoryStore(path).close()
    conn = sqlite3.connect(path)
    conn.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    conn.commit()
    conn.close()
    with pytest.raises(MemoryStoreError, match="schema version 99"):
        MemoryStore(path)
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT value FROM meta").fetchone()[0] == "99"
    conn.close()


def test_memory_store_failed_write_keeps_the_days_episodes(tmp_path: Path) -> None:
    path = tmp_path / "memory.sqlite"
    first = _day_episode(DAY, _context(0.1), {"trend": 0.01})
    with MemoryStore(path) as store:
        store.write_day(DAY, [first])
        # Two episodes with one id: the insert fails inside the day's transaction.
        clash = _day_episode(DAY, _context(0.2), {"trend": 0.02})
        with pytest.raises(sqlite3.IntegrityError):
            store.write_day(DAY, [clash, clash])
        assert store.episodes() == [first]


def test_memory_forgetting_drops_the_least_retained_first(tmp_path: Path) -> None:
    old_dull = _day_episode(DAY - timedelta(days=400), _context(0.1), {"trend": 0.0001})
    old_vivid = _day_episode(DAY - timedelta(days=399), _context(0.1), {"trend": 0.05})
    recent_dull = _day_episode(DAY - timedelta(days=1), _context(0.1), {"trend": 0.0001})
    newest = _day_episode(DAY, _context(0.1), {"trend": 0.001})
    with MemoryStore(tmp_path / "memory.sqlite") as store:
        for episode in (old_dull, old_vivid, recent_dull):
            store.write_day(episode.day, [episode], capacity=3, half_life_days=365.0)
        assert len(store.episodes()) == 3  # at capacity: nothing forgotten yet
        forgotten = store.write_day(DAY, [newest], capacity=3, half_life_days=365.0)
        kept = {e.episode_id for e in store.episodes()}
    assert forgotten == 1
    # The old dull one goes; the old vivid one outlives the recent dull one (control: age
    # alone would have dropped old_vivid before recent_dull).
    assert kept == {old_vivid.episode_id, recent_dull.episode_id, newest.episode_id}


# --------------------------------------------------------------------------- retrieval
def test_nearest_days_never_sees_an_outcome_known_on_or_after_the_day() -> None:
    past = _past(6, -0.01)
    today = _day_episode(DAY, _context(0.12), {"breakout": 0.05}, tag="today")
    future = _day_episode(DAY + timedelta(days=3), _context(0.12), {"breakout": 0.05})
    pool = [*past, today, future]
    found = nearest_days(pool, _context(0.12), DAY, k=3)
    assert all(n.episode.known < DAY for n in found) and len(found) == 3
    # Control: asked from a later day, the same pool's nearest ones are the later, identical
    # contexts: the date filter is what kept them out.
    later = nearest_days(pool, _context(0.12), DAY + timedelta(days=10), k=2)
    assert {n.episode.episode_id for n in later} == {today.episode_id, future.episode_id}
    assert later[0].distance == 0.0


def test_nearest_days_standardises_each_feature() -> None:
    # Breadth varies a lot in absolute terms, trend very little; after standardisation a
    # one-sd difference counts the same on both.
    base = DAY - timedelta(days=30)
    pool = [
        _day_episode(
            base + timedelta(days=k),
            _context(0.10 + 0.001 * (k % 3), breadth=0.2 + 0.3 * (k % 2)),
            {"trend": 0.0},
            tag=str(k),
        )
        for k in range(12)
    ]
    query = _context(0.101, breadth=0.2)
    found = nearest_days(pool, query, DAY, k=12)
    distances = [n.distance for n in found]
    assert distances == sorted(distances)
    exact = [n for n in found if n.distance == 0.0]
    assert exact and all(
        n.episode.context["trend_return"] == 0.101 and n.episode.context["breadth"] == 0.2
        for n in exact
    )


# --------------------------------------------------------------------------- the debate
def test_quant_view_cites_the_similar_days_with_figures() -> None:
    record = run_debate(
        proposal=_proposal(), perception=_perception(), backtest_stats=GOOD_STATS,
        equity=EQUITY, memory=_past(12, -0.018),
    )  # fmt: skip
    memory = record.quant.memory
    assert memory is not None and len(memory.days) == 12 and memory.sample_days == 12
    assert memory.styles[0].style == "breakout"
    assert memory.styles[0].mean_return == pytest.approx(-0.018)
    assert "in the 12 most similar days, breakout entries returned -1.80% on average" in (
        record.quant.message
    )


def _contrasted(similar: float, usual: float, *, n_similar: int = 12, n_usual: int = 24):
    """``n_similar`` past days like today's returning ``similar`` and ``n_usual`` unlike it
    (a far trend and volatility) returning ``usual``: the similar ones are the 12 recalled."""
    near = _past(n_similar, similar)
    far = [
        _day_episode(
            DAY - timedelta(days=40 + k), _context(-0.2 - 0.001 * k, vol=0.4), {"breakout": usual}
        )
        for k in range(n_usual)
    ]
    return [*near, *far]


def test_judge_resizes_by_the_contrast_of_similar_days_with_all_past_days() -> None:
    common = {
        "proposal": _proposal(), "perception": _perception(), "backtest_stats": GOOD_STATS,
        "equity": EQUITY,
    }  # fmt: skip
    blank = run_debate(**common)
    assert blank.verdict == "execute" and blank.scale == 1.0
    # 12 similar days at -0.2%, 24 other days at +0.2%: the baseline is the mean of all 36,
    # (12 x -0.002 + 24 x 0.002) / 36 = +0.000667, the contrast -0.002667, and the baseline
    # sd sqrt(0.002^2 - 0.000667^2) = 0.001886 gives t = -0.002667 / (0.001886 / sqrt 12)
    # = -4.9; factor = 1 - 0.002667 / 0.01 (the tolerance) = 0.7333.
    losing = run_debate(**common, memory=_contrasted(-0.002, +0.002))
    memory = losing.quant.memory
    assert memory is not None and memory.sample_days == 12
    assert memory.contrast == pytest.approx(-0.002 - 0.002 / 3)
    assert memory.t_stat == pytest.approx(
        -(0.008 / 3) / (math.sqrt(0.002**2 - (0.002 / 3) ** 2) / math.sqrt(12))
    )
    assert losing.verdict == "reduce"
    assert losing.scale == pytest.approx(1 - (0.008 / 3) / 0.01)
    assert losing.confidence == pytest.approx(blank.confidence * (1 - (0.008 / 3) / 0.01))
    assert "memory" in losing.rule and "against all past days" in losing.rule
    # Control: the same similar days when every past day returned the same say nothing new
    # (contrast 0): the unconditional edge is not the memory's to judge.
    same = run_debate(**common, memory=_past(36, -0.002))
    assert (same.verdict, same.scale, same.confidence) == (
        blank.verdict, blank.scale, blank.confidence,
    )  # fmt: skip
    deep = run_debate(**common, memory=_contrasted(-0.05, +0.05))
    assert deep.scale == pytest.approx(DebateConfig().memory_floor)
    # Control: worse than usual but still paying on the similar days: no cut.
    paying = run_debate(**common, memory=_contrasted(+0.001, +0.005))
    assert paying.quant.memory is not None and paying.quant.memory.contrast < 0
    assert abs(paying.quant.memory.t_stat) >= 1.0
    assert (paying.verdict, paying.scale) == (blank.verdict, blank.scale)


def test_judge_grows_a_reduced_proposal_on_a_better_than_usual_memory_up_to_its_size() -> None:
    # A proposal the judge reduces (a concentrated name: concentration objection).
    common = {
        "proposal": (TargetPosition(symbol="A", weight=0.40, genome_id="g1", style="breakout"),),
        "perception": _perception(), "backtest_stats": GOOD_STATS, "equity": EQUITY,
        "config": DebateConfig(max_rounds=0),
    }  # fmt: skip
    blank = run_debate(**common)
    assert blank.verdict == "reduce" and 0 < blank.scale < 1
    # +0.2% on similar days, -0.2% usually: contrast +0.002667, factor 1.2667.
    better = run_debate(**common, memory=_contrasted(+0.002, -0.002))
    assert better.scale == pytest.approx(min(1.0, blank.scale * (1 + (0.008 / 3) / 0.01)))
    assert better.confidence == blank.confidence and better.verdict == "reduce"
    # At most memory_cap times, and never above the proposal's size.
    best = run_debate(**common, memory=_contrasted(+0.05, -0.05))
    assert best.scale == pytest.approx(blank.scale * DebateConfig().memory_cap)
    wide = {**common, "config": DebateConfig(max_rounds=0, memory_cap=10.0)}
    assert run_debate(**wide, memory=_contrasted(+0.05, -0.05)).scale == 1.0
    # Control: better than usual but still losing on the similar days: no growth.
    still_losing = run_debate(**common, memory=_contrasted(-0.001, -0.005))
    assert still_losing.scale == blank.scale
    # Control: a contrast inside the noise (|t| < memory_min_t) changes nothing.
    noisy = [
        *_contrasted(+0.0001, 0.0, n_usual=12),
        *[
            _day_episode(DAY - timedelta(days=80 + k), _context(-0.3, vol=0.5),
                         {"breakout": 0.05 if k % 2 else -0.05})
            for k in range(12)
        ],
    ]  # fmt: skip
    quiet = run_debate(**common, memory=noisy)
    assert quiet.quant.memory is not None and abs(quiet.quant.memory.t_stat) < 1.0
    assert quiet.scale == blank.scale


def test_judge_ignores_memory_from_the_decision_day_and_later() -> None:
    common = {
        "proposal": _proposal(), "perception": _perception(), "backtest_stats": GOOD_STATS,
        "equity": EQUITY,
    }  # fmt: skip
    blank = run_debate(**common)
    # Twelve losing days, all known on the decision day or after it.
    future = [
        _day_episode(DAY + timedelta(days=k), _context(0.12), {"breakout": -0.01}, tag=str(k))
        for k in range(12)
    ]
    record = run_debate(**common, memory=future)
    assert record.quant.memory is not None and record.quant.memory.days == ()
    assert (record.verdict, record.scale) == (blank.verdict, blank.scale)
    # Control: the same outcomes a day earlier (with unlike days that did better) do shrink
    # the verdict.
    shifted = [
        _day_episode(DAY - timedelta(days=k + 1), _context(0.12), {"breakout": -0.01}, tag=str(k))
        for k in range(12)
    ] + _contrasted(-0.01, +0.01)[12:]
    assert run_debate(**common, memory=shifted).scale < blank.scale


def test_judge_needs_enough_similar_days_of_the_proposals_styles() -> None:
    common = {
        "proposal": _proposal(), "perception": _perception(), "backtest_stats": GOOD_STATS,
        "equity": EQUITY,
    }  # fmt: skip
    # Recalled with k = 6: the 4 similar breakout days and 2 days on which only another
    # style traded; 24 unlike breakout days did better. 4 < memory_min_days = 5.
    memory = [
        *_past(4, -0.01),
        *[
            _day_episode(DAY - timedelta(days=20 + k), _context(0.2), {"defensive": 0.0})
            for k in range(2)
        ],
        *_contrasted(-0.01, +0.01)[12:],
    ]
    few = run_debate(**common, memory=memory, config=DebateConfig(memory_k=6, memory_min_days=5))
    assert few.quant.memory is not None and few.quant.memory.sample_days == 4
    other_style = run_debate(**common, memory=_past(12, -0.01, style="defensive"))
    assert few.verdict == other_style.verdict == "execute"
    assert other_style.quant.memory is not None and other_style.quant.memory.sample_days == 0
    # Control: asked for 4 days, the same memory is used.
    enough = run_debate(**common, memory=memory, config=DebateConfig(memory_k=6, memory_min_days=4))
    assert enough.verdict == "reduce"


def test_debate_record_with_memory_round_trips_and_old_records_load() -> None:
    record = run_debate(
        proposal=_proposal(), perception=_perception(), backtest_stats=GOOD_STATS,
        equity=EQUITY, memory=_past(8, -0.001),
    )  # fmt: skip
    assert DebateRecord.from_dict(json.loads(json.dumps(record.to_dict()))) == record
    old = record.to_dict()
    for key in ("rounds", "revised", "judge_weights"):
        old.pop(key)
    old["quant"].pop("memory")
    restored = DebateRecord.from_dict(old)
    assert restored.rounds == () and restored.quant.memory is None


# --------------------------------------------------------------------------- the CLI
def _app() -> typer.Typer:
    app = typer.Typer()
    app.add_typer(cli_memory.app, name="memory")
    return app


def _fill(home: LabHome) -> list[Episode]:
    episodes = _past(3, -0.01)
    trade = Episode(
        episode_id="t-abc", kind="trade", day=DAY - timedelta(days=3),
        known=DAY - timedelta(days=1), account="aggressive", regime="high_vol",
        style="breakout", genome_id="g1", context=_context(0.1), outcome={"return": -0.03},
        importance=importance(-0.03),
    )  # fmt: skip
    with MemoryStore(home.memory_db) as store:
        for episode in episodes:
            extra = [trade] if episode.known == trade.known else []
            store.write_day(episode.known, [episode, *extra])
    return [*episodes, trade]


def test_cli_memory_search_filters_and_show_prints_one(lab_home: LabHome) -> None:
    _fill(lab_home)
    runner = CliRunner()
    result = runner.invoke(_app(), ["memory", "search", "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["count"] == 4
    found = runner.invoke(_app(), ["memory", "search", "--style", "breakout", "--json"])
    assert [e["episode_id"] for e in json.loads(found.stdout)["episodes"]] == ["t-abc"]
    regime = runner.invoke(_app(), ["memory", "search", "--regime", "bull", "--json"])
    assert json.loads(regime.stdout)["count"] == 3
    shown = runner.invoke(_app(), ["memory", "show", "t-abc", "--json"])
    assert shown.exit_code == 0
    assert json.loads(shown.stdout)["outcome"]["return"] == -0.03


@pytest.mark.parametrize(
    ("args", "what"),
    [
        (("search", "--regime", "sideways"), "--regime 'sideways'"),
        (("search", "--style", "momentum"), "--style 'momentum'"),
        (("show", "d-nope"), "no such episode"),
    ],
)
def test_cli_memory_bad_query_is_one_error_line_and_exit_2(
    lab_home: LabHome,
    args: tuple[str, ...],
    what: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from alphaloop import cli

    _fill(lab_home)
    before = lab_home.memory_db.read_bytes()
    # Through the console entry point, which turns a user mistake into exit status 2.
    monkeypatch.setattr(sys, "argv", ["alphaloop", "memory", *args])
    with pytest.raises(SystemExit) as exited:
        cli.main()
    assert exited.value.code == 2
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and what in lines[0]
    assert lab_home.memory_db.read_bytes() == before


def test_cli_memory_search_on_a_home_without_memory_creates_nothing(lab_home: LabHome) -> None:
    result = CliRunner().invoke(_app(), ["memory", "search", "--json"])
    assert result.exit_code == 0 and json.loads(result.stdout)["count"] == 0
    assert not lab_home.memory_db.exists()


# --------------------------------------------------------------------------- in the arena
SPEC = "synthetic:seed=11,assets=5,start=2021-06-01,end=2023-12-31"
# Thursday, Friday and the next Monday: the Monday plans with the weights of a new week.
DAYS = (date(2023, 5, 25), date(2023, 5, 26), date(2023, 5, 29))


def _arena_days(root: Path) -> LabHome:
    from arena.day import LocalAccounts, run_arena_day
    from arena.market import load_arena_data
    from arena.personas import load_arena_config

    home = LabHome(root).ensure()
    config = load_arena_config()
    data = load_arena_data(SPEC, home)
    accounts = LocalAccounts(home, config, data.rules())
    try:
        for day in DAYS:
            run_arena_day(accounts, data, day, home=home, config=config, write_report=False)
    finally:
        accounts.close()
    return home


def _store_rows(path: Path) -> dict[str, list[tuple]]:
    conn = sqlite3.connect(path)
    try:
        return {
            table: sorted(conn.execute(f"SELECT * FROM {table}").fetchall(), key=repr)
            for table in ("episodes", "recorded_days", "judge_weights", "meta")
        }
    finally:
        conn.close()


def test_arena_days_write_episodes_recall_only_earlier_days_and_replay_the_same(
    tmp_path: Path,
) -> None:
    from arena.ledger import Ledger

    home = _arena_days(tmp_path / "first")
    with MemoryStore(home.memory_db) as store:
        days = store.episodes(kind="day")
        weights = store.judge_weights()
    assert [e.day for e in days] == list(DAYS)
    assert all(e.context["trend_return"] is not None for e in days)
    assert all(e.outcome["accounts"].keys() == {"aggressive", "conservative", "synthesis"}
               for e in days)  # fmt: skip
    # Two ISO weeks, two weights; the second from the first week's records.
    assert [w.effective_from for w in weights] == [date(2023, 5, 22), date(2023, 5, 29)]
    assert weights[1].basis["week"] == ["2023-05-22", "2023-05-28"]
    with Ledger(home.ledger_db) as ledger:
        chains = {
            day: next(iter(ledger.decisions("synthesis", day).values()))["debate"] for day in DAYS
        }
    assert any(debate is not None for debate in chains.values())
    for day, debate in chains.items():
        if debate is None:
            continue
        recalled = debate["quant"]["memory"]["days"]
        assert all(date.fromisoformat(d) < day for d in recalled)
        assert len(recalled) == sum(1 for d in DAYS if d < day)
        assert debate["rounds"] and debate["judge_weights"]["aggressive"] == pytest.approx(
            weights[0 if day < date(2023, 5, 29) else 1].aggressive
        )
    # Determinism: the same days in a fresh home give the same memory and weights.
    again = _arena_days(tmp_path / "second")
    assert _store_rows(again.memory_db) == _store_rows(home.memory_db)


def test_remember_day_restores_a_lost_memory_from_the_ledger(tmp_path: Path) -> None:
    from arena.bootstrap import arena_genomes
    from arena.day import remember_day

    home = _arena_days(tmp_path / "home")
    before = _store_rows(home.memory_db)["episodes"]
    assert before
    home.memory_db.unlink()
    # The last day's write brings back every committed day the memory lacks, in order.
    assert remember_day(home, DAYS[-1], genomes=arena_genomes(home), force=False) == len(DAYS)
    assert _store_rows(home.memory_db)["episodes"] == before
    # Control: nothing is written twice.
    assert remember_day(home, DAYS[-1], genomes=arena_genomes(home), force=False) == 0


def test_account_contrast_compares_the_similar_days_with_every_past_day() -> None:
    def day(k: int, context: dict, value: float) -> Episode:
        episode = _day_episode(DAY - timedelta(days=k + 1), context, {"trend": value}, tag="a")
        return Episode.from_dict(
            {**episode.to_dict(), "outcome": {"return": value, "accounts": {"aggressive": value}}}
        )

    near = [day(k, _context(0.12), -0.01) for k in range(3)]
    far = [day(10 + k, _context(-0.3, vol=0.5), 0.02) for k in range(6)]
    # A day known on the decision day is never counted (its outcome is tomorrow's news).
    late = Episode.from_dict({**near[0].to_dict(), "episode_id": "late", "day": DAY.isoformat(),
                              "known": DAY.isoformat()})  # fmt: skip
    found = account_contrast([*near, *far, late], _context(0.12), DAY, 3, ["aggressive"])[
        "aggressive"
    ]
    assert found is not None
    assert (found.days, found.baseline_days) == (3, 9)
    assert found.similar == pytest.approx(-0.01)
    assert found.baseline == pytest.approx((3 * -0.01 + 6 * 0.02) / 9)
    sd = math.sqrt((3 * (-0.01 - 0.01) ** 2 + 6 * (0.02 - 0.01) ** 2) / 9)
    assert found.baseline_sd == pytest.approx(sd)
    assert found.t_stat == pytest.approx((-0.01 - 0.01) / (sd / math.sqrt(3)))
    assert found.worse_than_usual(min_days=3, min_t=1.0)
    assert not found.worse_than_usual(min_days=4, min_t=1.0)  # control: too few days
    # Control: an account the memory does not hold has no contrast.
    assert account_contrast([*near, *far], _context(0.12), DAY, 3, ["conservative"]) == {
        "conservative": None
    }

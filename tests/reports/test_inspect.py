"""The inspection notebooks' helpers (reports.inspect) on a tiny tracked evolution session."""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from alphaloop.home import LabHome
from evolution.engine import EvolutionConfig
from evolution.operators import immigrants
from evolution.refine import RefineConfig
from evolution.session import EvolutionSession, SessionConfig
from evolution.store import GenePoolStore, MemberRecord, TransitionRecord
from genome.genes import Exits, FixedFraction, Genome, MACross
from reports import inspect as ri
from simulators.bars import Panel
from simulators.data_spec import load_market
from simulators.synthetic import SyntheticSpec, generate_daily

DATA = "synthetic:seed=5,assets=4,start=2021-01-01,end=2023-12-29"
AS_OF = "2023-12-29"
GENERATIONS = 2


@pytest.fixture(scope="module")
def evolved(tmp_path_factory: pytest.TempPathFactory) -> tuple[LabHome, str]:
    home = LabHome(tmp_path_factory.mktemp("inspect-home"))
    panel = load_market(DATA, home=home)
    session = EvolutionSession(
        home=home,
        panel=panel,
        data_spec=DATA,
        as_of=AS_OF,
        seed=3,
        config=SessionConfig(
            evolution=EvolutionConfig(population=10, immigrants=2),
            refine=RefineConfig(top=1, trials=2),
        ),
        workers=0,
        track=True,
    )
    try:
        summary = session.run(GENERATIONS)
    finally:
        session.close()
    return home, str(summary["session_id"])


def _parents_by_id(home: LabHome, session_id: str) -> dict[str, tuple[str, ...]]:
    with GenePoolStore(home.gene_pool_db) as store:
        last = store.last_generation(session_id)
        assert last is not None
        out: dict[str, tuple[str, ...]] = {}
        for generation in range(last + 1):
            for member in store.population(session_id, generation):
                out[member["genome_id"]] = tuple(member["parents"])
        return out


# --------------------------------------------------------------------------- lab home / pick
def test_resolve_lab_home_missing_folder_raises_inspection_error(tmp_path: Path) -> None:
    with pytest.raises(ri.InspectionError, match="does not exist"):
        ri.resolve_lab_home(tmp_path / "nowhere")


def test_open_store_empty_lab_home_raises_naming_the_store(tmp_path: Path) -> None:
    lab = LabHome(tmp_path).ensure()
    with pytest.raises(ri.InspectionError, match="no gene pool"):
        ri.open_store(lab)
    GenePoolStore(lab.gene_pool_db).close()  # a store file without genomes
    with pytest.raises(ri.InspectionError, match="empty"):
        ri.open_store(lab)


def test_pick_genome_without_champion_returns_best_scored_alive(evolved) -> None:
    home, _ = evolved
    with GenePoolStore(home.gene_pool_db) as store:
        genomes = store.list_genomes()
        assert not [g for g in genomes if g["status"] == "champion"], "fixture has no champion"
        alive = [g for g in genomes if g["status"] == "alive"]
        top = max(g["last_score"] for g in alive)
        expected = min(g["genome_id"] for g in alive if g["last_score"] == top)
        assert ri.pick_genome(store) == expected


def _promote(store: GenePoolStore, genome_id: str, *stages: str) -> None:
    path = ("alive", *stages)
    store.transition(
        *(
            TransitionRecord(genome_id=genome_id, from_status=a, to_status=b, reason="test")
            for a, b in pairwise(path)
        )
    )


def test_pick_genome_furthest_lifecycle_stage_wins_over_a_better_score(tmp_path: Path) -> None:
    alive, probation, champion = immigrants(3, np.random.default_rng(0))
    with GenePoolStore(tmp_path / "pool.sqlite") as store:
        store.create_session(
            session_id="s",
            seed=0,
            as_of=AS_OF,
            config={},
            config_hash="c",
            data_hash="d",
            data_spec=DATA,
            code_version="test",
        )
        members = [
            MemberRecord(
                genome_id=genome.id,
                genome_json=genome.to_json(),
                description=genome.describe(),
                style=genome.style,
                parents=(),
                operator="random",
                born_generation=0,
                score=score,
                status="alive",
                overfit=False,
                low_score_streak=0,
            )
            for genome, score in ((alive, 90.0), (probation, 50.0), (champion, 10.0))
        ]
        store.commit_generation(session_id="s", generation=0, members=members, stats={})
        _promote(store, probation.id, "candidate", "probation")
        assert ri.pick_genome(store) == probation.id
        _promote(store, champion.id, "candidate", "probation", "champion")
        assert ri.pick_genome(store) == champion.id
        assert ri.pick_genome(store, alive.id[:6]) == alive.id
        with pytest.raises(ri.InspectionError, match="genome_id='zzzz'"):
            ri.pick_genome(store, "zzzz")


# --------------------------------------------------------------------------- one genome
def test_window_equity_reproduces_the_stored_window_statistics(evolved) -> None:
    home, session_id = evolved
    inspection = ri.inspect_genome(home.root)
    assert inspection.session["session_id"] == session_id
    windows = ri.window_equity(inspection)
    assert set(windows) == {"live", "year_ago"}
    stored = {
        s["window"]: s
        for s in inspection.record["stats"]
        if s["session_id"] == session_id
        and s["generation"] == max(x["generation"] for x in inspection.record["stats"])
    }
    for name, window in windows.items():
        assert len(window.equity) == inspection.config.fitness.window
        assert window.equity.index.equals(window.benchmark.index)
        assert window.metrics["total_return"] == pytest.approx(
            stored[name]["total_return"], rel=1e-12, abs=1e-12
        )
        # n_trades counts closed round trips; the trades table also lists what is still open.
        closed = window.trades[window.trades["exit_reason"] != "open"]
        assert len(closed) == stored[name]["n_trades"]
    summary = ri.window_summary(windows)
    assert list(summary.columns) == ["live", "year_ago"]


def test_gene_table_lists_each_numeric_gene_inside_its_bound(evolved) -> None:
    home, _ = evolved
    inspection = ri.inspect_genome(home.root)
    table = ri.gene_table(inspection.genome)
    assert len(table) > 0
    assert ((table["low"] <= table["value"]) & (table["value"] <= table["high"])).all()
    assert table["position"].between(0.0, 1.0).all()


def test_benchmark_equity_splits_cash_equally_and_holds() -> None:
    index = pd.date_range("2024-01-01", periods=3, freq="D", tz="UTC")
    frames = {
        "UP": pd.DataFrame({"close": [10.0, 15.0, 20.0]}, index=index),
        "FLAT": pd.DataFrame({"close": [5.0, 5.0, 5.0]}, index=index),
    }
    for frame in frames.values():
        frame["open"] = frame["high"] = frame["low"] = frame["close"]
        frame["volume"] = 1.0
    panel = Panel.from_frames(frames)
    equity = ri.benchmark_equity(panel, 1000.0)
    # Half the cash doubles, half stays: 500 * 2 + 500.
    np.testing.assert_allclose(equity, [1000.0, 1250.0, 1500.0])


def test_most_traded_symbol_counts_trades_and_breaks_ties_by_panel_order() -> None:
    trades = pd.DataFrame({"symbol": ["B", "C", "C", "B"]})
    assert ri.most_traded_symbol(trades, ["A", "B", "C"]) == "B"
    assert ri.most_traded_symbol(trades.iloc[:3], ["A", "B", "C"]) == "C"
    assert ri.most_traded_symbol(pd.DataFrame({"symbol": []}), ["A", "B"]) == "A"


def test_gate_verdict_never_judged_genome_says_so() -> None:
    verdict = ri.gate_verdict({"verdicts": []})
    assert verdict["judged"] is False and verdict["passed"] is False
    assert "never judged" in verdict["reasons"][0]


# --------------------------------------------------------------------------- lineage
def test_lineage_graph_of_every_final_member_follows_the_stored_parents(evolved) -> None:
    home, session_id = evolved
    parents = _parents_by_id(home, session_id)
    with GenePoolStore(home.gene_pool_db) as store:
        final = store.population(session_id, GENERATIONS - 1)
        bred = [m for m in final if m["parents"]]
        assert bred, "the fixture must have offspring in its last generation"
        for member in final:
            graph = ri.lineage_graph(store, member["genome_id"])
            # Walk the parents independently from the members table.
            expected: set[tuple[str, str]] = set()
            frontier = [member["genome_id"]]
            while frontier:
                child = frontier.pop()
                for parent in parents.get(child, ()):
                    if (parent, child) not in expected:
                        expected.add((parent, child))
                        frontier.append(parent)
            assert set(graph.edges) == expected
            for founder in graph.founders:
                assert parents.get(founder, ()) == ()
                assert graph.nodes[founder]["operator"] in ("random", "immigrant")
            position = ri.tree_layout(graph)
            assert position[member["genome_id"]][1] == 0.0
            for parent, child in graph.edges:
                assert position[parent][1] > position[child][1]
            assert len(set(position.values())) == len(position)


def test_tree_layout_puts_a_shared_ancestor_on_its_longest_path() -> None:
    # a -> b -> d, a -> c -> d, e -> d: a is two generations back even though e is one.
    graph = ri.LineageGraph(
        target="d",
        nodes={n: {"operator": "x", "generation": 0} for n in "abcde"},
        edges=(("a", "b"), ("a", "c"), ("b", "d"), ("c", "d"), ("e", "d")),
    )
    position = ri.tree_layout(graph)
    assert {n: position[n][1] for n in "abcde"} == {"a": 2, "b": 1, "c": 1, "d": 0, "e": 1}
    assert sorted(position[n][0] for n in "bce") == [-1.0, 0.0, 1.0]
    assert graph.founders == ("a", "e")


# --------------------------------------------------------------------------- vectorbt
@pytest.fixture(scope="module")
def one_asset_panel() -> Panel:
    return generate_daily(SyntheticSpec(seed=11, assets=2, start="2019-01-01", end="2021-12-31"))


def _simple_genome(**exits: object) -> Genome:
    return Genome(
        entry=(MACross(ma="sma", fast=10, slow=30, direction="above"),),
        exits=Exits(opposite_signal=True, **exits),  # type: ignore[arg-type]
        sizing=FixedFraction(fraction=0.8, max_positions=1),
    )


def test_vectorbt_comparison_simple_genome_final_values_agree(one_asset_panel: Panel) -> None:
    genome = _simple_genome(stop_loss=0.05, take_profit=0.12)
    symbol = one_asset_panel.symbols[1]
    result = ri.vectorbt_comparison(genome, one_asset_panel, symbol, start=100, cash=100_000.0)
    assert result.dropped == ()
    table = result.table
    assert table.loc["trades", "lab"] >= 3, "the case must trade to test anything"
    assert table.loc["trades", "difference"] == 0
    lab_final = table.loc["final value", "lab"]
    assert lab_final != pytest.approx(100_000.0)
    assert abs(table.loc["final value", "difference"]) <= 1e-9 * lab_final
    np.testing.assert_allclose(result.lab.to_numpy(), result.vectorbt.to_numpy(), rtol=1e-9)


def test_vectorbt_comparison_time_stop_is_left_out_and_listed(one_asset_panel: Panel) -> None:
    genome = _simple_genome(time_stop=5)
    symbol = one_asset_panel.symbols[0]
    result = ri.vectorbt_comparison(genome, one_asset_panel, symbol, start=100)
    assert result.dropped == ("time stop (5 bars)",)
    plain = ri.vectorbt_comparison(_simple_genome(), one_asset_panel, symbol, start=100)
    # Dropping the time stop from both runs is the same as a genome without one.
    np.testing.assert_allclose(result.lab.to_numpy(), plain.lab.to_numpy())
    assert abs(result.table.loc["final value", "difference"]) <= 1e-9 * result.lab.iloc[-1]


def test_vectorbt_comparison_unknown_symbol_raises(one_asset_panel: Panel) -> None:
    with pytest.raises(ri.InspectionError, match="'NOPE'"):
        ri.vectorbt_comparison(_simple_genome(), one_asset_panel, "NOPE")


# --------------------------------------------------------------------------- MLflow
def test_generation_table_has_one_row_per_generation_matching_the_store(evolved) -> None:
    home, session_id = evolved
    client = ri.mlflow_client(home)
    assert ri.latest_sessions(client) == [session_id]
    table = ri.generation_table(client, [session_id])
    assert list(table["generation"]) == list(range(GENERATIONS))
    with GenePoolStore(home.gene_pool_db) as store:
        history = store.generation_stats(session_id)
    for row, stats in zip(table.itertuples(index=False), history, strict=True):
        assert row.best_score == pytest.approx(stats["best_score"])
        assert row.median_score == pytest.approx(stats["median_score"])
        assert row.culled == stats["culled"]
        births = {
            c.removeprefix("births_"): getattr(row, c) for c in table.columns if "births_" in c
        }
        assert {k: v for k, v in births.items() if v} == stats["births"]
    comparison = ri.session_comparison(table)
    assert list(comparison.columns) == list(table["session"].unique())
    assert comparison.loc["generations"].iloc[0] == GENERATIONS


def test_mlflow_client_lab_without_tracking_store_raises(tmp_path: Path) -> None:
    with pytest.raises(ri.InspectionError, match="no MLflow store"):
        ri.mlflow_client(LabHome(tmp_path))

"""Evolution sessions end to end: determinism across Ray workers, resume, MLflow, store."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from alphaloop.home import LabHome
from evolution.engine import EvolutionConfig
from evolution.evaluate import truncate_to
from evolution.fitness import FitnessConfig
from evolution.gate import GateConfig
from evolution.refine import RefineConfig
from evolution.session import EvolutionSession, SessionConfig
from evolution.store import GenePoolStore
from simulators.synthetic import SyntheticSpec, generate_daily

AS_OF = "2023-12-29"


@pytest.fixture(scope="module")
def panel():
    return generate_daily(SyntheticSpec(seed=5, assets=6, start="2020-01-01", end="2024-06-28"))


def _config(population: int = 10) -> SessionConfig:
    return SessionConfig(
        evolution=EvolutionConfig(population=population, immigrants=2),
        refine=RefineConfig(top=1, trials=3),
    )


def _run(
    home: LabHome,
    panel,
    *,
    workers: int,
    generations: int,
    resume: bool = False,
    track: bool = False,
    seed: int = 11,
) -> dict:
    session = EvolutionSession(
        home=home,
        panel=panel,
        data_spec="synthetic:seed=5",
        as_of=AS_OF,
        seed=seed,
        config=_config(),
        workers=workers,
        track=track,
    )
    try:
        return session.run(generations, resume=resume)
    finally:
        session.close()


def _final_population(home: LabHome, session_id: str) -> list[tuple[str, float]]:
    with GenePoolStore(home.gene_pool_db) as store:
        last = store.last_generation(session_id)
        return [(m["genome_id"], m["score"]) for m in store.population(session_id, last)]


def _history(result: dict) -> list[tuple]:
    return [
        (g["generation"], g["best_score"], g["median_score"], g["births"], g["culled"])
        for g in result["generations"]
    ]


def test_session_same_seed_same_population_with_one_or_two_ray_workers(
    tmp_path, panel, ray_cluster
) -> None:
    one = LabHome(tmp_path / "one")
    two = LabHome(tmp_path / "two")
    first = _run(one, panel, workers=1, generations=3)
    second = _run(two, panel, workers=2, generations=3)
    assert _history(first) == _history(second)
    assert _final_population(one, first["session_id"]) == _final_population(
        two, second["session_id"]
    )


def test_session_different_seed_gives_a_different_population(tmp_path, panel) -> None:
    a = _run(LabHome(tmp_path / "a"), panel, workers=0, generations=1, seed=1)
    b = _run(LabHome(tmp_path / "b"), panel, workers=0, generations=1, seed=2)
    assert _final_population(LabHome(tmp_path / "a"), a["session_id"]) != _final_population(
        LabHome(tmp_path / "b"), b["session_id"]
    )


def test_session_crash_mid_generation_then_resume_equals_uninterrupted(
    tmp_path, panel, monkeypatch
) -> None:
    straight_home = LabHome(tmp_path / "straight")
    straight = _run(straight_home, panel, workers=0, generations=4)

    crash_home = LabHome(tmp_path / "crash")
    original = GenePoolStore.commit_generation

    def crash_on_third(self, **kwargs):
        if kwargs["generation"] == 2:
            raise KeyboardInterrupt("killed mid-generation")
        return original(self, **kwargs)

    monkeypatch.setattr(GenePoolStore, "commit_generation", crash_on_third)
    with pytest.raises(KeyboardInterrupt):
        _run(crash_home, panel, workers=0, generations=4)
    monkeypatch.setattr(GenePoolStore, "commit_generation", original)
    with GenePoolStore(crash_home.gene_pool_db) as store:
        session_id = store.latest_session()["session_id"]
        assert store.last_generation(session_id) == 1  # generations 0 and 1 survived the crash
    resumed = _run(crash_home, panel, workers=0, generations=4, resume=True)
    assert resumed["session_id"] == session_id
    assert _history(resumed) == _history(straight)
    assert _final_population(crash_home, session_id) == _final_population(
        straight_home, straight["session_id"]
    )


def test_session_logs_parent_and_nested_generation_runs_to_mlflow(tmp_path, panel) -> None:
    home = LabHome(tmp_path / "tracked")
    result = _run(home, panel, workers=0, generations=2, track=True)
    client = MlflowClient(tracking_uri=home.mlflow_uri)
    parent = client.get_run(result["mlflow_parent_run_id"])
    assert parent.data.params["seed"] == "11" and parent.data.params["config_hash"]
    children = client.search_runs(
        [result["mlflow_experiment_id"]],
        filter_string=f"tags.mlflow.parentRunId = '{parent.info.run_id}'",
    )
    assert len(children) == 2
    for child in children:
        metrics = child.data.metrics
        for key in (
            "best_score",
            "median_score",
            "diversity",
            "culled",
            "pbo",
            "dsr_best",
            "evaluations_per_second",
            "best_live_sharpe",
            "best_year_ago_sharpe",
            "best_capacity",
            "median_capacity",
        ):
            assert key in metrics, key
        assert 0.0 <= metrics["best_capacity"] <= 1.0
        artifacts = {a.path for a in client.list_artifacts(child.info.run_id)}
        assert {
            "population.parquet",
            "champions.json",
            "lineage.json",
            "fitness_trend.png",
        } <= artifacts
    history = client.get_metric_history(parent.info.run_id, "best_score")
    assert sorted(m.step for m in history) == [0, 1]
    # The capacity figure is stored with every window's statistics, as fitness read it.
    with GenePoolStore(home.gene_pool_db) as store:
        stored = store.window_stats(result["session_id"], 1)
    assert stored
    for windows in stored.values():
        assert set(windows) == {"live", "year_ago"}
        assert all(0.0 <= stats["capacity"] <= 1.0 for stats in windows.values())


def test_session_json_summary_matches_the_cli_contract(tmp_path, panel) -> None:
    result = _run(LabHome(tmp_path / "json"), panel, workers=0, generations=2)
    assert {
        "session_id",
        "generations",
        "champions",
        "mlflow_experiment_id",
        "mlflow_parent_run_id",
    } <= set(result)
    for generation in result["generations"]:
        assert {
            "generation",
            "best_score",
            "median_score",
            "diversity",
            "births",
            "culled",
            "promoted",
        } <= set(generation)
        assert sum(generation["births"].values()) > 0
    for champion in result["champions"]:
        assert {"id", "description", "live", "year_ago", "gate"} <= set(champion)
        assert {"passed", "reasons"} <= set(champion["gate"]) and champion["gate"]["reasons"]
        assert "sharpe" in champion["live"] and "sharpe" in champion["year_ago"]


# --------------------------------------------------------------------------- one living pool
# Timings: the only figures of a generation that may differ between two runs.
TIMING_KEYS = {"seconds", "evaluations_per_second"}


def _lax_config(population: int = 10) -> SessionConfig:
    """A gate that lets genomes through, so verdicts and lifecycle moves are exercised."""
    return SessionConfig(
        evolution=EvolutionConfig(
            population=population,
            immigrants=2,
            cull_min_win_rate=0.0,
            cull_min_sharpe=-10.0,
            cull_min_score=0.0,
        ),
        fitness=FitnessConfig(overfit_score_gap=100.0, overfit_sharpe=5.0),
        refine=RefineConfig(top=1, trials=3),
        gate=GateConfig(
            min_trades=5,
            min_deflated_sharpe=0.0,
            min_profit_factor_in_sample=1.0,
            min_profit_factor_out_of_sample=1.0,
            max_drawdown_vs_pool=10.0,
            max_champion_correlation=1.0,
        ),
    )


def _session(home: LabHome, panel, *, config: SessionConfig, as_of: str = AS_OF, seed: int = 11,
             track: bool = False) -> EvolutionSession:  # fmt: skip
    return EvolutionSession(
        home=home, panel=panel, data_spec="synthetic:seed=5", as_of=as_of, seed=seed,
        config=config, workers=0, track=track,
    )  # fmt: skip


def _seed_pool(home: LabHome, panel, config: SessionConfig, generations: int) -> str:
    """Run a first session as of 2023-11-01 on ``home``; return its best alive genome's id."""
    first = _session(home, panel, config=config, as_of="2023-11-01")
    try:
        first.run(generations)
    finally:
        first.close()
    with GenePoolStore(home.gene_pool_db) as store:
        return next(r["genome_id"] for r in store.living() if r["status"] == "alive")


def _store_dump(home: LabHome) -> dict[str, list]:
    """Everything the gene-pool store holds, less clocks, session ids and timings."""
    conn = sqlite3.connect(home.gene_pool_db)
    out: dict[str, list] = {}
    for table, drop in {
        "genomes": {"first_session"},
        "lineage": {"session_id"},
        "members": {"session_id"},
        "window_stats": {"session_id"},
        "generations": {"session_id", "committed_at"},
        "verdicts": {"session_id"},
        "trials": {"session_id"},
        "transitions": {"at", "session_id", "seq"},
    }.items():
        cursor = conn.execute(f"SELECT * FROM {table}")
        names = [d[0] for d in cursor.description]
        rows = []
        for row in cursor.fetchall():
            item = {k: v for k, v in zip(names, row, strict=True) if k not in drop}
            if "stats_json" in item and table == "generations":
                stats = json.loads(item["stats_json"])
                item["stats_json"] = {k: v for k, v in stats.items() if k not in TIMING_KEYS}
            rows.append(json.dumps(item, sort_keys=True, default=str))
        out[table] = sorted(rows)
    conn.close()
    return out


def _mlflow_dump(home: LabHome, experiment_id: str) -> list[dict]:
    client = MlflowClient(tracking_uri=home.mlflow_uri)
    runs = client.search_runs(
        [experiment_id], filter_string="tags.`alphaloop.kind` = 'evolution-generation'"
    )
    out = []
    for run in runs:
        artifacts = {}
        for name in ("champions.json", "lineage.json", "verdicts.json"):
            path = client.download_artifacts(run.info.run_id, name)
            artifacts[name] = json.loads(Path(path).read_text())
        frame = pd.read_parquet(client.download_artifacts(run.info.run_id, "population.parquet"))
        out.append(
            {
                "generation": run.data.tags["alphaloop.generation"],
                "status": run.info.status,
                "params": run.data.params,
                "metrics": {k: v for k, v in run.data.metrics.items() if k not in TIMING_KEYS},
                "artifacts": artifacts,
                "population": frame.to_dict("list"),
            }
        )
    return sorted(out, key=lambda r: r["generation"])


def test_session_killed_between_store_and_mlflow_resumes_to_the_uninterrupted_result(
    tmp_path, panel, monkeypatch
) -> None:
    config = _lax_config()
    # Any profit factor passes here: which genomes clear a PF of 1 depends on the market's
    # draw, and this test needs promotions (their verdicts and MLflow runs) whatever it is.
    gate = config.gate.model_copy(
        update={"min_profit_factor_in_sample": 0.0, "min_profit_factor_out_of_sample": 0.0}
    )
    config = config.model_copy(update={"gate": gate})
    straight_home = LabHome(tmp_path / "straight")
    straight = _session(straight_home, panel, config=config, track=True)
    try:
        expected = straight.run(4)
    finally:
        straight.close()
    assert sum(g["promoted"] for g in expected["generations"]) > 0  # the gate did pass some

    crash_home = LabHome(tmp_path / "crash")
    original = EvolutionSession._track

    def killed_after_commit(self, tracker, session_id, generation):
        if generation == 2:
            raise KeyboardInterrupt("killed after the store's commit, before MLflow")
        return original(self, tracker, session_id, generation)

    monkeypatch.setattr(EvolutionSession, "_track", killed_after_commit)
    crashed = _session(crash_home, panel, config=config, track=True)
    with pytest.raises(KeyboardInterrupt):
        crashed.run(4)
    crashed.close()
    monkeypatch.setattr(EvolutionSession, "_track", original)
    resumed = _session(crash_home, panel, config=config, track=True)
    try:
        result = resumed.run(4, resume=True)
    finally:
        resumed.close()
    assert _store_dump(crash_home) == _store_dump(straight_home)
    ours = _mlflow_dump(crash_home, result["mlflow_experiment_id"])
    theirs = _mlflow_dump(straight_home, expected["mlflow_experiment_id"])
    assert [r["generation"] for r in ours] == ["0", "1", "2", "3"]
    # As JSON text: NaN figures (e.g. an undefined profit factor) compare equal there.
    assert json.dumps(ours, sort_keys=True) == json.dumps(theirs, sort_keys=True)
    # The control: the dumps do tell sessions apart (another seed differs).
    other_home = LabHome(tmp_path / "other")
    other = _session(other_home, panel, config=config, seed=12)
    try:
        other.run(4)
    finally:
        other.close()
    assert _store_dump(other_home) != _store_dump(straight_home)


def test_session_on_a_home_with_a_pool_continues_its_living_population(tmp_path, panel) -> None:
    home = LabHome(tmp_path / "pool")
    config = _lax_config()
    first = _session(home, panel, config=config, as_of="2023-11-01")
    try:
        first.run(3)
    finally:
        first.close()
    with GenePoolStore(home.gene_pool_db) as store:
        living = [row["genome_id"] for row in store.living()]
        trials_before = store.trial_sharpes()[0]
    second = _session(home, panel, config=config, as_of=AS_OF, seed=99)
    try:
        result = second.run(1)
    finally:
        second.close()
    with GenePoolStore(home.gene_pool_db) as store:
        start = store.population(result["session_id"], 0)
        trials_after = store.trial_sharpes()[0]
        trading = {g["genome_id"] for g in store.list_genomes("probation")}
    ids = {m["genome_id"] for m in start}
    assert set(living[: config.evolution.population]) <= ids
    # Lineage spans sessions: mutants and hybrids of the first session are carried over.
    assert {m["operator"] for m in start} - {"random"}
    # A genome is one trial ever: the carried population adds nothing to the registry.
    conn = sqlite3.connect(home.gene_pool_db)
    by_second = {
        r[0]
        for r in conn.execute(
            "SELECT genome_id FROM trials WHERE session_id=?", (result["session_id"],)
        )
    }
    conn.close()
    assert by_second and not (by_second & set(living))
    assert trials_after - trials_before == len(by_second)
    # Probation genomes are not judged again.
    with GenePoolStore(home.gene_pool_db) as store:
        judged = {v["genome_id"] for v in store.verdicts(result["session_id"], 0)}
    assert trading and not (judged & set(living) & trading)

    # The control: an empty home starts from founders only.
    fresh_home = LabHome(tmp_path / "fresh")
    fresh = _session(fresh_home, panel, config=config, as_of=AS_OF, seed=99)
    try:
        fresh_result = fresh.run(1)
    finally:
        fresh.close()
    with GenePoolStore(fresh_home.gene_pool_db) as store:
        operators = {m["operator"] for m in store.population(fresh_result["session_id"], 0)}
    assert operators == {"random"}


def test_session_holdout_bars_never_reach_fitness_but_decide_the_gate(tmp_path, panel) -> None:
    config = _lax_config()
    cut = truncate_to(panel, AS_OF)
    n = cut.n_bars
    rng = np.random.default_rng(0)

    def perturbed(first_bar: int):
        scale = np.ones_like(cut.close)
        scale[first_bar:] = np.exp(np.cumsum(rng.normal(0.0, 0.02, scale[first_bar:].shape), 0))
        return replace(
            cut,
            open=cut.open * scale,
            high=cut.high * scale,
            low=cut.low * scale,
            close=cut.close * scale,
        )

    def scores_and_gate(data, name):
        session = _session(LabHome(tmp_path / name), data, config=config)
        try:
            result = session.run(2)
        finally:
            session.close()
        with GenePoolStore(LabHome(tmp_path / name).gene_pool_db) as store:
            scores = [
                (m["genome_id"], m["score"]) for m in store.population(result["session_id"], 1)
            ]
            figures = [
                store.genome(v["genome_id"])["verdicts"][-1]["figures"]
                for v in store.verdicts(result["session_id"], 1)
            ]
        return scores, [f["profit_factor_out_of_sample"] for f in figures]

    base_scores, base_oos = scores_and_gate(cut, "base")
    # Only the holdout (the last 60 bars) changes: selection is identical, the gate is not.
    held_scores, held_oos = scores_and_gate(perturbed(n - config.holdout), "holdout")
    assert held_scores == base_scores
    assert held_oos != base_oos
    # The control: the same change reaching into the bars fitness sees changes the scores.
    seen_scores, _ = scores_and_gate(perturbed(n - config.holdout - 30), "seen")
    assert seen_scores != base_scores


def test_session_scores_a_genome_on_its_paper_record_too(tmp_path, panel) -> None:
    from evolution.store import PaperDayRecord

    config = _lax_config()
    homes = {name: LabHome(tmp_path / name) for name in ("paper", "plain")}
    targets = {name: _seed_pool(home, panel, config, 2) for name, home in homes.items()}
    target = targets["paper"]
    assert targets["plain"] == target  # same seed, same pool
    with GenePoolStore(homes["paper"].gene_pool_db) as store:
        # Ten losing paper days (-5% and -4% by turns): Sharpe far below -0.5, drawdown over
        # 35%, no winning day, profit factor 0, so every part of its window score is 0.
        store.write_paper_days(
            [
                PaperDayRecord(
                    genome_id=target, account="aggressive", day=f"2023-11-{day:02d}",
                    allocation=10_000.0, pnl=-500.0 if day % 2 else -400.0, shadow_return=0.0,
                )
                for day in range(6, 16)
            ]
        )  # fmt: skip
    scores = {}
    for name, home in homes.items():
        second = _session(home, panel, config=config, seed=99)
        try:
            result = second.run(1)
            scores[name] = second.evaluations[target].fitness
        finally:
            second.close()
        assert result["generations"]
    plain, paper = scores["plain"], scores["paper"]
    assert plain.paper_weight == 0.0 and plain.paper_score is None
    # w = paper_weight x min(1, 10 / paper_days) = 0.5 x 0.5; a losing record scores 0.
    assert paper.paper_weight == pytest.approx(0.25) and paper.paper_score == 0.0
    assert paper.score == pytest.approx(0.75 * plain.score, abs=1e-6)


def test_session_never_carries_or_breeds_a_demoted_genome(tmp_path, panel) -> None:
    from evolution.store import TransitionRecord

    home = LabHome(tmp_path / "demoted")
    config = _lax_config()
    target = _seed_pool(home, panel, config, 2)
    with GenePoolStore(home.gene_pool_db) as store:
        store.transition(
            *(
                TransitionRecord(genome_id=target, from_status=a, to_status=b, reason="test")
                for a, b in (
                    ("alive", "candidate"),
                    ("candidate", "probation"),
                    ("probation", "demoted"),
                )
            )
        )
        assert target not in {row["genome_id"] for row in store.living()}
    second = _session(home, panel, config=config, seed=99)
    try:
        result = second.run(3)
    finally:
        second.close()
    with GenePoolStore(home.gene_pool_db) as store:
        for generation in range(3):
            members = store.population(result["session_id"], generation)
            assert target not in {m["genome_id"] for m in members}
        assert store.status_of(target) == ("demoted", False)


def test_session_on_a_pool_whose_population_died_out_is_refounded(tmp_path, panel) -> None:
    home = LabHome(tmp_path / "extinct")
    config = _lax_config()
    first = _session(home, panel, config=config, as_of="2023-11-01")
    try:
        first.run(1)
    finally:
        first.close()
    conn = sqlite3.connect(home.gene_pool_db)
    conn.execute("UPDATE genomes SET status='culled' WHERE status='alive'")
    conn.commit()
    conn.close()
    with GenePoolStore(home.gene_pool_db) as store:
        lifecycle = {row["genome_id"] for row in store.living()}
        known = {g["genome_id"] for g in store.list_genomes()}
    # The same seed: its founders are all known to the pool now, so new ones are drawn.
    second = _session(home, panel, config=config, as_of=AS_OF)
    try:
        result = second.run(1)
    finally:
        second.close()
    with GenePoolStore(home.gene_pool_db) as store:
        start = {m["genome_id"] for m in store.population(result["session_id"], 0)}
    assert len(start) == config.evolution.population
    assert lifecycle <= start and not ((start - lifecycle) & known)


def test_gate_out_of_sample_takes_the_weaker_of_holdout_and_paper_record(tmp_path, panel) -> None:
    from evolution.evaluate import HoldoutEvaluator
    from evolution.store import PaperDayRecord

    home = LabHome(tmp_path / "gate-paper")
    config = _lax_config()
    target = _seed_pool(home, panel, config, 1)
    session = _session(home, panel, config=config)
    try:
        genome = session.genome(target)
        evaluation = session.local.evaluate(genome)
        plain = session._gate_figures(genome, evaluation, 0.1)
    finally:
        session.close()
    # The holdout alone, computed here on its own.
    holdout = HoldoutEvaluator(truncate_to(panel, AS_OF), holdout=config.holdout).evaluate(genome)
    assert plain.profit_factor_out_of_sample == holdout.stats["profit_factor"]
    assert plain.paper_days == 0
    with GenePoolStore(home.gene_pool_db) as store:
        # Paper days with two winning days of 1% and two losing of 2%: profit factor 0.5.
        store.write_paper_days(
            [
                PaperDayRecord(
                    genome_id=target, account="aggressive", day=f"2023-12-{day:02d}",
                    allocation=10_000.0, pnl=100.0 if day % 2 else -200.0, shadow_return=0.0,
                )
                for day in (4, 5, 6, 7)
            ]
        )  # fmt: skip
    session = _session(home, panel, config=config)
    try:
        with_record = session._gate_figures(genome, evaluation, 0.1)
    finally:
        session.close()
    assert with_record.paper_days == 4
    # The record decides only where it is the weaker: make sure this case tells them apart.
    assert holdout.stats["profit_factor"] > 0.5
    assert with_record.profit_factor_out_of_sample == pytest.approx(0.5)

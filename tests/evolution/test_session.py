"""Evolution sessions end to end: determinism across Ray workers, resume, MLflow, store."""

from __future__ import annotations

import pytest
from mlflow.tracking import MlflowClient

from alphaloop.home import LabHome
from evolution.engine import EvolutionConfig
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
        ):
            assert key in metrics, key
        artifacts = {a.path for a in client.list_artifacts(child.info.run_id)}
        assert {
            "population.parquet",
            "champions.json",
            "lineage.json",
            "fitness_trend.png",
        } <= artifacts
    history = client.get_metric_history(parent.info.run_id, "best_score")
    assert sorted(m.step for m in history) == [0, 1]


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

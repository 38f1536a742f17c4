"""An evolution session: the driver that runs generations on Ray, stores and tracks them.

Only this driver writes to the gene-pool store and to MLflow. Each generation is committed in
one transaction together with the state the next generation starts from (the next population,
the trial counters, the champions), so ``--resume`` continues from the last committed generation
and produces what an uninterrupted session would have produced.
"""

from __future__ import annotations

import json
import math
import tempfile
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pydantic import Field

from alphaloop import __version__
from alphaloop.config import FrozenConfig, load_config
from alphaloop.errors import ConfigError
from alphaloop.home import LabHome
from evolution import operators
from evolution.engine import (
    EvolutionConfig,
    Member,
    cull_reasons,
    generation_rng,
    initial_population,
    step,
)
from evolution.evaluate import CostConfig, Evaluation, GenomeEvaluator, truncate_to
from evolution.fitness import FitnessConfig
from evolution.gate import GateConfig, GateFigures, judge
from evolution.refine import RefineConfig, refine, refine_seed
from evolution.stats import deflated_sharpe, probability_of_backtest_overfitting, sharpe_per_period
from evolution.store import GenePoolStore, MemberRecord, PlacementRecord, VerdictRecord
from genome.genes import Genome


class SessionConfig(FrozenConfig):
    """Everything that defines an evolution session besides seed, data and as-of date."""

    evolution: EvolutionConfig = EvolutionConfig()
    fitness: FitnessConfig = FitnessConfig()
    costs: CostConfig = CostConfig()
    gate: GateConfig = GateConfig()
    refine: RefineConfig = RefineConfig()
    gate_top: int = Field(3, ge=0, le=1000, description="top genomes judged by the gate")
    pbo_splits: int = Field(8, ge=2, le=16)


def load_session_config(
    path: str | Path | None = None, overrides: Mapping[str, Any] | None = None
) -> SessionConfig:
    return load_config(SessionConfig, path, default_name="evolution.yaml", overrides=overrides)


@dataclass
class TrialCounter:
    """The session's cumulative trials and the spread of their per-period Sharpe ratios."""

    n: int = 0
    total: float = 0.0
    total_sq: float = 0.0

    def add(self, sharpe: float) -> None:
        self.n += 1
        self.total += sharpe
        self.total_sq += sharpe * sharpe

    @property
    def variance(self) -> float:
        if self.n < 2:
            return 0.0
        mean = self.total / self.n
        return max(0.0, (self.total_sq - self.n * mean * mean) / (self.n - 1))


def _returns(evaluation: Evaluation) -> np.ndarray:
    return np.concatenate(
        [evaluation.windows["year_ago"].daily_returns, evaluation.windows["live"].daily_returns]
    )


def _member_to_state(member: Member) -> dict[str, Any]:
    return {
        "genome": json.loads(member.genome.to_json()),
        "parents": list(member.parents),
        "operator": member.operator,
        "born": member.born,
        "low_score_streak": member.low_score_streak,
    }


def _member_from_state(state: Mapping[str, Any]) -> Member:
    return Member(
        genome=Genome.from_json(json.dumps(state["genome"])),
        parents=tuple(state["parents"]),
        operator=str(state["operator"]),
        born=int(state["born"]),
        low_score_streak=int(state["low_score_streak"]),
    )


def _window_stats_json(evaluation: Evaluation) -> dict[str, dict[str, float | None]]:
    return {
        name: {k: (v if math.isfinite(v) else None) for k, v in window.stats.items()}
        for name, window in evaluation.windows.items()
    }


class EvolutionSession:
    """Runs (or resumes) one session.

    Parameters
    ----------
    home:
        The lab home (store and MLflow live there).
    panel:
        The market data (any length; it is truncated at ``as_of``).
    data_spec:
        The ``--data`` string, recorded with the session.
    as_of, seed, config:
        The session's identity, with the data hash.
    workers:
        Ray evaluator actors; ``0`` evaluates in this process without Ray.
    track:
        Write to MLflow.
    """

    def __init__(
        self,
        *,
        home: LabHome,
        panel: Any,
        data_spec: str,
        as_of: str,
        seed: int,
        config: SessionConfig,
        workers: int = 2,
        track: bool = True,
    ) -> None:
        self.home = home.ensure()
        self.panel = truncate_to(panel, as_of)
        if self.panel.n_bars == 0:
            raise ConfigError(f"--as-of {as_of}: no bars at or before that date in {data_spec}")
        self.data_spec = data_spec
        self.as_of = str(pd.Timestamp(as_of).date())
        self.seed = seed
        self.config = config
        self.workers = workers
        self.track = track
        self.data_hash = self.panel.data_hash()
        self.config_hash = config.stable_hash()
        self.store = GenePoolStore(home.gene_pool_db)
        self.local = GenomeEvaluator(
            self.panel, window=config.fitness.window, fitness=config.fitness, costs=config.costs
        )
        self._pool: Any = None
        self.evaluations: dict[str, Evaluation] = {}
        self.trials = TrialCounter()
        self.champions: dict[str, Evaluation] = {}
        self.champion_genomes: dict[str, Genome] = {}
        self.eval_seconds = 0.0
        # Where the current generation's evaluations ran (recorded with the generation).
        self.placement = PlacementRecord(nodes=(), worker_processes=0)

    # ------------------------------------------------------------------ plumbing
    def _evaluator_pool(self) -> Any:
        if self._pool is None:
            if self.workers <= 0:
                from evolution.distributed import LocalEvaluatorPool

                self._pool = LocalEvaluatorPool(
                    self.panel,
                    window=self.config.fitness.window,
                    fitness=self.config.fitness,
                    costs=self.config.costs,
                )
            else:
                from evolution.distributed import RayEvaluatorPool

                self._pool = RayEvaluatorPool(
                    self.panel,
                    workers=self.workers,
                    window=self.config.fitness.window,
                    fitness=self.config.fitness,
                    costs=self.config.costs,
                )
        return self._pool

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()
        self.store.close()

    def _evaluate(self, genomes: list[Genome]) -> None:
        self.placement = PlacementRecord(nodes=(), worker_processes=0)
        todo = [g for g in genomes if g.id not in self.evaluations]
        if not todo:
            return
        pool = self._evaluator_pool()
        ray_pool = self.workers > 0
        if ray_pool:
            # The pool accumulates over its lifetime; fresh sets make the record per generation.
            pool.nodes_used = set()
            pool.pids_used = set()
        started = time.perf_counter()
        results = pool.evaluate(todo)
        self.eval_seconds += time.perf_counter() - started
        if ray_pool:
            self.placement = PlacementRecord(
                nodes=tuple(sorted(set(pool.nodes_used))),
                worker_processes=len(set(pool.pids_used)),
            )
        # Count trials in a fixed order so the counter never depends on completion order.
        for genome in sorted(todo, key=lambda g: g.id):
            evaluation = results[genome.id]
            self.evaluations[genome.id] = evaluation
            self.trials.add(sharpe_per_period(_returns(evaluation)))

    # ------------------------------------------------------------------ the run
    def run(
        self,
        generations: int,
        *,
        resume: bool = False,
        on_generation: Callable[[dict[str, Any]], None] | None = None,
    ) -> dict[str, Any]:
        """Run until ``generations`` generations are committed; return the JSON summary."""
        tracker = None
        session_id, start, population = self._open(resume)
        session = self.store.session(session_id) or {}
        if self.track:
            from evolution.tracking import EvolutionTracker

            tracker = EvolutionTracker(self.home)
            parent = tracker.start_session(
                session_id,
                {
                    "seed": self.seed,
                    "as_of": self.as_of,
                    "data_spec": self.data_spec,
                    "data_hash": self.data_hash,
                    "config_hash": self.config_hash,
                    "code_version": __version__,
                    "workers": self.workers,
                    "config": json.dumps(self.config.model_dump(mode="json"), sort_keys=True),
                },
                parent_run_id=session.get("mlflow_parent_run_id"),
            )
            self.store.set_mlflow_ids(session_id, tracker.experiment_id, parent)
        summaries = []
        try:
            for generation in range(start, generations):
                summary, population = self._generation(session_id, generation, population, tracker)
                summaries.append(summary)
                if on_generation is not None:
                    on_generation(summary)
            if tracker is not None:
                tracker.finish()
        except BaseException:
            if tracker is not None:
                tracker.finish("FAILED")
            raise
        return self._summary(session_id)

    def _open(self, resume: bool) -> tuple[str, int, list[Member]]:
        if resume:
            found = self.store.find_session(
                config_hash=self.config_hash, data_hash=self.data_hash, seed=self.seed
            )
            if found is not None:
                return self._restore(found)
        session_id = uuid.uuid4().hex
        self.store.create_session(
            session_id=session_id,
            seed=self.seed,
            as_of=self.as_of,
            config=self.config.model_dump(mode="json"),
            config_hash=self.config_hash,
            data_hash=self.data_hash,
            data_spec=self.data_spec,
            code_version=__version__,
        )
        return (
            session_id,
            0,
            initial_population(self.config.evolution, generation_rng(self.seed, 0)),
        )

    def _restore(self, session_id: str) -> tuple[str, int, list[Member]]:
        last = self.store.last_generation(session_id)
        if last is None:
            population = initial_population(self.config.evolution, generation_rng(self.seed, 0))
            return session_id, 0, population
        state = self.store.generation_stats(session_id)[-1]["state"]
        self.trials = TrialCounter(**state["trials"])
        population = [_member_from_state(s) for s in state["next_population"]]
        champions = [Genome.from_json(json.dumps(g)) for g in state["champions"]]
        if champions:
            # Champions' returns are needed for the correlation rule: re-evaluate (pure).
            results = self.local.evaluate_many(champions)
            self.champions = {g.id: results[g.id] for g in champions}
            self.champion_genomes = {g.id: g for g in champions}
        return session_id, last + 1, population

    def _generation(
        self, session_id: str, generation: int, population: list[Member], tracker: Any
    ) -> tuple[dict[str, Any], list[Member]]:
        started = time.perf_counter()
        evals_before = self.trials.n
        self._evaluate([m.genome for m in population])
        evaluations = self.evaluations
        rng = generation_rng(self.seed, generation + 1)
        outcome = step(population, evaluations, generation, self.config.evolution, rng)
        next_population = list(outcome.next_population)
        births = dict(outcome.births)

        # Optuna refinement of the best (not culled, not over-fit) genomes.
        refined: list[dict[str, Any]] = []
        refine_cfg = self.config.refine
        if refine_cfg.top and generation % refine_cfg.every == 0:
            candidates = [
                m
                for m in outcome.ranked
                if m.id not in outcome.culled and not evaluations[m.id].fitness.overfit
            ][: refine_cfg.top]
            present = {m.id for m in next_population}
            for index, member in enumerate(candidates):
                result = refine(
                    member.genome,
                    evaluations[member.id],
                    self.local,
                    trials=refine_cfg.trials,
                    seed=refine_seed(self.seed, generation, index),
                )
                for trial in sorted(result.trial_evaluations, key=lambda e: e.genome_id):
                    self.trials.add(sharpe_per_period(_returns(trial)))
                refined.append(
                    {"parent": member.id, "child": result.genome.id, "accepted": result.accepted}
                )
                if result.accepted and result.genome.id not in present:
                    self.evaluations[result.genome.id] = result.evaluation
                    child = Member(
                        genome=result.genome,
                        parents=(member.id,),
                        operator="optuna",
                        born=generation + 1,
                    )
                    # Replace the newest non-immigrant offspring, keeping the population size.
                    for position in range(len(next_population) - 1, -1, -1):
                        victim = next_population[position]
                        if victim.born == generation + 1 and victim.operator not in (
                            "immigrant",
                            "optuna",
                        ):
                            births[victim.operator] -= 1
                            next_population[position] = child
                            births["optuna"] = births.get("optuna", 0) + 1
                            present.add(child.genome.id)
                            break
        births = {k: v for k, v in sorted(births.items()) if v > 0}

        # Promotion gate.
        ranked = list(outcome.ranked)
        pool_drawdown = float(
            np.mean([_max_drawdown(evaluations[m.id]) for m in ranked]) if ranked else 0.0
        )
        verdicts: list[VerdictRecord] = []
        promoted: list[str] = []
        # The best genomes not yet champions face the gate; a culled or over-fit genome can never
        # pass, and its verdict says so first (users see why the best were held back).
        gate_candidates = [m for m in ranked if m.id not in self.champions][: self.config.gate_top]
        for member in gate_candidates:
            evaluation = evaluations[member.id]
            figures = self._gate_figures(evaluation, pool_drawdown)
            verdict = judge(figures, self.config.gate)
            blockers: list[str] = []
            if member.id in outcome.culled:
                why = cull_reasons(evaluation, member.low_score_streak, self.config.evolution)
                blockers.append("culled: " + "; ".join(why))
            if evaluation.fitness.overfit:
                blockers.append(
                    f"over-fit: live score {evaluation.fitness.live_score:.1f} vs year-ago "
                    f"{evaluation.fitness.year_ago_score:.1f}"
                )
            passed = verdict.passed and not blockers
            reasons = (*blockers, *verdict.reasons) if blockers else verdict.reasons
            if blockers and verdict.passed:
                reasons = tuple(blockers)
            verdicts.append(
                VerdictRecord(
                    genome_id=member.id,
                    passed=passed,
                    reasons=reasons,
                    figures=verdict.figures,
                )
            )
            if passed:
                self.champions[member.id] = evaluation
                self.champion_genomes[member.id] = member.genome
                promoted.append(member.id)

        # Statistics of the generation.
        scores = np.array([evaluations[m.id].score for m in ranked])
        best = evaluations[ranked[0].id]
        genomes = [m.genome for m in ranked]
        top_returns = np.column_stack(
            [evaluations[m.id].windows["live"].daily_returns for m in ranked[:20]]
        )
        matrix = np.column_stack([_returns(evaluations[m.id]) for m in ranked])
        try:
            pbo = probability_of_backtest_overfitting(
                matrix, self.config.pbo_splits, max_combinations=70
            ).pbo
        except ValueError:
            pbo = float("nan")
        dsr_best = deflated_sharpe(_returns(best), self.trials.n, self.trials.variance)
        elapsed = time.perf_counter() - started
        new_evals = self.trials.n - evals_before
        stats: dict[str, Any] = {
            "best_score": float(scores.max()),
            "median_score": float(np.median(scores)),
            "mean_score": float(scores.mean()),
            "best_id": best.genome_id,
            "best_live_sharpe": float(best.windows["live"].stats["sharpe"]),
            "best_year_ago_sharpe": float(best.windows["year_ago"].stats["sharpe"]),
            "diversity": operators.mean_pairwise(genomes, operators.genotype_distance),
            "return_correlation": operators.mean_return_correlation(top_returns),
            "births": births,
            "culled": len(outcome.culled),
            "immigrants": int(births.get("immigrant", 0)),
            "promoted": len(promoted),
            "promoted_ids": promoted,
            "overfit": int(sum(evaluations[m.id].fitness.overfit for m in ranked)),
            "refined": refined,
            "dsr_best": dsr_best,
            "pbo": pbo,
            "n_trials": self.trials.n,
            "evaluations": new_evals,
            "evaluations_per_second": new_evals / elapsed if elapsed > 0 else 0.0,
            "seconds": elapsed,
        }
        state = {
            "next_population": [_member_to_state(m) for m in next_population],
            "trials": {
                "n": self.trials.n,
                "total": self.trials.total,
                "total_sq": self.trials.total_sq,
            },
            "champions": [
                json.loads(self.champion_genomes[gid].to_json()) for gid in sorted(self.champions)
            ],
        }
        members = []
        for member in ranked:
            evaluation = evaluations[member.id]
            status = (
                "champion"
                if member.id in self.champions
                else ("culled" if member.id in outcome.culled else "alive")
            )
            members.append(
                MemberRecord(
                    genome_id=member.id,
                    genome_json=member.genome.to_json(),
                    description=member.genome.describe(),
                    style=member.genome.style,
                    parents=member.parents,
                    operator=member.operator,
                    born_generation=member.born,
                    score=evaluation.score,
                    status=status,
                    overfit=evaluation.fitness.overfit,
                    low_score_streak=member.low_score_streak,
                    window_stats=_window_stats_json(evaluation),
                )
            )
        self.store.commit_generation(
            session_id=session_id,
            generation=generation,
            members=members,
            stats={**stats, "state": state},
            verdicts=verdicts,
            placement=self.placement,
        )
        if tracker is not None:
            self._track(tracker, session_id, generation, stats, ranked, verdicts)
        return {"generation": generation, **stats}, next_population

    def genome(self, genome_id: str) -> Genome:
        """Return a stored genome of the pool by id."""
        record = self.store.genome(genome_id)
        if record is not None:
            return Genome.from_json(record["genome_json"])
        raise KeyError(genome_id)

    def _gate_figures(self, evaluation: Evaluation, pool_drawdown: float) -> GateFigures:
        live = evaluation.windows["live"]
        correlations = []
        for champion in self.champions.values():
            a, b = live.daily_returns, champion.windows["live"].daily_returns
            if a.std() > 0 and b.std() > 0:
                correlations.append(float(np.corrcoef(a, b)[0, 1]))
        return GateFigures(
            profit_factor_in_sample=float(evaluation.windows["year_ago"].stats["profit_factor"]),
            profit_factor_out_of_sample=float(live.stats["profit_factor"]),
            max_drawdown=_max_drawdown(evaluation),
            pool_average_drawdown=pool_drawdown,
            champion_correlation=max(correlations) if correlations else 0.0,
            n_trades=evaluation.total_trades(),
            deflated_sharpe=deflated_sharpe(
                _returns(evaluation), self.trials.n, self.trials.variance
            ),
        )

    def _track(
        self,
        tracker: Any,
        session_id: str,
        generation: int,
        stats: Mapping[str, Any],
        ranked: list[Member],
        verdicts: list[VerdictRecord],
    ) -> None:
        metrics = {
            k: float(v)
            for k, v in stats.items()
            if isinstance(v, int | float) and not isinstance(v, bool)
        }
        for operator, count in stats["births"].items():
            metrics[f"births_{operator}"] = float(count)
        rows = []
        for member in ranked:
            evaluation = self.evaluations[member.id]
            row: dict[str, Any] = {
                "genome_id": member.id,
                "score": evaluation.score,
                "overfit": evaluation.fitness.overfit,
                "operator": member.operator,
                "parents": ",".join(member.parents),
                "born": member.born,
                "description": member.genome.describe(),
            }
            for window, result in evaluation.windows.items():
                for key, value in result.stats.items():
                    row[f"{window}_{key}"] = value
            rows.append(row)
        with tempfile.TemporaryDirectory() as tmp:
            population_file = Path(tmp) / "population.parquet"
            pd.DataFrame(rows).to_parquet(population_file, index=False)
            trend_file = Path(tmp) / "fitness_trend.png"
            _plot_trend(self.store.generation_stats(session_id), trend_file)
            tracker.log_generation(
                session_id=session_id,
                generation=generation,
                params={
                    "generation": generation,
                    "population": len(ranked),
                    # Comma-separated and sorted: equal sets compare equal in the MLflow UI.
                    "nodes_used": ",".join(self.placement.nodes),
                    "worker_processes": self.placement.worker_processes,
                },
                metrics=metrics,
                artifacts={
                    "champions.json": [
                        {
                            "id": gid,
                            "genome": json.loads(self.champion_genomes[gid].to_json()),
                            "description": self.champion_genomes[gid].describe(),
                        }
                        for gid in sorted(self.champions)
                    ],
                    "lineage.json": [
                        {
                            "id": m.id,
                            "parents": list(m.parents),
                            "operator": m.operator,
                            "born": m.born,
                        }
                        for m in ranked
                    ],
                    "verdicts.json": [
                        {"id": v.genome_id, "passed": v.passed, "reasons": list(v.reasons)}
                        for v in verdicts
                    ],
                },
                files=[population_file, trend_file],
            )

    def _summary(self, session_id: str) -> dict[str, Any]:
        history = self.store.generation_stats(session_id)
        session = self.store.session(session_id) or {}
        generations = [
            {
                "generation": g["generation"],
                "best_score": g["best_score"],
                "median_score": g["median_score"],
                "diversity": g["diversity"],
                "births": g["births"],
                "culled": g["culled"],
                "promoted": g["promoted"],
                "dsr_best": g["dsr_best"],
                "pbo": g["pbo"],
                "evaluations_per_second": g["evaluations_per_second"],
            }
            for g in history
        ]
        placements = self.store.placements(session_id)
        nodes_used = sorted({node for p in placements.values() for node in p.nodes})
        champions = []
        if history:
            last = history[-1]["generation"]
            judged = {v["genome_id"]: v for v in self.store.verdicts(session_id, last)}
            ids = list(judged) + [gid for gid in sorted(self.champions) if gid not in judged]
            for gid in ids:
                record = self.store.genome(gid)
                if record is None:
                    continue
                stats = {
                    s["window"]: {
                        k: v
                        for k, v in s.items()
                        if k not in ("window", "session_id", "generation")
                    }
                    for s in record["stats"]
                    if s["session_id"] == session_id
                }
                verdict = judged.get(gid) or (record["verdicts"] or [{}])[-1]
                champions.append(
                    {
                        "id": gid,
                        "description": record["description"],
                        "status": record["status"],
                        "live": stats.get("live", {}),
                        "year_ago": stats.get("year_ago", {}),
                        "gate": {
                            "passed": bool(verdict.get("passed", False)),
                            "reasons": list(verdict.get("reasons", [])),
                        },
                    }
                )
        return {
            "session_id": session_id,
            "as_of": self.as_of,
            "seed": self.seed,
            "data_hash": self.data_hash,
            "config_hash": self.config_hash,
            "generations": generations,
            "champions": champions,
            "mlflow_experiment_id": session.get("mlflow_experiment_id"),
            "mlflow_parent_run_id": session.get("mlflow_parent_run_id"),
            "nodes_used": nodes_used,
        }


def _max_drawdown(evaluation: Evaluation) -> float:
    return max(abs(float(w.stats.get("max_drawdown", 0.0))) for w in evaluation.windows.values())


def _plot_trend(history: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(7, 3.5))
    if history:
        gens = [h["generation"] for h in history]
        axis.plot(gens, [h["best_score"] for h in history], marker="o", label="best")
        axis.plot(gens, [h["median_score"] for h in history], marker=".", label="median")
        axis.plot(gens, [h["mean_score"] for h in history], linestyle="--", label="mean")
    axis.set_xlabel("generation")
    axis.set_ylabel("score (0-100)")
    axis.set_ylim(0, 100)
    axis.grid(alpha=0.3)
    axis.legend(loc="lower right")
    axis.set_title("Gene pool fitness")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)

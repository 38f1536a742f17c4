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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pydantic import Field

from alphaloop import __version__
from alphaloop.config import FrozenConfig, load_config
from alphaloop.errors import ConfigError
from alphaloop.home import LabHome
from alphaloop.locks import store_lock
from evolution import operators
from evolution.engine import (
    EvolutionConfig,
    Member,
    cull_reasons,
    generation_rng,
    initial_population,
    step,
)
from evolution.evaluate import (
    CostConfig,
    Evaluation,
    GenomeEvaluator,
    HoldoutEvaluator,
    WindowResult,
    split_holdout,
    truncate_to,
)
from evolution.fitness import FitnessConfig, with_paper
from evolution.gate import GateConfig, GateFigures, judge
from evolution.lifecycle import PromotionConfig, calibrate
from evolution.refine import RefineConfig, refine, refine_seed
from evolution.stats import deflated_sharpe, probability_of_backtest_overfitting, sharpe_per_period
from evolution.store import (
    LIFECYCLE,
    GenePoolStore,
    MemberRecord,
    PlacementRecord,
    TransitionRecord,
    TrialRecord,
    VerdictRecord,
)
from genome.genes import Genome


class SessionConfig(FrozenConfig):
    """Everything that defines an evolution session besides seed, data and as-of date."""

    evolution: EvolutionConfig = EvolutionConfig()
    fitness: FitnessConfig = FitnessConfig()
    costs: CostConfig = CostConfig()
    gate: GateConfig = GateConfig()
    refine: RefineConfig = RefineConfig()
    promotion: PromotionConfig = PromotionConfig()
    gate_top: int = Field(3, ge=0, le=1000, description="top genomes judged by the gate")
    pbo_splits: int = Field(8, ge=2, le=16)
    holdout: int = Field(
        60, ge=10, le=1000, description="trading days before the as-of date fitness never sees"
    )


def load_session_config(
    path: str | Path | None = None, overrides: Mapping[str, Any] | None = None
) -> SessionConfig:
    return load_config(SessionConfig, path, default_name="evolution.yaml", overrides=overrides)


@dataclass
class TrialCounter:
    """The pool's trials: every genome it ever evaluated, and their per-period Sharpe ratios.

    Built from the store's trial registry (:meth:`GenePoolStore.trial_sharpes`) when a session
    opens and extended by the session's new genomes, each counted once, ever. The variance is
    computed with ``math.fsum`` over the Sharpe ratios, so it does not depend on the order they
    were added in: a resumed session sees the same figures as an uninterrupted one. Trials
    migrated from schema 1 count in ``n`` without a Sharpe ratio.
    """

    n: int = 0
    sharpes: list[float] = field(default_factory=list)

    def add(self, sharpe: float) -> None:
        self.n += 1
        self.sharpes.append(float(sharpe))

    @property
    def variance(self) -> float:
        values = self.sharpes
        if len(values) < 2:
            return 0.0
        mean = math.fsum(values) / len(values)
        return max(0.0, math.fsum((v - mean) ** 2 for v in values) / (len(values) - 1))


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


def _capacity(evaluation: Evaluation) -> float:
    """Return the weaker window's capacity of an evaluation (1 without the figure)."""
    return min(float(w.stats.get("capacity", 1.0)) for w in evaluation.windows.values())


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
        full = truncate_to(panel, as_of)
        if full.n_bars == 0:
            raise ConfigError(f"--as-of {as_of}: no bars at or before that date in {data_spec}")
        # Fitness, Optuna and selection see the bars up to as_of - holdout only.
        self.panel = split_holdout(full, config.holdout)
        self.data_spec = data_spec
        self.as_of = str(pd.Timestamp(as_of).date())
        self.seed = seed
        self.config = config
        self.workers = workers
        self.track = track
        self.data_hash = full.data_hash()
        self.config_hash = config.stable_hash()
        self.store = GenePoolStore(home.gene_pool_db)
        fitness_end = self.panel.index[-1].date()
        self.local = GenomeEvaluator(
            self.panel, window=config.fitness.window, fitness=config.fitness, costs=config.costs,
            label=f"--as-of {self.as_of} (fitness windows end {fitness_end}, before the "
            f"{config.holdout}-day holdout)",
        )  # fmt: skip
        self.holdout = HoldoutEvaluator(full, holdout=config.holdout, costs=config.costs)
        self._holdout_results: dict[str, WindowResult] = {}
        # Each genome's paper record up to the as-of date (pooled over accounts), read once:
        # fitness blends it in (evolution.fitness.with_paper).
        self._paper = self._paper_stats()
        self._pool: Any = None
        self.evaluations: dict[str, Evaluation] = {}
        # The trial registry as committed, plus this generation's new trials (committed with it).
        registered, sharpes = self.store.trial_sharpes()
        self.trials = TrialCounter(n=registered, sharpes=sharpes)
        self._registered = self.store.trial_ids()
        self._pending_trials: list[TrialRecord] = []
        # Genomes that trade or wait to (candidates, probation, champions): the gate's
        # correlation rule compares with them, and they face the gate no more.
        self.champions: dict[str, Evaluation] = {}
        self.champion_genomes: dict[str, Genome] = {}
        self.eval_seconds = 0.0
        self._current = 0
        self._evaluated = 0  # backtest evaluations of the session (the generation statistics)
        self._counted: set[str] = set()  # genomes the session has evaluated, across restarts
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
        # A genome re-evaluated after a resume was already counted by the run before the crash.
        self._evaluated += sum(1 for g in todo if g.id not in self._counted)
        self._counted.update(g.id for g in todo)
        if ray_pool:
            self.placement = PlacementRecord(
                nodes=tuple(sorted(set(pool.nodes_used))),
                worker_processes=len(set(pool.pids_used)),
            )
        # Count trials in a fixed order so the counter never depends on completion order.
        for genome in sorted(todo, key=lambda g: g.id):
            evaluation = results[genome.id]
            self._register(evaluation)
            self.evaluations[genome.id] = self._with_paper(evaluation)

    def _paper_stats(self) -> dict[str, dict[str, float]]:
        from evolution.feedback import paper_stats
        from simulators.metrics import periods_per_year

        # Paper days are arena days: annualised as daily returns whatever the panel's bars.
        periods = periods_per_year("1D", self.panel.market)
        pooled: dict[str, dict[str, list[float]]] = {}
        for row in self.store.paper_days(until=self.as_of):
            days = pooled.setdefault(row.genome_id, {})
            total = days.setdefault(row.day, [0.0, 0.0])
            total[0] += row.allocation
            total[1] += row.pnl
        return {
            gid: paper_stats(
                [p / a for _d, (a, p) in sorted(days.items())], periods_per_year=periods
            )
            for gid, days in pooled.items()
        }

    def _with_paper(self, evaluation: Evaluation) -> Evaluation:
        """Return ``evaluation`` scored on its genome's paper record too (if it has one)."""
        paper = self._paper.get(evaluation.genome_id)
        if paper is None:
            return evaluation
        promotion = self.config.promotion
        fitness = with_paper(
            evaluation.fitness, paper, self.config.fitness,
            paper_weight=promotion.paper_weight, paper_days=promotion.paper_days,
        )  # fmt: skip
        return Evaluation(
            genome_id=evaluation.genome_id, windows=evaluation.windows, fitness=fitness
        )

    def _register(self, evaluation: Evaluation) -> None:
        """Count ``evaluation``'s genome as a trial unless the pool ever evaluated it before."""
        if evaluation.genome_id in self._registered:
            return
        sharpe = sharpe_per_period(_returns(evaluation))
        self._registered.add(evaluation.genome_id)
        self.trials.add(sharpe)
        self._pending_trials.append(
            TrialRecord(genome_id=evaluation.genome_id, sharpe=sharpe, generation=self._current)
        )

    # ------------------------------------------------------------------ the run
    def run(
        self,
        generations: int,
        *,
        resume: bool = False,
        on_generation: Callable[[dict[str, Any]], None] | None = None,
    ) -> dict[str, Any]:
        """Run until ``generations`` generations are committed; return the JSON summary.

        The whole run holds the home's ``gene_pool`` lock (:mod:`alphaloop.locks`): a second
        session of the home (a resume of this one included) waits, then finds what this one
        committed, instead of committing the same generation twice.
        """
        with store_lock(self.home, "gene_pool", purpose=f"evolution as of {self.as_of}"):
            return self._run_locked(generations, resume=resume, on_generation=on_generation)

    def _run_locked(
        self,
        generations: int,
        *,
        resume: bool,
        on_generation: Callable[[dict[str, Any]], None] | None,
    ) -> dict[str, Any]:
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
            self._log_missing(tracker, session_id)
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
                # A session whose generations are all committed completed, whatever failed
                # after: its run stays FINISHED (a failed resume does not undo a session).
                last = self.store.last_generation(session_id)
                done = last is not None and last + 1 >= generations
                tracker.finish("FINISHED" if done else "FAILED")
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
        start = self._start_state()
        self.store.create_session(
            session_id=session_id,
            seed=self.seed,
            as_of=self.as_of,
            config=self.config.model_dump(mode="json"),
            config_hash=self.config_hash,
            data_hash=self.data_hash,
            data_spec=self.data_spec,
            code_version=__version__,
            start=start,
        )
        return session_id, 0, self._from_start(start)

    def _start_state(self) -> dict[str, Any]:
        """Return where a new session starts: the pool's living population, or founders.

        One living pool: the best ``population`` genomes of the pool's living statuses
        (alive, candidate, probation, champion; by last score, then id) carry over with their
        lineage and low-score streaks; founders (generation 0's seeded random genomes) fill
        the places left, so an empty pool starts from founders alone. The genomes that trade
        or wait to (candidates, probation, champions) are remembered for the gate's
        correlation rule. The state is stored with the session, so a session killed before
        its first generation resumes from exactly the same start.
        """
        size = self.config.evolution.population
        living = self.store.living()
        population = [
            {
                "genome": json.loads(row["genome_json"]),
                "parents": list(row["parents"]),
                "operator": row["operator"],
                "born": row["born_generation"],
                "low_score_streak": row["low_score_streak"],
            }
            for row in living[:size]
        ]
        present = {row["genome_id"] for row in living[:size]}
        # Founders the pool has never seen: the seeded random genomes of generation 0, then
        # more from the same stream when the pool already holds some of them (a pool whose
        # living population died out is refounded, not left empty).
        rng = generation_rng(self.seed, 0)
        draws = 0
        while len(population) < size:
            if draws >= 100 * size:
                raise RuntimeError(f"no new founder genome after {draws} draws")
            draws += 1
            founder = operators.immigrants(1, rng)[0]
            if founder.id not in present and self.store.status_of(founder.id) is None:
                population.append(
                    _member_to_state(Member(genome=founder, operator="random", born=0))
                )
                present.add(founder.id)
        trading = sorted(
            (row for row in living if row["status"] in LIFECYCLE),
            key=lambda row: row["genome_id"],
        )
        return {
            "population": population,
            "trading": [json.loads(row["genome_json"]) for row in trading],
        }

    def _from_start(self, start: Mapping[str, Any]) -> list[Member]:
        self._set_champions([Genome.from_json(json.dumps(g)) for g in start["trading"]])
        return [_member_from_state(state) for state in start["population"]]

    def _set_champions(self, genomes: list[Genome]) -> None:
        # Their returns are needed for the correlation rule: evaluate them here (pure).
        results = self.local.evaluate_many(genomes) if genomes else {}
        self.champions = {g.id: results[g.id] for g in genomes}
        self.champion_genomes = {g.id: g for g in genomes}

    def _restore(self, session_id: str) -> tuple[str, int, list[Member]]:
        last = self.store.last_generation(session_id)
        if last is None:
            session = self.store.session(session_id) or {}
            start = json.loads(session.get("start_json") or "null")
            if start is None:  # a schema-1 session: it started from founders
                start = {
                    "population": [
                        _member_to_state(m)
                        for m in initial_population(
                            self.config.evolution, generation_rng(self.seed, 0)
                        )
                    ],
                    "trading": [],
                }
            return session_id, 0, self._from_start(start)
        state = self.store.generation_stats(session_id)[-1]["state"]
        population = [_member_from_state(s) for s in state["next_population"]]
        # What the session evaluated before the crash: every member of its populations, and
        # the Optuna children it evaluated while refining (they wait in the next population).
        self._counted = self.store.session_genome_ids(session_id) | {
            m.id for m in population if m.operator == "optuna" and m.born == last + 1
        }
        self._set_champions([Genome.from_json(json.dumps(g)) for g in state["champions"]])
        return session_id, last + 1, population

    def _generation(
        self, session_id: str, generation: int, population: list[Member], tracker: Any
    ) -> tuple[dict[str, Any], list[Member]]:
        started = time.perf_counter()
        self._current = generation
        self._pending_trials = []
        evals_before = self._evaluated
        self._evaluate([m.genome for m in population])
        evaluations = self.evaluations
        rng = generation_rng(self.seed, generation + 1)
        banned = frozenset(
            m.id
            for m in population
            if (found := self.store.status_of(m.id)) is not None
            and found[0] in ("demoted", "retired")
        )
        outcome = step(
            population, evaluations, generation, self.config.evolution, rng, banned=banned
        )
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
            # This generation's offspring (carried-over genomes keep their own birth numbers).
            newborn = present - {m.id for m in outcome.survivors}
            for index, member in enumerate(candidates):
                result = refine(
                    member.genome,
                    evaluations[member.id],
                    self.local,
                    trials=refine_cfg.trials,
                    seed=refine_seed(self.seed, generation, index),
                )
                self._evaluated += len(result.trial_evaluations)
                for trial in sorted(result.trial_evaluations, key=lambda e: e.genome_id):
                    self._register(trial)
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
                        if victim.id in newborn and victim.operator not in (
                            "immigrant",
                            "optuna",
                        ):
                            births[victim.operator] -= 1
                            next_population[position] = child
                            births["optuna"] = births.get("optuna", 0) + 1
                            present.add(child.genome.id)
                            break
        births = {k: v for k, v in sorted(births.items()) if v > 0}

        # Promotion gate: the best genomes that do not yet trade or wait to face it; a culled
        # or over-fit genome can never pass, and its verdict says so first (users see why the
        # best were held back). Out-of-sample figures come from the holdout.
        ranked = list(outcome.ranked)
        pool_drawdown = float(
            np.mean([_max_drawdown(evaluations[m.id]) for m in ranked]) if ranked else 0.0
        )
        verdicts: list[VerdictRecord] = []
        promoted: list[str] = []
        transitions: list[TransitionRecord] = []
        gate_candidates = [
            m
            for m in ranked
            if m.id not in self.champions
            and ((found := self.store.status_of(m.id)) is None or found[0] not in LIFECYCLE)
        ][: self.config.gate_top]
        for member in gate_candidates:
            evaluation = evaluations[member.id]
            figures = self._gate_figures(member.genome, evaluation, pool_drawdown)
            verdict = judge(figures, self.config.gate)
            blockers: list[str] = []
            if member.id in outcome.culled:
                why = cull_reasons(evaluation, member.low_score_streak, self.config.evolution)
                blockers.append("culled: " + "; ".join(why or ("demoted or retired",)))
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
                expectation = calibrate(member.id, _returns(evaluation), self.config.promotion)
                transitions.extend(
                    self._gate_moves(member.id, {**verdict.figures, **expectation.as_dict()})
                )

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
        new_evals = self._evaluated - evals_before
        stats: dict[str, Any] = {
            "best_score": float(scores.max()),
            "median_score": float(np.median(scores)),
            "mean_score": float(scores.mean()),
            "best_id": best.genome_id,
            "best_live_sharpe": float(best.windows["live"].stats["sharpe"]),
            "best_year_ago_sharpe": float(best.windows["year_ago"].stats["sharpe"]),
            # Capacity (evolution.fitness): the share of its intended size a genome could fill
            # at the lab's capital, its weaker window's; 1 when the market absorbs it.
            "best_capacity": _capacity(best),
            "median_capacity": float(np.median([_capacity(evaluations[m.id]) for m in ranked])),
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
            "new_trials": len(self._pending_trials),
            "evaluations": new_evals,
            "evaluations_per_second": new_evals / elapsed if elapsed > 0 else 0.0,
            "seconds": elapsed,
        }
        state = {
            "next_population": [_member_to_state(m) for m in next_population],
            "trials": {"n": self.trials.n, "variance": self.trials.variance},
            "champions": [
                json.loads(self.champion_genomes[gid].to_json()) for gid in sorted(self.champions)
            ],
        }
        members = []
        for member in ranked:
            evaluation = evaluations[member.id]
            # The generation's own verdict; lifecycle statuses move only by transitions.
            status = "culled" if member.id in outcome.culled else "alive"
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
            trials=self._pending_trials,
            transitions=transitions,
        )
        self._pending_trials = []
        if tracker is not None:
            self._track(tracker, session_id, generation)
        return {"generation": generation, **stats}, next_population

    def genome(self, genome_id: str) -> Genome:
        """Return a stored genome of the pool by id."""
        record = self.store.genome(genome_id)
        if record is not None:
            return Genome.from_json(record["genome_json"])
        raise KeyError(genome_id)

    def _gate_figures(
        self, genome: Genome, evaluation: Evaluation, pool_drawdown: float
    ) -> GateFigures:
        """Return the gate's figures: in-sample = the fitness windows, out-of-sample = holdout.

        In-sample profit factor is the weaker of the two fitness windows' (it must hold in
        both years); out-of-sample is the holdout's, which nothing upstream has seen, and, when
        the genome has a paper record up to the as-of date (it traded in the arena, e.g. as a
        bootstrap genome or before a pause), the weaker of the holdout's and the paper days'
        (profit factor over days). Trades are closed round trips after costs over both windows
        and the holdout.
        """
        live = evaluation.windows["live"]
        holdout = self._holdout_results.get(genome.id)
        if holdout is None:
            holdout = self.holdout.evaluate(genome)
            self._holdout_results[genome.id] = holdout
        correlations = []
        for champion in self.champions.values():
            a, b = live.daily_returns, champion.windows["live"].daily_returns
            if a.std() > 0 and b.std() > 0:
                correlations.append(float(np.corrcoef(a, b)[0, 1]))
        in_sample = min(
            float(evaluation.windows["year_ago"].stats["profit_factor"]),
            float(live.stats["profit_factor"]),
        )
        out_of_sample = float(holdout.stats["profit_factor"])
        paper = self._paper.get(genome.id)
        paper_days = 0
        if paper is not None and paper.get("n_trades", 0.0) > 0:
            # A paper record is out of sample too: the weaker of the two must clear the bar.
            paper_days = int(paper["n_trades"])
            out_of_sample = min(out_of_sample, float(paper["profit_factor"]))
        return GateFigures(
            profit_factor_in_sample=in_sample,
            profit_factor_out_of_sample=out_of_sample,
            max_drawdown=max(_max_drawdown(evaluation), abs(holdout.stats["max_drawdown"])),
            pool_average_drawdown=pool_drawdown,
            champion_correlation=max(correlations) if correlations else 0.0,
            n_trades=evaluation.total_trades() + int(holdout.stats["n_trades"]),
            deflated_sharpe=deflated_sharpe(
                _returns(evaluation), self.trials.n, self.trials.variance
            ),
            holdout_return=float(holdout.stats["total_return"]),
            holdout_sharpe=float(holdout.stats["sharpe"]),
            paper_days=paper_days,
        )

    def _gate_moves(self, genome_id: str, figures: Mapping[str, float]) -> list[TransitionRecord]:
        """Return the moves of a genome that passed the gate: candidate, then probation unless
        ``promotion.require_approval`` holds it for a user's ``pool approve``."""
        moves = [
            TransitionRecord(
                genome_id=genome_id,
                from_status="alive",
                to_status="candidate",
                reason=f"passed the backtest gate as of {self.as_of} (holdout "
                f"{self.config.holdout} days)",
                figures=figures,
            )
        ]
        if not self.config.promotion.require_approval:
            moves.append(
                TransitionRecord(
                    genome_id=genome_id,
                    from_status="candidate",
                    to_status="probation",
                    reason="probation on paper: promotion.require_approval is false",
                    figures=figures,
                )
            )
        return moves

    def _track(self, tracker: Any, session_id: str, generation: int) -> None:
        """Log a committed generation to MLflow, from the store alone.

        Everything logged is read back from the gene-pool store, so the run of a generation
        logged again after a crash (:meth:`_log_missing`) equals the one an uninterrupted
        session logs.
        """
        history = [
            h for h in self.store.generation_stats(session_id) if h["generation"] <= generation
        ]
        stats = {k: v for k, v in history[-1].items() if k not in ("state", "generation")}
        state = history[-1]["state"]
        members = sorted(
            self.store.population(session_id, generation),
            key=lambda m: (-m["score"], m["genome_id"]),
        )
        window_stats = self.store.window_stats(session_id, generation)
        verdicts = self.store.verdicts(session_id, generation)
        placement = self.store.placements(session_id).get(
            generation, PlacementRecord(nodes=(), worker_processes=0)
        )
        metrics = {
            k: float(v)
            for k, v in stats.items()
            if isinstance(v, int | float) and not isinstance(v, bool)
        }
        for operator, count in stats["births"].items():
            metrics[f"births_{operator}"] = float(count)
        rows = []
        for member in members:
            row: dict[str, Any] = {
                "genome_id": member["genome_id"],
                "score": member["score"],
                "overfit": member["overfit"],
                "operator": member["operator"],
                "parents": ",".join(member["parents"]),
                "born": member["born_generation"],
                "description": member["description"],
            }
            for window, values in sorted(window_stats.get(member["genome_id"], {}).items()):
                for key, value in values.items():
                    row[f"{window}_{key}"] = value
            rows.append(row)
        champions = [Genome.from_json(json.dumps(g)) for g in state["champions"]]
        with tempfile.TemporaryDirectory() as tmp:
            population_file = Path(tmp) / "population.parquet"
            pd.DataFrame(rows).to_parquet(population_file, index=False)
            trend_file = Path(tmp) / "fitness_trend.png"
            _plot_trend(history, trend_file)
            tracker.log_generation(
                session_id=session_id,
                generation=generation,
                params={
                    "generation": generation,
                    "population": len(members),
                    # Comma-separated and sorted: equal sets compare equal in the MLflow UI.
                    "nodes_used": ",".join(placement.nodes),
                    "worker_processes": placement.worker_processes,
                },
                metrics=metrics,
                artifacts={
                    "champions.json": [
                        {
                            "id": g.id,
                            "genome": json.loads(g.to_json()),
                            "description": g.describe(),
                        }
                        for g in sorted(champions, key=lambda g: g.id)
                    ],
                    "lineage.json": [
                        {
                            "id": m["genome_id"],
                            "parents": list(m["parents"]),
                            "operator": m["operator"],
                            "born": m["born_generation"],
                        }
                        for m in members
                    ],
                    "verdicts.json": [
                        {"id": v["genome_id"], "passed": v["passed"], "reasons": v["reasons"]}
                        for v in verdicts
                    ],
                },
                files=[population_file, trend_file],
            )

    def _log_missing(self, tracker: Any, session_id: str) -> None:
        """Log the committed generations that have no finished MLflow run (a crash between
        the store's commit and MLflow); a half-written run of such a generation is removed."""
        last = self.store.last_generation(session_id)
        if last is None:
            return
        runs = tracker.generation_runs(session_id)
        for generation in range(last + 1):
            found = runs.get(generation, [])
            if any(status == "FINISHED" for _run, status in found):
                continue
            for run_id, _status in found:
                tracker.delete_run(run_id)
            self._track(tracker, session_id, generation)

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

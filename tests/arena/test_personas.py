"""Arena configuration: YAML defaults, paper only, cross-field checks, persona genome choice."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from alphaloop.config import packaged_config, read_yaml
from alphaloop.errors import ConfigError
from arena.personas import (
    PERSONA_NAMES,
    ArenaConfig,
    GenomeCandidate,
    load_arena_config,
    score_genome,
    select_genomes,
)

ARENA_YAML = packaged_config("arena.yaml")


def _write(tmp_path: Path, data: dict[str, object]) -> Path:
    path = tmp_path / "arena.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def test_arena_yaml_defaults_equal_model_defaults() -> None:
    assert load_arena_config(ARENA_YAML) == ArenaConfig()
    assert load_arena_config() == ArenaConfig()
    assert load_arena_config().stable_hash() == ArenaConfig().stable_hash()


def test_arena_yaml_spells_out_every_key() -> None:
    def keys(value: object, prefix: str = "") -> set[str]:
        if isinstance(value, dict) and not prefix.endswith("regime_weights"):
            found = set()
            for key, item in value.items():
                found |= {f"{prefix}{key}"} | keys(item, f"{prefix}{key}.")
            return found
        return set()

    assert keys(read_yaml(ARENA_YAML)) == keys(ArenaConfig().model_dump(mode="json"))


def test_arena_defaults_follow_the_spec() -> None:
    config = ArenaConfig()
    assert config.starting_capital == 1_000_000
    assert config.broker == "paper"
    assert config.risk.max_trade_risk <= 0.05
    assert config.risk.max_position_weight <= 0.30
    assert config.risk.max_gross_leverage <= 1.5
    assert config.risk.min_cash_fraction >= 0.10
    assert config.risk.position_drop_threshold <= 0.10
    assert config.risk.freeze_latency_minutes <= 3
    assert set(config.personas.aggressive.preferred_styles) >= {"trend", "breakout"}
    assert "defensive" in config.personas.conservative.preferred_styles
    assert config.personas.aggressive.risk_budget > config.personas.conservative.risk_budget


@pytest.mark.parametrize(
    "data",
    [{"broker": "ibkr"}, {"broker": "alpaca"}, {"live": {"host": "127.0.0.1"}}, {"api_key": "x"}],
)
def test_arena_config_live_broker_is_a_paper_only_config_error(
    tmp_path: Path, data: dict[str, object]
) -> None:
    path = _write(tmp_path, data)
    with pytest.raises(ConfigError, match="paper only") as caught:
        load_arena_config(path)
    assert str(path) in str(caught.value)


def test_arena_config_paper_broker_loads(tmp_path: Path) -> None:
    assert load_arena_config(_write(tmp_path, {"broker": "paper"})).broker == "paper"


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        ({"personas": {"conservative": {"risk_budget": 0.8}}}, "conservative <= synthesis"),
        ({"risk": {"min_cash_fraction": 0.5}}, "cash floor"),
        ({"personas": {"aggressive": {"preferred_styles": ["trend", "trend"]}}}, "twice"),
        ({"personas": {"aggressive": {"preferred_styles": ["momentum"]}}}, "preferred_styles"),
        (
            {"personas": {"aggressive": {"regime_weights": {"crash": 1.0}}}},
            "unknown: \\['crash'\\]",
        ),
        (
            {
                "personas": {
                    "aggressive": {
                        "regime_weights": dict.fromkeys(("bull", "bear", "range", "high_vol"), 0.0)
                    }
                }
            },
            "never trades",
        ),
        ({"risk": {"max_gross_leverage": 0.2}}, "max_position_weight"),
        ({"starting_capital": -5}, "starting_capital"),
        ({"debate": {"vol_limt": 0.3}}, "unknown key 'debate.vol_limt'"),
    ],
)
def test_arena_config_bad_values_raise_config_error_naming_the_key(
    overrides: dict[str, object], named: str
) -> None:
    with pytest.raises(ConfigError, match=named):
        load_arena_config(overrides=overrides)


def test_persona_missing_regime_weight_is_rejected(tmp_path: Path) -> None:
    data = read_yaml(ARENA_YAML)
    data["personas"]["synthesis"]["regime_weights"] = {"bull": 1.0}
    with pytest.raises(ConfigError, match=r"personas\.synthesis\.regime_weights.*missing"):
        load_arena_config(_write(tmp_path, data))


def test_arena_config_is_frozen() -> None:
    config = ArenaConfig()
    with pytest.raises(ValidationError):
        config.starting_capital = 5.0  # type: ignore[misc]
    with pytest.raises(ValidationError):
        config.risk.max_drawdown = 0.9  # type: ignore[misc]


# --------------------------------------------------------------------------- genome choice
CANDIDATES = [
    GenomeCandidate(genome_id="t1", style="trend", regimes=("bull", "range"), fitness=80.0),
    GenomeCandidate(genome_id="t2", style="trend", regimes=("bear",), fitness=95.0),
    GenomeCandidate(genome_id="b1", style="breakout", regimes=("bull",), fitness=70.0),
    GenomeCandidate(genome_id="d1", style="defensive", regimes=("bull", "bear"), fitness=90.0),
    GenomeCandidate(genome_id="m1", style="mean_reversion", regimes=("range",), fitness=60.0),
    GenomeCandidate(genome_id="b2", style="breakout", regimes=("bull",), fitness=70.0),
]


def test_select_genomes_keeps_persona_styles_and_regime_best_first() -> None:
    aggressive = ArenaConfig().personas.aggressive
    chosen = select_genomes(aggressive, CANDIDATES, "bull")
    assert [c.genome_id for c in chosen] == ["t1", "b1", "b2"]  # ties broken by id
    conservative = ArenaConfig().personas.conservative
    assert [c.genome_id for c in select_genomes(conservative, CANDIDATES, "range")] == ["m1"]


def test_select_genomes_respects_max_positions() -> None:
    persona = ArenaConfig().personas.aggressive.model_copy(update={"max_positions": 1})
    assert [c.genome_id for c in select_genomes(persona, CANDIDATES, "bull")] == ["t1"]


def test_score_genome_weights_fitness_by_regime() -> None:
    persona = ArenaConfig().personas.aggressive
    candidate = CANDIDATES[3].__class__(
        genome_id="x", style="trend", regimes=("bull", "bear", "range", "high_vol"), fitness=50.0
    )
    for regime in ("bull", "bear", "range", "high_vol"):
        assert score_genome(persona, candidate, regime) == 50.0 * persona.regime_weights[regime]
    # Unknown regime: the persona's most cautious weight.
    assert score_genome(persona, candidate, "unknown") == 50.0 * min(
        persona.regime_weights.values()
    )
    assert score_genome(persona, CANDIDATES[3], "bull") == 0.0  # defensive: not aggressive's


def test_personas_get_names_the_accounts() -> None:
    personas = ArenaConfig().personas
    assert [personas.get(name) for name in PERSONA_NAMES] == [
        personas.aggressive,
        personas.conservative,
        personas.synthesis,
    ]
    with pytest.raises(KeyError, match="aggressive, conservative, synthesis"):
        personas.get("yolo")


def test_probation_sleeves_take_a_small_share_and_champions_share_the_rest() -> None:
    from arena.personas import ArenaConfig
    from arena.plan import sleeves

    config = ArenaConfig()
    persona = config.personas.aggressive
    budget = persona.risk_budget * persona.regime_weight("bull")
    out = sleeves(persona, ["c1", "c2"], ["p1"], "bull", config)
    assert out["p1"] == pytest.approx(config.probation_share * budget)
    assert out["c1"] == out["c2"] == pytest.approx((budget - out["p1"]) / 2)
    assert sum(out.values()) == pytest.approx(budget)
    # Many on probation share max_probation_share of the budget equally.
    many = sleeves(persona, ["c1"], [f"p{i}" for i in range(10)], "bull", config)
    assert sum(v for k, v in many.items() if k != "c1") == pytest.approx(
        config.max_probation_share * budget
    )
    # Without probation the champions get the budget exactly as before (equal sleeves).
    assert sleeves(persona, ["c1", "c2"], [], "bull", config) == {
        "c1": budget / 2,
        "c2": budget / 2,
    }

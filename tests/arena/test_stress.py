"""The stress replay: every scenario at small size, each check failing when its protection
fails (an adapter of fault_adapters.py in place of the production one), the sandbox
isolation, determinism, the report and the MLflow run."""

from __future__ import annotations

import csv
import hashlib
import json
import sqlite3
import sys
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from alphaloop.errors import ConfigError
from alphaloop.home import LabHome
from arena.bootstrap import bootstrap_genomes
from arena.day import LocalAccounts, run_arena_day
from arena.market import load_arena_data
from arena.personas import load_arena_config
from arena.stress import (
    EXPOSURE_CHECK,
    EXPOSURE_FLOOR,
    STRESS_EXPERIMENT,
    check_ledger,
    load_stress_config,
    replay,
    run_scenario,
)
from simulators.scenarios import SCENARIOS, build_scenario

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fault_adapters import (
    BlindResendGateway,
    NoBreakerGovernor,
    NoBreakerNoStopGovernor,
    NoLossStopGovernor,
    NoTighteningGovernor,
    SilentlyStaleFeed,
    UnannouncedHalts,
    patient_gateway,
    wiring_with,
)

RUN_DATE = date(2026, 1, 5)
# A CSI 300-shaped daily path through the 2015 crash (tests/fixtures/stress/README.md).
INDEX_FILE = Path(__file__).resolve().parents[1] / "fixtures" / "stress" / "sh000300.csv"
CRASHES = ("cn-crash-2015", "cn-circuit-breaker-2016", "us-flash-crash-2010",
           "covid-crash-2020", "black-swan-gap")  # fmt: skip


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _checks(result: dict[str, Any], scenario: str) -> dict[str, dict[str, Any]]:
    entry = next(s for s in result["scenarios"] if s["name"] == scenario)
    return {c["name"]: c for c in entry["checks"]}


def _replay_one(home: LabHome, name: str, size: str = "small", **kwargs: Any) -> dict[str, Any]:
    return replay([name], home=home, size=size, seed=0, run_date=RUN_DATE, track=False, **kwargs)


@pytest.fixture(scope="module")
def arena_home(tmp_path_factory: pytest.TempPathFactory) -> LabHome:
    """A lab home where the arena has run a day: a ledger and a gene pool to protect."""
    from evolution.store import GenePoolStore

    home = LabHome(tmp_path_factory.mktemp("arena_home")).ensure()
    data = load_arena_data("synthetic:seed=3,assets=4,start=2022-06-01,end=2023-06-30", home)
    config = load_arena_config()
    accounts = LocalAccounts(home, config, data.rules())
    try:
        run_arena_day(accounts, data, date(2023, 6, 30), home=home, config=config,
                      write_report=False)  # fmt: skip
    finally:
        accounts.close()
    GenePoolStore(home.gene_pool_db).close()
    return home


@pytest.fixture(scope="module")
def full(arena_home: LabHome) -> dict[str, Any]:
    """Every scenario at small size, protections on, with the MLflow run (shared)."""
    before = {p: _digest(p) for p in (arena_home.ledger_db, arena_home.gene_pool_db)}
    result = replay(list(SCENARIOS), home=arena_home, size="small", seed=0, run_date=RUN_DATE)
    after = {p: _digest(p) for p in (arena_home.ledger_db, arena_home.gene_pool_db)}
    return {"result": result, "before": before, "after": after, "home": arena_home}


@pytest.fixture(scope="module")
def off_home(tmp_path_factory: pytest.TempPathFactory) -> LabHome:
    return LabHome(tmp_path_factory.mktemp("off_home")).ensure()


# --------------------------------------------------------------------------- protections on
def test_replay_every_scenario_small_passes_every_check(full: dict[str, Any]) -> None:
    result = full["result"]
    assert [s["name"] for s in result["scenarios"]] == list(SCENARIOS)
    for scenario in result["scenarios"]:
        failed = [c for c in scenario["checks"] if not c["passed"]]
        assert not failed, (scenario["name"], failed)
        names = [c["name"] for c in scenario["checks"]]
        assert names == [*SCENARIOS[scenario["name"]].checks, EXPOSURE_CHECK]
        for check in scenario["checks"][:-1]:
            assert check["detail"]["precondition"]["met"] is True, (scenario["name"], check)
        assert set(scenario["accounts"]) == {"aggressive", "conservative", "synthesis"}
        for figures in scenario["accounts"].values():
            assert {"loss", "max_drawdown"} <= set(figures)
            assert 0.0 <= figures["max_drawdown"] < 1.0
    assert result["passed"] is True


def test_replay_accounts_exposed_at_the_stress_start(full: dict[str, Any]) -> None:
    for scenario in full["result"]["scenarios"]:
        if scenario["name"] not in CRASHES:
            continue
        for name, figures in scenario["accounts"].items():
            assert figures["exposure_at_start"] > 0.1, (scenario["name"], name, figures)


def test_replay_every_account_exposed_and_filled_in_every_scenario(full: dict[str, Any]) -> None:
    for scenario in full["result"]["scenarios"]:
        exposure = _checks(full["result"], scenario["name"])[EXPOSURE_CHECK]
        assert exposure["passed"], (scenario["name"], exposure)
        for name, row in exposure["detail"]["accounts"].items():
            assert row["exposure"] >= EXPOSURE_FLOOR, (scenario["name"], name, row)
        fills = sum(f["stress_fills"] for f in scenario["accounts"].values())
        if scenario["name"] in ("data-outage", "broker-faults"):
            assert fills > 0, scenario["name"]  # the faults met the orders that built the book


def test_replay_crash_days_list_the_limits_that_tripped_with_times(full: dict[str, Any]) -> None:
    for name in CRASHES:
        check = _checks(full["result"], name)["limits_tripped"]
        assert check["detail"]["crash_days"]
        rules = {e["rule"] for e in check["detail"]["tripped"] if e["kind"] == "trigger"}
        assert rules & {"market_crash", "position_drop", "daily_loss"}
        assert all(e["time"] for e in check["detail"]["tripped"])


def test_replay_sandbox_leaves_arena_ledger_and_gene_pool_byte_identical(
    full: dict[str, Any],
) -> None:
    assert full["before"] == full["after"]
    home: LabHome = full["home"]
    folder = home.stress / RUN_DATE.isoformat()
    assert (folder / "sandbox" / "gene_pool.sqlite").exists()
    for name in SCENARIOS:
        assert (folder / "sandbox" / name / "ledger.sqlite").exists()
    # The arena's ledger still holds only the arena's day.
    with sqlite3.connect(home.ledger_db) as conn:
        days = {row[0] for row in conn.execute("SELECT DISTINCT day FROM equity")}
    assert days == {"2023-06-30"}


def test_replay_writes_self_contained_report_result_and_manual_orders(
    full: dict[str, Any],
) -> None:
    result = full["result"]
    folder = full["home"].stress / RUN_DATE.isoformat()
    html = (folder / "report.html").read_text(encoding="utf-8")
    markdown = (folder / "report.md").read_text(encoding="utf-8")
    assert 'src="http' not in html and "src='http" not in html
    assert html.count('<img src="data:image/png;base64,') >= len(CRASHES)
    for name in SCENARIOS:
        assert name in markdown
    assert "circuit_breaker_froze_within_3_min" in markdown
    stored = json.loads((folder / "result.json").read_text(encoding="utf-8"))
    assert [s["name"] for s in stored["scenarios"]] == list(SCENARIOS)
    for scenario in result["scenarios"]:
        assert scenario["report"] == str(folder / "report.html")
    manual = sorted((folder / "manual_orders").glob("broker-faults-*.csv"))
    assert manual
    with manual[0].open(newline="", encoding="utf-8") as stream:
        rows = list(csv.DictReader(stream))
    assert rows and {"symbol", "side", "quantity", "limit_price"} <= set(rows[0])
    assert float(rows[0]["quantity"]) > 0 and float(rows[0]["limit_price"]) > 0


def test_replay_logs_one_mlflow_run_with_metrics_per_scenario(full: dict[str, Any]) -> None:
    from evolution.tracking import client_for

    client = client_for(full["home"])
    experiment = client.get_experiment_by_name(STRESS_EXPERIMENT)
    assert experiment is not None
    run = client.get_run(full["result"]["mlflow_run_id"])
    assert run.data.params["scenarios"] == ",".join(SCENARIOS)
    assert run.data.params["seed"] == "0"
    assert run.data.metrics["us-flash-crash-2010.passed"] == 1.0
    assert "black-swan-gap.aggressive.loss" in run.data.metrics
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id, "report")}
    assert "report/report.html" in artifacts


def test_replay_same_seed_same_result_json(full: dict[str, Any], tmp_path: Path) -> None:
    other = LabHome(tmp_path / "other").ensure()
    again = _replay_one(other, "broker-faults")
    first = next(s for s in full["result"]["scenarios"] if s["name"] == "broker-faults")

    def normal(entry: dict[str, Any], root: Path) -> str:
        return json.dumps(entry, sort_keys=True, default=str).replace(str(root), "<home>")

    assert normal(again["scenarios"][0], other.root) == normal(first, full["home"].root)


def test_replay_unknown_scenario_raises_config_error(off_home: LabHome) -> None:
    with pytest.raises(ConfigError, match="no-such"):
        replay(["no-such"], home=off_home, size="small", track=False)


# --------------------------------------------------------------------------- protections failing
# Each control plugs in an adapter of tests/arena/fault_adapters.py where wire_day put the
# production one: production code has no switch to turn a protection off.
def test_breaker_that_never_watches_breaker_check_fails_loss_check_still_passes(
    off_home: LabHome,
) -> None:
    result = _replay_one(off_home, "us-flash-crash-2010",
                         wiring=wiring_with(governor=NoBreakerGovernor))  # fmt: skip
    checks = _checks(result, "us-flash-crash-2010")
    assert not checks["circuit_breaker_froze_within_3_min"]["passed"]
    assert "no freeze" in " ".join(
        checks["circuit_breaker_froze_within_3_min"]["detail"]["problems"]
    )
    assert checks["daily_loss_within_limit"]["passed"]
    assert result["passed"] is False


def test_loss_stop_that_never_trips_loss_check_fails(off_home: LabHome) -> None:
    # Full size: the small history ends in a high-volatility regime whose tightened limits
    # keep the book near 45% invested, too little for a 9% fall to pass limit + allowance.
    result = _replay_one(off_home, "us-flash-crash-2010", size="full",
                         wiring=wiring_with(governor=NoLossStopGovernor))  # fmt: skip
    checks = _checks(result, "us-flash-crash-2010")
    loss = checks["daily_loss_within_limit"]
    assert not loss["passed"]
    worst = max(loss["detail"]["days"], key=lambda d: d["worst_loss"])
    assert worst["worst_loss"] > worst["allowed"]
    assert worst["allowed"] == pytest.approx(
        worst["max_daily_loss"] + worst["slippage_allowance"] + worst["gap_loss"]
        + worst["overshoot_loss"] + worst["unsellable_loss"]
    )  # fmt: skip
    assert checks["circuit_breaker_froze_within_3_min"]["passed"]


def test_no_breaker_no_stop_no_limit_trips_on_the_crash_day(off_home: LabHome) -> None:
    result = _replay_one(
        off_home,
        "us-flash-crash-2010",
        wiring=wiring_with(governor=NoBreakerNoStopGovernor),
    )
    assert not _checks(result, "us-flash-crash-2010")["limits_tripped"]["passed"]


def test_feed_stale_without_saying_so_orders_on_stale_data_fail(off_home: LabHome) -> None:
    result = _replay_one(off_home, "data-outage", wiring=wiring_with(market=SilentlyStaleFeed))
    check = _checks(result, "data-outage")["no_order_on_stale_data"]
    assert not check["passed"]
    unguarded = [w for w in check["detail"]["windows"] if not w["backup"]]
    assert sum(w["orders_sent_inside"] + w["sends_on_stale_data"] for w in unguarded) > 0


def test_gateway_without_lookup_by_key_duplicate_fill_check_fails(off_home: LabHome) -> None:
    result = _replay_one(off_home, "broker-faults", wiring=wiring_with(gateway=BlindResendGateway))
    check = _checks(result, "broker-faults")["no_duplicate_fill"]
    assert not check["passed"]
    assert check["detail"]["over_filled_keys"]


def test_client_retrying_forever_no_manual_order_written_fails(off_home: LabHome) -> None:
    result = _replay_one(off_home, "broker-faults", wiring=wiring_with(gateway=patient_gateway))
    check = _checks(result, "broker-faults")["manual_order_written"]
    assert not check["passed"]
    assert check["detail"]["manual_orders"] == 0


def test_governor_that_never_tightens_governor_check_fails(off_home: LabHome) -> None:
    result = _replay_one(
        off_home, "high-vol-day", wiring=wiring_with(governor=NoTighteningGovernor)
    )
    check = _checks(result, "high-vol-day")["governor_tightened"]
    assert not check["passed"]
    assert all(not row["tightened_at"] for row in check["detail"]["days"])


def test_halts_hidden_from_the_executor_halt_check_fails(off_home: LabHome) -> None:
    result = _replay_one(
        off_home, "cn-circuit-breaker-2016", wiring=wiring_with(market=UnannouncedHalts)
    )
    check = _checks(result, "cn-circuit-breaker-2016")["exchange_halt_respected"]
    assert not check["passed"]
    assert not any(row["incident"] for row in check["detail"]["halts"])


def test_ledger_verify_check_fails_on_a_tampered_sandbox_ledger(tmp_path: Path) -> None:
    scenario = build_scenario("black-swan-gap", size="small", seed=0)
    run = run_scenario(
        scenario, folder=tmp_path, genomes=bootstrap_genomes(), arena=load_arena_config(),
        config=load_stress_config(overrides={"size": "small"}),
    )  # fmt: skip
    assert check_ledger(run)["passed"]
    with sqlite3.connect(run.ledger_path) as conn:
        conn.execute("UPDATE fills SET quantity = quantity + 1 WHERE rowid = 1")
    tampered = check_ledger(run)
    assert not tampered["passed"]
    assert tampered["detail"]["issues"]


def test_cn_crash_replays_real_daily_bars_from_a_data_file(tmp_path: Path) -> None:
    from simulators.synthetic import SyntheticSpec, generate_daily

    # Stand-in "real" bars: a CSV per symbol, loaded through the --data path.
    panel = generate_daily(
        SyntheticSpec(seed=5, assets=3, start="2014-03-01", end="2015-10-30", market="cn")
    )
    folder = tmp_path / "bars"
    folder.mkdir()
    for symbol in panel.symbols:
        frame = panel.frame(symbol).drop(columns="tradable")
        frame.index = frame.index.tz_localize(None).normalize()
        frame.index.name = "date"
        frame.to_csv(folder / f"{symbol}.csv")
    home = LabHome(tmp_path / "home").ensure()
    result = _replay_one(home, "cn-crash-2015", data_spec=f"file:{folder};market=cn")
    (scenario,) = result["scenarios"]
    assert scenario["source"] != "synthetic"
    assert scenario["stress_days"] == ["2015-07-06", "2015-07-07", "2015-07-08"]
    checks = {c["name"]: c for c in scenario["checks"]}
    assert checks["ledger_verify"]["passed"]
    # Replayed on the file's own closes: the sandbox ledger marks at them.
    column = panel.symbols.index(panel.symbols[0])
    row = [s.date() for s in panel.index].index(date(2015, 7, 8))
    ledger = home.stress / RUN_DATE.isoformat() / "sandbox" / "cn-crash-2015" / "ledger.sqlite"
    with sqlite3.connect(ledger) as conn:
        held = conn.execute(
            "SELECT p.quantity, p.value, a.money_digits, a.quantity_digits FROM positions p "
            "JOIN accounts a USING (account) WHERE p.day='2015-07-08' AND p.symbol=?",
            (panel.symbols[0],),
        ).fetchall()
    assert held, "the accounts hold the first name at the stress end"
    for quantity, value, money_digits, quantity_digits in held:
        price = (value / 10.0**money_digits) / (quantity / 10.0**quantity_digits)
        assert price == pytest.approx(panel.close[row, column], rel=1e-3)


# --------------------------------------------------------------------------- no vacuous pass
def _stock_folder(folder: Path, scales: dict[str, float]) -> Path:
    """Write the index fixture's path as shares: ``symbol -> index level / share price``."""
    import pandas as pd

    frame = pd.read_csv(INDEX_FILE)
    folder.mkdir(parents=True, exist_ok=True)
    for symbol, scale in scales.items():
        shares = frame.copy()
        for column in ("open", "high", "low", "close"):
            shares[column] = (shares[column] / scale).round(2)
        shares["volume"] = (shares["volume"] / 1000).astype("int64")
        shares.to_csv(folder / f"{symbol}.csv", index=False)
    return folder


def test_cn_crash_index_only_file_fails_every_check_naming_the_lot_cost(tmp_path: Path) -> None:
    # One lot (100 units) of the index at ~3,900 points is ~390,000 > the 300,000 position
    # limit: nothing is bought. The old replay passed every check on the empty book.
    home = LabHome(tmp_path / "home").ensure()
    result = _replay_one(home, "cn-crash-2015", data_spec=f"file:{INDEX_FILE};market=cn")
    (scenario,) = result["scenarios"]
    assert result["passed"] is False and scenario["passed"] is False
    assert all(f["stress_fills"] == 0 and f["exposure_at_start"] == 0.0
               for f in scenario["accounts"].values())  # fmt: skip
    checks = _checks(result, "cn-crash-2015")
    exposure = checks[EXPOSURE_CHECK]
    assert not exposure["passed"]
    assert exposure["detail"]["unexposed"] == ["aggressive", "conservative", "synthesis"]
    why = exposure["detail"]["why"]
    assert "one lot of sh000300 (100 units at 3,885.90) costs 388,590 > the position limit " \
        "300,000" in why  # fmt: skip
    assert "looks like an index" in why
    (dear,) = exposure["detail"]["accounts"]["aggressive"]["lots_above_limit"]
    assert dear["symbol"] == "sh000300" and dear["lot_cost"] > dear["position_limit"]
    for name in SCENARIOS["cn-crash-2015"].checks:
        check = checks[name]
        assert not check["passed"], name
        if name == "ledger_verify":
            assert check["detail"]["fills_checked"] == 0
            assert check["detail"]["precondition"] == {
                "needs": "fills", "met": False,
                "why": "no fill in the sandbox ledger: nothing was checked",
            }  # fmt: skip
        else:
            precondition = check["detail"]["precondition"]
            assert precondition["needs"] == "exposure" and precondition["met"] is False
            assert precondition["accounts"] == ["aggressive", "conservative", "synthesis"]
            assert any(p.startswith("precondition not met") for p in check["detail"]["problems"])


def test_cn_crash_dear_share_fails_exposure_without_calling_it_an_index(tmp_path: Path) -> None:
    # Any instrument one lot of which exceeds the position limit, not only an index.
    folder = _stock_folder(tmp_path / "bars", {"600519": 1.0})
    home = LabHome(tmp_path / "home").ensure()
    result = _replay_one(home, "cn-crash-2015", data_spec=f"file:{folder};market=cn")
    exposure = _checks(result, "cn-crash-2015")[EXPOSURE_CHECK]
    assert result["passed"] is False and not exposure["passed"]
    assert "one lot of 600519" in exposure["detail"]["why"]
    assert "index" not in exposure["detail"]["why"]


def test_cn_crash_share_file_on_the_index_path_passes_with_real_exposure(tmp_path: Path) -> None:
    # The control: the same daily path as shares of ~13 and ~5 CNY (a lot: ~1,300 and ~500).
    folder = _stock_folder(tmp_path / "bars", {"600000": 300.0, "601398": 800.0})
    home = LabHome(tmp_path / "home").ensure()
    result = _replay_one(home, "cn-crash-2015", data_spec=f"file:{folder};market=cn")
    (scenario,) = result["scenarios"]
    failed = [c for c in scenario["checks"] if not c["passed"]]
    assert not failed and result["passed"] is True
    for figures in scenario["accounts"].values():
        assert figures["exposure_at_start"] > 0.1
    assert sum(f["stress_fills"] for f in scenario["accounts"].values()) > 0
    checks = _checks(result, "cn-crash-2015")
    assert checks["ledger_verify"]["detail"]["fills_checked"] > 0
    assert checks["limits_tripped"]["detail"]["crash_days"] == ["2015-07-08"]
    assert all(c["detail"]["precondition"]["met"] for c in scenario["checks"][:-1])

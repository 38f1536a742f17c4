"""``alphaloop status``: the lab on one screen.

The last committed day, each account (equity, total return, drawdown, the day's P&L), the
gene pool (genomes by status, the last generation's best and median score), the execution
policy the broker uses, alerts, the pause state and the last stress replay: what
:func:`alphaloop.observe.read_lab` reads, read-only (no store lock; it never waits behind an
``arena run``). ``--json`` prints one object: the snapshot's fields (``last_day``,
``accounts``, ``pool``, ``generation``, ``paused``, ``stress``, ``errors`` ...) plus
``policy`` and ``alerts``. A store that cannot be read is named in ``errors`` and on one
``warning:`` line; the exit status is then 1.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from alphaloop.jsonout import emit

JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON object.")]

#: How many of the newest alerts the screen lists (``--json`` has the snapshot's).
ALERTS_LISTED = 5


def _policy(home: Any) -> dict[str, Any]:
    from alphaloop.errors import AlphaLoopError
    from rl_exec.registry import list_versions

    try:
        versions = list_versions(home)
    except AlphaLoopError as exc:
        return {"active": None, "versions": 0, "error": str(exc)}
    active = next((v for v in versions if v.active), None)
    return {
        "active": None if active is None else active.label,
        "registered_at": None if active is None else active.registered_at,
        "versions": len(versions),
    }


def _alerts(snapshot: Any) -> dict[str, Any]:
    """The alert records (newest first), the totals per rule and the undelivered ones."""
    from alphaloop.ops_config import load_ops_config

    rules = load_ops_config().alerts
    records = list(snapshot.alerts)
    return {
        "records": records,
        "totals": dict(snapshot.alert_totals),
        "total": sum(snapshot.alert_totals.values()),
        "undelivered": sum(
            1
            for r in records
            if r["delivery"]["attempts"] > 0 and r["delivery"]["delivered_at"] is None
        ),
        "webhook": rules.webhook.url,
    }


def status(as_json: JsonOption = False) -> None:
    """Show the lab on one screen: last day, accounts, pool, policy, alerts, pause, stress."""
    from alphaloop.home import LabHome
    from alphaloop.observe import read_lab

    home = LabHome.resolve()
    snapshot = read_lab(home)
    result = snapshot.to_dict()
    result["policy"] = _policy(home)
    result["alerts"] = _alerts(snapshot)
    if as_json:
        emit(result)
    else:
        _show(result)
    for store, why in snapshot.errors.items():
        typer.echo(f"warning: {store} could not be read: {why}", err=True)
    if snapshot.errors:
        raise typer.Exit(1)


def _show(result: dict[str, Any]) -> None:
    echo = typer.echo
    echo(f"lab home: {result['home']}")
    committed = result["last_committed_at"]
    echo(
        f"last day: {result['last_day'] or 'none (no arena day committed)'}"
        + (f" (committed {committed})" if committed else "")
        + (f", regime {result['regime']}" if result["regime"] else "")
    )
    for name, view in result["accounts"].items():
        echo(
            f"  {name:<13} {view['last_day']}  equity {view['equity']:>14,.2f}  "
            f"return {view['total_return']:+.2%}  drawdown {view['drawdown']:.2%}  "
            f"day P&L {view['daily_pnl']:+,.2f}  orders {view['orders']} fills {view['fills']} "
            f"rejects {view['rejects']}"
        )
    pool = result["pool"]
    if pool:
        counts = ", ".join(f"{status} {n}" for status, n in pool.items() if n)
        echo(f"pool: {counts or 'empty'}")
    else:
        echo("pool: none (no gene pool yet)")
    generation = result["generation"]
    if generation is not None:
        best, median = generation["best_score"], generation["median_score"]
        echo(
            f"  last generation {generation['generation']} of session {generation['session_id']} "
            f"({generation['committed_at']}): {generation['size']} members, best "
            f"{'n/a' if best is None else f'{best:.4f}'}, median "
            f"{'n/a' if median is None else f'{median:.4f}'}"
        )
    policy = result["policy"]
    if policy.get("error"):
        echo(f"policy: unreadable registry ({policy['error']})")
    else:
        echo(f"policy: {policy['active'] or 'none registered (TWAP)'}")
    alerts = result["alerts"]
    if "alerts" in result["errors"]:
        echo("alerts: unknown (the operations store could not be read; see the warning)")
    elif not alerts["total"]:
        echo("alerts: none")
    else:
        counts = ", ".join(f"{rule} {n}" for rule, n in alerts["totals"].items() if n)
        echo(f"alerts: {alerts['total']} ({counts})")
        for record in alerts["records"][:ALERTS_LISTED]:
            echo(f"  {record['day']} {record['severity']:<8} {record['rule']}: {record['message']}")
        if alerts["undelivered"]:
            echo(f"  webhook: {alerts['undelivered']} alert(s) not delivered yet")
    paused = result["paused"]
    if paused is None:
        echo("paused: no")
    else:
        what = "flatten: each day only closes positions" if paused["flatten"] else "no new orders"
        echo(
            f"paused: YES, since {paused['since']} by {paused['who']} ({what}): {paused['reason']}"
        )
    stress = result["stress"]
    if stress is None:
        echo("last stress: none")
    else:
        failed = [name for name, ok in stress["scenarios"].items() if not ok]
        echo(
            f"last stress: {stress['date']} {'passed' if stress['passed'] else 'FAILED'}"
            + (f" (failed: {', '.join(failed)})" if failed else "")
        )

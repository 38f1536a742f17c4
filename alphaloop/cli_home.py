"""``alphaloop home backup|restore|vacuum``: housekeeping of the lab home.

``home backup DIR`` writes a new backup folder (the SQLite stores by SQLite's online backup,
the policy registry, a ``manifest.json`` with each file's SHA-256); ``home restore DIR``
replaces the home's stores with a backup only after it verified whole; ``home vacuum
[--keep-days N]`` rebuilds the gene pool and MLflow's store and removes run folders older than
``N`` days (never the ledger). Each takes the write locks of every store, so none of them runs
beside an ``arena run`` or an evolution (it waits, as a second writer does:
:mod:`alphaloop.locks`). ``--json`` prints one object. A backup that fails verification, or
any other bad input, prints one ``error:`` line and exits with status 2; see
:mod:`alphaloop.housekeeping` for what each does.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from alphaloop.jsonout import emit

app = typer.Typer(
    help="Housekeeping of the lab home: backup, restore, vacuum.", no_args_is_help=True
)

JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON object.")]
FolderArgument = Annotated[Path, typer.Argument(help="The backup folder.")]


@app.command("backup")
def backup(folder: FolderArgument, as_json: JsonOption = False) -> None:
    """Back up the ledger, the gene pool, MLflow's store and the policy registry into FOLDER."""
    from alphaloop.home import LabHome
    from alphaloop.housekeeping import backup_home

    result = backup_home(LabHome.resolve(), folder)
    if as_json:
        emit(result)
        return
    total = sum(int(item["bytes"]) for item in result["files"])
    typer.echo(f"backup: {result['backup']} ({len(result['files'])} files, {total:,} bytes)")
    for item in result["files"]:
        if item["kind"] == "sqlite":
            typer.echo(f"  {item['store']:<10} {item['path']}  sha256 {item['sha256'][:16]}")
    policies = sum(1 for item in result["files"] if item["store"] == "policies")
    typer.echo(f"  policies   {policies} file(s)")


@app.command("restore")
def restore(folder: FolderArgument, as_json: JsonOption = False) -> None:
    """Restore the home's stores from the backup in FOLDER, once it verified whole."""
    from alphaloop.home import LabHome
    from alphaloop.housekeeping import restore_home

    result = restore_home(LabHome.resolve(), folder)
    if as_json:
        emit(result)
        return
    typer.echo(
        f"restored from {result['restored_from']} (made {result['created_at']}): "
        f"{', '.join(result['restored'])}"
    )
    if result["kept"]:
        typer.echo(f"  not in the backup, left as they were: {', '.join(result['kept'])}")


@app.command("vacuum")
def vacuum(
    keep_days: Annotated[
        int,
        typer.Option("--keep-days", help="Remove run folders last changed more than N days ago."),
    ] = 30,
    as_json: JsonOption = False,
) -> None:
    """VACUUM the gene pool and MLflow's store; rotate old run folders. Never the ledger."""
    from alphaloop.home import LabHome
    from alphaloop.housekeeping import vacuum_home

    result = vacuum_home(LabHome.resolve(), keep_days=keep_days)
    if as_json:
        emit(result)
        return
    for store, sizes in result["vacuumed"].items():
        typer.echo(f"vacuum {store}: {sizes['bytes_before']:,} -> {sizes['bytes_after']:,} bytes")
    if not result["vacuumed"]:
        typer.echo("vacuum: no gene pool or MLflow store yet")
    typer.echo(
        f"removed {len(result['removed'])} run folder(s) older than {keep_days} day(s)"
        + "".join(f"\n  {path}" for path in result["removed"])
    )

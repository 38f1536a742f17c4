"""``alphaloop serve``: the lab's HTTP endpoint (``/metrics`` for Prometheus), until stopped.

Binds ``127.0.0.1:9464`` unless ``--host``/``--port`` say otherwise (``--port 0``: a free
port). Once listening it prints one line on stdout, ``serving: http://HOST:PORT/metrics``;
SIGINT or SIGTERM stops it. Each scrape reads the home's stores afresh, read-only
(:mod:`alphaloop.metrics`). A port that cannot be bound prints one ``error:`` line and exits
with status 2.
"""

from __future__ import annotations

from typing import Annotated

import typer

from alphaloop.serve import DEFAULT_HOST, DEFAULT_PORT


def serve(
    host: Annotated[
        str, typer.Option("--host", help="Address to bind (another than loopback exposes it).")
    ] = DEFAULT_HOST,
    port: Annotated[
        int, typer.Option("--port", help="Port to bind (0: a free one).")
    ] = DEFAULT_PORT,
) -> None:
    """Serve the lab's Prometheus metrics at /metrics (read from the stores on each scrape)."""
    from alphaloop.home import LabHome
    from alphaloop.serve import serve as run_server

    home = LabHome.resolve()

    def ready(bound_host: str, bound_port: int) -> None:
        shown = f"[{bound_host}]" if ":" in bound_host else bound_host
        typer.echo(f"serving: http://{shown}:{bound_port}/metrics (lab home {home.root})")

    run_server(home, host=host, port=port, on_ready=ready)

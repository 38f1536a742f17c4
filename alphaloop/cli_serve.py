"""``alphaloop serve``: the lab's HTTP endpoint (``/metrics``, the ``/page``), until stopped.

Binds ``127.0.0.1:9464`` unless ``--host``/``--port`` say otherwise (``--port 0``: a free
port). Once listening it prints one line on stdout,
``serving: http://HOST:PORT/metrics (lab home HOME) page http://HOST:PORT/page control token
TOKEN``; SIGINT or SIGTERM stops it. Each scrape and each page view reads the home's stores
afresh, read-only (:mod:`alphaloop.metrics`, :mod:`alphaloop.page`).

The supervision page's controls (pause/resume trading, approve/reject candidates) need the
control token: ``$ALPHALOOP_SERVE_TOKEN`` when it is set (the line then says
``control token from $ALPHALOOP_SERVE_TOKEN`` and never prints it), else a random token made
at start and printed on that line only. A port that cannot be bound prints one ``error:``
line and exits with status 2.
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
    """Serve the lab's Prometheus metrics at /metrics and the supervision page at /page."""
    from alphaloop.home import LabHome
    from alphaloop.page import PAGE_PATH, TOKEN_ENV, SupervisionPage, control_token
    from alphaloop.serve import serve as run_server

    home = LabHome.resolve()
    token, from_env = control_token()
    page = SupervisionPage(home, token=token, bind_host=host)
    said = f"from ${TOKEN_ENV}" if from_env else token

    def ready(bound_host: str, bound_port: int) -> None:
        shown = f"[{bound_host}]" if ":" in bound_host else bound_host
        base = f"http://{shown}:{bound_port}"
        typer.echo(
            f"serving: {base}/metrics (lab home {home.root}) page {base}{PAGE_PATH} "
            f"control token {said}"
        )

    run_server(
        home, host=host, port=port, routes=page.routes(), post_routes=page.post_routes(),
        on_ready=ready,
    )  # fmt: skip

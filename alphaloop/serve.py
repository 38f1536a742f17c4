"""``alphaloop serve``: the lab's long-running HTTP endpoint (loopback by default).

One WSGI application (:func:`make_app`) routes by path: ``/metrics`` is the Prometheus
exposition of :class:`alphaloop.metrics.LabCollector` (read from the stores on each scrape),
``/healthz`` answers ``ok`` while the process runs, ``/`` lists the routes. Further pages (the
supervision page of :mod:`alphaloop.page`, its ``POST`` controls) are more entries of the
route tables passed to :func:`make_app`; nothing here knows them. The server (:func:`serve`) is
``wsgiref``'s with one thread per request, so a slow scrape never blocks a health check.

It binds ``127.0.0.1`` unless told otherwise: the metrics name the lab's accounts and
equity, which are nobody else's business by default.
"""

from __future__ import annotations

import signal
import socketserver
import sys
from collections.abc import Callable, Iterable, Mapping
from types import FrameType
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, make_wsgi_app

from alphaloop.errors import ConfigError
from alphaloop.home import LabHome
from alphaloop.metrics import LabCollector

__all__ = ["DEFAULT_HOST", "DEFAULT_PORT", "WsgiApp", "make_app", "serve"]

DEFAULT_HOST = "127.0.0.1"
# Beside Prometheus' own 9090 and the node exporter's 9100.
DEFAULT_PORT = 9464

StartResponse = Callable[..., Any]
WsgiApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


def _text(status: str, body: str) -> WsgiApp:
    def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        payload = body.encode("utf-8")
        start_response(
            status,
            [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(payload)))],
        )
        return [payload]

    return app


def make_app(
    home: LabHome,
    routes: Mapping[str, WsgiApp] | None = None,
    post_routes: Mapping[str, WsgiApp] | None = None,
) -> WsgiApp:
    """Return the WSGI application of ``home``: ``/metrics``, ``/healthz``, ``/`` and ``routes``.

    Parameters
    ----------
    routes:
        More ``path -> WSGI app`` entries answering ``GET`` and ``HEAD`` (exact paths; the
        supervision page, :mod:`alphaloop.page`, adds its own).
    post_routes:
        ``path -> WSGI app`` entries answering ``POST`` only (the page's controls, which check
        their own token and CSRF field); every other path refuses ``POST`` with 405.
    """
    registry = CollectorRegistry(auto_describe=False)
    registry.register(LabCollector(home))
    table: dict[str, WsgiApp] = {
        "/metrics": make_wsgi_app(registry),
        "/healthz": _text("200 OK", "ok\n"),
    }
    table.update(routes or {})
    posts = dict(post_routes or {})
    index = "alphaloop serve: " + str(home.root) + "\n" + "".join(f"{p}\n" for p in sorted(table))
    table.setdefault("/", _text("200 OK", index))

    def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO") or "/"
        method = environ.get("REQUEST_METHOD", "GET")
        if path in posts:
            if method != "POST":
                return _text("405 Method Not Allowed", "POST only\n")(environ, start_response)
            return posts[path](environ, start_response)
        handler = table.get(path)
        if handler is None:
            return _text("404 Not Found", f"no page {path}; see /\n")(environ, start_response)
        if method not in ("GET", "HEAD"):
            return _text("405 Method Not Allowed", "GET only\n")(environ, start_response)
        return handler(environ, start_response)

    return app


class _ThreadingServer(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True
    allow_reuse_address = True


class _QuietHandler(WSGIRequestHandler):
    # Prometheus scrapes every few seconds: one access line per scrape would flood stderr.
    def log_message(self, format: str, *args: Any) -> None:
        return


def serve(
    home: LabHome,
    *,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    routes: Mapping[str, WsgiApp] | None = None,
    post_routes: Mapping[str, WsgiApp] | None = None,
    on_ready: Callable[[str, int], None] | None = None,
) -> None:
    """Serve :func:`make_app` on ``host:port`` until SIGINT or SIGTERM.

    Parameters
    ----------
    port:
        0 takes a free port; ``on_ready`` receives the bound host and port.
    """
    if not 0 <= port <= 65535:
        raise ConfigError(f"--port {port}: expected 0 (a free port) to 65535")
    try:
        server = make_server(
            host, port, make_app(home, routes, post_routes), server_class=_ThreadingServer,
            handler_class=_QuietHandler,
        )  # fmt: skip
    except OSError as exc:  # a port in use, a host that is not this machine's
        raise ConfigError(f"--host {host} --port {port}: cannot listen there ({exc})") from exc

    def stop(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        bound_host, bound_port = server.server_address[:2]
        if on_ready is not None:
            on_ready(str(bound_host), int(bound_port))
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        print("serve: stopped", file=sys.stderr, flush=True)
    finally:
        server.server_close()
        signal.signal(signal.SIGTERM, previous)

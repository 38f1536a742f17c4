"""Which Ray a lab command runs on: the cluster the user named, or a private local one.

A command joins a cluster only when the user named it: the CLI's ``--ray-address`` (or an
``address`` argument from code) or the ``RAY_ADDRESS`` environment variable, which
``ray job submit`` sets for its entrypoint. It never looks for one: Ray's discovery (the address
``auto``, or ``ray.init()`` without an address, which reads ``/tmp/ray/ray_current_cluster``)
would join whatever Ray happens to run on the machine, such as another lab command's private Ray
or a test suite's, and the command would then hang or die when that one stops.

Without a named cluster the command starts its own Ray on this machine, bound to 127.0.0.1,
without the dashboard, and with Ray's usage statistics off (``RAY_USAGE_STATS_ENABLED=0``
unless the user set that variable). The caller shuts it down (:attr:`RaySession.started`).

A named cluster that cannot be joined is a :class:`~alphaloop.errors.RayClusterUnavailable`
(the CLI prints one ``error:`` line and exits 2) within seconds: a port that refuses or does not
answer within :data:`CONNECT_TIMEOUT_S` fails before Ray is asked, and Ray's own attempts to get
in are cut to :data:`JOIN_TIMEOUT_S` (``ray.init`` would otherwise retry for 20 s or more).

Ray is imported inside the functions, so importing this module stays cheap.
"""

from __future__ import annotations

import math
import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from alphaloop.egress import quiet_by_default
from alphaloop.errors import RayClusterUnavailable

__all__ = [
    "ADDRESS_ENV_VAR",
    "CONNECT_TIMEOUT_S",
    "JOIN_TIMEOUT_S",
    "LOOPBACK",
    "USAGE_STATS_ENV_VAR",
    "RaySession",
    "connect_ray",
    "named_address",
    "use_address",
]

ADDRESS_ENV_VAR = "RAY_ADDRESS"
USAGE_STATS_ENV_VAR = "RAY_USAGE_STATS_ENABLED"
LOOPBACK = "127.0.0.1"
# Seconds to wait for a named cluster's port to accept a connection (a LAN or an SSH tunnel
# answers in milliseconds; a firewall that drops packets would otherwise stall ray.init).
CONNECT_TIMEOUT_S = 5.0
# Seconds ray.init may then try to get in (one attempt a second) before the command gives up.
JOIN_TIMEOUT_S = 10.0
# Ray's own budget for that, in seconds (Ray's default: 20 attempts).
_GCS_WAIT_ENV_VAR = "RAY_gcs_server_port_wait_time_s"
# Ray Client's default port, for ``ray://host`` without a port.
RAY_CLIENT_PORT = 10001
# The CLI's --ray-address of the current invocation (use_address).
_cli_address: str | None = None
# Ray's discovery keywords: "auto" searches the machine, "local" starts a new Ray.
_DISCOVER = "auto"
_LOCAL = "local"
# The proxy variables (see _cloud_probe_blocked), and a loopback proxy that refuses at once.
_PROXY_ENV_VARS = ("http_proxy", "HTTP_PROXY", "no_proxy", "NO_PROXY")
_DEAD_PROXY = "http://127.0.0.1:9"
# Ray's switch between a one-node Ray on loopback (false) and a cluster node (see _start_private).
_ONE_NODE_ENV_VAR = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"


@dataclass(frozen=True, slots=True, kw_only=True)
class RaySession:
    """How this process reached Ray.

    Attributes
    ----------
    started:
        True when :func:`connect_ray` started a private local Ray; the caller shuts it down.
    address:
        ``"local"`` for a private Ray, ``"existing"`` when Ray was already initialised in this
        process, else the named cluster's address as given.
    source:
        Where the address came from (see :func:`named_address`), or ``""``.
    """

    started: bool
    address: str
    source: str = ""


def use_address(address: str | None) -> None:
    """Record the CLI's ``--ray-address`` for this process (None: the option was not given).

    The CLI calls this once per invocation, so an in-process invocation never inherits the
    previous one's address.
    """
    global _cli_address
    _cli_address = address


def named_address(address: str | None = None) -> tuple[str, str] | None:
    """Return the cluster the user named and where it was named, or None for a private Ray.

    Parameters
    ----------
    address:
        An explicit address from the calling code; it wins over ``--ray-address``, which wins
        over ``RAY_ADDRESS``.

    Returns
    -------
    tuple[str, str] | None
        ``(address, source)`` with ``source`` ``"address argument"``, ``"--ray-address"`` or
        ``"RAY_ADDRESS"``; None when none names a cluster (an empty value or ``"local"`` names
        none).
    """
    candidates = (
        (address, "address argument"),
        (_cli_address, "--ray-address"),
        (os.environ.get(ADDRESS_ENV_VAR), ADDRESS_ENV_VAR),
    )
    for value, source in candidates:
        if value is None or not value.strip():
            continue
        value = value.strip()
        return None if value == _LOCAL else (value, source)
    return None


def _host_port(address: str, source: str) -> tuple[str, int]:
    """Split a GCS (``host:port``) or Ray Client (``ray://host[:port]``) address."""
    scheme, sep, rest = address.partition("://")
    if not sep:
        scheme, rest = "", address
    if scheme in ("http", "https"):
        raise RayClusterUnavailable(
            f"{source} {address!r} is a dashboard (Jobs API) address: submit the command with "
            f"`ray job submit --address {address} -- alphaloop ...`, or name the cluster's GCS "
            "address (HOST:6379) to run the command here as a driver"
        )
    if scheme not in ("", "ray"):
        raise RayClusterUnavailable(
            f"{source} {address!r}: expected HOST:PORT (the cluster's GCS, e.g. 10.0.0.5:6379) "
            "or ray://HOST[:PORT] (Ray Client)"
        )
    rest = rest.rstrip("/")
    if rest.startswith("["):  # [IPv6]:port
        host, _, tail = rest[1:].partition("]")
        port_text = tail[1:] if tail.startswith(":") else ""
    else:
        host, _, port_text = rest.rpartition(":")
        if not host:
            host, port_text = rest, ""
    if not port_text and scheme == "ray":
        port_text = str(RAY_CLIENT_PORT)
    if not host or not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise RayClusterUnavailable(
            f"{source} {address!r}: expected HOST:PORT (the cluster's GCS, e.g. 10.0.0.5:6379) "
            "or ray://HOST[:PORT] (Ray Client)"
        )
    return host, int(port_text)


def _check_reachable(address: str, source: str, host: str, port: int, timeout: float) -> None:
    """Raise :class:`RayClusterUnavailable` unless ``host:port`` accepts a connection."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            pass
    except OSError as exc:
        reason = "timed out" if isinstance(exc, TimeoutError) else (exc.strerror or str(exc))
        raise RayClusterUnavailable(
            f"Ray cluster {address} (from {source}) is unreachable: {reason} "
            f"(after at most {timeout:g} s); start it, correct the address, or leave "
            f"{ADDRESS_ENV_VAR} and --ray-address unset to run on a private local Ray"
        ) from None


def _cloud_probe_blocked() -> dict[str, str]:
    """Return the proxy settings that keep a private Ray's cloud probe on loopback.

    Ray (2.60) starts its dashboard process even with ``include_dashboard=False``, with one
    module, ``UsageStatsHead``, which asks the cloud metadata addresses (``169.254.169.254``,
    ``metadata.google.internal``) over plain HTTP *before* it checks whether usage statistics
    are enabled. With usage statistics off and no proxy of the user's, the processes of a
    private Ray get an HTTP proxy on a loopback port nothing listens on (the discard port):
    those requests fail at once on loopback. Ray's own traffic (gRPC to 127.0.0.1) is exempt
    through ``no_proxy``; a user who set a proxy, or turned usage statistics on, keeps theirs.
    """
    if os.environ.get(USAGE_STATS_ENV_VAR, "") != "0":
        return {}
    if any(os.environ.get(name) for name in _PROXY_ENV_VARS):
        return {}
    exempt = "127.0.0.1,localhost,::1"
    return {
        "http_proxy": _DEAD_PROXY, "HTTP_PROXY": _DEAD_PROXY,
        "no_proxy": exempt, "NO_PROXY": exempt,
    }  # fmt: skip


def _start_private(num_cpus: int | None, options: dict[str, Any]) -> None:
    """Start a one-node Ray on this machine whose servers listen on 127.0.0.1 only."""
    import ray
    from ray._private import ray_constants

    # Ray turns _node_ip_address="127.0.0.1" into the machine's address, and its servers then
    # listen on every interface, unless it runs as the one-node Ray it is on macOS and Windows
    # (ENABLE_RAY_CLUSTER false: node address 127.0.0.1, servers bound to it). The switch is
    # read from the environment by every process Ray starts now (the raylet's workers inherit
    # it) and from a constant in this one, so both are set for the start and then restored:
    # a cluster joined later from this process must advertise a reachable address.
    saved_env = os.environ.get(_ONE_NODE_ENV_VAR)
    saved_flag = getattr(ray_constants, "ENABLE_RAY_CLUSTER", None)
    saved_proxy = {name: os.environ.get(name) for name in _PROXY_ENV_VARS}
    os.environ.update(_cloud_probe_blocked())
    os.environ[_ONE_NODE_ENV_VAR] = "0"
    if saved_flag is not None:
        ray_constants.ENABLE_RAY_CLUSTER = False
    try:
        # address="local" starts a new instance whatever RAY_ADDRESS or
        # /tmp/ray/ray_current_cluster say (a bare ray.init() would join either).
        ray.init(
            address=_LOCAL,
            num_cpus=num_cpus,
            include_dashboard=False,
            _node_ip_address=LOOPBACK,
            **options,
        )
    finally:
        for name, value in saved_proxy.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        if saved_env is None:
            os.environ.pop(_ONE_NODE_ENV_VAR, None)
        else:
            os.environ[_ONE_NODE_ENV_VAR] = saved_env
        if saved_flag is not None:
            ray_constants.ENABLE_RAY_CLUSTER = saved_flag


def connect_ray(
    *,
    address: str | None = None,
    num_cpus: int | None = None,
    runtime_env: Mapping[str, Any] | None = None,
    private: bool = False,
    connect_timeout: float = CONNECT_TIMEOUT_S,
    join_timeout: float = JOIN_TIMEOUT_S,
) -> RaySession:
    """Join the cluster the user named, or start a private local Ray (see the module docstring).

    Parameters
    ----------
    address:
        An explicit cluster address; else the CLI's ``--ray-address``, else ``RAY_ADDRESS``.
    num_cpus:
        CPUs of a private local Ray (a joined cluster has its own).
    runtime_env:
        Ray runtime environment for this driver's workers.
    private:
        Start a private local Ray even when a cluster is named (benchmarks).
    connect_timeout:
        Seconds to wait for a named cluster's port to accept a connection.
    join_timeout:
        Seconds Ray may then spend getting into the cluster (unless the user set
        ``RAY_gcs_server_port_wait_time_s``).

    Returns
    -------
    RaySession
        ``started`` is True when this call started Ray (the caller shuts it down).

    Raises
    ------
    RayClusterUnavailable
        The named cluster's address is malformed, asks for discovery, or cannot be reached.
    """
    import ray

    # A mistake in the address is the user's whatever state Ray is in: check it first.
    named = None if private else named_address(address)
    if named is not None:
        target, source = named
        if target == _DISCOVER:
            raise RayClusterUnavailable(
                f"{source}={_DISCOVER!r} asks Ray to join whatever cluster runs on this "
                "machine; name the cluster (HOST:PORT), or unset it to run on a private "
                "local Ray"
            )
        host, port = _host_port(target, source)
    if ray.is_initialized():
        return RaySession(started=False, address="existing")
    from alphaloop.home import leave_job_working_dir

    leave_job_working_dir()
    # Ray reports usage to its servers unless told not to; the lab's processes are offline.
    quiet_by_default()
    options: dict[str, Any] = {"log_to_driver": False, "configure_logging": False}
    if runtime_env:
        options["runtime_env"] = dict(runtime_env)
    if named is None:
        _start_private(num_cpus, options)
        return RaySession(started=True, address=_LOCAL)
    _check_reachable(target, source, host, port, connect_timeout)
    # A port that accepts connections may still not be a GCS that lets us in (another
    # service, a proxy, a wrong auth token): Ray retries once a second, 20 times by default.
    saved_wait = os.environ.get(_GCS_WAIT_ENV_VAR)
    if saved_wait is None:
        os.environ[_GCS_WAIT_ENV_VAR] = str(max(1, math.ceil(join_timeout)))
    try:
        ray.init(address=target, **options)
    except (ConnectionError, RuntimeError, ValueError, ray.exceptions.RayError) as exc:
        ray.shutdown()
        raise RayClusterUnavailable(
            f"cannot join Ray cluster {target} (from {source}): {exc}; check the address "
            "and the cluster's auth token (RAY_AUTH_TOKEN), or leave RAY_ADDRESS and "
            "--ray-address unset to run on a private local Ray"
        ) from exc
    finally:
        if saved_wait is None:
            os.environ.pop(_GCS_WAIT_ENV_VAR, None)
    return RaySession(started=False, address=target, source=source)

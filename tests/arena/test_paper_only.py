"""Paper only: a full arena day opens no connection beyond loopback."""

from __future__ import annotations

import ipaddress
import socket
from datetime import date
from typing import Any

import pytest

from alphaloop.home import LabHome
from arena.day import LocalAccounts, run_arena_day
from arena.market import load_arena_data
from arena.personas import load_arena_config
from arena.tracking import log_arena_day

SPEC = "synthetic:seed=13,assets=5,start=2022-01-01,end=2023-12-31"


def _is_local(address: Any) -> bool:
    if isinstance(address, str | bytes):  # AF_UNIX path
        return True
    host = str(address[0])
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@pytest.fixture
def guarded(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    attempts: list[Any] = []
    real_connect = socket.socket.connect
    real_connect_ex = socket.socket.connect_ex

    def connect(self: socket.socket, address: Any) -> Any:
        if not _is_local(address):
            attempts.append(address)
            raise ConnectionRefusedError(f"test guard: outbound connection to {address!r}")
        return real_connect(self, address)

    def connect_ex(self: socket.socket, address: Any) -> Any:
        if not _is_local(address):
            attempts.append(address)
            return 111
        return real_connect_ex(self, address)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
    return attempts


def test_paper_only_guard_catches_outbound_connect(guarded: list[Any]) -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        with pytest.raises(ConnectionRefusedError):
            sock.connect(("192.0.2.1", 443))
    finally:
        sock.close()
    assert guarded == [("192.0.2.1", 443)]


def test_paper_only_full_day_no_outbound_connection(guarded: list[Any], lab_home: LabHome) -> None:
    config = load_arena_config()
    data = load_arena_data(SPEC, lab_home)
    accounts = LocalAccounts(lab_home, config, data.rules())
    try:
        summary = run_arena_day(accounts, data, date(2023, 6, 1), home=lab_home, config=config)
    finally:
        accounts.close()
    log_arena_day(lab_home, summary, data_spec=data.spec)
    assert any(figures["trades"] for figures in summary["accounts"].values())
    assert guarded == []


def test_paper_only_live_broker_config_refused() -> None:
    from alphaloop.errors import ConfigError

    with pytest.raises(ConfigError, match="paper only"):
        load_arena_config(overrides={"broker": "interactive_brokers"})

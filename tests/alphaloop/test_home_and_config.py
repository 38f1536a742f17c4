"""Lab home resolution and the configuration machinery."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import Field, model_validator

from alphaloop.config import FrozenConfig, load_config, validate_config
from alphaloop.errors import ConfigError
from alphaloop.home import ENV_VAR, LabHome, resolve_home


class _Limits(FrozenConfig):
    cash_floor: float = Field(0.1, ge=0.0, le=1.0)
    max_weight: float = Field(0.3, gt=0.0, le=1.0)

    @model_validator(mode="after")
    def _check(self) -> _Limits:
        if self.max_weight > 1.0 - self.cash_floor:
            raise ValueError("max_weight must leave room for cash_floor")
        return self


def test_resolve_home_explicit_beats_environment(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "env"))
    assert resolve_home(tmp_path / "flag") == (tmp_path / "flag").resolve()
    assert resolve_home() == (tmp_path / "env").resolve()


def test_resolve_home_without_anything_is_user_home_not_cwd(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.delenv(ENV_VAR, raising=False)
    monkeypatch.chdir(tmp_path)
    assert resolve_home() == (Path.home() / ".alphaloop").resolve()
    assert resolve_home() != tmp_path


def test_lab_home_ensure_creates_standard_folders(tmp_path: Path) -> None:
    home = LabHome(tmp_path / "lab").ensure()
    assert home.cache.is_dir() and home.runs.is_dir() and home.reports.is_dir()
    assert home.mlflow_uri == f"sqlite:///{tmp_path / 'lab' / 'mlflow.db'}"


def test_config_unknown_key_names_file_key_and_allowed(tmp_path: Path) -> None:
    path = tmp_path / "limits.yaml"
    path.write_text("cash_floor: 0.2\nmax_wieght: 0.3\n")
    with pytest.raises(ConfigError) as info:
        load_config(_Limits, path)
    message = str(info.value)
    assert str(path) in message and "max_wieght" in message
    assert "cash_floor" in message and "max_weight" in message  # the allowed keys


def test_config_out_of_range_value_names_key_and_bound(tmp_path: Path) -> None:
    path = tmp_path / "limits.yaml"
    path.write_text("cash_floor: 1.5\n")
    with pytest.raises(ConfigError) as info:
        load_config(_Limits, path)
    assert "cash_floor" in str(info.value) and "1" in str(info.value) and "1.5" in str(info.value)


def test_config_cross_field_check_fails_with_reason() -> None:
    with pytest.raises(ConfigError, match="room for cash_floor"):
        validate_config(_Limits, {"cash_floor": 0.8, "max_weight": 0.3}, "test")


def test_config_is_frozen_and_hash_is_stable_and_value_sensitive() -> None:
    first = validate_config(_Limits, {"cash_floor": 0.1, "max_weight": 0.3}, "a")
    second = validate_config(_Limits, {"max_weight": 0.3, "cash_floor": 0.1}, "b")
    assert first.stable_hash() == second.stable_hash()
    assert first.stable_hash() != first.model_copy(update={"cash_floor": 0.2}).stable_hash()
    with pytest.raises(Exception):  # noqa: B017 - pydantic raises its own frozen error type
        first.cash_floor = 0.5  # type: ignore[misc]


def test_config_malformed_yaml_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("cash_floor: [1, 2\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(_Limits, path)

"""Configuration machinery: frozen pydantic v2 models with a stable hash, loaded from YAML.

Every config model derives from :class:`FrozenConfig` (``extra="forbid"``, frozen). Cross-field
checks live in ``model_validator(mode="after")`` methods of each model. Loading a YAML file
through :func:`load_config` turns pydantic's errors into one :class:`ConfigError` whose
message names the file, the dotted key and what is allowed, e.g.::

    configs/backtest.yaml: key 'fees.commission_rate': Input should be less than or equal
    to 0.05 (got 0.5)
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from alphaloop.errors import ConfigError

CONFIG_DIR = Path(__file__).resolve().parent.parent / "configs"

T = TypeVar("T", bound="FrozenConfig")


class FrozenConfig(BaseModel):
    """Base of every configuration model: immutable, strict about keys, hashable."""

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)

    def stable_hash(self) -> str:
        """Return a hex digest that depends only on the values (not on key order)."""
        payload = json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:16]


def _describe_error(source: str, error: Mapping[str, Any]) -> str:
    key = ".".join(str(part) for part in error.get("loc", ())) or "<root>"
    kind = error.get("type", "")
    message = str(error.get("msg", "invalid value"))
    if kind == "extra_forbidden":
        return f"{source}: unknown key '{key}'"
    got = error.get("input")
    shown = "" if isinstance(got, dict | list) else f" (got {got!r})"
    return f"{source}: key '{key}': {message}{shown}"


def validate_config(model: type[T], data: Mapping[str, Any] | None, source: str) -> T:
    """Validate ``data`` against ``model``; raise :class:`ConfigError` naming ``source``."""
    try:
        return model.model_validate(dict(data or {}))
    except ValidationError as exc:
        lines = [_describe_error(source, err) for err in exc.errors()]
        allowed = sorted(model.model_fields)
        if any("unknown key" in line for line in lines):
            lines.append(f"{source}: allowed top-level keys: {', '.join(allowed)}")
        raise ConfigError("\n".join(lines)) from None


def read_yaml(path: Path) -> dict[str, Any]:
    """Read one YAML mapping; raise :class:`ConfigError` on a missing or malformed file."""
    if not path.is_file():
        raise ConfigError(f"{path}: configuration file not found")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{path}: not UTF-8 text (a binary file?): byte {exc.start} cannot be decoded"
        ) from None
    except RecursionError:
        raise ConfigError(f"{path}: nested too deeply to be a configuration") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level, got {type(data).__name__}")
    return data


def load_config(
    model: type[T],
    path: str | Path | None = None,
    *,
    default_name: str | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> T:
    """Load ``model`` from ``path`` (or ``configs/<default_name>``), then apply ``overrides``.

    With neither a path nor a default file, the model's own defaults are used.
    """
    data: dict[str, Any] = {}
    source = "<defaults>"
    if path is not None:
        file = Path(path)
        data = read_yaml(file)
        source = str(file)
    elif default_name is not None and (CONFIG_DIR / default_name).is_file():
        file = CONFIG_DIR / default_name
        data = read_yaml(file)
        source = str(file)
    if overrides:
        data = _deep_merge(data, overrides)
        source = f"{source} (+ overrides)"
    return validate_config(model, data, source)


def _deep_merge(base: Mapping[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged

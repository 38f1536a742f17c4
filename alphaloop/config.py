"""Configuration machinery: frozen pydantic v2 models with a stable hash, loaded from YAML.

Every config model derives from :class:`FrozenConfig` (``extra="forbid"``, frozen). Cross-field
checks live in ``model_validator(mode="after")`` methods of each model. Loading a YAML file
through :func:`load_config` turns pydantic's errors into one :class:`ConfigError` whose
message names the file, the dotted key and what is allowed, e.g.::

    my_backtest.yaml: key 'fees.commission_rate': Input should be less than or equal
    to 0.05 (got 0.5)

The defaults a user edits ship inside the package, in ``alphaloop/configs/`` (read through
:mod:`importlib.resources`, so an installed wheel finds them wherever it lives). A user file
(``--config FILE``, ``--arena-config FILE``) overrides them key by key: it is merged over the
packaged file section by section (see :func:`load_config`), then the result is validated. A
packaged default that is missing is an error (a broken install), never a silent fall-back to
the model's defaults.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any, TypeVar, get_args

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from alphaloop.errors import ConfigError

PACKAGED_CONFIG_FOLDER = "configs"
"""The folder of packaged default YAML files inside the ``alphaloop`` package."""

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


def packaged_configs() -> Traversable:
    """Return the folder of the packaged default configuration files (``alphaloop/configs``)."""
    return files("alphaloop") / PACKAGED_CONFIG_FOLDER


def packaged_config(name: str) -> Traversable:
    """Return the packaged default file ``name`` (e.g. ``"arena.yaml"``).

    Raises
    ------
    ConfigError
        If the installed package lacks it (an install without its package data).
    """
    file = packaged_configs() / name
    if not file.is_file():
        raise ConfigError(
            f"{file}: packaged default configuration {name!r} is missing; the alphaloop "
            "install is incomplete (reinstall it: the YAML files of alphaloop/configs/ are "
            "package data)"
        )
    return file


def read_yaml(path: Path | Traversable) -> dict[str, Any]:
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
    """Load ``model``: the packaged ``default_name``, the user file ``path`` over it, then
    ``overrides``.

    A partial user file changes only the keys it names: a section that is a model of its own
    (``risk:``, ``personas.aggressive:``) merges key by key, any other value (a number, a list,
    a mapping such as ``regime_weights``) replaces the packaged one whole. Without
    ``default_name`` (a model with no packaged file) ``path`` alone is validated, and with
    neither the model's own defaults are used. Errors name the user file when there is one
    (its keys are the ones a user can get wrong), else the packaged file.

    Raises
    ------
    ConfigError
        Naming the file and the key on a bad value, or when the packaged file is missing.
    """
    data: dict[str, Any] = {}
    source = "<defaults>"
    if default_name is not None:
        default = packaged_config(default_name)
        data = read_yaml(default)
        source = str(default)
    if path is not None:
        file = Path(path)
        data = _merge(model, data, read_yaml(file))
        source = str(file)
    if overrides:
        data = _merge(model, data, overrides)
        source = f"{source} (+ overrides)"
    return validate_config(model, data, source)


def _section_model(model: type[BaseModel] | None, key: object) -> type[BaseModel] | None:
    """Return the model of field ``key`` of ``model`` when that field is a model of its own."""
    field = None if model is None else model.model_fields.get(str(key))
    if field is None:
        return None
    found = [
        kind
        for kind in (field.annotation, *get_args(field.annotation))
        if isinstance(kind, type) and issubclass(kind, BaseModel)
    ]
    return found[0] if len(found) == 1 else None


def _merge(
    model: type[BaseModel] | None, base: Mapping[str, Any], extra: Mapping[str, Any]
) -> dict[str, Any]:
    merged = dict(base)
    for key, value in extra.items():
        section = _section_model(model, key)
        if (
            section is not None
            and isinstance(value, Mapping)
            and isinstance(merged.get(key), Mapping)
        ):
            merged[key] = _merge(section, merged[key], value)
        else:
            merged[key] = value
    return merged

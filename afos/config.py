"""Config files: TOML in, plain mappings out; the dataclasses that read them validate the values."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path
from typing import Any, Mapping

from afos.errors import ConfigError


def load_config(path: str | Path | None) -> dict[str, Any]:
    """Read a TOML config (top-level search keys, a ``[train]`` table); None gives the defaults."""
    if path is None:
        return {}
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib  # type: ignore[no-redef]
    try:
        with open(path, "rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"config file {path}: {error}") from None


def with_overrides(values: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Apply ``{"population": 8, "train.epochs": 2}``-style overrides (None values are skipped)."""
    merged = {k: (dict(v) if isinstance(v, Mapping) else v) for k, v in values.items()}
    for key, value in overrides.items():
        if value is None:
            continue
        section, _, name = key.rpartition(".")
        target = merged.setdefault(section, {}) if section else merged
        target[name] = value
    return merged


def check_keys(cls: type, values: Mapping[str, Any], where: str) -> None:
    """Reject keys that are not fields of the dataclass ``cls``, naming them: a typo in a config must not
    silently fall back to a default."""
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")

"""Config files: TOML in, plain mappings out; the dataclasses that read them validate the values."""

from __future__ import annotations

import difflib
import math
from dataclasses import fields
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

from afos.errors import ConfigError

#: The configs shipped inside the package, usable by name (``--config cifar10-fast``) wherever afos is installed.
SHIPPED = Path(__file__).resolve().parent / "configs"
#: The shipped config a search runs when none is named: a task where the activation decides the accuracy.
DEFAULT_SEARCH_CONFIG = "spirals"


def shipped_configs() -> list[str]:
    """The names of the shipped configs, sorted."""
    return sorted(path.stem for path in SHIPPED.glob("*.toml"))


def config_path(name_or_path: str | Path) -> Path:
    """A config file by path, or a shipped config by name (with or without ``.toml``, or written as the
    ``configs/NAME.toml`` of a source checkout); a path that exists wins over a name."""
    path = Path(name_or_path)
    if path.is_file():
        return path
    shipped = SHIPPED / f"{path.stem}.toml"
    if path.suffix in ("", ".toml") and path.parent in (Path("."), Path("configs")) and shipped.is_file():
        return shipped
    names = shipped_configs()
    raise ConfigError(f"config {name_or_path} is neither a file nor a shipped config; "
                      f"{did_you_mean(path.stem, names)}shipped: {', '.join(names)}")


def load_config(name_or_path: str | Path | None) -> dict[str, Any]:
    """Read a TOML config (top-level search keys, a ``[train]`` table) by path or shipped name
    (:func:`config_path`); None gives the defaults."""
    if name_or_path is None:
        return {}
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib  # type: ignore[no-redef]
    path = config_path(name_or_path)
    try:
        with open(path, "rb") as handle:
            return tomllib.load(handle)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"config file {path}: {error}") from None


def with_overrides(values: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Apply ``{"population": 8, "train.epochs": 2}``-style overrides (None values are skipped).

    A section an override goes into must be a table: ``train = 5`` in a config is refused by name here, not
    found out by a traceback.
    """
    merged = {k: (dict(v) if isinstance(v, Mapping) else v) for k, v in values.items()}
    for key, value in overrides.items():
        if value is None:
            continue
        section, _, name = key.rpartition(".")
        target = merged.setdefault(section, {}) if section else merged
        if not isinstance(target, dict):
            raise ConfigError(f"config: {section} must be a table of settings ([{section}] in TOML), "
                              f"got {target!r}")
        target[name] = value
    return merged


def check_keys(cls: type, values: Mapping[str, Any], where: str) -> None:
    """Reject keys that are not fields of the dataclass ``cls``, naming them: a typo in a config must not
    silently fall back to a default."""
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        guesses = "".join(did_you_mean(key, known) for key in unknown)
        raise ConfigError(f"{where}: unknown key(s) {', '.join(unknown)}; {guesses}known: {', '.join(sorted(known))}")


# ------------------------------------------------------------------------------------ value rules
# One validation style for every config key: a table of key -> (predicate, what is expected), checked in
# order, the first failure raised as one ConfigError naming the key, its value and what it should be.

Check = Callable[[Any], bool]
Rule = tuple[Check, str]

#: Largest seed: seeds go into torch and numpy generators, which take 64-bit values.
MAX_SEED = 2**63 - 1


def is_real(value: Any) -> bool:
    """A finite int or float; ``True``/``False`` are not numbers here, although Python says they are."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def number(low: float = -math.inf, high: float = math.inf, *, open_low: bool = False,
           open_high: bool = False) -> Check:
    """A finite real number in a range; ``open_*`` excludes an end."""

    def check(value: Any) -> bool:
        if not is_real(value):
            return False
        above = value > low if open_low else value >= low
        below = value < high if open_high else value <= high
        return above and below

    return check


def integer(low: int, high: int = MAX_SEED) -> Check:
    """An int (not a float such as 4.0 or 4.5, not a bool) in ``[low, high]``."""
    return lambda value: isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


class one_of:  # noqa: N801 - used like the other rule constructors
    """A text among ``choices``; :func:`check_rules` suggests the closest choice for a typo (also through
    :func:`optional`)."""

    def __init__(self, choices: Iterable[str]) -> None:
        self.choices = tuple(choices)

    def __call__(self, value: Any) -> bool:
        return isinstance(value, str) and value in self.choices


def optional(check: Check) -> Check:
    if isinstance(check, one_of):
        return one_of_or_none(check.choices)
    return lambda value: value is None or check(value)


class one_of_or_none(one_of):  # noqa: N801
    """None or a text among ``choices``."""

    def __call__(self, value: Any) -> bool:
        return value is None or super().__call__(value)


def did_you_mean(word: object, choices: Iterable[str]) -> str:
    """``did you mean 'mnist'? `` for a near miss among ``choices`` (empty when nothing is close)."""
    close = difflib.get_close_matches(str(word), list(choices), n=1, cutoff=0.6) if isinstance(word, str) else []
    return f"did you mean {close[0]!r}? " if close else ""


def list_of(check: Check) -> Check:
    return lambda value: isinstance(value, list) and all(check(item) for item in value)


def is_text(value: Any) -> bool:
    return isinstance(value, str)


BOOLEAN: Rule = (lambda value: isinstance(value, bool), "true or false")


def check_rules(config: object, rules: Mapping[str, Rule], where: str) -> None:
    """Raise one :class:`ConfigError` naming every attribute of ``config`` that breaks its rule: a file with
    two mistakes should not take two runs to learn of both."""
    problems = []
    for key, (check, expected) in rules.items():
        value = getattr(config, key)
        if not check(value):
            shown = repr(value) if len(repr(value)) <= 80 else f"{repr(value)[:77]}..."
            hint = did_you_mean(value, check.choices) if isinstance(check, one_of) else ""
            problems.append(f"{key}={shown} is invalid; {hint}expected {expected}")
    if problems:
        raise ConfigError(f"{where}: {'; '.join(problems)}")

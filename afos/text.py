"""Words for counts, so that every line afos prints reads "1 run" and "2 runs", never "1 runs"."""

from __future__ import annotations


def counted(count: int, noun: str, plural: str | None = None) -> str:
    """``count`` and ``noun``, the noun in the plural (``plural``, else ``noun + "s"``) unless ``count`` is 1."""
    return f"{count} {noun if count == 1 else plural or noun + 's'}"

"""Tables as CSV text, for the pages' download links.

Why not the report's CSV files: a search writes those when it ends, and a reader of a live run wants the
table as it stands now, in the columns the API answers. Nested records become dotted columns
(``counts.trained``) and lists become JSON text, so that every row of a table has the same flat columns.
"""

from __future__ import annotations

import csv
import io
from typing import Any

from afos.records.json import dumps


def flat(row: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``row`` with nested dicts as dotted keys and lists as JSON text."""
    out: dict[str, Any] = {}
    for key, value in row.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flat(value, f"{name}."))
        elif isinstance(value, (list, tuple)):
            out[name] = dumps(value)
        else:
            out[name] = "" if value is None else getattr(value, "value", value)
    return out


def csv_text(rows: list[dict[str, Any]], columns: list[str] | None = None) -> tuple[str, list[str]]:
    """The rows as CSV and its columns: in the order they first appear, with a header line; or, for the
    next part of a table sent in parts, ``columns`` as the first part found them, without one (a value
    under a column the first part lacked is left out rather than shifting the others)."""
    flattened = [flat(row) for row in rows]
    header = columns is None
    columns = columns or list(dict.fromkeys(key for row in flattened for key in row))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, columns, lineterminator="\n", extrasaction="ignore", restval="")
    if header:
        writer.writeheader()
    writer.writerows(flattened)
    return buffer.getvalue(), columns

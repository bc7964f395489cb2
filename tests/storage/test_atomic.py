"""Files replaced whole: the old content survives a failed write, and devices are written, never replaced."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from afos.storage.atomic import replaced_atomically, write_text_atomically


def test_a_failed_write_leaves_the_old_file_and_no_partial(tmp_path: Path) -> None:
    path = tmp_path / "report.md"
    write_text_atomically(path, "old")
    with pytest.raises(RuntimeError), replaced_atomically(path) as partial:
        partial.write_text("half")
        raise RuntimeError("killed mid-write")
    assert path.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["report.md"]
    write_text_atomically(path, "new")
    assert path.read_text() == "new" and len(list(tmp_path.iterdir())) == 1


def test_a_device_is_written_in_place_not_replaced_by_a_file() -> None:
    with pytest.raises(OSError), replaced_atomically("/dev/full") as target, target.open("w") as handle:
        handle.write("x" * 10_000)
        handle.flush()
    assert stat.S_ISCHR(os.stat("/dev/full").st_mode)

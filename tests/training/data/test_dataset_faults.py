"""Broken dataset files: truncated, garbage, oversized and bomb archives are one DatasetError naming the file,
through the real loader and through the real CLI (one line, exit code 2), and a bomb is refused before it
allocates more than the declared dataset size."""

from __future__ import annotations

import gzip
import shutil
import struct
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from afos.errors import DatasetError
from afos.training.data.registry import load_dataset

_IDX_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
_CIFAR_FILES = tuple(f"data_batch_{i}" for i in range(1, 6)) + ("test_batch",)


def _idx_header(shape: tuple[int, ...]) -> bytes:
    return bytes([0, 0, 8, len(shape)]) + struct.pack(f">{len(shape)}I", *shape)


def _tiny_mnist(root: Path) -> Path:
    """A valid MNIST folder of 20 training and 4 test images (3 x 2 pixels), every file gzip-compressed."""
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    images, labels = np.arange(20 * 6).reshape(20, 3, 2) % 256, np.arange(20) % 10
    for name, array in zip(_IDX_FILES, (images, labels, images[:4], labels[:4])):
        with gzip.open(raw / f"{name}.gz", "wb") as f:
            f.write(_idx_header(array.shape) + array.astype(np.uint8).tobytes())
    return raw


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "afos", *args], capture_output=True, text=True, timeout=300)


def _assert_one_line_error(result: subprocess.CompletedProcess[str], *needles: str) -> None:
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert lines[-1].startswith("afos: error: ") and all(n in lines[-1] for n in needles), lines
    assert not [line for line in lines if line.startswith("afos:") and line is not lines[-1]]


def _evaluate_mnist(data_dir: Path, out: Path) -> subprocess.CompletedProcess[str]:
    """The real CLI loading MNIST from ``data_dir``; it checks the dataset before any training."""
    return _cli("evaluate", "relu", "--dataset", "mnist", "--data-dir", str(data_dir), "--seeds", "1",
                "--epochs", "0.01", "--out", str(out), "--quiet")


# ------------------------------------------------------------------------------------------------ idx (.gz) files


def test_truncated_real_gz_names_the_file_in_loader_and_cli(shared_data: Callable[[str], Path], tmp_path: Path) -> None:
    root = shared_data("mnist")
    raw = tmp_path / "data" / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for name in _IDX_FILES:
        shutil.copy(root / "MNIST" / "raw" / f"{name}.gz", raw)
    victim = raw / "train-images-idx3-ubyte.gz"
    victim.write_bytes(victim.read_bytes()[: victim.stat().st_size // 2])
    with pytest.raises(DatasetError, match="truncated or corrupt") as info:
        load_dataset("mnist", tmp_path / "data", download=False)
    assert str(victim) in str(info.value)
    _assert_one_line_error(_evaluate_mnist(tmp_path / "data", tmp_path / "out"), str(victim), "truncated")


def test_gz_cut_inside_the_header_is_truncated(tmp_path: Path) -> None:
    raw = _tiny_mnist(tmp_path)
    victim = raw / "t10k-labels-idx1-ubyte.gz"
    with gzip.open(victim, "wb") as f:
        f.write(_idx_header((4,))[:6])
    with pytest.raises(DatasetError, match="truncated") as info:
        load_dataset("mnist", tmp_path, download=False)
    assert str(victim) in str(info.value)


def test_garbage_gz_names_the_file_in_loader_and_cli(tmp_path: Path) -> None:
    raw = _tiny_mnist(tmp_path)
    victim = raw / "train-labels-idx1-ubyte.gz"
    victim.write_bytes(np.random.default_rng(0).integers(0, 256, 3000, dtype=np.uint8).tobytes())
    with pytest.raises(DatasetError, match="truncated or corrupt") as info:
        load_dataset("mnist", tmp_path, download=False)
    assert str(victim) in str(info.value)
    _assert_one_line_error(_evaluate_mnist(tmp_path, tmp_path / "out"), str(victim))


def test_header_declaring_more_than_the_dataset_is_refused(tmp_path: Path) -> None:
    raw = _tiny_mnist(tmp_path)
    victim = raw / "train-images-idx3-ubyte.gz"
    with gzip.open(victim, "wb") as f:
        f.write(_idx_header((4_000_000_000, 28, 28)) + bytes(100))
    with pytest.raises(DatasetError, match=r"declares shape \(4000000000, 28, 28\).*at most \(60000, 28, 28\)"):
        load_dataset("mnist", tmp_path, download=False)


@pytest.mark.parametrize(("labels", "match"), [(np.arange(19) % 10, "19 labels for 20 images"),
                                               (np.arange(20) % 11, "labels outside 0..9")])
def test_labels_must_match_the_images(tmp_path: Path, labels: np.ndarray, match: str) -> None:
    raw = _tiny_mnist(tmp_path)
    with gzip.open(raw / "train-labels-idx1-ubyte.gz", "wb") as f:
        f.write(_idx_header(labels.shape) + labels.astype(np.uint8).tobytes())
    with pytest.raises(DatasetError, match=match):
        load_dataset("mnist", tmp_path, download=False)


_BOMB_PROBE = textwrap.dedent("""
    import resource, sys
    from afos.training.data.registry import load_dataset
    from afos.errors import DatasetError
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    try:
        load_dataset("mnist", sys.argv[1], download=False)
    except DatasetError as error:
        print(error, file=sys.stderr)
        print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) // 1024)
""")


def test_gzip_bomb_is_refused_before_it_is_inflated(tmp_path: Path) -> None:
    """A valid header for 4 images followed by 256 MiB of zeros (a 250 kB file): the old reader inflated all
    of it; the streaming one reads the declared 24 bytes, sees one byte more, and stops."""
    raw = _tiny_mnist(tmp_path)
    victim = raw / "t10k-images-idx3-ubyte.gz"
    zeros = bytes(1 << 20)
    with gzip.open(victim, "wb", compresslevel=9) as f:
        f.write(_idx_header((4, 3, 2)))
        for _ in range(256):
            f.write(zeros)
    assert victim.stat().st_size < 1 << 20
    result = subprocess.run([sys.executable, "-c", _BOMB_PROBE, str(tmp_path)], capture_output=True, text=True,
                            timeout=120)
    assert f"{victim} holds more data than its header declares" in result.stderr, result.stderr
    assert int(result.stdout) < 64, "peak memory grew by more than 64 MiB while reading a 24-byte dataset"


# ------------------------------------------------------------------------------------------------ CIFAR batches


def _cifar_folder(root: Path, source: Path | None = None) -> Path:
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    for name in _CIFAR_FILES:
        if source is None:
            (folder / name).write_bytes(b"")
        else:
            (folder / name).symlink_to(source / name)
    return folder


def test_truncated_real_cifar_batch_names_the_file(shared_data: Callable[[str], Path], tmp_path: Path) -> None:
    folder = _cifar_folder(tmp_path, shared_data("cifar10-subset") / "cifar-10-batches-py")
    victim = folder / "data_batch_3"
    blob = victim.read_bytes()
    victim.unlink()
    victim.write_bytes(blob[: len(blob) // 3])
    with pytest.raises(DatasetError, match="is not a CIFAR batch file") as info:
        load_dataset("cifar10", tmp_path, download=False)
    assert str(victim) in str(info.value)


@pytest.mark.parametrize("content", [b"", b"garbage, not a pickle at all", b"\x80\x04K\x05."])
def test_garbage_cifar_batch_is_one_error(tmp_path: Path, content: bytes) -> None:
    folder = _cifar_folder(tmp_path)
    (folder / "data_batch_1").write_bytes(content)
    with pytest.raises(DatasetError, match="data_batch_1 is not a CIFAR batch file"):
        load_dataset("cifar10", tmp_path, download=False)


def test_oversized_cifar_batch_is_refused_unread(tmp_path: Path) -> None:
    folder = _cifar_folder(tmp_path)
    with open(folder / "data_batch_1", "wb") as f:
        f.truncate(64 << 20)  # sparse: 64 MiB on paper, no disk used; a batch of 10,000 images is ~31 MB
    with pytest.raises(DatasetError, match="data_batch_1 is larger than a CIFAR batch of 10000 images can be"):
        load_dataset("cifar10", tmp_path, download=False)

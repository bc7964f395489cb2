"""Readers of the official dataset files: idx (the MNIST family) and pickled batches (the CIFAR family).

Dataset files are untrusted input: every header is checked against the dataset's official size before
anything is allocated, and CIFAR batches are unpickled by an unpickler that builds only the arrays, lists
and bytes those files hold (:class:`_BatchUnpickler`), so no file can run code or exhaust memory."""

from __future__ import annotations

import codecs
import gzip
import hashlib
import io
import math
import pickle
import struct
import warnings
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from afos.errors import DatasetError


@dataclass(frozen=True)
class Source:
    """Where a torchvision-layout dataset lives and which files make it up.

    ``md5`` lists torchvision's checksums of the official files; empty means "not checked" (idx files are
    validated by their own header instead).
    """

    folder: str  # relative to the data root
    train_files: tuple[str, ...]
    test_files: tuple[str, ...]
    num_classes: int
    torchvision_class: str
    reader: Callable[[Source, dict[str, Path]], tuple[torch.Tensor, ...]]
    allow_gzip: bool = False
    label_key: bytes = b"labels"
    md5: tuple[tuple[str, str], ...] = ()

    @property
    def files(self) -> tuple[str, ...]:
        return self.train_files + self.test_files


# --------------------------------------------------------------------------------------------------------------
# MNIST family: idx files


#: The official shape of each MNIST-family file (MNIST and Fashion-MNIST alike). A file may hold fewer
#: examples or smaller images (a subset), never more: a header is checked against these before anything is
#: allocated, so a forged header or a gzip bomb cannot make the reader allocate more than the dataset needs.
_IDX_SHAPES = {
    "train-images-idx3-ubyte": (60_000, 28, 28),
    "train-labels-idx1-ubyte": (60_000,),
    "t10k-images-idx3-ubyte": (10_000, 28, 28),
    "t10k-labels-idx1-ubyte": (10_000,),
}

_REPLACE = "delete it and provide it again (or delete it and let afos download the dataset)"


def _read_idx(path: Path, largest: tuple[int, ...]) -> torch.Tensor:
    """Stream one idx file (gzip-compressed or not) into a uint8 tensor of the shape its header declares.

    Layout: 2 zero bytes, a type code (0x08 = uint8), the number of dimensions, each dimension as a big-endian
    uint32, then the raw data. The declared shape must fit within ``largest``; exactly that many bytes are
    read, into one buffer allocated up front, and one byte more must not exist. So a truncated, garbage or
    over-long file (a gzip bomb) is one :class:`DatasetError` naming it, after at most the declared size.
    """
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            magic = f.read(4)
            if len(magic) < 4 or magic[:3] != b"\x00\x00\x08":
                raise DatasetError(f"{path} is not an idx file of uint8 data (bad header); {_REPLACE}")
            dims = struct.unpack(f">{magic[3]}I", _read_exactly(f, bytearray(4 * magic[3]), path))
            if len(dims) != len(largest) or any(d > m for d, m in zip(dims, largest)):
                raise DatasetError(f"{path} declares shape {dims}, but this file holds at most {largest}; {_REPLACE}")
            raw = _read_exactly(f, bytearray(math.prod(dims)), path)
            if f.read(1):
                raise DatasetError(f"{path} holds more data than its header declares ({dims}); {_REPLACE}")
    except (OSError, EOFError, zlib.error) as exc:  # BadGzipFile is an OSError; a cut-off gzip stream, EOFError
        raise DatasetError(f"{path} is truncated or corrupt and cannot be read ({exc}); {_REPLACE}") from exc
    return torch.frombuffer(raw, dtype=torch.uint8).reshape(dims)


def _read_exactly(f: io.BufferedIOBase, buffer: bytearray, path: Path) -> bytearray:
    """Fill ``buffer`` from ``f``; a file that ends first is truncated."""
    view, filled = memoryview(buffer), 0
    while filled < len(buffer):
        count = f.readinto(view[filled:])
        if not count:
            raise DatasetError(f"{path} is truncated or corrupt: it ended after {filled} of {len(buffer)} bytes "
                               f"of a section; {_REPLACE}")
        filled += count
    return buffer


def _check_labels(path: Path, labels: torch.Tensor, num_classes: int, images: int) -> None:
    """One label per image, each a class index; else training would fail in every candidate alike."""
    if len(labels) != images:
        raise DatasetError(f"{path} holds {len(labels)} labels for {images} images; {_REPLACE}")
    if len(labels) and not 0 <= int(labels.min()) <= int(labels.max()) < num_classes:
        raise DatasetError(f"{path} holds labels outside 0..{num_classes - 1}; {_REPLACE}")


def read_idx_source(source: Source, paths: dict[str, Path]) -> tuple[torch.Tensor, ...]:
    """Read (train_x, train_y, test_x, test_y) of an MNIST-family dataset; images get a channel axis."""
    train_x, train_y, test_x, test_y = (_read_idx(paths[name], _IDX_SHAPES[name]) for name in source.files)
    for images, labels, name in ((train_x, train_y, source.files[1]), (test_x, test_y, source.files[3])):
        _check_labels(paths[name], labels, source.num_classes, len(images))
    return train_x.unsqueeze(1), train_y.long(), test_x.unsqueeze(1), test_y.long()


# --------------------------------------------------------------------------------------------------------------
# CIFAR family: pickled batches


# numpy's array rebuilder, taken from an array so it is found wherever this numpy version keeps it.
_NUMPY_RECONSTRUCT = np.zeros(0).__reduce__()[0]


class _BatchUnpickler(pickle.Unpickler):
    """Unpickler that can only rebuild numpy arrays, so a planted batch file cannot run code.

    CIFAR batches are pickles (Python 2 ones for the official release); these are the only globals they refer
    to. Any other global is refused before it is looked up.
    """

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"): _NUMPY_RECONSTRUCT,  # numpy 1 and the official Python 2 files
        ("numpy._core.multiarray", "_reconstruct"): _NUMPY_RECONSTRUCT,  # numpy 2
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
        ("_codecs", "encode"): codecs.encode,
    }

    def find_class(self, module: str, name: str) -> object:
        try:
            return self._ALLOWED[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(f"refusing global {module}.{name}: not a CIFAR batch") from None


#: Images in each official CIFAR batch file; a file may hold fewer (a subset), never more.
_CIFAR_IMAGES = {**{f"data_batch_{i}": 10_000 for i in range(1, 6)}, "test_batch": 10_000, "train": 50_000,
                 "test": 10_000}
#: Bytes a pickled batch may take per image (pixels, labels, file name, pickle framing) and on top of those.
_CIFAR_IMAGE_BYTES = 3 * 32 * 32 + 256
_CIFAR_SLACK_BYTES = 1 << 20


def _read_cifar_batch(path: Path, label_key: bytes, max_images: int) -> tuple[torch.Tensor, torch.Tensor, str]:
    """Read one pickled batch as (uint8 images N x 3 x 32 x 32, int64 labels, md5 of the file).

    Security: unpickling is only ever applied to the fixed batch file names of the dataset table
    (:data:`~afos.training.data.registry.DATASET_SPECS`) inside the resolved dataset folder, never to a path
    taken from user input, and through :class:`_BatchUnpickler`, which can only rebuild numpy arrays. At most
    the size a batch of ``max_images`` images can take is read, so an oversized file is refused without being
    loaded. The md5 is returned because the bytes are already
    in memory.
    """
    limit = max_images * _CIFAR_IMAGE_BYTES + _CIFAR_SLACK_BYTES
    try:
        with open(path, "rb") as f:
            blob = f.read(limit + 1)
    except OSError as exc:
        raise DatasetError(f"{path} cannot be read ({exc}); {_REPLACE}") from exc
    if len(blob) > limit:
        raise DatasetError(f"{path} is larger than a CIFAR batch of {max_images} images can be; {_REPLACE}")
    try:
        batch = _BatchUnpickler(io.BytesIO(blob), encoding="bytes").load()
        data = np.asarray(batch[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
        labels = torch.as_tensor(np.asarray(batch[label_key], dtype=np.int64)).reshape(-1)
    except Exception as exc:  # an untrusted file can make unpickling raise almost anything
        raise DatasetError(f"{path} is not a CIFAR batch file ({type(exc).__name__}: {exc}); {_REPLACE}") from exc
    if len(data) > max_images:
        raise DatasetError(f"{path} holds {len(data)} images, more than the {max_images} of a CIFAR batch; "
                           f"{_REPLACE}")
    return torch.from_numpy(data.copy()), labels, hashlib.md5(blob, usedforsecurity=False).hexdigest()


def read_cifar_source(source: Source, paths: dict[str, Path]) -> tuple[torch.Tensor, ...]:
    """Read (train_x, train_y, test_x, test_y) of a CIFAR-family dataset, warning if files are not official.

    Unofficial files (subsets, re-encodings) are still usable, but their accuracies are not comparable with
    published numbers, hence a warning rather than an error.
    """
    batches = {name: _read_cifar_batch(paths[name], source.label_key, _CIFAR_IMAGES[name]) for name in source.files}
    for name, (images, labels, _) in batches.items():
        _check_labels(paths[name], labels, source.num_classes, len(images))
    unofficial = [name for name, md5 in source.md5 if batches[name][2] != md5]
    if unofficial:
        warnings.warn(
            f"{source.folder}: {', '.join(unofficial)} in {paths[unofficial[0]].parent} are not the official "
            "release (md5 differs from torchvision's list); using them anyway, but accuracies are not "
            "comparable with published results",
            stacklevel=4,
        )

    def stack(names: tuple[str, ...]) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.cat([batches[n][0] for n in names]), torch.cat([batches[n][1] for n in names])

    return *stack(source.train_files), *stack(source.test_files)

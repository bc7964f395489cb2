"""Dataset layer: load a dataset into CPU tensors once, then stream batches from the accelerator.

Fitness evaluations are short training runs, so input handling must cost next to nothing: every split is kept
as one tensor (images as uint8, 4x smaller than float32), moved to the device once by :class:`DeviceLoader`,
and shuffled, augmented and normalised there in whole batches. No ``torch.utils.data.DataLoader``, no worker
processes, no per-example Python.

Files are read from torchvision's folder layout under a data root (see :func:`data_root`), by small readers
written here (idx for the MNIST family, pickled batches for the CIFAR family), so that nothing needs
torchvision, a network connection or a manual decompression step. torchvision is only imported, lazily, to
download missing files.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import gzip
import hashlib
import io
import math
import os
import pickle
import struct
import warnings
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from afos.errors import ConfigError, DatasetError, DatasetNotFound

__all__ = ["DATASETS", "Dataset", "DeviceLoader", "data_root", "default_augment", "load_dataset"]

DATASETS: tuple[str, ...] = ("digits", "wine", "mnist", "fashion-mnist", "cifar10", "cifar100", "folder", "csv")
OWN_DATASETS = ("folder", "csv")  # the user's own data: ``data_dir`` is the data itself, not a root of datasets

# digits and wine ship without a test split. Carving it with a constant seed (not the run's seed) keeps the
# test set identical across training seeds, so test accuracies of different runs stay comparable.
_TEST_FRACTION = 0.2
_TEST_SPLIT_SEED = 20_240_917


@dataclass
class Dataset:
    """All splits of one dataset as CPU tensors, plus the shape facts a model builder needs."""

    name: str
    kind: str  # "image" | "tabular"
    train_x: torch.Tensor = field(repr=False)
    train_y: torch.Tensor = field(repr=False)
    val_x: torch.Tensor = field(repr=False)
    val_y: torch.Tensor = field(repr=False)
    test_x: torch.Tensor = field(repr=False)
    test_y: torch.Tensor = field(repr=False)
    num_classes: int
    in_channels: int
    image_size: int | None
    num_features: int | None
    mean: tuple[float, ...]
    std: tuple[float, ...]


# --------------------------------------------------------------------------------------------------------------
# Data folder


def data_root(data_dir: str | os.PathLike[str] | None = None) -> Path:
    """The folder holding datasets: ``data_dir``, else ``$AFOS_DATA_DIR``, else ``$XDG_CACHE_HOME/afos/data``.

    A per-user cache default means a download is done once per machine, not once per project checkout.
    """
    if data_dir is not None:
        return Path(data_dir).expanduser()
    if os.environ.get("AFOS_DATA_DIR"):
        return Path(os.environ["AFOS_DATA_DIR"]).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache).expanduser() / "afos" / "data"


# --------------------------------------------------------------------------------------------------------------
# File sources for the downloadable image datasets


@dataclass(frozen=True)
class _Source:
    """Where a torchvision-layout dataset lives and which files make it up.

    ``md5`` lists torchvision's checksums of the official files; empty means "not checked" (idx files are
    validated by their own header instead).
    """

    folder: str  # relative to the data root
    train_files: tuple[str, ...]
    test_files: tuple[str, ...]
    num_classes: int
    torchvision_class: str
    reader: Callable[[_Source, dict[str, Path]], tuple[torch.Tensor, ...]]
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


def _read_idx_source(source: _Source, paths: dict[str, Path]) -> tuple[torch.Tensor, ...]:
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

    Security: unpickling is only ever applied to the fixed batch file names of :data:`_SOURCES` inside the
    resolved dataset folder, never to a path taken from user input, and through :class:`_BatchUnpickler`,
    which can only rebuild numpy arrays. At most the size a batch of ``max_images`` images can take is read,
    so an oversized file is refused without being loaded. The md5 is returned because the bytes are already
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


def _read_cifar_source(source: _Source, paths: dict[str, Path]) -> tuple[torch.Tensor, ...]:
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


# --------------------------------------------------------------------------------------------------------------
# Source table, locating, downloading

_IDX_TRAIN = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte")
_IDX_TEST = ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")

# md5s copied from torchvision.datasets.CIFAR10 / CIFAR100 (train_list + test_list), so that checking them
# does not need importing torchvision.
_SOURCES: dict[str, _Source] = {
    "mnist": _Source("MNIST/raw", _IDX_TRAIN, _IDX_TEST, 10, "MNIST", _read_idx_source, allow_gzip=True),
    "fashion-mnist": _Source(
        "FashionMNIST/raw", _IDX_TRAIN, _IDX_TEST, 10, "FashionMNIST", _read_idx_source, allow_gzip=True
    ),
    "cifar10": _Source(
        "cifar-10-batches-py",
        tuple(f"data_batch_{i}" for i in range(1, 6)),
        ("test_batch",),
        10,
        "CIFAR10",
        _read_cifar_source,
        md5=(
            ("data_batch_1", "c99cafc152244af753f735de768cd75f"),
            ("data_batch_2", "d4bba439e000b95fd0a9bffe97cbabec"),
            ("data_batch_3", "54ebc095f3ab1f0389bbae665268c751"),
            ("data_batch_4", "634d18415352ddfa80567beed471001a"),
            ("data_batch_5", "482c414d41f54cd18b22e5b47cb7c3cb"),
            ("test_batch", "40351d587109b95175f43aff81a1287e"),
        ),
    ),
    "cifar100": _Source(
        "cifar-100-python",
        ("train",),
        ("test",),
        100,
        "CIFAR100",
        _read_cifar_source,
        label_key=b"fine_labels",
        md5=(("train", "16019d7e3df5f24257cddd939b257f8d"), ("test", "f0ef6b0ae62326f3e7ffdfab6717acfc")),
    ),
}


def _locate(source: _Source, root: Path) -> tuple[dict[str, Path], list[str]]:
    """Map each required file to an existing path; also return the names of those not found.

    Uncompressed idx files are preferred over ``.gz`` ones because they read faster; both are accepted so
    that official downloads and torchvision-extracted folders work alike.
    """
    folder = root / source.folder
    found: dict[str, Path] = {}
    for name in source.files:
        candidates = [folder / name, folder / f"{name}.gz"] if source.allow_gzip else [folder / name]
        hit = next((p for p in candidates if p.is_file()), None)
        if hit is not None:
            found[name] = hit
    return found, [name for name in source.files if name not in found]


def _download(source: _Source, root: Path) -> str:
    """Let torchvision fetch the dataset into ``root``; return "" on success, else the reason it failed.

    Any exception counts as a failure (offline machines raise all sorts: URLError, socket errors,
    RuntimeError from checksum mismatches, PermissionError on read-only folders).
    """
    try:
        import torchvision.datasets  # noqa: PLC0415 - imported only here so `import afos.data` stays cheap

        getattr(torchvision.datasets, source.torchvision_class)(str(root), train=True, download=True)
    except Exception as exc:  # noqa: BLE001 - see docstring
        first_line = str(exc).strip().splitlines()[:1]
        return f"{type(exc).__name__}: {first_line[0]}" if first_line else type(exc).__name__
    return ""


def _not_found_message(name: str, source: _Source, root: Path, missing: list[str], why: str) -> str:
    """One-line explanation: what was looked for, where, why no download, and how to provide the files."""
    suffix = "[.gz]" if source.allow_gzip else ""
    files = ", ".join(f"{m}{suffix}" for m in missing)
    return (
        f"dataset '{name}' not found: looked in {root / source.folder} for {files}; {why}. "
        f"Put the files there (torchvision layout: <DIR>/{source.folder}/...) and pass --data-dir DIR "
        f"or set AFOS_DATA_DIR=DIR"
    )


def _load_files(name: str, root: Path, download: bool) -> tuple[torch.Tensor, ...]:
    """Read an image dataset's official train/test splits, downloading them first if allowed and needed."""
    source = _SOURCES[name]
    found, missing = _locate(source, root)
    why = "downloading is disabled"
    if missing and download:
        reason = _download(source, root)
        found, missing = _locate(source, root)
        why = f"download failed ({reason})" if reason else "download did not produce them"
    if missing:
        raise DatasetNotFound(_not_found_message(name, source, root, missing, why))
    return source.reader(source, found)


# --------------------------------------------------------------------------------------------------------------
# The user's own data: an image folder (torchvision ImageFolder layout) or a CSV table

#: Image file suffixes read from a folder dataset (torchvision's ImageFolder list).
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp"})
_CACHE_VERSION = 1  # bump when the decoding changes, so old cache files are rebuilt


@dataclass(frozen=True)
class _Split:
    """One split of the user's data as tensors; ``None`` for a split the folder or table does not provide."""

    x: torch.Tensor
    y: torch.Tensor


@dataclass(frozen=True)
class _OwnData:
    """What the own-data readers return: train, optional val and test, and the class names."""

    train: _Split
    val: _Split | None
    test: _Split | None
    classes: tuple[str, ...]


def _required_path(kind: str, data_dir: str | os.PathLike[str] | None, what: str) -> Path:
    if data_dir is None:
        raise ConfigError(f"dataset '{kind}' needs --data-dir {what}")
    path = Path(data_dir).expanduser()
    if not path.exists():
        raise DatasetNotFound(f"dataset '{kind}': {path} does not exist")
    return path


def _class_files(split_dir: Path) -> dict[str, list[Path]]:
    """Image files per class sub-folder, both sorted by name as ImageFolder does; hidden entries skipped."""
    classes = sorted(d for d in split_dir.iterdir() if d.is_dir() and not d.name.startswith("."))
    return {
        d.name: sorted(f for f in d.rglob("*") if f.suffix.lower() in IMAGE_SUFFIXES and f.is_file())
        for d in classes
    }


def _folder_splits(root: Path) -> dict[str, dict[str, list[Path]]]:
    """``train/`` (else the folder itself), plus ``val/`` and ``test/`` where present, checked for use."""
    train_dir = root / "train" if (root / "train").is_dir() else root
    splits = {"train": _class_files(train_dir)}
    for name in ("val", "test"):
        if (root / name).is_dir() and train_dir != root:
            splits[name] = _class_files(root / name)
    train = splits["train"]
    if not any(train.values()):
        raise DatasetError(f"dataset 'folder': no images in class sub-folders of {train_dir} "
                           f"(expected {train_dir}/<class>/<image>, suffixes {', '.join(sorted(IMAGE_SUFFIXES))})")
    empty = [name for name, files in train.items() if not files]
    if empty:
        raise DatasetError(f"dataset 'folder': class folder(s) {', '.join(empty)} in {train_dir} hold no images")
    if len(train) < 2:
        raise DatasetError(f"dataset 'folder': {train_dir} holds one class ({next(iter(train))}); "
                           "classification needs at least two class folders")
    for name, classes in splits.items():
        unknown = sorted(set(classes) - set(train))
        if unknown:
            raise DatasetError(f"dataset 'folder': {root / name} has class(es) {', '.join(unknown)} "
                               "that train does not have")
    return splits


def _files_key(splits: dict[str, dict[str, list[Path]]], image_size: int) -> str:
    """A digest of every file's path, size and modification time: the cache is valid while it matches."""
    digest = hashlib.sha256(f"{_CACHE_VERSION}:{image_size}".encode())
    for split, classes in splits.items():
        for name, files in classes.items():
            for path in files:
                stat = path.stat()
                digest.update(f"{split}\0{name}\0{path}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def _decode(path: Path, image_size: int) -> np.ndarray:
    """One image as uint8 RGB (3, size, size): scaled so its short side fits, then centre-cropped."""
    from PIL import Image, ImageOps  # noqa: PLC0415 - Pillow comes with torchvision; only folders need it

    try:
        with Image.open(path) as image:
            fitted = ImageOps.fit(image.convert("RGB"), (image_size, image_size), Image.Resampling.BILINEAR)
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        raise DatasetError(f"dataset 'folder': cannot read image {path} ({type(exc).__name__}: {exc})") from None
    return np.asarray(fitted, dtype=np.uint8).transpose(2, 0, 1)


def _decode_folder(splits: dict[str, dict[str, list[Path]]], image_size: int) -> dict[str, torch.Tensor]:
    classes = list(splits["train"])
    tensors: dict[str, torch.Tensor] = {}
    for split, per_class in splits.items():
        images = [_decode(p, image_size) for files in per_class.values() for p in files]
        labels = [classes.index(name) for name, files in per_class.items() for _ in files]
        shape = (0, 3, image_size, image_size)
        tensors[f"{split}_x"] = torch.from_numpy(np.stack(images)) if images else torch.zeros(shape, dtype=torch.uint8)
        tensors[f"{split}_y"] = torch.tensor(labels, dtype=torch.int64)
    return tensors


def _cached_folder(root: Path, image_size: int) -> dict[str, Any]:
    """{"key", "classes", "tensors"}: the folder's decoded images, from ``.afos-cache-<size>px.pt`` beside the
    data when it is current.

    The cache holds plain tensors and strings only, written with ``torch.save`` and read back with
    ``weights_only=True``, so a planted cache file cannot run code; a stale or unreadable one is rebuilt.
    A read-only data folder simply goes uncached.
    """
    splits = _folder_splits(root)
    key = _files_key(splits, image_size)
    cache = root / f".afos-cache-{image_size}px.pt"
    if cache.is_file():
        with contextlib.suppress(Exception):  # any unreadable cache is rebuilt from the images
            stored = torch.load(cache, weights_only=True)
            if isinstance(stored, dict) and stored.get("key") == key:
                return stored
    stored = {"key": key, "classes": list(splits["train"]), "tensors": _decode_folder(splits, image_size)}
    with contextlib.suppress(OSError):  # a read-only data folder goes uncached
        torch.save(stored, cache)
    return stored


def _load_folder(data_dir: str | os.PathLike[str] | None, image_size: int) -> _OwnData:
    root = _required_path("folder", data_dir, "FOLDER (holding train/<class>/<image>)")
    if not root.is_dir():
        raise DatasetError(f"dataset 'folder': {root} is not a folder")
    stored = _cached_folder(root, image_size)
    tensors = stored["tensors"]
    split = {name: _Split(tensors[f"{name}_x"], tensors[f"{name}_y"]) for name in ("train", "val", "test")
             if f"{name}_x" in tensors and len(tensors[f"{name}_y"])}
    return _OwnData(split["train"], split.get("val"), split.get("test"), tuple(stored["classes"]))


def _number(text: str, column: str, row: int, path: Path) -> float:
    try:
        value = float(text)
    except ValueError:
        raise DatasetError(f"dataset 'csv': {path} row {row}, column {column!r}: {text!r} is not a number "
                           "(only numeric feature columns are supported)") from None
    if not math.isfinite(value):
        raise DatasetError(f"dataset 'csv': {path} row {row}, column {column!r}: {text!r} is not finite")
    return value


def _load_csv(data_dir: str | os.PathLike[str] | None, target: str | None) -> _OwnData:
    """A table with a header row: the ``target`` column is the class (any text), the others numeric features."""
    path = _required_path("csv", data_dir, "FILE.csv")
    if target is None:
        raise ConfigError("dataset 'csv' needs --target COLUMN (the column holding the class)")
    try:
        with path.open(newline="", encoding="utf-8-sig") as f:
            rows = list(csv.reader(f))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DatasetError(f"dataset 'csv': cannot read {path} ({type(exc).__name__}: {exc})") from None
    if not rows or not rows[0]:
        raise DatasetError(f"dataset 'csv': {path} is empty")
    header, body = [h.strip() for h in rows[0]], [r for r in rows[1:] if r]
    if target not in header:
        raise DatasetError(f"dataset 'csv': {path} has no column {target!r}; columns: {', '.join(header)}")
    if len(header) < 2:
        raise DatasetError(f"dataset 'csv': {path} has no feature column besides {target!r}")
    at = header.index(target)
    features = [h for i, h in enumerate(header) if i != at]
    values, labels = [], []
    for line, row in enumerate(body, start=2):
        if len(row) != len(header):
            raise DatasetError(f"dataset 'csv': {path} row {line} has {len(row)} fields, the header {len(header)}")
        values.append([_number(v, features[i], line, path) for i, v in enumerate(row[:at] + row[at + 1:])])
        labels.append(row[at].strip())
    classes = tuple(sorted(set(labels)))
    if len(classes) < 2:
        raise DatasetError(f"dataset 'csv': column {target!r} of {path} holds fewer than two classes")
    index = {name: i for i, name in enumerate(classes)}
    split = _Split(torch.tensor(values, dtype=torch.float32), torch.tensor([index[v] for v in labels]))
    return _OwnData(split, None, None, classes)


def _own_data(name: str, data_dir: str | os.PathLike[str] | None, image_size: int, target: str | None) -> _OwnData:
    if name == "folder":
        return _load_folder(data_dir, image_size)
    return _load_csv(data_dir, target)


# --------------------------------------------------------------------------------------------------------------
# Splitting and statistics


def _split(
    x: torch.Tensor, y: torch.Tensor, fraction: float, seed: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Hold out ``fraction`` of the examples chosen by a seeded permutation: (keep_x, keep_y, out_x, out_y).

    Both parts keep the original order (sorted indices) so that a split depends only on which examples it
    holds, and at least one example ends up on each side.
    """
    n = len(y)
    n_out = min(max(round(fraction * n), 1), n - 1)
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    out, keep = perm[:n_out].sort().values, perm[n_out:].sort().values
    return x[keep], y[keep], x[out], y[out]


def _channel_stats(x: torch.Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel (images) or per-feature (tabular) mean and population std; images in [0, 1] units.

    uint8 images go through a 256-bin histogram per channel: exact, and no float copy of the whole split.
    """
    if x.dtype == torch.uint8:
        levels = torch.arange(256, dtype=torch.float64) / 255
        counts = [torch.bincount(x[:, c].flatten(), minlength=256).double() for c in range(x.shape[1])]
        means = [float((k * levels).sum() / k.sum()) for k in counts]
        sq = [float((k * levels**2).sum() / k.sum()) for k in counts]
        return tuple(means), tuple(math.sqrt(max(s - m * m, 0.0)) for m, s in zip(means, sq))
    xd = x.double()
    return tuple(xd.mean(0).tolist()), tuple(xd.std(0, unbiased=False).tolist())


# --------------------------------------------------------------------------------------------------------------
# Public loading API


def _canonical_name(name: str) -> str:
    """Accept common spellings ("FashionMNIST", "fashion_mnist", "CIFAR-10") of the supported names."""
    key = name.strip().lower().replace("_", "-")
    aliases = {"fashionmnist": "fashion-mnist", "cifar-10": "cifar10", "cifar-100": "cifar100"}
    key = aliases.get(key, key)
    if key not in DATASETS:
        raise ConfigError(f"unknown dataset '{name}'; choose one of: {', '.join(DATASETS)}")
    return key


def _load_sklearn(name: str) -> tuple[torch.Tensor, torch.Tensor]:
    """The bundled scikit-learn datasets (no files, no network): digits as uint8 images, wine as float32."""
    from sklearn import datasets  # noqa: PLC0415 - sklearn import is slow; only the two tiny datasets need it

    if name == "digits":
        bunch = datasets.load_digits()
        images = np.rint(bunch.images * (255.0 / 16.0)).astype(np.uint8)[:, None]  # 0..16 grey levels
        return torch.from_numpy(images), torch.from_numpy(bunch.target.astype(np.int64))
    bunch = datasets.load_wine()
    return torch.from_numpy(bunch.data.astype(np.float32)), torch.from_numpy(bunch.target.astype(np.int64))


def _standardise(train: torch.Tensor, *others: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Standardise tabular features with train-split statistics only, so no information leaks from val/test."""
    mean, std = train.double().mean(0), train.double().std(0, unbiased=False)
    std = torch.where(std > 0, std, torch.ones_like(std))  # a constant feature stays 0 instead of NaN
    return tuple(((t.double() - mean) / std).float() for t in (train, *others))


def load_dataset(
    name: str,
    data_dir: str | os.PathLike[str] | None = None,
    *,
    val_fraction: float = 0.1,
    seed: int = 0,
    download: bool = True,
    image_size: int = 32,
    target: str | None = None,
) -> Dataset:
    """Load ``name`` (one of :data:`DATASETS`) as CPU tensors split into train / validation / test.

    The validation split is held out of the training data with a permutation seeded by ``seed``; search
    fitness uses it, so the test split is never looked at while selecting. digits and wine, which have no
    official test split, get a fixed 20% test split first (same for every seed). Image datasets other than
    digits are read from :func:`data_root` (``data_dir``); missing files are downloaded through torchvision
    when ``download`` is true, otherwise (or if that fails) :class:`afos.errors.DatasetNotFound` is raised.

    The user's own data: ``folder`` reads ``data_dir`` in ImageFolder layout (``train/<class>/<image>``,
    optional ``val/`` and ``test/``; or the class folders directly), every image fitted to ``image_size``
    pixels and cached beside the data; ``csv`` reads the table ``data_dir`` whose ``target`` column is the
    class. Splits they lack are carved as for digits (fixed test split, seeded validation split).
    """
    name = _canonical_name(name)
    if not 0.0 < val_fraction < 1.0:
        raise ConfigError(f"val_fraction must be between 0 and 1 (exclusive), got {val_fraction}")
    own: _OwnData | None = None
    if name in ("digits", "wine"):
        x, y = _load_sklearn(name)
        x, y, test_x, test_y = _split(x, y, _TEST_FRACTION, _TEST_SPLIT_SEED)
    elif name in OWN_DATASETS:
        own = _own_data(name, data_dir, image_size, target)
        x, y = own.train.x, own.train.y
        if own.test is None:
            x, y, test_x, test_y = _split(x, y, _TEST_FRACTION, _TEST_SPLIT_SEED)
        else:
            test_x, test_y = own.test.x, own.test.y
    else:
        x, y, test_x, test_y = _load_files(name, data_root(data_dir), download)
    if own is not None and own.val is not None:
        train_x, train_y, val_x, val_y = x, y, own.val.x, own.val.y
    else:
        train_x, train_y, val_x, val_y = _split(x, y, val_fraction, seed)
    if train_x.dtype != torch.uint8:
        train_x, val_x, test_x = _standardise(train_x, val_x, test_x)
    mean, std = _channel_stats(train_x)
    is_image = train_x.dim() == 4
    return Dataset(
        name=name,
        kind="image" if is_image else "tabular",
        train_x=train_x,
        train_y=train_y,
        val_x=val_x,
        val_y=val_y,
        test_x=test_x,
        test_y=test_y,
        num_classes=(
            len(own.classes) if own is not None else _SOURCES[name].num_classes if name in _SOURCES else int(y.max()) + 1
        ),
        in_channels=train_x.shape[1] if is_image else 1,
        image_size=train_x.shape[-1] if is_image else None,
        num_features=None if is_image else train_x.shape[1],
        mean=mean,
        std=std,
    )


def default_augment(dataset_name: str) -> tuple[bool, bool]:
    """(random crop, horizontal flip) suited to a dataset.

    Crops (small translations) preserve every image class here. Flips only where a mirror image is still the
    same class: natural photos (CIFAR) and clothes (Fashion-MNIST), but not digits, whose mirror images are
    not digits. Tabular data has no spatial structure to augment.
    """
    name = _canonical_name(dataset_name)
    if name in ("wine", "csv"):
        return False, False
    if name == "folder":
        return True, False  # whether a mirror image keeps its class is the user's to know; crops are safe
    return True, name in ("fashion-mnist", "cifar10", "cifar100")


# --------------------------------------------------------------------------------------------------------------
# Device-resident batching


def _epoch_seed(seed: int, epoch: int) -> int:
    """Mix (seed, epoch) into one generator seed.

    Plain ``seed + epoch`` would make run seed 1's first epoch replay run seed 0's second epoch, correlating
    runs that statistics later treat as independent.
    """
    return int(np.random.SeedSequence([seed, epoch]).generate_state(1, dtype=np.uint64)[0] >> 1)


class DeviceLoader:
    """Iterate over one split in batches of (float32 normalised inputs, int64 labels) on ``device``.

    The split is copied to the device once (images stay uint8). Every ``iter()`` is one epoch: with
    ``train=True`` the order is a fresh permutation drawn from a generator seeded by (seed, epoch), so runs are
    reproducible (and resumable: set ``epoch`` to the number of epochs done). With ``augment=True``, image
    batches get a random crop from a zero-padded copy (padding ~ size/8: 4 pixels for 32x32, 1 for 8x8) and,
    if ``flip``, a random horizontal mirror, done as one gather per batch. Nothing in the loop reads values
    back to the host, so the accelerator never waits.
    ``drop_last`` defaults to ``train`` (when more than one batch exists), because a tiny last batch makes a
    noisy step and breaks BatchNorm with a single example.
    """

    def __init__(
        self,
        x: torch.Tensor,
        y: torch.Tensor,
        *,
        batch_size: int,
        mean: tuple[float, ...],
        std: tuple[float, ...],
        train: bool,
        augment: bool,
        seed: int,
        device: torch.device | str,
        channels_last: bool = False,
        drop_last: bool | None = None,
        flip: bool = False,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        if len(x) != len(y):
            raise ValueError(f"x has {len(x)} examples but y has {len(y)}")
        self.device = torch.device(device)
        self.x = x.to(self.device)
        self.y = y.to(self.device, torch.int64)
        self.batch_size = batch_size
        self.train = train
        self.is_image = x.dim() == 4
        self.augment = augment and self.is_image
        self.flip = flip
        self.channels_last = channels_last and self.is_image
        self.drop_last = (train and len(x) > batch_size) if drop_last is None else drop_last
        self.seed = seed
        self.epoch = 0
        # (x / unit - mean) / std folded into one multiply-subtract per batch.
        unit = 255.0 if x.dtype == torch.uint8 else 1.0
        shape = (1, -1) + (1,) * (x.dim() - 2)
        std_t = torch.tensor(std, dtype=torch.float32).view(shape)
        self._scale = (1.0 / (unit * std_t)).to(self.device)
        self._shift = (torch.tensor(mean, dtype=torch.float32).view(shape) / std_t).to(self.device)
        if len(self) == 0:
            raise ValueError(f"drop_last with {len(x)} examples and batch_size {batch_size} yields no batch")

    def __len__(self) -> int:
        n, b = len(self.y), self.batch_size
        return n // b if self.drop_last else -(-n // b)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        generator = torch.Generator(device=self.device).manual_seed(_epoch_seed(self.seed, self.epoch))
        self.epoch += 1
        n = len(self.y)
        order = torch.randperm(n, generator=generator, device=self.device) if self.train else None
        for start in range(0, len(self) * self.batch_size, self.batch_size):
            end = min(start + self.batch_size, n)
            if order is None:
                xb, yb = self.x[start:end], self.y[start:end]
            else:
                idx = order[start:end]
                xb, yb = self.x.index_select(0, idx), self.y.index_select(0, idx)
            if self.augment:
                xb = self._crop_flip(xb, generator)
            yield self._normalise(xb), yb

    def _normalise(self, xb: torch.Tensor) -> torch.Tensor:
        memory_format = torch.channels_last if self.channels_last else torch.contiguous_format
        out = xb.to(torch.float32).mul_(self._scale).sub_(self._shift)
        return out.contiguous(memory_format=memory_format)

    def _crop_flip(self, xb: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Random crop (and optional mirror) of a whole batch via one advanced-indexing gather."""
        b, c, h, w = xb.shape
        pad = max(1, round(min(h, w) / 8))
        padded = F.pad(xb, (pad, pad, pad, pad))
        offsets = torch.randint(0, 2 * pad + 1, (b, 2), generator=generator, device=self.device)
        rows = offsets[:, :1] + torch.arange(h, device=self.device)
        cols = torch.arange(w, device=self.device).expand(b, w)
        if self.flip:
            mirror = torch.rand(b, 1, generator=generator, device=self.device) < 0.5
            cols = torch.where(mirror, cols.flip(1), cols)
        cols = offsets[:, 1:] + cols
        batch = torch.arange(b, device=self.device).view(b, 1, 1, 1)
        channel = torch.arange(c, device=self.device).view(1, c, 1, 1)
        return padded[batch, channel, rows.view(b, 1, h, 1), cols.view(b, 1, 1, w)]

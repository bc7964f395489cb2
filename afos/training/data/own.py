"""The user's own data: an image folder (torchvision's ImageFolder layout) or a CSV table.

Images are decoded once, fitted to one size and cached beside the data (a plain ``.npz``, never a pickle),
so a search over the user's folder decodes each image once, not once per candidate."""

from __future__ import annotations

import contextlib
import csv
import hashlib
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from afos.errors import ConfigError, DatasetError, DatasetNotFound

#: Image file suffixes read from a folder dataset (torchvision's ImageFolder list).
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp"})
_CACHE_VERSION = 1  # bump when the decoding changes, so old cache files are rebuilt


@dataclass(frozen=True)
class _Split:
    """One split of the user's data as tensors; ``None`` for a split the folder or table does not provide."""

    x: torch.Tensor
    y: torch.Tensor


@dataclass(frozen=True)
class OwnData:
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


def _load_folder(data_dir: str | os.PathLike[str] | None, image_size: int) -> OwnData:
    root = _required_path("folder", data_dir, "FOLDER (holding train/<class>/<image>)")
    if not root.is_dir():
        raise DatasetError(f"dataset 'folder': {root} is not a folder")
    stored = _cached_folder(root, image_size)
    tensors = stored["tensors"]
    split = {name: _Split(tensors[f"{name}_x"], tensors[f"{name}_y"]) for name in ("train", "val", "test")
             if f"{name}_x" in tensors and len(tensors[f"{name}_y"])}
    return OwnData(split["train"], split.get("val"), split.get("test"), tuple(stored["classes"]))


def _number(text: str, column: str, row: int, path: Path) -> float:
    try:
        value = float(text)
    except ValueError:
        raise DatasetError(f"dataset 'csv': {path} row {row}, column {column!r}: {text!r} is not a number "
                           "(only numeric feature columns are supported)") from None
    if not math.isfinite(value):
        raise DatasetError(f"dataset 'csv': {path} row {row}, column {column!r}: {text!r} is not finite")
    return value


def _load_csv(data_dir: str | os.PathLike[str] | None, target: str | None) -> OwnData:
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
    return OwnData(split, None, None, classes)


def load_own_data(name: str, data_dir: str | os.PathLike[str] | None, image_size: int, target: str | None) -> OwnData:
    if name == "folder":
        return _load_folder(data_dir, image_size)
    return _load_csv(data_dir, target)

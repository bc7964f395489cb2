"""The datasets afos knows: names, files, splits, and :func:`load_dataset`.

The validation split is held out of the training data with a seeded permutation; search fitness uses it,
so the test split is never looked at while selecting. Datasets without an official test split get a fixed
one (the same for every seed), so test accuracies of different runs stay comparable."""

from __future__ import annotations

import contextlib
import math
import os
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path

import numpy as np
import torch

from afos.config import did_you_mean
from afos.errors import ConfigError, DatasetNotFound
from afos.training.data.own import OwnData, load_own_data
from afos.training.data.readers import Source, read_cifar_source, read_idx_source
from afos.training.data.synthetic import GENERATORS, SYNTHETIC_DATASETS

# digits, wine and the synthetic tasks come without a test split. Carving it with a constant seed (not the run's seed) keeps the
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
# Source table, locating, downloading

_IDX_TRAIN = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte")
_IDX_TEST = ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")

# md5s copied from torchvision.datasets.CIFAR10 / CIFAR100 (train_list + test_list), so that checking them
# does not need importing torchvision.
_SOURCES = {
    "mnist": Source("MNIST/raw", _IDX_TRAIN, _IDX_TEST, 10, "MNIST", read_idx_source, allow_gzip=True),
    "fashion-mnist": Source(
        "FashionMNIST/raw", _IDX_TRAIN, _IDX_TEST, 10, "FashionMNIST", read_idx_source, allow_gzip=True
    ),
    "cifar10": Source(
        "cifar-10-batches-py",
        tuple(f"data_batch_{i}" for i in range(1, 6)),
        ("test_batch",),
        10,
        "CIFAR10",
        read_cifar_source,
        md5=(
            ("data_batch_1", "c99cafc152244af753f735de768cd75f"),
            ("data_batch_2", "d4bba439e000b95fd0a9bffe97cbabec"),
            ("data_batch_3", "54ebc095f3ab1f0389bbae665268c751"),
            ("data_batch_4", "634d18415352ddfa80567beed471001a"),
            ("data_batch_5", "482c414d41f54cd18b22e5b47cb7c3cb"),
            ("test_batch", "40351d587109b95175f43aff81a1287e"),
        ),
    ),
    "cifar100": Source(
        "cifar-100-python",
        ("train",),
        ("test",),
        100,
        "CIFAR100",
        read_cifar_source,
        label_key=b"fine_labels",
        md5=(("train", "16019d7e3df5f24257cddd939b257f8d"), ("test", "f0ef6b0ae62326f3e7ffdfab6717acfc")),
    ),
}




class Loader(str, Enum):
    """Where a dataset's examples come from: generated here (the synthetic tasks), bundled with
    scikit-learn, read from downloaded files, or the user's own folder or CSV (``data_dir`` is the data
    itself, not a root of datasets)."""

    GENERATED = "generated"
    BUNDLED = "bundled"
    FILES = "files"
    OWN = "own"


@dataclass(frozen=True)
class DatasetSpec:
    """One dataset afos knows: where it comes from, the architecture it is trained with unless the user picks
    another, its default augmentation (random crop, horizontal flip: a flip only where a mirror image keeps
    its class, as for photos and clothes but not digits), and other spellings users type. Splits: a dataset
    with official test files keeps them; every other one gets a fixed test split (the same for every seed)."""

    name: str
    loader: Loader
    default_model: str
    crop: bool = False
    flip: bool = False
    source: Source | None = None
    aliases: tuple[str, ...] = ()


def _specs() -> dict[str, DatasetSpec]:
    listed = [
        DatasetSpec("digits", Loader.BUNDLED, "mlp", crop=True),
        DatasetSpec("wine", Loader.BUNDLED, "mlp"),
        *(DatasetSpec(name, Loader.GENERATED, "mlp") for name in SYNTHETIC_DATASETS),
        DatasetSpec("mnist", Loader.FILES, "lenet5", crop=True, source=_SOURCES["mnist"]),
        DatasetSpec("fashion-mnist", Loader.FILES, "lenet5", crop=True, flip=True, source=_SOURCES["fashion-mnist"],
                    aliases=("fashionmnist",)),
        DatasetSpec("cifar10", Loader.FILES, "resnet20", crop=True, flip=True, source=_SOURCES["cifar10"],
                    aliases=("cifar-10",)),
        DatasetSpec("cifar100", Loader.FILES, "resnet20", crop=True, flip=True, source=_SOURCES["cifar100"],
                    aliases=("cifar-100",)),
        DatasetSpec("folder", Loader.OWN, "resnet20", crop=True),  # whether a mirror keeps a class is the user's to know
        DatasetSpec("csv", Loader.OWN, "mlp"),
    ]
    return {spec.name: spec for spec in listed}


#: Every dataset afos knows, by name, in the order help texts list them.
DATASET_SPECS: dict[str, DatasetSpec] = _specs()
DATASETS: tuple[str, ...] = tuple(DATASET_SPECS)
OWN_DATASETS = tuple(name for name, spec in DATASET_SPECS.items() if spec.loader is Loader.OWN)


def _locate(source: Source, root: Path) -> tuple[dict[str, Path], list[str]]:
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


def _download(source: Source, root: Path) -> str:
    """Let torchvision fetch the dataset into ``root``; return "" on success, else the reason it failed.

    Any exception counts as a failure (offline machines raise all sorts: URLError, socket errors,
    RuntimeError from checksum mismatches, PermissionError on read-only folders). A failed download leaves
    no trace: the empty folders torchvision made for it are removed again.
    """
    before = _existing_folders(root / source.folder)
    try:
        import torchvision.datasets  # noqa: PLC0415 - imported only here so importing the registry stays cheap

        getattr(torchvision.datasets, source.torchvision_class)(str(root), train=True, download=True)
    except Exception as exc:  # noqa: BLE001 - see docstring
        _remove_empty_folders(root / source.folder, before)
        first_line = str(exc).strip().splitlines()[:1]
        return f"{type(exc).__name__}: {first_line[0]}" if first_line else type(exc).__name__
    return ""


def _existing_folders(folder: Path) -> set[Path]:
    """``folder`` and its parents that exist now."""
    return {path for path in (folder, *folder.parents) if path.is_dir()}


def _remove_empty_folders(folder: Path, keep: set[Path]) -> None:
    """Remove the empty folders of ``folder``'s tree made since ``keep`` was taken, deepest first."""
    tree = [*(folder.rglob("*") if folder.is_dir() else ()), folder, *folder.parents]
    made = sorted((p for p in tree if p.is_dir() and p not in keep), key=lambda p: len(p.parts), reverse=True)
    for path in made:
        with contextlib.suppress(OSError):  # not empty after all: something else is in it
            path.rmdir()


def _not_found_message(name: str, source: Source, root: Path, missing: list[str], why: str) -> str:
    """One-line explanation: what was looked for, where, why no download, and how to provide the files."""
    suffix = "[.gz]" if source.allow_gzip else ""
    files = ", ".join(f"{m}{suffix}" for m in missing)
    return (
        f"dataset '{name}' not found: looked in {root / source.folder} for {files}; {why}. "
        f"Put the files there (torchvision layout: <DIR>/{source.folder}/...) and pass --data-dir DIR "
        f"or set AFOS_DATA_DIR=DIR"
    )


def _load_files(name: str, source: Source, root: Path, download: bool) -> tuple[torch.Tensor, ...]:
    """Read an image dataset's official train/test splits, downloading them first if allowed and needed."""
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


def dataset_spec(name: str) -> DatasetSpec:
    """The dataset ``name`` names, in any common spelling ("FashionMNIST", "fashion_mnist", "CIFAR-10")."""
    key = name.strip().lower().replace("_", "-")
    for spec in DATASET_SPECS.values():
        if key == spec.name or key in spec.aliases:
            return spec
    raise ConfigError(f"unknown dataset '{name}'; {did_you_mean(key, DATASETS)}choose one of: {', '.join(DATASETS)}")


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
    fitness uses it, so the test split is never looked at while selecting. digits, wine and spirals, which have no
    official test split, get a fixed 20% test split first (same for every seed). Image datasets other than
    digits are read from :func:`data_root` (``data_dir``); missing files are downloaded through torchvision
    when ``download`` is true, otherwise (or if that fails) :class:`afos.errors.DatasetNotFound` is raised.

    The user's own data: ``folder`` reads ``data_dir`` in ImageFolder layout (``train/<class>/<image>``,
    optional ``val/`` and ``test/``; or the class folders directly), every image fitted to ``image_size``
    pixels and cached beside the data; ``csv`` reads the table ``data_dir`` whose ``target`` column is the
    class. Splits they lack are carved as for digits (fixed test split, seeded validation split).
    """
    spec = dataset_spec(name)
    name = spec.name
    if not 0.0 < val_fraction < 1.0:
        raise ConfigError(f"val_fraction must be between 0 and 1 (exclusive), got {val_fraction}")
    own: OwnData | None = None
    if spec.loader is Loader.FILES:
        assert spec.source is not None
        x, y, test_x, test_y = _load_files(name, spec.source, data_root(data_dir), download)
    elif spec.loader is Loader.OWN:
        own = load_own_data(name, data_dir, image_size, target)
        x, y = own.train.x, own.train.y
        if own.test is None:
            x, y, test_x, test_y = _split(x, y, _TEST_FRACTION, _TEST_SPLIT_SEED)
        else:
            test_x, test_y = own.test.x, own.test.y
    else:
        x, y = GENERATORS[name]() if spec.loader is Loader.GENERATED else _load_sklearn(name)
        x, y, test_x, test_y = _split(x, y, _TEST_FRACTION, _TEST_SPLIT_SEED)
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
            len(own.classes) if own is not None else spec.source.num_classes if spec.source else int(y.max()) + 1
        ),
        in_channels=train_x.shape[1] if is_image else 1,
        image_size=train_x.shape[-1] if is_image else None,
        num_features=None if is_image else train_x.shape[1],
        mean=mean,
        std=std,
    )


def default_augment(dataset_name: str) -> tuple[bool, bool]:
    """(random crop, horizontal flip) suited to a dataset (:class:`DatasetSpec`): crops (small translations)
    preserve every image class here; tabular data has no spatial structure to augment."""
    spec = dataset_spec(dataset_name)
    return spec.crop, spec.flip


def default_model(dataset_name: str) -> str:
    """The architecture a dataset is trained with unless the user picks another."""
    return dataset_spec(dataset_name).default_model

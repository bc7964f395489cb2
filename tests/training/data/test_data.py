"""Tests of afos.data on real data: scikit-learn's bundled sets always, the shared image sets with AFOS_TEST_DATA."""

from __future__ import annotations

import gzip
import os
import pickle
import shutil
import struct
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from afos.errors import ConfigError, DatasetNotFound, UserError
from afos.training.data.loader import DeviceLoader
from afos.training.data.registry import DATASETS, Dataset, data_root, default_augment, load_dataset


@pytest.fixture(scope="module")
def digits() -> Dataset:
    return load_dataset("digits")


def _rows(x: torch.Tensor) -> Counter[bytes]:
    """Multiset of examples, to compare splits by content."""
    return Counter(row.numpy().tobytes() for row in x.reshape(len(x), -1))


def _labels_seen(loader: DeviceLoader) -> torch.Tensor:
    return torch.cat([yb for _, yb in loader])


def _loader(x: torch.Tensor, y: torch.Tensor, **overrides: object) -> DeviceLoader:
    options: dict[str, object] = dict(
        batch_size=100, mean=(0.3,), std=(0.37,), train=True, augment=False, seed=0, device="cpu"
    )
    options.update(overrides)
    return DeviceLoader(x, y, **options)  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------------------ bundled datasets


def test_digits_shapes_dtypes_and_classes(digits: Dataset) -> None:
    assert (digits.name, digits.kind, digits.num_classes) == ("digits", "image", 10)
    assert (digits.in_channels, digits.image_size, digits.num_features) == (1, 8, None)
    for x, y in [(digits.train_x, digits.train_y), (digits.val_x, digits.val_y), (digits.test_x, digits.test_y)]:
        assert x.dtype == torch.uint8 and y.dtype == torch.int64
        assert x.shape[1:] == (1, 8, 8) and len(x) == len(y)
        assert set(y.tolist()) == set(range(10))
    assert int(digits.train_x.max()) == 255  # 16 grey levels rescaled to the full uint8 range
    assert (len(digits.train_y), len(digits.val_y), len(digits.test_y)) == (1294, 144, 359)
    assert 0.25 < digits.mean[0] < 0.35 and 0.3 < digits.std[0] < 0.45


def test_digits_splits_partition_the_original_data(digits: Dataset) -> None:
    from sklearn.datasets import load_digits

    original = np.rint(load_digits().images * (255 / 16)).astype(np.uint8)
    splits = torch.cat([digits.train_x, digits.val_x, digits.test_x])
    assert _rows(splits) == _rows(torch.from_numpy(original))


def test_validation_split_is_seeded_and_test_split_is_fixed(digits: Dataset) -> None:
    again, other = load_dataset("digits", seed=0), load_dataset("digits", seed=1)
    assert torch.equal(again.val_x, digits.val_x) and torch.equal(again.train_y, digits.train_y)
    assert not torch.equal(other.val_x, digits.val_x)
    assert torch.equal(other.test_x, digits.test_x)  # test accuracies stay comparable across seeds
    assert _rows(torch.cat([other.train_x, other.val_x])) == _rows(torch.cat([digits.train_x, digits.val_x]))


def test_val_fraction_sets_validation_size() -> None:
    ds = load_dataset("digits", val_fraction=0.25)
    assert len(ds.val_y) == round(0.25 * (len(ds.train_y) + len(ds.val_y)))


def test_wine_is_tabular_and_standardised_on_train() -> None:
    ds = load_dataset("wine")
    assert (ds.kind, ds.num_classes, ds.num_features, ds.image_size) == ("tabular", 3, 13, None)
    assert ds.train_x.dtype == torch.float32 and ds.train_y.dtype == torch.int64
    assert len(ds.train_y) + len(ds.val_y) + len(ds.test_y) == 178
    torch.testing.assert_close(ds.train_x.mean(0), torch.zeros(13), atol=1e-5, rtol=0)
    torch.testing.assert_close(ds.train_x.std(0, unbiased=False), torch.ones(13), atol=1e-5, rtol=0)
    assert len(ds.mean) == len(ds.std) == 13


def test_spirals_are_generated_the_same_everywhere_and_need_a_nonlinearity() -> None:
    """The default search's task: fixed points (any seed, any call), balanced arms, standardised on train, and
    no linear boundary (a linear classifier stays near chance while a nearest-neighbour one does not)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.neighbors import KNeighborsClassifier

    ds, again = load_dataset("spirals", val_fraction=0.25, seed=3), load_dataset("spirals", val_fraction=0.25, seed=3)
    assert (ds.kind, ds.num_classes, ds.num_features, ds.image_size) == ("tabular", 3, 2, None)
    assert torch.equal(ds.train_x, again.train_x) and torch.equal(ds.test_x, again.test_x)
    assert torch.equal(ds.test_y, load_dataset("spirals", seed=0).test_y)  # the test split ignores the seed
    assert len(ds.train_y) + len(ds.val_y) + len(ds.test_y) == 3000 and len(ds.test_y) == 600
    assert sorted(Counter(torch.cat([ds.train_y, ds.val_y, ds.test_y]).tolist()).values()) == [1000] * 3
    torch.testing.assert_close(ds.train_x.mean(0), torch.zeros(2), atol=1e-5, rtol=0)
    linear = LogisticRegression().fit(ds.train_x.numpy(), ds.train_y.numpy()).score(ds.test_x.numpy(), ds.test_y.numpy())
    local = KNeighborsClassifier(5).fit(ds.train_x.numpy(), ds.train_y.numpy()).score(ds.test_x.numpy(), ds.test_y.numpy())
    assert linear < 0.5 < 0.8 < local, (linear, local)


@pytest.mark.parametrize(("name", "classes", "size"), [("checkerboard", 2, 3000), ("rings", 2, 3000),
                                                     ("two-spirals", 2, 2500)])
def test_the_hard_tasks_are_generated_the_same_everywhere_and_need_a_nonlinearity(name: str, classes: int,
                                                                                  size: int) -> None:
    """The hard tasks' points: fixed (any seed, any call), standardised on train, and no linear boundary (a
    linear classifier stays within 10 points of the majority class while a nearest-neighbour one is near 1)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.neighbors import KNeighborsClassifier

    ds, again = load_dataset(name, val_fraction=0.25, seed=3), load_dataset(name, val_fraction=0.25, seed=3)
    assert (ds.kind, ds.num_classes, ds.num_features) == ("tabular", classes, 2)
    assert torch.equal(ds.train_x, again.train_x) and torch.equal(ds.test_y, load_dataset(name, seed=0).test_y)
    assert len(ds.train_y) + len(ds.val_y) + len(ds.test_y) == size
    majority = max(Counter(ds.test_y.tolist()).values()) / len(ds.test_y)
    linear = LogisticRegression().fit(ds.train_x.numpy(), ds.train_y.numpy()).score(ds.test_x.numpy(), ds.test_y.numpy())
    local = KNeighborsClassifier(5).fit(ds.train_x.numpy(), ds.train_y.numpy()).score(ds.test_x.numpy(), ds.test_y.numpy())
    assert linear < majority + 0.1 and local > 0.9, (linear, majority, local)  # two spirals: a line gets 0.59


@pytest.mark.parametrize("spelling", ["Digits", "DIGITS", " digits "])
def test_dataset_names_are_case_insensitive(spelling: str) -> None:
    assert load_dataset(spelling).name == "digits"


def test_bad_requests_raise_config_errors() -> None:
    with pytest.raises(ConfigError, match="unknown dataset 'imagenet'.*digits"):
        load_dataset("imagenet")
    with pytest.raises(ConfigError, match="val_fraction"):
        load_dataset("digits", val_fraction=1.0)


def test_default_augment_flips_only_mirror_symmetric_classes() -> None:
    assert {name: default_augment(name) for name in DATASETS} == {
        "digits": (True, False),
        "wine": (False, False),
        "spirals": (False, False),
        "checkerboard": (False, False),
        "rings": (False, False),
        "two-spirals": (False, False),
        "mnist": (True, False),
        "fashion-mnist": (True, True),
        "cifar10": (True, True),
        "cifar100": (True, True),
        "folder": (True, False),
        "csv": (False, False),
    }
    assert default_augment("CIFAR-10") == (True, True)


def test_data_root_resolution(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("AFOS_DATA_DIR", str(tmp_path / "env"))
    assert data_root(tmp_path / "arg") == tmp_path / "arg"
    assert data_root() == tmp_path / "env"
    monkeypatch.delenv("AFOS_DATA_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert data_root() == tmp_path / "xdg" / "afos" / "data"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert data_root() == Path.home() / ".cache" / "afos" / "data"


# ------------------------------------------------------------------------------------------------ DeviceLoader


def test_loader_covers_every_example_once_per_epoch(digits: Dataset) -> None:
    ids = torch.arange(len(digits.train_y))
    loader = _loader(digits.train_x, ids, drop_last=False, augment=True)
    assert len(loader) == 13  # ceil(1294 / 100)
    first, second = _labels_seen(loader), _labels_seen(loader)
    assert torch.equal(first.sort().values, ids) and torch.equal(second.sort().values, ids)
    assert not torch.equal(first, second)  # a fresh permutation each epoch


def test_loader_batches_are_float32_normalised_int64(digits: Dataset) -> None:
    loader = _loader(digits.train_x, digits.train_y, mean=digits.mean, std=digits.std, train=False)
    batches = list(loader)
    assert all(xb.dtype == torch.float32 and yb.dtype == torch.int64 for xb, yb in batches)
    assert batches[0][0].shape == (100, 1, 8, 8)
    inputs = torch.cat([xb for xb, _ in batches])
    assert abs(float(inputs.mean())) < 1e-4 and abs(float(inputs.std()) - 1) < 1e-3
    assert torch.equal(torch.cat([yb for _, yb in batches]), digits.train_y)  # eval keeps the split's order


def test_loader_is_reproducible_with_its_seed(digits: Dataset) -> None:
    def run(seed: int) -> list[torch.Tensor]:
        loader = _loader(digits.train_x, digits.train_y, augment=True, seed=seed)
        return [xb for _ in range(2) for xb, _ in loader]

    same, again, other = run(3), run(3), run(4)
    assert all(torch.equal(a, b) for a, b in zip(same, again))
    assert not torch.equal(same[0], other[0])


def test_loader_drop_last_defaults_to_train(digits: Dataset) -> None:
    x, y = digits.train_x, digits.train_y
    assert len(_loader(x, y, train=True)) == 12 and len(list(_loader(x, y, train=True))) == 12
    assert len(_loader(x, y, train=False)) == 13
    assert len(_loader(x[:50], y[:50], train=True)) == 1  # fewer examples than a batch: keep them
    with pytest.raises(ValueError, match="no batch"):
        _loader(x[:50], y[:50], drop_last=True)


def test_augmentation_keeps_shape_and_changes_pixels(digits: Dataset) -> None:
    plain = list(_loader(digits.train_x, digits.train_y, augment=False))
    augmented = list(_loader(digits.train_x, digits.train_y, augment=True))
    for (xp, yp), (xa, ya) in zip(plain, augmented):
        assert xa.shape == xp.shape and xa.dtype == torch.float32
        assert torch.equal(ya, yp)  # same order: augmentation draws after the permutation
    changed = torch.cat([(xa != xp).flatten(1).any(1) for (xp, _), (xa, _) in zip(plain, augmented)])
    assert changed.float().mean() > 0.5  # 8 of 9 offsets move the image


@pytest.mark.parametrize("flip", [False, True])
def test_augmentation_is_a_padded_crop_and_optional_mirror(flip: bool) -> None:
    image = torch.arange(1, 65, dtype=torch.uint8).view(1, 1, 8, 8)  # distinct non-zero pixels
    x = image.expand(64, 1, 8, 8).contiguous()
    padded = F.pad(image, (1, 1, 1, 1))[0, 0]
    crops = [padded[dy : dy + 8, dx : dx + 8] for dy in range(3) for dx in range(3)]
    allowed = crops + [c.flip(1) for c in crops] if flip else crops
    # mean 0, std 1/255: the loader hands back the raw pixel values.
    loader = _loader(x, torch.zeros(64, dtype=torch.int64), mean=(0.0,), std=(1 / 255,), augment=True, flip=flip)
    seen = set()
    for xb, _ in loader:
        for out in xb.round().to(torch.uint8)[:, 0]:
            matches = [i for i, a in enumerate(allowed) if torch.equal(out, a)]
            assert matches, "augmented image is not a crop of the padded original"
            seen.add(matches[0])
    assert len(seen) > 5 and (any(i >= 9 for i in seen) == flip)


def test_loader_channels_last_and_tabular(digits: Dataset) -> None:
    xb, _ = next(iter(_loader(digits.train_x, digits.train_y, channels_last=True)))
    assert xb.is_contiguous(memory_format=torch.channels_last)
    wine = load_dataset("wine")
    loader = _loader(wine.train_x, wine.train_y, batch_size=32, mean=wine.mean, std=wine.std, augment=True)
    xb, yb = next(iter(loader))
    assert xb.shape == (32, 13) and xb.dtype == torch.float32 and yb.dtype == torch.int64


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_loader_on_cuda(digits: Dataset) -> None:
    ids = torch.arange(len(digits.train_y))
    loader = _loader(digits.train_x, ids, device="cuda", augment=True, flip=True, drop_last=False)
    seen = [yb for _, yb in loader]
    assert seen[0].device.type == "cuda"
    assert torch.equal(torch.cat(seen).sort().values.cpu(), ids)


# ------------------------------------------------------------------------------------------------ file readers


def _write_idx(path: Path, array: np.ndarray) -> None:
    header = bytes([0, 0, 8, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


def _write_tiny_mnist(root: Path) -> tuple[np.ndarray, np.ndarray]:
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    images = np.arange(20 * 3 * 2).reshape(20, 3, 2) % 256
    labels = np.arange(20) % 10
    _write_idx(raw / "train-images-idx3-ubyte.gz", images)
    _write_idx(raw / "train-labels-idx1-ubyte.gz", labels)
    _write_idx(raw / "t10k-images-idx3-ubyte", images[:4])  # uncompressed files are accepted too
    _write_idx(raw / "t10k-labels-idx1-ubyte", labels[:4])
    return images, labels


def test_idx_reader_parses_header_and_data(tmp_path: Path) -> None:
    images, labels = _write_tiny_mnist(tmp_path)
    ds = load_dataset("mnist", tmp_path, download=False)
    assert ds.train_x.shape[1:] == (1, 3, 2) and ds.image_size == 2
    assert torch.equal(ds.test_x[:, 0], torch.from_numpy(images[:4].astype(np.uint8)))
    assert torch.equal(ds.test_y, torch.from_numpy(labels[:4]))
    assert _rows(torch.cat([ds.train_x, ds.val_x])) == _rows(torch.from_numpy(images.astype(np.uint8)))


def test_truncated_idx_file_is_reported(tmp_path: Path) -> None:
    _write_tiny_mnist(tmp_path)
    target = tmp_path / "MNIST" / "raw" / "t10k-images-idx3-ubyte"
    target.write_bytes(target.read_bytes()[:-1])
    with pytest.raises(UserError, match="truncated"):
        load_dataset("mnist", tmp_path, download=False)


class _Planted:
    """Pickles as a call to os.getcwd: harmless, but proves that no global outside numpy is resolved."""

    def __reduce__(self) -> tuple[object, tuple[()]]:
        return os.getcwd, ()


def test_cifar_reader_refuses_foreign_pickle_globals(tmp_path: Path) -> None:
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    payload = pickle.dumps({b"data": _Planted(), b"labels": [0]})
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        (folder / name).write_bytes(payload)
    with pytest.raises(UserError, match="refusing global .*getcwd"):
        load_dataset("cifar10", tmp_path, download=False)


def _python2_cifar_pickle(images: np.ndarray, labels: list[int]) -> bytes:
    """A batch pickled the way the official (Python 2, numpy 1) CIFAR files are: byte strings, numpy.core names."""

    def string(b: bytes) -> bytes:
        return b"T" + struct.pack("<I", len(b)) + b

    def small(n: int) -> bytes:
        return b"K" + bytes([n])

    n, width = images.shape
    dtype = b"cnumpy\ndtype\n" + string(b"u1") + small(0) + small(1) + b"\x87R"
    dtype += b"(" + small(3) + string(b"|") + b"NNN" + b"J\xff\xff\xff\xff" * 2 + small(0) + b"tb"
    array = b"cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\n" + small(0) + b"\x85" + string(b"b") + b"\x87R"
    array += b"(" + small(1) + b"M" + struct.pack("<H", n) + b"M" + struct.pack("<H", width) + b"\x86" + dtype
    array += b"\x89" + string(images.astype(np.uint8).tobytes()) + b"tb"
    label_list = b"](" + b"".join(small(v) for v in labels) + b"e"
    return b"\x80\x02}(" + string(b"data") + array + string(b"labels") + label_list + b"u."


def test_cifar_reader_reads_python2_pickles(tmp_path: Path) -> None:
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    images = np.arange(2 * 3072).reshape(2, 3072) % 251
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        (folder / name).write_bytes(_python2_cifar_pickle(images, [3, 7]))
    with pytest.warns(UserWarning, match="not the official release"):
        ds = load_dataset("cifar10", tmp_path, download=False)
    assert torch.equal(ds.test_x, torch.from_numpy(images.astype(np.uint8)).view(2, 3, 32, 32))
    assert ds.test_y.tolist() == [3, 7] and len(ds.train_y) + len(ds.val_y) == 10


@pytest.mark.parametrize(
    ("name", "folder", "a_file"),
    [
        ("mnist", "MNIST/raw", "train-images-idx3-ubyte[.gz]"),
        ("fashion-mnist", "FashionMNIST/raw", "t10k-labels-idx1-ubyte[.gz]"),
        ("cifar10", "cifar-10-batches-py", "data_batch_5"),
        ("cifar100", "cifar-100-python", "test"),
    ],
)
def test_missing_dataset_names_what_was_looked_for(tmp_path: Path, name: str, folder: str, a_file: str) -> None:
    with pytest.raises(DatasetNotFound) as info:
        load_dataset(name, tmp_path, download=False)
    message = str(info.value)
    assert f"'{name}'" in message and str(tmp_path / folder) in message and a_file in message
    assert "--data-dir" in message and "AFOS_DATA_DIR" in message and "\n" not in message


# ------------------------------------------------------------------------------------------------ shared real data


@pytest.mark.parametrize(("name", "mean", "std"), [("mnist", 0.1307, 0.3081), ("fashion-mnist", 0.2860, 0.3530)])
def test_mnist_family_reads_official_gz(shared_data: Callable[[str], Path], name: str, mean: float, std: float) -> None:
    ds = load_dataset(name, shared_data(name), download=False)
    assert (len(ds.train_y) + len(ds.val_y), len(ds.val_y), len(ds.test_y)) == (60000, 6000, 10000)
    assert ds.train_x.shape[1:] == ds.test_x.shape[1:] == (1, 28, 28) and ds.train_x.dtype == torch.uint8
    assert (ds.num_classes, ds.in_channels, ds.image_size) == (10, 1, 28)
    assert set(ds.test_y.tolist()) == set(range(10)) and ds.test_y.dtype == torch.int64
    assert ds.mean[0] == pytest.approx(mean, abs=3e-3) and ds.std[0] == pytest.approx(std, abs=3e-3)


def test_mnist_reads_uncompressed_files_like_gz(shared_data: Callable[[str], Path], tmp_path: Path) -> None:
    root = shared_data("mnist")
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for name in ["train-images-idx3-ubyte", "train-labels-idx1-ubyte"]:
        (raw / f"{name}.gz").symlink_to(root / "MNIST" / "raw" / f"{name}.gz")
    for name in ["t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"]:
        with gzip.open(root / "MNIST" / "raw" / f"{name}.gz") as src, open(raw / name, "wb") as dst:
            shutil.copyfileobj(src, dst)
    official = load_dataset("mnist", root, download=False)
    mixed = load_dataset("mnist", tmp_path, download=False)
    assert torch.equal(mixed.test_x, official.test_x) and torch.equal(mixed.test_y, official.test_y)


def test_cifar10_subset_loads_and_warns_it_is_unofficial(shared_data: Callable[[str], Path]) -> None:
    with pytest.warns(UserWarning, match="not the official release"):
        ds = load_dataset("cifar10", shared_data("cifar10-subset"), download=False)
    assert (len(ds.train_y) + len(ds.val_y), len(ds.test_y)) == (5085, 1017)
    assert ds.train_x.shape[1:] == (3, 32, 32) and ds.train_x.dtype == torch.uint8
    assert (ds.num_classes, ds.in_channels, ds.image_size) == (10, 3, 32)
    assert set(ds.train_y.tolist()) == set(range(10)) and len(ds.mean) == len(ds.std) == 3
    loader = _loader(ds.train_x, ds.train_y, batch_size=128, mean=ds.mean, std=ds.std, augment=True, flip=True)
    xb, yb = next(iter(loader))
    assert xb.shape == (128, 3, 32, 32) and yb.shape == (128,)

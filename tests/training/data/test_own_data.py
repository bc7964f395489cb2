"""The user's own data: image folders (ImageFolder layout) and CSV tables, from loading to a CLI run."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from afos.errors import ConfigError, DatasetError
from afos.training.config import TrainConfig
from afos.training.data.registry import load_dataset
from afos.training.fitness import run_fitness
from afos.training.protocol import protocol_settings

COLOURS = {"cats": (200, 30, 30), "dogs": (30, 200, 30), "owls": (30, 30, 200)}


def make_folder(root: Path, per_class: int = 5, classes: dict = COLOURS, seed: int = 0) -> Path:
    """Class folders of small noisy images in one colour each, of mixed sizes and modes (RGB, L, RGBA)."""
    rng = np.random.default_rng(seed)
    for index, (name, colour) in enumerate(classes.items()):
        folder = root / name
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            size = (12 + i, 10 + 2 * i)
            pixels = np.clip(np.array(colour) + rng.normal(0, 20, (*size[::-1], 3)), 0, 255).astype(np.uint8)
            image = Image.fromarray(pixels)
            image = (image, image.convert("L"), image.convert("RGBA"))[(i + index) % 3]
            image.save(folder / f"{i}.png")
    return root


def test_folder_without_splits_gets_seeded_splits_and_a_cache(tmp_path: Path) -> None:
    root = make_folder(tmp_path / "data")
    ds = load_dataset("folder", root, image_size=16, val_fraction=0.2)
    assert ds.kind == "image" and ds.num_classes == 3 and ds.in_channels == 3 and ds.image_size == 16
    assert ds.train_x.shape[1:] == (3, 16, 16) and ds.train_x.dtype == torch.uint8
    assert len(ds.train_y) + len(ds.val_y) + len(ds.test_y) == 15
    assert (root / ".afos-cache-16px.pt").is_file()
    # Red images stay red after decoding: the class colours survive the fit to 16 px.
    red = ds.train_x[ds.train_y == 0].float().mean(dim=(0, 2, 3))
    assert red[0] > red[1] and red[0] > red[2]
    again = load_dataset("folder", root, image_size=16, val_fraction=0.2)
    assert torch.equal(again.train_x, ds.train_x) and torch.equal(again.test_y, ds.test_y)
    other_seed = load_dataset("folder", root, image_size=16, val_fraction=0.2, seed=1)
    assert torch.equal(other_seed.test_y, ds.test_y)  # the test split does not move with the seed


def test_cache_is_read_while_files_are_unchanged_and_rebuilt_when_they_change(tmp_path: Path) -> None:
    root = make_folder(tmp_path / "data")
    first = load_dataset("folder", root, image_size=8)
    image = root / "dogs" / "2.png"
    stat = image.stat()
    image.write_bytes(b"\0" * stat.st_size)  # same size, garbage content, old time: the cache still holds
    os.utime(image, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    cached = load_dataset("folder", root, image_size=8)
    assert torch.equal(cached.train_x, first.train_x)
    os.utime(image, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # now it counts as changed
    with pytest.raises(DatasetError, match=r"cannot read image .*dogs/2\.png"):
        load_dataset("folder", root, image_size=8)


def test_a_planted_cache_file_is_never_unpickled(tmp_path: Path) -> None:
    root = make_folder(tmp_path / "data")
    marker = tmp_path / "ran"

    class Payload:
        def __reduce__(self) -> tuple:
            return (Path.touch, (marker,))

    torch.save({"key": "x", "payload": Payload()}, root / ".afos-cache-8px.pt")
    ds = load_dataset("folder", root, image_size=8)
    assert not marker.exists() and ds.num_classes == 3


def test_given_val_and_test_folders_are_used_as_they_are(tmp_path: Path) -> None:
    make_folder(tmp_path / "train", per_class=4)
    make_folder(tmp_path / "val", per_class=2, seed=1)
    make_folder(tmp_path / "test", per_class=3, seed=2)
    ds = load_dataset("folder", tmp_path, image_size=8)
    assert (len(ds.train_y), len(ds.val_y), len(ds.test_y)) == (12, 6, 9)
    assert ds.test_y.tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2]


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda root: root.mkdir(), "no images in class sub-folders"),
        (lambda root: make_folder(root, classes={"only": (1, 2, 3)}), "holds one class"),
        (lambda root: (make_folder(root / "train"), make_folder(root / "val", classes={"newt": (0, 0, 0)})),
         "has class.*newt.*that train does not have"),
        (lambda root: (make_folder(root), (root / "empty").mkdir()), "empty.*hold no images"),
    ],
)
def test_unusable_folders_are_one_line_errors(tmp_path: Path, build, message: str) -> None:
    root = tmp_path / "data"
    build(root)
    with pytest.raises(DatasetError, match=message) as info:
        load_dataset("folder", root)
    assert "\n" not in str(info.value)


def test_own_data_needs_its_path_and_target(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="needs --data-dir"):
        load_dataset("folder")
    table = write_table(tmp_path / "t.csv")
    with pytest.raises(ConfigError, match="needs --target"):
        load_dataset("csv", table)


def write_table(path: Path, rows: int = 60, seed: int = 0) -> Path:
    """Two informative features on very different scales and a text class column in the middle."""
    rng = np.random.default_rng(seed)
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["height", "species", "weight"])
        for i in range(rows):
            label = ("iris", "rose", "tulip")[i % 3]
            writer.writerow([f"{(i % 3) * 10 + rng.normal():.3f}", label, f"{1000 * (i % 3) + rng.normal(0, 50):.1f}"])
    return path


def test_csv_is_standardised_on_train_and_classes_are_named_columns(tmp_path: Path) -> None:
    ds = load_dataset("csv", write_table(tmp_path / "t.csv"), target="species")
    assert ds.kind == "tabular" and ds.num_features == 2 and ds.num_classes == 3
    assert len(ds.train_y) + len(ds.val_y) + len(ds.test_y) == 60
    assert torch.allclose(ds.train_x.mean(0), torch.zeros(2), atol=1e-5)
    assert torch.allclose(ds.train_x.std(0, unbiased=False), torch.ones(2), atol=1e-5)
    assert not torch.allclose(ds.test_x.mean(0), torch.zeros(2), atol=1e-5)  # fitted on train only


def test_csv_errors_name_the_column_or_cell(tmp_path: Path) -> None:
    table = write_table(tmp_path / "t.csv")
    with pytest.raises(DatasetError, match="no column 'label'; columns: height, species, weight"):
        load_dataset("csv", table, target="label")
    with pytest.raises(DatasetError, match="row 2, column 'species': 'iris' is not a number"):
        load_dataset("csv", table, target="weight")
    one = tmp_path / "one.csv"
    one.write_text("a,b\n1,x\n2,x\n")
    with pytest.raises(DatasetError, match="fewer than two classes"):
        load_dataset("csv", one, target="b")


def test_protocol_of_own_data_includes_the_data_and_its_settings(tmp_path: Path) -> None:
    folder = TrainConfig(dataset="folder", data_dir=str(tmp_path), image_size=24)
    digits = TrainConfig(dataset="digits", data_dir=str(tmp_path))
    assert {"data_dir", "image_size", "target"} <= set(protocol_settings(folder))
    assert not {"data_dir", "image_size", "target"} & set(protocol_settings(digits))


def test_a_fitness_run_on_a_folder(tmp_path: Path) -> None:
    root = make_folder(tmp_path / "data", per_class=8)
    config = TrainConfig(dataset="folder", data_dir=str(root), image_size=8, model="small_cnn", epochs=2,
                         batch_size=8, device="cpu", val_fraction=0.3)
    result = run_fitness(nn.SiLU, config)
    assert result.status == "ok", result.reason
    assert 0.0 <= result.test_accuracy <= 1.0


def test_evaluate_on_a_csv_through_the_cli(tmp_path: Path) -> None:
    table = write_table(tmp_path / "t.csv", rows=90)
    result = subprocess.run(
        [sys.executable, "-m", "afos", "evaluate", "relu", "--dataset", "csv", "--data-dir", str(table),
         "--target", "species", "--seeds", "1", "--epochs", "3", "--out", str(tmp_path / "run"), "--json", "--quiet"],
        capture_output=True, text=True, check=False, timeout=300,
    )
    assert result.returncode == 0, result.stderr
    (row,) = json.loads(result.stdout)
    assert row["dataset"] == "csv" and row["status"] == "ok" and row["test_accuracy"] > 0.5


def test_missing_target_column_through_the_cli_is_exit_2(tmp_path: Path) -> None:
    table = write_table(tmp_path / "t.csv")
    result = subprocess.run(
        [sys.executable, "-m", "afos", "evaluate", "relu", "--dataset", "csv", "--data-dir", str(table),
         "--target", "colour", "--out", str(tmp_path / "run")],
        capture_output=True, text=True, check=False, timeout=300,
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1] == (
        f"afos: error: dataset 'csv': {table} has no column 'colour'; columns: height, species, weight"
    )

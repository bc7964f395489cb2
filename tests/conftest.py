"""Shared pytest fixtures."""

import os
from collections.abc import Callable
from pathlib import Path

import pytest

#: The dataset folders of the shared data (``../shared/data``), by the name afos loads them under.
SHARED_FOLDERS = {"mnist": "MNIST", "fashion-mnist": "FashionMNIST", "cifar10-subset": "cifar10-subset"}


@pytest.fixture
def shared_data() -> Callable[[str], Path]:
    """``shared_data(name)``: the root holding one real dataset of ``$AFOS_TEST_DATA`` (a key of
    :data:`SHARED_FOLDERS`). The test skips, naming what is missing, when the variable is unset or the
    dataset's folder is absent (a GPU machine carries only the CIFAR-10 subset, say)."""
    root = os.environ.get("AFOS_TEST_DATA")

    def need(name: str) -> Path:
        if not root:
            pytest.skip("AFOS_TEST_DATA is not set; real dataset tests need the shared data folder")
        folder = Path(root) / SHARED_FOLDERS[name]
        if not folder.is_dir():
            pytest.skip(f"{folder} is missing: AFOS_TEST_DATA={root} lacks the {name} dataset")
        return folder if name == "cifar10-subset" else Path(root)

    return need

"""Shared pytest fixtures."""

import os
from pathlib import Path

import pytest


@pytest.fixture
def test_data_dir() -> Path:
    """Folder of real datasets (``$AFOS_TEST_DATA``); tests needing it skip when it is not set."""
    if not os.environ.get("AFOS_TEST_DATA"):
        pytest.skip("AFOS_TEST_DATA is not set; real dataset tests need the shared data folder")
    return Path(os.environ["AFOS_TEST_DATA"])

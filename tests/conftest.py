"""Shared pytest helpers. The binaries under test come from $PYSPY_BIN_DIR
(default: build/asan/bin in this repository)."""
import os
import pathlib

import pytest

REPO = pathlib.Path(__file__).resolve().parent.parent


def get_bin_dir() -> pathlib.Path:
    env = os.environ.get("PYSPY_BIN_DIR")
    return pathlib.Path(env) if env else REPO / "build" / "asan" / "bin"


def find_tool(name: str) -> pathlib.Path:
    """Path of a built tool; skips the calling test when it was not built."""
    path = get_bin_dir() / name
    if not path.exists():
        pytest.skip(f"{name} is not built in {get_bin_dir()}")
    return path


@pytest.fixture(scope="session")
def bin_dir() -> pathlib.Path:
    return get_bin_dir()

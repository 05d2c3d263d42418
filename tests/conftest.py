"""Shared test set-up: offscreen Qt, a private data folder, and the real data beside the repo."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

# Offscreen by default so the suite runs on CI and on machines with no display.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("WORKSTATION_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))


@pytest.fixture(autouse=True)
def _private_data_dir(tmp_path_factory, monkeypatch):
    """Every test writes per-user data into its own folder, never the real one."""
    monkeypatch.setenv("WORKSTATION_DATA_DIR", str(tmp_path_factory.mktemp("wsdata")))


def shared_path(*parts: str) -> Path:
    """A path under ../shared/data; skips the calling test with a clear reason when it is absent."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"real data not available: {path} is absent (../shared/data lives beside the repo on CI)")
    return path


@pytest.fixture
def shared_data() -> Path:
    return shared_path()

"""Shared test fixtures: golden files (regenerate with `pytest --regen`), the artifact cache, shared schemas."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# Reference schemas live beside the repo (../shared/schemas); the project does not vendor them.
SHARED = Path(os.environ.get("FACTORY_SHARED_DIR", ROOT.parent / "shared"))


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--regen", action="store_true", help="rewrite golden files from current output")


@pytest.fixture
def golden(request: pytest.FixtureRequest):  # type: ignore[no-untyped-def]
    """golden(path, text): compare text with tests/golden/<path>, or rewrite it under --regen."""
    regen = request.config.getoption("--regen")

    def check(rel: str, text: str) -> None:
        path = ROOT / "tests" / "golden" / rel
        if regen or not path.exists():
            if not regen:
                pytest.fail(f"golden file {path} is missing; run pytest --regen and review the diff")
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        assert text == path.read_text(), f"output differs from golden {rel} (pytest --regen to accept)"

    return check


@pytest.fixture(scope="session")
def artifact_cache() -> Path:
    """Cache for expensive fixtures (guest images, test ISOs), keyed by a hash of their recipe, outside the repo."""
    path = Path(os.environ.get("FACTORY_TEST_CACHE", Path.home() / ".cache" / "factory-tests"))
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="session")
def shared_schemas() -> Path:
    path = SHARED / "schemas"
    if not path.is_dir():
        pytest.fail(f"reference schemas not found at {path} (set FACTORY_SHARED_DIR to the shared/ folder)")
    return path


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test gets its own factory cache dir so tests never share state through ~/.cache/factory."""
    monkeypatch.setenv("FACTORY_CACHE_DIR", str(tmp_path_factory.mktemp("factory-cache")))


# Fixture modules under tests/fixtures/ (guest images, test ISOs) are loaded as plugins so every test sees them.
pytest_plugins = sorted(
    f"fixtures.{p.stem}" for p in (Path(__file__).parent / "fixtures").glob("*.py") if p.stem != "__init__"
)

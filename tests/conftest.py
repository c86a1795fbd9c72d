"""Shared test fixtures: golden files (regenerate with `pytest --regen`), the artifact cache, shared schemas."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# Third-party reference schemas (subiquity's autoinstall JSON schema, the DMTF OVF XSDs) that the project does not
# ship: FACTORY_SHARED_DIR names a folder holding them under schemas/ (default: ../shared beside the checkout).
# Tests that need them are marked `reference` and skipped when they are absent, unless
# FACTORY_REQUIRE_REFERENCE=1 (CI sets it) makes their absence a failure.
SHARED = Path(os.environ.get("FACTORY_SHARED_DIR", ROOT.parent / "shared"))
SCHEMAS = SHARED / "schemas"
REFERENCE_FILES = ("subiquity-autoinstall-24.04.json", "ovf/dsp8023_1.1.1.xsd")
REQUIRE_REFERENCE = os.environ.get("FACTORY_REQUIRE_REFERENCE") == "1"

# The packer binary the compatibility tests compare with would otherwise ask checkpoint.hashicorp.com for updates:
# tests send traffic to loopback only.
os.environ["CHECKPOINT_DISABLE"] = "1"

# Tests press Ctrl-C on the builds they start (SIGINT to the child). A shell starts background jobs (`make test &`,
# nohup) with SIGINT ignored, and an ignored signal stays ignored across exec, so those builds would never see it
# (factory, like any program, keeps an inherited SIG_IGN: nohup's contract). Give the children a default SIGINT.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


def _reference_missing() -> str | None:
    """Why the reference schemas cannot be used, or None when they are all there."""
    missing = [name for name in REFERENCE_FILES if not (SCHEMAS / name).is_file()]
    if not missing:
        return None
    return (f"reference schemas not found: {SCHEMAS} lacks {', '.join(missing)}. Set FACTORY_SHARED_DIR to a "
            "folder whose schemas/ holds subiquity's autoinstall schema (subiquity-autoinstall-24.04.json) and "
            "the DMTF OVF XSDs (ovf/dsp8023_1.1.1.xsd and its includes)")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--regen", action="store_true", help="rewrite golden files from current output")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests that read the reference schemas are marked `reference`; without the schemas they skip with the reason
    (or, under FACTORY_REQUIRE_REFERENCE=1, fail in setup through the `shared_schemas` fixture)."""
    missing = _reference_missing()
    for item in items:
        if "shared_schemas" not in getattr(item, "fixturenames", ()):
            continue
        item.add_marker(pytest.mark.reference)
        if missing and not REQUIRE_REFERENCE:
            item.add_marker(pytest.mark.skip(reason=missing))


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
    """The reference schemas folder; a test that asks for it is a `reference` test (see above)."""
    missing = _reference_missing()
    if missing:
        pytest.fail(missing + " (FACTORY_REQUIRE_REFERENCE=1 makes this a failure)")
    return SCHEMAS


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test gets its own factory cache dir so tests never share state through ~/.cache/factory."""
    monkeypatch.setenv("FACTORY_CACHE_DIR", str(tmp_path_factory.mktemp("factory-cache")))


@pytest.fixture(autouse=True)
def _no_secrets_from_other_tests() -> Iterator[None]:
    """The secrets registry is per process: a password one test registered (say `factory`) must not mask the
    words of the next test's output."""
    from factory import secrets
    secrets.clear()
    yield
    secrets.clear()


# Fixture modules under tests/fixtures/ (guest images, test ISOs) are loaded as plugins so every test sees them.
pytest_plugins = sorted(
    f"fixtures.{p.stem}" for p in (Path(__file__).parent / "fixtures").glob("*.py") if p.stem != "__init__"
)
pytest.register_assert_rewrite(*pytest_plugins)  # also when one imports another before its own turn


def _console_monitor_as_the_cli_installs_it() -> None:
    """Library calls in tests print through the default bus as under `factory` (the CLI installs this)."""
    from factory import events
    from factory.build import HumanMonitor

    events.set_console_monitor(HumanMonitor)


_console_monitor_as_the_cli_installs_it()

"""Shared fixtures: a tiny synthetic ATT&CK bundle built here, and the real data mirror.

Integration tests take `shared_data` and are skipped, with the reason, when the mirror is absent.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]


def data_root() -> Path | None:
    """The data mirror: $MITREMAP_DATA, else ../shared/data beside the repository."""
    env = os.environ.get("MITREMAP_DATA")
    path = Path(env) if env else REPO.parent / "shared" / "data"
    return path if (path / "attack").is_dir() else None


@contextmanager
def coverage_paused() -> Iterator[None]:
    """Coverage (`make test`) stopped for a while: for slow work in another library that runs
    none of MitreMap's code, or a session fixture's setup whose code the unit tests cover,
    which the tracer would only slow down."""
    try:
        import coverage
    except ImportError:
        current = None
    else:
        current = coverage.Coverage.current()
    if current is None:
        yield
        return
    current.stop()
    try:
        yield
    finally:
        current.start()


@pytest.fixture(scope="session")
def shared_data() -> Path:
    root = data_root()
    if root is None:
        pytest.skip("shared data mirror not found: set MITREMAP_DATA or put it at ../shared/data")
    return root


@pytest.fixture(scope="session")
def real_kb(shared_data: Path, tmp_path_factory: pytest.TempPathFactory):
    from mitremap.attack import AttackKB

    bundle = shared_data / "attack" / "enterprise-attack-18.1.json"
    return AttackKB.from_file(bundle, cache_dir=tmp_path_factory.mktemp("attack-index"))


def _ref(external_id: str) -> list[dict[str, str]]:
    kind = "tactics" if external_id.startswith("TA") else "techniques"
    return [
        {
            "source_name": "mitre-attack",
            "external_id": external_id,
            "url": f"https://attack.mitre.org/{kind}/{external_id.replace('.', '/')}",
        }
    ]


def _technique(
    stix: str, tid: str, name: str, phases: list[str], description: str = "", **extra: Any
) -> dict[str, Any]:
    return {
        "type": "attack-pattern",
        "id": f"attack-pattern--{stix}",
        "name": name,
        "description": description or f"Adversaries may use {name.lower()}.",
        "external_references": _ref(tid),
        "kill_chain_phases": [{"kill_chain_name": "mitre-attack", "phase_name": p} for p in phases],
        "x_mitre_is_subtechnique": "." in tid,
        "x_mitre_platforms": ["Windows"],
        **extra,
    }


def make_tiny_bundle() -> dict[str, Any]:
    """Two tactics, four techniques (one a sub-technique, one revoked), a group, a malware."""
    objects: list[dict[str, Any]] = [
        {
            "type": "x-mitre-tactic",
            "id": "x-mitre-tactic--p",
            "name": "Persistence",
            "x_mitre_shortname": "persistence",
            "external_references": _ref("TA0003"),
        },
        {
            "type": "x-mitre-tactic",
            "id": "x-mitre-tactic--e",
            "name": "Execution",
            "x_mitre_shortname": "execution",
            "external_references": _ref("TA0002"),
        },
        {
            "type": "x-mitre-matrix",
            "id": "x-mitre-matrix--1",
            "name": "Enterprise",
            "tactic_refs": ["x-mitre-tactic--e", "x-mitre-tactic--p"],
        },
        _technique("1", "T1053", "Scheduled Task/Job", ["execution", "persistence"]),
        _technique(
            "2",
            "T1053.005",
            "Scheduled Task",
            ["execution", "persistence"],
            "Adversaries may abuse the Windows Task Scheduler.(Citation: Example)",
        ),
        _technique("3", "T1059", "Command and Scripting Interpreter", ["execution"]),
        _technique("4", "T1168", "Local Job Scheduling", ["persistence"], revoked=True),
        {
            "type": "intrusion-set",
            "id": "intrusion-set--g",
            "name": "APT-Tiny",
            "aliases": ["APT-Tiny", "Tiny Panda"],
            "external_references": _ref("G9999"),
        },
        {
            "type": "malware",
            "id": "malware--m",
            "name": "TinyRAT",
            "x_mitre_aliases": ["TinyRAT", "TRAT"],
            "external_references": _ref("S9999"),
        },
        {
            "type": "relationship",
            "id": "relationship--1",
            "relationship_type": "uses",
            "source_ref": "malware--m",
            "target_ref": "attack-pattern--2",
            "description": "[TinyRAT](https://attack.mitre.org/software/S9999) creates a scheduled task "
            "for persistence.(Citation: Tiny Report 2020)",
        },
        {
            "type": "relationship",
            "id": "relationship--2",
            "relationship_type": "uses",
            "source_ref": "intrusion-set--g",
            "target_ref": "attack-pattern--3",
            "description": "APT-Tiny used cmd.exe to run commands.",
        },
        {
            "type": "relationship",
            "id": "relationship--3",
            "relationship_type": "revoked-by",
            "source_ref": "attack-pattern--4",
            "target_ref": "attack-pattern--2",
        },
    ]
    return {"type": "bundle", "id": "bundle--tiny", "spec_version": "2.0", "objects": objects}


@pytest.fixture
def tiny_bundle() -> dict[str, Any]:
    return make_tiny_bundle()


@pytest.fixture
def tiny_kb():
    from mitremap.attack import AttackKB

    return AttackKB.from_bundle(make_tiny_bundle(), version="0.1")


class CliResult:
    def __init__(self, code: int, out: str, err: str) -> None:
        self.code, self.out, self.err = code, out, err


@pytest.fixture
def cli(capsys, monkeypatch):
    """Run `mitremap ARGS…` in-process; returns its exit code, stdout and stderr."""
    from mitremap.cli import main
    from mitremap.cli.common import options

    monkeypatch.setenv("COLUMNS", "200")

    def run(*args: str) -> CliResult:
        type(options).__init__(options)  # global options are per run
        try:
            main(list(args))
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return run


@pytest.fixture(scope="session")
def mm(tmp_path_factory):
    """A MitreMap on a model trained once per test run on the tiny corpus (`tests.tiny`)."""
    from mitremap.analysis import MitreMap
    from mitremap.training.fit import train_linear
    from tests.tiny import SETTINGS, items, reports

    model = train_linear(items(), reports=reports(), settings=SETTINGS)
    model.card.techniques = {
        "T1053.005": {"name": "Scheduled Task", "tactics": ["Execution"], "parent": "T1053"}
    }
    path = tmp_path_factory.mktemp("model") / "m"
    model.save(path)
    return MitreMap.load(path)


@pytest.fixture(scope="session")
def real_model_path(shared_data, tmp_path_factory):
    """A model trained here on the real data with the default recipe and smaller settings
    (about two and a half minutes on 2 cores, once per session): integration tests never
    depend on the developer's cached model.

    $MITREMAP_TEST_MODEL names a folder to keep this model in between runs (a developer's
    convenience; CI never sets it): trained there once, then reused."""
    from mitremap.data import DataResolver
    from mitremap.training.fit import LinearSettings
    from mitremap.training.train import train_model

    settings = LinearSettings(
        max_word_features=40_000,
        max_char_features=40_000,
        negatives_per_label=1500,
        calibration_folds=2,
        calibration_trees=60,  # the default's 150 stages took 53 of the fixture's 120 s
    )
    kept = os.environ.get("MITREMAP_TEST_MODEL")
    path = Path(kept) if kept else tmp_path_factory.mktemp("real-model") / "m"
    if kept and (path / "manifest.json").is_file():
        return path
    with coverage_paused():  # setup, not a test: training's code is covered by its own tests
        model = train_model(resolver=DataResolver(data_dir=shared_data), settings=settings)
    model.save(path)
    return path


@pytest.fixture(scope="session")
def real_mm(real_model_path):
    from mitremap.analysis import MitreMap

    return MitreMap.load(real_model_path)


@pytest.fixture(scope="session")
def postgres_server():
    """A throwaway PostgreSQL server for the whole session (`tests/postgres.py`); skipped,
    with the reason, only when no server binary is installed."""
    from tests.postgres import running_server, server_binaries

    if server_binaries() is None:
        pytest.skip("no PostgreSQL server binaries: apt-get install postgresql (.ci/run does)")
    pytest.importorskip("psycopg")
    with running_server() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path):
    """A new, empty workspace database URL: SQLite, then PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'workspace.db'}"
    import uuid

    from tests.postgres import create_database

    server = request.getfixturevalue("postgres_server")
    return create_database(server, f"t{uuid.uuid4().hex[:16]}")


# ---- a real browser (Debian's chromium through Playwright), one per session ------------------
# One sync Playwright per session: a second one inside the first's event loop is refused, so
# every browser test (tests/browser and the /docs check) shares this one.

CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser")


def chromium_binary() -> str | None:
    """$MITREMAP_CHROMIUM, Debian's chromium, or one on PATH."""
    import shutil

    named = os.environ.get("MITREMAP_CHROMIUM")
    candidates = [named] if named else []
    candidates += [
        *CHROMIUM_CANDIDATES,
        shutil.which("chromium") or "",
        shutil.which("chrome") or "",
    ]
    return next((c for c in candidates if c and Path(c).is_file()), None)


@pytest.fixture(scope="session")
def chromium() -> str:
    path = chromium_binary()
    if path is None:
        pytest.skip("no chromium binary (apt-get install chromium, or set MITREMAP_CHROMIUM)")
    return path


@pytest.fixture(scope="session")
def browser(chromium: str):
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright")
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        yield launched
        launched.close()

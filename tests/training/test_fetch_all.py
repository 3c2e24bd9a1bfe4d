"""`mitremap data fetch`: every source from its origin — here a local web server standing in for
the origins, reached through the one documented override, MITREMAP_ORIGIN — converted into a
mirror that training accepts."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from mitremap.data import DataResolver
from mitremap.sources import SOURCES, source
from mitremap.training.converters import fetch_plan
from mitremap.training.corpus import DEFAULT_RECIPE, read_jsonl
from mitremap.training.train import DEFAULT_REPORT_SOURCES, train_model
from tests.origins import ANNOCTR_TEST_TEXT, MADE_HERE, build_origins, serve
from tests.schemas import valid
from tests.tiny import SETTINGS


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh user cache, no mirror: what a newcomer has."""
    monkeypatch.delenv("MITREMAP_DATA", raising=False)
    monkeypatch.delenv("MITREMAP_OFFLINE", raising=False)
    monkeypatch.setenv("MITREMAP_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _texts(folder: Path) -> str:
    return "\n".join(p.read_text(encoding="utf-8") for p in folder.rglob("*.jsonl"))


@pytest.mark.integration
@pytest.mark.slow
def test_fetch_all_yields_a_mirror_that_training_accepts(
    cli, shared_data: Path, cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = tmp_path / "site"
    build_origins(site, raw=shared_data / "raw")  # the real archives where the mirror keeps them
    with serve(site) as base:
        monkeypatch.setenv("MITREMAP_ORIGIN", base)
        started = time.monotonic()
        result = cli("data", "fetch", "all", "--format", "json")
        seconds = time.monotonic() - started
    assert result.code == 0, result.err
    body = json.loads(result.out)
    assert body["failed"] == {}
    fetched = {row["source"]: row for row in body["fetched"]}
    assert set(fetched) == {spec.name for spec in fetch_plan(["all"])}
    assert all(row["records"] is None or row["records"] > 0 for row in fetched.values())
    print(f"fetch all: {len(fetched)} mirror files in {seconds:.1f} s")

    # every source with an origin is now found in the cache, and only the converted files stay
    resolver = DataResolver()
    for spec, located in zip(SOURCES, resolver.status(), strict=True):
        if spec.fetch:
            assert located.where == "cache", spec.name
    assert not list((cache / "raw").iterdir())
    assert ANNOCTR_TEST_TEXT not in _texts(cache / "data")  # AnnoCTR's test split stays out

    # a real archive converts to the mirror's own records
    mirror = {i.text for i in read_jsonl(shared_data / str(source("lolbas").path))}
    assert {i.text for i in read_jsonl(cache / "data" / str(source("lolbas").path))} >= mirror

    # progress: not a terminal here, so plain lines
    assert f"sigma: fetching {base}/github.com/SigmaHQ/sigma/" in result.err
    assert "mbc: 1.9/1.9 MB" in result.err

    # what `mitremap train` does, with tiny settings
    model = train_model(resolver=DataResolver(data_dir=cache / "data"), settings=SETTINGS)
    for name in DEFAULT_RECIPE.sources:
        assert model.card.sources.get(name, 0) > 0, name
    calibration = model.card.recipe["calibration"]
    assert calibration["missing"] == [] and "warning" not in calibration
    assert set(calibration["annotated_reports"]) == set(DEFAULT_REPORT_SOURCES)


def test_fetch_converts_every_origin_made_here(cli, cache: Path, tmp_path: Path, monkeypatch):
    """Without the shared data: each origin format, made here, becomes its mirror file."""
    site = tmp_path / "site"
    build_origins(site)
    names = sorted({s.name for s in SOURCES if s.fetch and s.fetch in _urls(MADE_HERE)})
    with serve(site) as base:
        monkeypatch.setenv("MITREMAP_ORIGIN", base)
        result = cli("data", "fetch", *names)
    assert result.code == 0, result.err
    assert f"splunk: 3 records → {cache / 'data' / 'corpora' / 'splunk_detections.jsonl'}" in (
        result.out
    )
    # not a terminal: plain progress lines on stderr, one line each (no wrapped URLs)
    assert (
        f"car: fetching {base}/github.com/mitre-attack/car/archive/refs/heads/master.tar.gz ("
        in (result.err)
    )
    assert "car: done (" in result.err

    def records(name: str) -> list:
        return list(read_jsonl(cache / "data" / str(source(name).path)))

    reports = {r.id: r for r in records("tram-reports")}
    assert reports["AA99001A Schtasks Everywhere"].labels == ("T1053.005", "T1059")
    spans = reports["AA99001A Schtasks Everywhere"].meta["spans"]
    text = reports["AA99001A Schtasks Everywhere"].text
    assert text[spans[0]["start"] : spans[0]["end"]].startswith("The malware creates")
    single = records("tram-single")
    assert {r.meta["doc_title"] for r in single} >= set(reports) - {"Quiet Persistence"} - {
        "Nothing To See"
    }
    assert {r.meta["split"] for r in records("annoctr-train")} == {"train", "dev"}
    annoctr = records("annoctr-reports")
    assert sorted(r.meta["split"] for r in annoctr) == ["dev", "train", "train"]
    assert ANNOCTR_TEST_TEXT not in _texts(cache / "data")
    assert [r.labels for r in records("car")] == [("T1053", "T1053.005")]
    assert [r.labels for r in records("capec")] == [("T1053.005",)]
    assert (cache / "data" / "attack" / "enterprise-attack-18.1.json").is_file()


def test_an_origin_that_fails_is_reported_and_the_others_kept(cli, cache, tmp_path, monkeypatch):
    site = tmp_path / "site"
    build_origins(site)
    car = site / source("car").fetch.split("://", 1)[1]
    car.unlink()  # the server answers 404 for it
    with serve(site) as base:
        monkeypatch.setenv("MITREMAP_ORIGIN", base)
        result = cli("data", "fetch", "car", "kql", "--format", "json")
    assert result.code == 1
    body = valid("data-fetch", json.loads(result.out))
    assert [row["source"] for row in body["fetched"]] == ["kql"]
    assert "HTTP 404" in body["failed"]["car"]
    assert "error: 1 of 2 sources could not be fetched: car: cannot download" in result.err
    assert "Traceback" not in result.err


def test_an_archive_of_the_wrong_layout_is_an_error_not_an_empty_file(
    cli, cache, tmp_path, monkeypatch
):
    site = tmp_path / "site"
    build_origins(site)
    splunk = site / source("splunk").fetch.split("://", 1)[1]
    splunk.write_bytes((site / source("car").fetch.split("://", 1)[1]).read_bytes())
    mirrored = cache / "data" / str(source("splunk").path)
    with serve(site) as base:
        monkeypatch.setenv("MITREMAP_ORIGIN", base)
        result = cli("data", "fetch", "splunk")
        assert result.code == 1 and "layout may have changed upstream" in result.err
        assert not mirrored.exists()
        mirrored.parent.mkdir(parents=True, exist_ok=True)
        mirrored.write_text('{"text": "last good copy", "labels": ["T1059"]}\n')
        assert cli("data", "fetch", "splunk").code == 1
    assert "last good copy" in mirrored.read_text()  # a failed fetch keeps the previous file


def test_fetch_refuses_unknown_and_unfetchable_names_before_downloading(cli, cache):
    result = cli("data", "fetch", "sigma", "nope")
    assert result.code == 1 and "Unknown data source 'nope'" in result.err
    assert not (cache / "raw").exists()


def test_fetch_offline_is_one_line(cli, cache, monkeypatch):
    monkeypatch.setenv("MITREMAP_OFFLINE", "1")
    result = cli("data", "fetch", "car")
    assert result.code == 1 and "MITREMAP_OFFLINE" in result.err and "Traceback" not in result.err


def test_fetch_plan_takes_each_mirror_file_once() -> None:
    plan = fetch_plan(["all"])
    paths = [spec.path for spec in plan]
    assert len(paths) == len(set(paths))
    assert {s.path for s in SOURCES if s.fetch} == set(paths)
    assert "annoctr-train" in {s.name for s in plan} and "annoctr-dev" not in {s.name for s in plan}
    other = fetch_plan(["attack"], attack_version="17.1")[0]
    assert other.path == "attack/enterprise-attack-17.1.json" and other.fetch.endswith("17.1.json")


def _urls(made: dict) -> set[str]:
    return {source(name).fetch for name in made}

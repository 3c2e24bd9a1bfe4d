"""The data resolver: where files come from, and downloads that never leave half a file."""

from __future__ import annotations

import hashlib
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from mitremap import data
from mitremap.data import DataResolver, download
from mitremap.errors import DataNotFoundError, DownloadError

PAYLOAD = b'{"type": "bundle", "objects": []}' * 1000


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path.endswith("/short"):  # claims more bytes than it sends: an interrupted download
            self.send_response(200)
            self.send_header("Content-Length", str(len(PAYLOAD) * 2))
            self.end_headers()
            self.wfile.write(PAYLOAD)
            self.wfile.flush()
            self.close_connection = True
            return
        if "missing" in self.path:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(PAYLOAD)))
        self.end_headers()
        self.wfile.write(PAYLOAD)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(autouse=True)
def clean_env(monkeypatch, tmp_path):
    monkeypatch.delenv("MITREMAP_DATA", raising=False)
    monkeypatch.delenv("MITREMAP_OFFLINE", raising=False)
    monkeypatch.setenv("MITREMAP_CACHE", str(tmp_path / "cache"))


def make_mirror(root: Path, name: str = "attack/enterprise-attack-18.1.json") -> Path:
    (root / name).parent.mkdir(parents=True, exist_ok=True)
    (root / name).write_text("{}")
    return root


def test_option_beats_environment_beats_cache(tmp_path, monkeypatch):
    option = make_mirror(tmp_path / "option")
    env = make_mirror(tmp_path / "env")
    monkeypatch.setenv("MITREMAP_DATA", str(env))
    relative = "attack/enterprise-attack-18.1.json"
    assert DataResolver(data_dir=option).find(relative).path == option / relative
    assert DataResolver(data_dir=option).find(relative).where == "option"
    assert DataResolver().find(relative).path == env / relative
    monkeypatch.delenv("MITREMAP_DATA")
    make_mirror(tmp_path / "cache" / "data")
    located = DataResolver().find(relative)
    assert located.where == "cache" and located.path == tmp_path / "cache" / "data" / relative


def test_missing_folders_and_files_say_what_to_set(tmp_path, monkeypatch):
    with pytest.raises(DataNotFoundError, match="--data does not exist"):
        DataResolver(data_dir=tmp_path / "nope")
    monkeypatch.setenv("MITREMAP_DATA", str(tmp_path / "nope"))
    with pytest.raises(
        DataNotFoundError, match="MITREMAP_DATA points at a folder that does not exist"
    ):
        DataResolver()
    monkeypatch.setenv("MITREMAP_DATA", str(tmp_path))
    with pytest.raises(DataNotFoundError) as info:
        DataResolver().require("corpora/sigma_rules.jsonl")
    assert "MITREMAP_DATA" in str(info.value) and "mitremap data fetch" in str(info.value)


def test_offline_without_mirror_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("MITREMAP_OFFLINE", "1")
    with pytest.raises(DataNotFoundError) as info:
        DataResolver().attack_bundle("18.1")
    assert "--data" in str(info.value) and "MITREMAP_DATA" in str(info.value)


def test_no_network_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("MITREMAP_ORIGIN", "http://127.0.0.1:9")  # nothing listens there
    with pytest.raises(DataNotFoundError) as info:
        DataResolver().attack_bundle("18.1")
    message = str(info.value)
    assert "download failed" in message and "MITREMAP_DATA" in message


def test_one_override_redirects_every_origin(monkeypatch):
    url = "https://github.com/SigmaHQ/sigma/archive/refs/heads/master.tar.gz"
    assert DataResolver().origin_url(url) == url
    mirrored = (
        "http://mirror.example/origins/github.com/SigmaHQ/sigma/archive/refs/heads/master.tar.gz"
    )
    assert DataResolver(origin="http://mirror.example/origins/").origin_url(url) == mirrored
    monkeypatch.setenv("MITREMAP_ORIGIN", "http://mirror.example/origins")
    assert DataResolver().origin_url(url) == mirrored
    assert DataResolver(origin="").origin_url(url) == url  # a parameter beats the environment


def test_attack_bundle_downloads_into_cache_with_progress(server, tmp_path, monkeypatch):
    monkeypatch.setenv("MITREMAP_ORIGIN", server)
    seen: list[tuple[int, int | None]] = []
    path = DataResolver().attack_bundle(
        "18.1", progress=lambda done, total: seen.append((done, total))
    )
    assert path == tmp_path / "cache" / "data" / "attack" / "enterprise-attack-18.1.json"
    assert path.read_bytes() == PAYLOAD
    assert seen[-1] == (len(PAYLOAD), len(PAYLOAD))
    assert DataResolver().find("attack/enterprise-attack-18.1.json").where == "cache"


def test_download_verifies_hash_and_leaves_no_file_when_wrong(server, tmp_path):
    target = tmp_path / "out" / "file.json"
    good = hashlib.sha256(PAYLOAD).hexdigest()
    assert download(server + "/ok", target, sha256=good).read_bytes() == PAYLOAD
    target.unlink()
    with pytest.raises(DownloadError, match="SHA-256 mismatch"):
        download(server + "/ok", target, sha256="0" * 64)
    assert not target.exists()
    assert list(target.parent.iterdir()) == []  # no temporary file left behind


def test_interrupted_download_never_leaves_a_file(server, tmp_path):
    target = tmp_path / "file.json"
    with pytest.raises(DownloadError):
        download(server + "/short", target)
    assert not target.exists() and list(tmp_path.iterdir()) == []


def test_download_size_limit_and_http_errors(server, tmp_path):
    with pytest.raises(DownloadError, match="larger than"):
        download(server + "/ok", tmp_path / "f", max_bytes=100)
    with pytest.raises(DownloadError, match="404"):
        download(server + "/missing", tmp_path / "f")
    assert list(tmp_path.iterdir()) == []


def test_status_lists_every_source(shared_data):
    located = DataResolver(data_dir=shared_data).status()
    assert len(located) == len(data.SOURCES)
    in_files = [item for item, s in zip(located, data.SOURCES, strict=True) if s.path]
    assert all(item.path is not None for item in in_files)  # the mirror has every file
    bundle = [item.where for item, s in zip(located, data.SOURCES, strict=True) if not s.path]
    assert bundle == ["bundle", "bundle"]  # ATT&CK's procedures and descriptions
    roles = {s.name: s.role for s in data.SOURCES}
    assert [n for n, r in roles.items() if r == "evaluation"] == ["annoctr-dev", "annoctr"]
    assert (
        roles["elastic"] == roles["panther"] == "opt-in" and roles["tram-reports"] == "calibration"
    )


def test_origin_downloads_are_shared_and_discarded(server, tmp_path, monkeypatch):
    monkeypatch.setenv("MITREMAP_ORIGIN", server)
    resolver = DataResolver()
    first = resolver.download_origin("https://github.com/a/b/archive/c.tar.gz")
    assert first.read_bytes() == PAYLOAD and first.parent == tmp_path / "cache" / "raw"
    seen: list[int] = []
    again = resolver.download_origin(
        "https://github.com/a/b/archive/c.tar.gz", progress=lambda done, total: seen.append(done)
    )
    assert again == first and seen == []  # two sources of one archive: one download
    resolver.discard_downloads()
    assert not first.exists()
    monkeypatch.setenv("MITREMAP_OFFLINE", "1")
    with pytest.raises(DataNotFoundError, match="downloads are off"):
        DataResolver().download_origin("https://github.com/a/b/archive/c.tar.gz")


def test_status_as_json(cli, shared_data):
    import json

    result = cli("--data", str(shared_data), "data", "status", "--format", "json")
    assert result.code == 0, result.err
    body = json.loads(result.out)
    rows = {row["source"]: row for row in body["sources"]}
    assert rows["lolbas"]["where"] == "option" and rows["lolbas"]["fetchable"] is True
    # every source of the default recipe and both calibration sources can be fetched now
    for name in ("tram-single", "tram-spans", "tram-reports", "splunk", "car", "chronicle", "kql"):
        assert rows[name]["fetchable"] is True, name
    assert rows["splunk"]["origin"].startswith("https://github.com/splunk/security_content/")
    assert rows["attack-procedures"]["origin"] is None  # read from the ATT&CK bundle
    assert rows["elastic"]["role"] == "opt-in"
    assert cli("data", "status", "--format", "xml").code == 2

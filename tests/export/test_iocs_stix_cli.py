"""STIX patterns, checksum helpers, and the `mitremap iocs` command (whose STIX and MISP output
come from the same builders as `analyze`)."""

from __future__ import annotations

import csv
import io
import json

import pytest

from mitremap.export import stix_pattern
from mitremap.iocs import Indicator, checksums, extract_iocs


def ind(kind: str, value: str, private: bool = False) -> Indicator:
    return Indicator(kind, value, value, 0, len(value), private)


# --- checksums: known answers ----------------------------------------------------------------


def test_keccak256_known_answers() -> None:
    assert checksums.keccak256(b"").hex() == (
        "c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470"
    )
    assert checksums.keccak256(b"a" * 200).hex() != checksums.keccak256(b"a" * 201).hex()


def test_eip55_examples_from_the_spec() -> None:
    for address in (
        "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",
        "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359",
        "0xdbF03B407c01E7cD3CBea99509d93f8DDDC8C6FB",
    ):
        assert checksums.eip55_ok(address)
        k = max(i for i, c in enumerate(address) if c.isalpha() and i > 1)
        assert not checksums.eip55_ok(address[:k] + address[k].swapcase() + address[k + 1 :])


def test_onion_v3_checksum() -> None:
    name = "xp44cagis447k3lpb4wwhcqukix6cgqokbuys24vmxmbzmaq2gjvc2yd"
    assert checksums.onion_v3_ok(name)
    assert not checksums.onion_v3_ok(name[:10] + "a" + name[11:])


def test_bech32_and_base58check() -> None:
    assert checksums.bech32_hrp("bc1ql49ydapnjafl5t2cp9zqpjwe6pdgmxy98859v2") == "bc"
    assert checksums.bech32_hrp("bc1ql49ydapnjafl5t2cp9zqpjwe6pdgmxy98859v3") is None
    assert checksums.b58check("1FeexV6bAHb8ybZjqQMjJrcCrHGW9sb6uF") is not None
    assert checksums.b58check("1FeexV6bAHb8ybZjqQMjJrcCrHGW9sb6uG") is None


# --- STIX -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("indicator", "pattern"),
    [
        (ind("ipv4", "1.2.3.4"), "[ipv4-addr:value = '1.2.3.4']"),
        (ind("ipv6", "2001:db8::1"), "[ipv6-addr:value = '2001:db8::1']"),
        (ind("domain", "evil.com"), "[domain-name:value = 'evil.com']"),
        (ind("url", "http://evil.com/a'b"), "[url:value = 'http://evil.com/a\\'b']"),
        (ind("url", "evil.com/gate.php"), "[url:value = 'http://evil.com/gate.php']"),
        (ind("email", "a@evil.com"), "[email-addr:value = 'a@evil.com']"),
        (ind("md5", "44d88612fea8a8f36de82e1278abb02f"), "[file:hashes.MD5 = '44d88612fea8a8f36de82e1278abb02f']"),
        (ind("sha256", "ab" * 32), f"[file:hashes.'SHA-256' = '{'ab' * 32}']"),
        (ind("file_name", "a.exe"), "[file:name = 'a.exe']"),
        (ind("registry_key", r"HKEY_LOCAL_MACHINE\Run"), r"[windows-registry-key:key = 'HKEY_LOCAL_MACHINE\\Run']"),
        (ind("windows_path", r"C:\Temp\a.exe"), r"[file:name = 'a.exe' AND file:parent_directory_ref.path = 'C:\\Temp']"),
        (ind("unix_path", "/tmp/x/"), "[directory:path = '/tmp/x/']"),
        (ind("asn", "AS13335"), "[autonomous-system:number = 13335]"),
        (ind("mac", "00:1a:2b:3c:4d:5e"), "[mac-addr:value = '00:1a:2b:3c:4d:5e']"),
        (ind("cve", "CVE-2021-44228"), None),
        (ind("attack_technique", "T1059"), None),
        (ind("bitcoin", "1FeexV6bAHb8ybZjqQMjJrcCrHGW9sb6uF"), None),
    ],
)  # fmt: skip
def test_stix_patterns(indicator: Indicator, pattern: str | None) -> None:
    assert stix_pattern(indicator.type, indicator.value) == pattern


def test_every_extracted_pattern_is_valid_stix() -> None:
    from stix2patterns.validator import validate

    text = (
        r"hxxp://evil[.]com/a?b=1 1.2.3.4 fe80::1 x@evil.com 44d88612fea8a8f36de82e1278abb02f "
        r"C:\Users\x\a.exe HKLM\Software\Run /etc/cron.d/x AS13335 00:1a:2b:3c:4d:5e "
        r"96:s4Ud1Lj96tHHlZDrwciQmA5qZ4GdbF3:xUd1L4tHQ0A5qZHdx3 invoice.pdf.exe "
        r"Mozilla/5.0 (Windows NT 10.0; Win64; x64)"
    )
    patterns = [p for i in extract_iocs(text) if (p := stix_pattern(i.type, i.value))]
    assert len(patterns) == 13
    for pattern in patterns:
        assert validate(pattern, ret_errs=True, stix_version="2.1") == (True, []), pattern


# --- CLI --------------------------------------------------------------------------------------

REPORT = "C2 hxxp://evil[.]com/gate.php and 10.0.0.1; hash 44d88612fea8a8f36de82e1278abb02f\n"


@pytest.fixture
def report(tmp_path):
    path = tmp_path / "report.txt"
    path.write_text(REPORT, encoding="utf-8")
    return path


def test_cli_json(cli, report) -> None:
    result = cli("iocs", str(report), "--format", "json")
    assert result.code == 0, result.err
    data = json.loads(result.out)
    assert [(i["type"], i["value"]) for i in data["indicators"]] == [
        ("url", "http://evil.com/gate.php"),
        ("ipv4", "10.0.0.1"),
        ("md5", "44d88612fea8a8f36de82e1278abb02f"),
    ]
    first = data["indicators"][0]
    assert {"type", "value", "raw", "start", "end"} <= set(first)
    assert REPORT[first["start"] : first["end"]] == first["raw"] == "hxxp://evil[.]com/gate.php"


def test_cli_table_and_type_filter(cli, report) -> None:
    result = cli("iocs", str(report), "--type", "url,md5", "--no-private")
    assert result.code == 0, result.err
    assert "http://evil.com/gate.php" in result.out
    assert "10.0.0.1" not in result.out


def test_cli_csv_to_file(cli, report, tmp_path) -> None:
    out = tmp_path / "iocs.csv"
    result = cli("iocs", str(report), "-f", "csv", "-o", str(out), "--type", "ipv4")
    assert result.code == 0, result.err
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    assert rows == [
        {"type": "ipv4", "value": "10.0.0.1", "raw": "10.0.0.1", "start": "34", "end": "42", "private": "true"}
    ]  # fmt: skip


def test_cli_stix_is_the_one_builder_and_strictly_valid(cli, tmp_path) -> None:
    validator = pytest.importorskip("stix2validator")
    path = tmp_path / "report.txt"
    path.write_text(REPORT + "Again evil[.]com/gate.php, 10.0.0.1 and CVE-2021-44228.\n")
    pytest.importorskip("pymispwarninglists")  # EICAR's hash is benign by MISP's lists
    result = cli("iocs", str(path), "-f", "stix")
    assert result.code == 0, result.err
    bundle = json.loads(result.out)
    kinds = sorted(o["type"] for o in bundle["objects"])
    # the URL (twice in the text) is the one indicator; the private address and EICAR's test
    # hash (on MISP's warning lists) are observed context, with a note saying why
    assert kinds == [
        "file", "identity", "indicator", "ipv4-addr", "note", "observed-data", "observed-data",
        "report", "vulnerability",
    ]  # fmt: skip
    options = validator.ValidationOptions(strict=True, version="2.1")
    assert validator.validate_string(result.out, options).errors == []
    (report,) = [o for o in bundle["objects"] if o["type"] == "report"]
    assert (
        report["name"]
        == "C2 hxxp://evil[.]com/gate.php and 10.0.0.1; hash 44d88612fea8a8f36de82e1278abb02f"
    )
    assert json.loads(cli("iocs", str(path), "-f", "stix").out) == bundle  # stable ids


def test_cli_stix_with_no_indicator_is_one_line(cli, tmp_path) -> None:
    pytest.importorskip("stix2")
    path = tmp_path / "plain.txt"
    path.write_text("Nothing to see here.\n")
    result = cli("iocs", str(path), "-f", "stix")
    assert result.code == 1 and "Nothing to export" in result.err


def test_cli_misp(cli, report) -> None:
    pymisp = pytest.importorskip("pymisp")
    pytest.importorskip("pymispwarninglists")  # EICAR's hash is benign by MISP's lists
    result = cli("iocs", str(report), "-f", "misp")
    assert result.code == 0, result.err
    event = pymisp.MISPEvent()
    event.load(result.out)
    found = {
        (a.type, a.value): a.to_ids
        for a in [*event.attributes, *(a for o in event.objects for a in o.attributes)]
    }
    assert found[("url", "http://evil.com/gate.php")] is True
    assert found[("ip-dst", "10.0.0.1")] is False  # a private address is never an IDS signature
    assert found[("md5", "44d88612fea8a8f36de82e1278abb02f")] is False  # EICAR's test file
    assert sorted(o.name for o in event.objects) == ["domain-ip", "file", "url"]


def test_cli_csv_cells_never_run_as_formulas(cli, report, tmp_path, monkeypatch) -> None:
    hostile = Indicator("url", '=HYPERLINK("http://evil.example")', "@SUM(1+1)", 0, 9)
    monkeypatch.setattr("mitremap.iocs.IocExtractor.extract", lambda self, text, **_: [hostile])
    out = tmp_path / "iocs.csv"
    result = cli("iocs", str(report), "-f", "csv", "-o", str(out))
    assert result.code == 0, result.err
    (row,) = csv.DictReader(io.StringIO(out.read_text()))
    assert row["value"] == '\'=HYPERLINK("http://evil.example")' and row["raw"] == "'@SUM(1+1)"
    assert row["start"] == "0"  # numbers stay numbers


def test_cli_stdin(cli, monkeypatch) -> None:
    class Piped(io.BytesIO):
        def isatty(self) -> bool:
            return False

    class FakeStdin:
        buffer = Piped(b"beacon to evil[.]ru\n")

    monkeypatch.setattr("sys.stdin", FakeStdin())
    result = cli("iocs", "-", "-f", "json", "--unique")
    assert result.code == 0, result.err
    assert [i["value"] for i in json.loads(result.out)["indicators"]] == ["evil.ru"]


def test_cli_errors(cli, tmp_path) -> None:
    missing = cli("iocs", str(tmp_path / "nope.txt"))
    assert missing.code == 1 and "no such file" in missing.err
    binary = tmp_path / "blob.bin"
    binary.write_bytes(bytes(range(256)) * 8)
    assert cli("iocs", str(binary)).code == 1
    bad_type = cli("iocs", str(binary), "--type", "domian")
    assert bad_type.code == 2 and "domian" in bad_type.err
    bad_format = cli("iocs", str(binary), "--format", "xml")
    assert bad_format.code == 2

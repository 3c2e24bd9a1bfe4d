"""IoC extraction: every type, and every precision trap listed in issue 4 (one test each)."""

from __future__ import annotations

import pytest

from mitremap.errors import MitreMapError
from mitremap.iocs import IOC_TYPES, Indicator, IocExtractor, extract_iocs


def found(text: str) -> set[tuple[str, str]]:
    """(type, value) pairs extracted from text."""
    return {(i.type, i.value) for i in extract_iocs(text)}


def types_of(text: str) -> set[str]:
    return {i.type for i in extract_iocs(text)}


def assert_offsets(text: str) -> list[Indicator]:
    """Every indicator's raw is exactly the original text at its offsets."""
    indicators = extract_iocs(text)
    for i in indicators:
        assert text[i.start : i.end] == i.raw, i
    return indicators


# --- every type ----------------------------------------------------------------------------

# Public example addresses (iocsearcher's MIT test data), each checked by its checksum.
CRYPTO = [
    ("bitcoin", "1FeexV6bAHb8ybZjqQMjJrcCrHGW9sb6uF"),
    ("bitcoin", "34xp4vRoCGJym3xR7yCVPFHoCNxv4Twseo"),
    ("bitcoin", "bc1ql49ydapnjafl5t2cp9zqpjwe6pdgmxy98859v2"),
    ("bitcoin", "bc1p5d7rjq7g6rdk2yhzks9smlaqtedr4dekq08ge8ztwac72sfr9rusxg3297"),
    ("bitcoincash", "bitcoincash:qp3wjpa3tjlj042z2wv7hahsldgwhwy0rq9sywjpyy"),
    ("litecoin", "LM2WMpR1Rp6j3Sa59cMXMs1SPzj9eXpGc1"),
    ("litecoin", "ltc1qr07zu594qf63xm7l7x6pu3a2v39m2z6hh5pp4t"),
    ("dogecoin", "DEgDVFa2DoW1533dxeDVdTxQFhMzs1pMke"),
    ("dashcoin", "XdAUmwtig27HBG6WfYyHAzP8n6XC9jESEw"),
    ("zcash", "t1TFPJkun5SAEVPgRsT5fbVv7uinBPux49h"),
    ("ripple", "rMQ98K56yXJbDGv49ZSmW51sLn94Xe1mu1"),
    ("tron", "TNUC9Qb1rRpS5CbWLmNMxXBjyFoydXjWFR"),
    ("tezos", "tz1Lc2qBKEWCBeDU8npG6zCeCqpmaegRi6Jg"),
    ("cardano", "addr1vx2fxv2umyhttkxyxp8x0dlpdt3k6cwng5pxj3jhsydzers66hrl8"),
    ("cardano", "Ae2tdPwUPEYwFx4dmJheyNPPYXtvHbJLeCaA96o6Y2iiUL18cAt7AizN2zG"),
    (
        "monero",
        "46jECbnrkJTUks7Fg5YtwShdUCiwUwEEZJtJBhKLK4GBWfBX7PLrYBuWR9zhzos5uQ1uXGUgFpGCSBR5o651pL5ERxmwqHu",
    ),
]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("C2 at https://evil.example.com/gate.php?id=1&x=2#top now", ("url", "https://evil.example.com/gate.php?id=1&x=2#top")),
        ("beacon to tcp://203.0.113.9:4444/x", ("url", "tcp://203.0.113.9:4444/x")),
        ("resolves evil-domain.co.uk daily", ("domain", "evil-domain.co.uk")),
        ("from 45.77.65.211 each hour", ("ipv4", "45.77.65.211")),
        ("peer 2a03:2880:f10c:83:face:b00c:0:25de talked", ("ipv6", "2a03:2880:f10c:83:face:b00c:0:25de")),
        ("mail Admin@Evil-Mail.com today", ("email", "admin@evil-mail.com")),
        ("md5 44D88612FEA8A8F36DE82E1278ABB02F", ("md5", "44d88612fea8a8f36de82e1278abb02f")),
        ("sha1 3395856ce81f2b7382dee72602f798b642f14140", ("sha1", "3395856ce81f2b7382dee72602f798b642f14140")),
        (
            "sha256 275a021bbfb6489e54d471899f7db9d1663fc695ec2fe2a2c4538aabf651fd0f.",
            ("sha256", "275a021bbfb6489e54d471899f7db9d1663fc695ec2fe2a2c4538aabf651fd0f"),
        ),
        ("x " + "cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e", ("sha512", "cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e")),
        (
            "ssdeep 96:s4Ud1Lj96tHHlZDrwciQmA5qZ4GdbF3:xUd1L4tHQ0A5qZHdx3 ok",
            ("ssdeep", "96:s4Ud1Lj96tHHlZDrwciQmA5qZ4GdbF3:xUd1L4tHQ0A5qZHdx3"),
        ),
        ("imphash: f34d5f2d4577ed6d9ceec516c1f5a744", ("imphash", "f34d5f2d4577ed6d9ceec516c1f5a744")),
        ("JA3 fingerprint 72a589da586844d7f0818ce684948eea", ("ja3", "72a589da586844d7f0818ce684948eea")),
        ("exploits cve-2021-44228 (Log4Shell)", ("cve", "CVE-2021-44228")),
        ("uses T1059.001 for execution", ("attack_technique", "T1059.001")),
        ("in tactic TA0002.", ("attack_technique", "TA0002")),
        ("card 00-1A-2B-3C-4D-5E seen", ("mac", "00:1a:2b:3c:4d:5e")),
        ("router 0011.2233.44ff", ("mac", "00:11:22:33:44:ff")),
        ("hosted in AS13335 and", ("asn", "AS13335")),
        ("hosted in ASN 20473 and", ("asn", "AS20473")),
        ("site expyuzz4wqqyqhjn.onion is v2", ("onion", "expyuzz4wqqyqhjn.onion")),
        (
            "v3 xp44cagis447k3lpb4wwhcqukix6cgqokbuys24vmxmbzmaq2gjvc2yd alone",
            ("onion", "xp44cagis447k3lpb4wwhcqukix6cgqokbuys24vmxmbzmaq2gjvc2yd.onion"),
        ),
        ("pay 0x507877C2E26f1387432D067D2DaAfa7d0420d90a", ("ethereum", "0x507877c2e26f1387432d067d2daafa7d0420d90a")),
        (r"dropped C:\Users\Public\Documents\svc.exe.", ("windows_path", r"C:\Users\Public\Documents\svc.exe")),
        (r"from \\fileserver\share$\tools\x.ps1 run", ("windows_path", r"\\fileserver\share$\tools\x.ps1")),
        (r"in %APPDATA%\Microsoft\upd.dll,", ("windows_path", r"%APPDATA%\Microsoft\upd.dll")),
        ("wrote /tmp/.X11/kworker and", ("unix_path", "/tmp/.X11/kworker")),
        ("keys in ~/.ssh/authorized_keys.", ("unix_path", "~/.ssh/authorized_keys")),
        (r"set HKLM\Software\Microsoft\Windows\CurrentVersion\Run.", ("registry_key", r"HKEY_LOCAL_MACHINE\Software\Microsoft\Windows\CurrentVersion\Run")),
        (r"under HKCU\Control Panel\Desktop now", ("registry_key", r"HKEY_CURRENT_USER\Control Panel\Desktop")),
        (r"HKLM\SOFTWARE\Microsoft\Windows NT\CurrentVersion\Image File Execution Options", ("registry_key", r"HKEY_LOCAL_MACHINE\SOFTWARE\Microsoft\Windows NT\CurrentVersion\Image File Execution Options")),
        ("opened invoice.pdf.exe then", ("file_name", "invoice.pdf.exe")),
        (
            'UA "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/91.0 Safari/537.36" then',
            ("user_agent", "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/91.0 Safari/537.36"),
        ),
        ("fetched with curl/7.68.0 from", ("user_agent", "curl/7.68.0")),
        ("role arn:aws:iam::123456789012:role/S3Access, then", ("arn", "arn:aws:iam::123456789012:role/S3Access")),
        ("rule APT_Loader_Strings : apt {\n strings:", ("yara_rule", "APT_Loader_Strings")),
        ("the YARA rule MAL_Emotet_Dropper matched", ("yara_rule", "MAL_Emotet_Dropper")),
        ("wallet for solana 9xgyLDkZ7YRZnkWnYcLP33qVoxkDhkUSmpCv1WfgJodc", ("solana", "9xgyLDkZ7YRZnkWnYcLP33qVoxkDhkUSmpCv1WfgJodc")),
    ],
)  # fmt: skip
def test_every_type_is_found(text: str, expected: tuple[str, str]) -> None:
    assert expected in found(text)
    assert_offsets(text)


@pytest.mark.parametrize(("kind", "address"), CRYPTO)
def test_cryptocurrency_addresses_with_valid_checksums(kind: str, address: str) -> None:
    (indicator,) = extract_iocs(f"send coins to {address} now")
    expected = (
        address.lower() if kind in ("bitcoincash",) or address[:3] in ("bc1", "ltc") else address
    )
    if kind == "cardano" and address.startswith("addr"):
        expected = address.lower()
    assert (indicator.type, indicator.value) == (kind, expected)


def test_every_type_has_a_test() -> None:
    """IOC_TYPES and the cases above stay in step (a new type must come with a test)."""
    covered = {"url", "domain", "ipv4", "ipv6", "email", "md5", "sha1", "sha256", "sha512",
               "ssdeep", "imphash", "ja3", "cve", "attack_technique", "mac", "asn", "onion",
               "ethereum", "windows_path", "unix_path", "registry_key", "file_name", "user_agent",
               "arn", "yara_rule", "solana"} | {kind for kind, _ in CRYPTO}  # fmt: skip
    assert covered == set(IOC_TYPES)


def test_indicator_is_frozen_and_serialisable() -> None:
    (indicator,) = extract_iocs("see 8.8.8.8")
    assert indicator.to_dict() == {
        "type": "ipv4", "value": "8.8.8.8", "raw": "8.8.8.8", "start": 4, "end": 11,
        "private": False,
    }  # fmt: skip
    with pytest.raises(AttributeError):
        indicator.value = "x"  # type: ignore[misc]


def test_top_level_lazy_exports() -> None:
    import mitremap

    assert mitremap.extract_iocs is extract_iocs
    assert mitremap.Indicator is Indicator


def test_unknown_type_is_a_user_error() -> None:
    with pytest.raises(MitreMapError, match="unknown indicator type"):
        IocExtractor(["domian"])


def test_types_filter_keeps_only_those_types() -> None:
    text = "evil.com 1.2.3.4 44d88612fea8a8f36de82e1278abb02f"
    assert {i.type for i in extract_iocs(text, types=["ipv4"])} == {"ipv4"}


def test_results_are_in_text_order_and_repeat_per_occurrence() -> None:
    indicators = extract_iocs("evil.com then 5.6.7.8 then evil.com")
    assert [i.start for i in indicators] == sorted(i.start for i in indicators)
    assert [i.value for i in indicators] == ["evil.com", "5.6.7.8", "evil.com"]


# --- precision traps (issue 4), one test each ----------------------------------------------


@pytest.mark.parametrize(
    "name", ["update.exe", "payload.zip", "run.sh", "lib.so", "setup.py", "notes.md", "my_tool.zip"]
)
def test_trap_file_names_are_not_domains(name: str) -> None:
    assert found(f"the file {name} was dropped") == {("file_name", name)}


@pytest.mark.parametrize(
    "text",
    ["C2 domain payload.zip resolves", "evil[.]zip is up", "www.payload.zip", "http://run.sh/x"],
)
def test_trap_extension_that_is_a_tld_is_a_host_in_host_context(text: str) -> None:
    assert types_of(text) & {"domain", "url"}
    assert "file_name" not in types_of(text)


@pytest.mark.parametrize(
    "text",
    [
        "detected as Trojan.Win32.Agent.abc today",
        "detected as Backdoor.MSIL.Foo.B today",
        "calls System.Net.Http to fetch",
        "uses java.util.concurrent.Executors",
        "the process exited.It then slept",
        "flagged PS/Agent.gs by AV",
        "reads process.name and wscript.shell",
        "outputFilenameRecordedTV.ms was written",
    ],
)
def test_trap_detection_names_namespaces_and_missing_spaces_are_not_domains(text: str) -> None:
    assert "domain" not in types_of(text), found(text)


@pytest.mark.parametrize(
    "text",
    [
        "installed version 4.3.2.1 today",
        "installed v1.2.3.4 today",
        "build 10.0.19041.1 is",
        "1.2.3.4.5",
    ],
)
def test_trap_version_numbers_are_not_ipv4(text: str) -> None:
    assert "ipv4" not in types_of(text)


def test_trap_a_bare_dotted_quad_is_still_an_ipv4() -> None:
    assert found("connects to 4.3.2.1 daily") == {("ipv4", "4.3.2.1")}


@pytest.mark.parametrize(
    "text", ["at 12:45:30 UTC", "on 2023-01-01 10:30:00", "port 8080:80", "std::vector"]
)
def test_trap_times_are_not_ipv6(text: str) -> None:
    assert "ipv6" not in types_of(text)


def test_trap_mac_addresses_are_not_ipv6() -> None:
    assert found("nic 00:1a:2b:3c:4d:5e up") == {("mac", "00:1a:2b:3c:4d:5e")}


def test_trap_ethereum_address_is_not_a_sha1() -> None:
    assert types_of("to 0x52908400098527886E0F7030069857D2E4169EE7 now") == {"ethereum"}


def test_trap_ethereum_mixed_case_checksum_is_verified() -> None:
    good = "0x52908400098527886E0F7030069857D2E4169EE7"
    bad = good[:-1] + "e"  # one letter's case changed: EIP-55 fails
    assert types_of(f"to {bad} now") == set()
    assert types_of(f"to {good.lower()} now") == {"ethereum"}  # all-lower: no checksum


@pytest.mark.parametrize(
    "text",
    [
        "clsid {6F9619FF-8B86-D011-B42D-00C04FC964FF} set",
        "guid 6f9619ff-8b86-d011-b42d-00c04fc964ff set",
        "id 6f9619ff8b86d011b42d00c04fc964ff00 (34 hex)",
        "token a" + "9" * 31 + "z",
    ],
)
def test_trap_hex_inside_other_things_is_not_a_hash(text: str) -> None:
    assert not types_of(text) & {"md5", "sha1", "sha256", "sha512"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("SHA256script_esxi.sh17d55dc09e2a3f10d4ee45156c2c53f1 317f", "17d55dc09e2a3f10d4ee45156c2c53f1"),
        ("x.dll47ae17d89c2d9b6acdc7458f5df1c6f7 d38c", "47ae17d89c2d9b6acdc7458f5df1c6f7"),
        ("44d88612fea8a8f36de82e1278abb02fMD5 hash", "44d88612fea8a8f36de82e1278abb02f"),
    ],
)  # fmt: skip
def test_hashes_glued_to_a_word_by_pdf_extraction_are_found(text: str, expected: str) -> None:
    assert ("md5", expected) in found(text)


def test_defanged_domain_glued_to_the_next_cell_is_cut_after_its_tld() -> None:
    assert ("domain", "dlaxpcmghd.com") in found("dlaxpcmghd[.]com185.225.17[.]392020-09 C&C")
    assert found("version.com185 is no domain") == set()


def test_trap_md5_is_not_a_bitcoin_address() -> None:
    # 32 hex without a 0 is valid Base58 text; it is an MD5, and Base58Check would fail anyway.
    text = "hash 5d41402abc4b2a76b9719d911017c592 and 9e107d9d372bb6826bd81d3542a419d6"
    assert types_of(text) == {"md5"}


@pytest.mark.parametrize("kind, address", CRYPTO[:4] + CRYPTO[5:7] + CRYPTO[-1:])
def test_trap_crypto_addresses_with_a_wrong_checksum_are_dropped(kind: str, address: str) -> None:
    i = len(address) // 2
    swapped = address[:i] + ("q" if address[i] != "q" else "p") + address[i + 1 :]
    assert not types_of(f"send to {swapped}") & {kind}


def test_trap_solana_needs_context_because_it_has_no_checksum() -> None:
    key = "9xgyLDkZ7YRZnkWnYcLP33qVoxkDhkUSmpCv1WfgJodc"
    assert types_of(f"token {key} here") == set()
    assert types_of(f"Solana wallet {key}") == {"solana"}


@pytest.mark.parametrize(
    ("text", "email"),
    [
        ("Contact:admin@evil.com for keys", "admin@evil.com"),
        ("mailto:john.doe@evil.com", "john.doe@evil.com"),
        ("write to (bob@evil.com).", "bob@evil.com"),
        ("contact john [at] evil[.]com now", "john@evil.com"),
        ("reply jane[@]evil(.)com", "jane@evil.com"),
    ],
)
def test_trap_emails_do_not_take_the_previous_word(text: str, email: str) -> None:
    assert found(text) == {("email", email)}


@pytest.mark.parametrize(
    ("text", "url"),
    [
        ("Download from http://evil.com/a.exe.", "http://evil.com/a.exe"),
        ("(see https://evil.com/path)", "https://evil.com/path"),
        (
            "(see https://en.wikipedia.org/wiki/Foo_(bar)).",
            "https://en.wikipedia.org/wiki/Foo_(bar)",
        ),
        ("at http://evil.com/x?a=1&b=2, then", "http://evil.com/x?a=1&b=2"),
        ('href="http://evil.com/q"', "http://evil.com/q"),
        ("URLs: http://a.com/x;http://b.com/y", "http://a.com/x"),
    ],
)
def test_trap_urls_drop_sentence_punctuation_and_closing_parentheses(text: str, url: str) -> None:
    assert ("url", url) in found(text)


def test_trap_url_keeps_its_query_string() -> None:
    assert found("GET http://evil.com/g.php?id=5&k=a.b") == {
        ("url", "http://evil.com/g.php?id=5&k=a.b")
    }


@pytest.mark.parametrize(
    "text", ["C2 192[.]168[.]1[.]1 seen", "C2 8.8.8[.]8 seen", "C2 1(.)2(.)3(.)4"]
)
def test_trap_defanged_ips_are_ipv4_not_urls(text: str) -> None:
    assert types_of(text) == {"ipv4"}


def test_trap_a_url_host_is_not_also_a_domain() -> None:
    assert types_of("get hxxp://evil[.]com/a") == {"url"}


def test_trap_cidr_block_is_not_an_address_or_url() -> None:
    assert found("blocked 100.20.30.0/24 range") == set()


def test_hashes_and_ids_inside_urls_are_also_reported() -> None:
    text = "https://www.virustotal.com/gui/file/275a021bbfb6489e54d471899f7db9d1663fc695ec2fe2a2c4538aabf651fd0f and https://nvd.nist.gov/vuln/detail/CVE-2021-44228"
    assert types_of(text) == {"url", "sha256", "cve"}


# --- private ranges and the allow-list --------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "private"),
    [
        ("10.1.2.3", True),
        ("192.168.0.1", True),
        ("203.0.113.5", True),  # documentation range
        ("fe80::1", True),
        ("2001:db8::1", True),
        ("example.com", True),
        ("evil.com", False),
        ("45.77.65.211", False),
        ("http://10.0.0.5/x", True),
    ],
)
def test_private_and_documentation_values_are_marked(text: str, private: bool) -> None:
    (indicator,) = extract_iocs(f"seen {text} here")
    assert indicator.private is private


def test_private_values_can_be_dropped() -> None:
    text = "10.1.2.3 and 45.77.65.211"
    assert [i.value for i in extract_iocs(text, include_private=False)] == ["45.77.65.211"]


def test_allowlist_drops_well_known_benign_values() -> None:
    text = "see https://docs.microsoft.com/x, 8.8.8.8, www.google.com and evil.com"
    assert {i.value for i in extract_iocs(text, allowlist=True)} == {"evil.com"}
    assert {i.value for i in extract_iocs(text, allowlist=["evil.com"])} >= {"8.8.8.8"}
    assert "evil.com" not in {i.value for i in extract_iocs(text, allowlist=["evil.com"])}


# --- robustness -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    ["a." * 5000, "[.]" * 4000, "1." * 5000, "a:" * 5000, "\\a" * 5000, "a@" * 5000, "/tmp" * 3000],
)
def test_pathological_inputs_give_nothing(text: str) -> None:
    assert extract_iocs(text) == [] or all(i.type == "unix_path" for i in extract_iocs(text))


@pytest.mark.parametrize("text", ["", "   ", "\n\n", "no indicators in this sentence at all."])
def test_plain_text_gives_nothing(text: str) -> None:
    assert extract_iocs(text) == []


def test_unicode_text_keeps_offsets() -> None:
    text = "Ünïcödé → hxxps://évil[.]com? non: https://evil.com/ü “8.8.8[.]8” 🙂 evil[.]ru"
    indicators = assert_offsets(text)
    assert ("ipv4", "8.8.8.8") in {(i.type, i.value) for i in indicators}
    assert ("domain", "evil.ru") in {(i.type, i.value) for i in indicators}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "saved as `C:\\Users\\Public\\msupdate.exe` and run",
            ("windows_path", "C:\\Users\\Public\\msupdate.exe"),
        ),
        ("key `HKCU\\Software\\Run` set", ("registry_key", "HKEY_CURRENT_USER\\Software\\Run")),
        ("ran `/tmp/x/run.sh` now", ("unix_path", "/tmp/x/run.sh")),
    ],
)
def test_markdown_inline_code_backticks_end_paths(text: str, expected: tuple[str, str]) -> None:
    assert [(i.type, i.value) for i in extract_iocs(text)] == [expected]


def test_a_long_text_is_read_in_pieces_with_the_same_indicators(monkeypatch) -> None:
    from mitremap.iocs import extract

    text = "".join(
        f"Line {i}: hxxp://evil{i}[.]com/gate.php and 10.0.{i % 250}.7, C:\\Temp\\a{i}.exe\n"
        for i in range(300)
    )
    whole = extract_iocs(text)
    monkeypatch.setattr(extract, "PIECE_CHARS", 1_000)
    assert len(list(extract._pieces(text, 1_000))) > 10
    assert extract_iocs(text) == whole
    assert all(text[i.start : i.end] == i.raw for i in whole)


def test_a_limit_stops_the_search_early(monkeypatch) -> None:
    from mitremap.iocs import extract

    monkeypatch.setattr(extract, "PIECE_CHARS", 1_000)
    pieces = []
    read = IocExtractor._extract

    def counted(self, *args):
        pieces.append(1)
        return read(self, *args)

    monkeypatch.setattr(IocExtractor, "_extract", counted)
    text = "C2 at 185.220.101.47.\n" * 2_000
    found = extract_iocs(text, limit=10)
    assert [i.start for i in found] == [6 + 22 * n for n in range(10)]
    assert len(pieces) == 1  # the other ~20 pieces were never read

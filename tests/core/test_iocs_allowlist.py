"""The allowlist: the built-in list alone, MISP's warning lists when installed, and names under
which anyone can get a name of their own (never dropped because of the name above them)."""

from __future__ import annotations

import pytest

from mitremap.iocs import allowlist, extract_iocs
from mitremap.iocs.allowlist import default_allowlist, user_allowlist


def kept(text: str, **options: object) -> set[tuple[str, str]]:
    return {(i.type, i.value) for i in extract_iocs(text, **options)}  # type: ignore[arg-type]


@pytest.fixture
def built_in_only(monkeypatch: pytest.MonkeyPatch) -> allowlist.Allowlist:
    """The default allowlist as it is without `pymispwarninglists`."""
    monkeypatch.setattr(allowlist, "find_spec", lambda name: None)
    return default_allowlist.__wrapped__()


def test_built_in_list_drops_references_and_their_subdomains(built_in_only) -> None:
    assert ("url", "https://docs.microsoft.com/x") in built_in_only
    assert ("domain", "www.google.com") in built_in_only
    assert ("ipv4", "8.8.8.8") in built_in_only
    assert ("domain", "evil.com") not in built_in_only
    assert ("domain", "microsoft.com.evil.com") not in built_in_only


def test_names_under_shared_suffixes_are_never_dropped_for_the_name_above(built_in_only) -> None:
    # githubusercontent.com is on the built-in list, and in the Public Suffix List's private
    # section: a repository's raw file is whoever pushed it.
    assert ("domain", "githubusercontent.com") in built_in_only
    assert ("url", "https://raw.githubusercontent.com/evil/x/main/p.ps1") not in built_in_only
    assert ("domain", "evil.githubusercontent.com") not in built_in_only


def test_your_own_list_drops_its_names_and_everything_under_them() -> None:
    mine = user_allowlist(["Corp.Example", "10.0.0.1"])
    assert ("domain", "mail.corp.example") in mine
    assert ("email", "it@corp.example") in mine
    assert ("ipv4", "10.0.0.1") in mine
    assert ("domain", "corp.example.evil.com") not in mine


def test_the_extractor_applies_the_allowlist_it_is_given() -> None:
    text = "see https://docs.microsoft.com/x, 8.8.8.8, www.google.com and evil.com"
    assert kept(text, allowlist=True) == {("domain", "evil.com")}
    assert ("domain", "evil.com") not in kept(text, allowlist=["evil.com"])
    assert ("ipv4", "8.8.8.8") in kept(text, allowlist=["evil.com"])


# --- MISP warning lists (the optional extra mitremap[warninglists]) --------------------------------------


@pytest.fixture(scope="module")
def misp() -> allowlist.Allowlist:
    pytest.importorskip("pymispwarninglists")
    return default_allowlist()


def test_misp_lists_drop_benign_hashes_resolvers_and_vendor_pages(misp) -> None:
    assert ("md5", "d41d8cd98f00b204e9800998ecf8427e") in misp  # the empty file
    assert ("sha256", "275a021bbfb6489e54d471899f7db9d1663fc695ec2fe2a2c4538aabf651fd0f") in misp
    assert ("ipv4", "9.9.9.9") in misp  # a public DNS resolver
    assert ("domain", "api.ipify.org") in misp  # "what is my IP"
    assert ("md5", "0123456789abcdef0123456789abcdef") not in misp


def test_misp_rankings_drop_a_top_site_but_not_the_names_or_links_under_it(misp) -> None:
    assert ("domain", "anondns.net") in misp  # a top-10k site (a dynamic DNS provider)
    assert ("domain", "zzhrecieve.anondns.net") not in misp  # a name someone registered there
    assert ("url", "https://t.me/some_channel") not in misp


def test_misp_shared_lists_keep_links_on_trusted_sites_attackers_live_off(misp) -> None:
    assert ("url", "https://raw.githubusercontent.com/evil/x/main/p.ps1") not in misp
    assert ("url", "https://pastebin.com/raw/x1") not in misp
    assert ("domain", "evil.duckdns.org") not in misp


def test_misp_lists_apply_only_to_the_types_they_are_meant_for(misp) -> None:
    # A public resolver's address is allowlisted as an IP, a hash as a hash: not as domains.
    assert ("ipv4", "1.0.0.19") in misp
    assert ("domain", "1.0.0.19") not in misp
    assert ("domain", "d41d8cd98f00b204e9800998ecf8427e") not in misp

"""Judgements on candidates: is this a real domain, an IP worth reporting, a file name?

Patterns only find candidates; these functions decide, so that precision rules live in one place
and are easy to test one by one.
"""

from __future__ import annotations

import ipaddress
import re
from functools import lru_cache


def _words(text: str) -> frozenset[str]:
    """A set from a whitespace-separated word list (keeps long lists readable)."""
    return frozenset(text.split())


# --- Public Suffix List (tldextract's bundled snapshot; never the network) --------------------


@lru_cache(maxsize=1)
def _suffixes() -> frozenset[str]:
    """All public suffixes of tldextract's bundled snapshot, loaded once."""
    import tldextract

    extractor = tldextract.TLDExtract(
        suffix_list_urls=(), cache_dir=None, fallback_to_snapshot=True
    )
    return frozenset(s.lower() for s in extractor.tlds)


@lru_cache(maxsize=1)
def _tlds() -> frozenset[str]:
    return frozenset(s for s in _suffixes() if "." not in s and not s.startswith(("*", "!")))


def is_tld(label: str) -> bool:
    """True for a top-level domain of the Public Suffix List (`com`, `uk`, `zip`, `onion`)."""
    return label in _tlds()


# --- File names ---------------------------------------------------------------------------------

# Extensions seen in reports. Those that are also TLDs are decided by context (see below).
FILE_EXTENSIONS = _words(
    """
    exe dll sys scr cpl ocx drv com pif msi msp msc lnk bat cmd ps1 psm1 psd1 vbs vbe js jse
    wsf wsh hta jar class java md py pyc pl pm rb php phtml asp aspx jsp sh bash elf so dylib bin
    dat tmp log ini cfg conf inf reg doc docx docm dot dotm xls xlsx xlsm xlsb xll xlam ppt
    pptx pptm rtf pdf one odt txt csv xml json yaml yml html htm mht svg iso img vhd vhdx
    zip rar 7z tar gz tgz bz2 xz cab arj ace apk ipa dmg pkg deb rpm app plist chm crx xpi
    eml msg ics lock key pem crt cer pfx p12 db sqlite mdb ldb lnk url iqy slk wim gadget
    appx msix appinstaller library-ms settingcontent-ms search-ms xbap jnlp swf fla mov mp4
    mp3 avi wav png jpg jpeg gif bmp ico
    """
)
# Extensions that are also TLDs and common enough in reports to need context.
AMBIGUOUS_EXTENSIONS = _words(
    """
    app cab dot java md mov one pl pm py sh so zip
    """
)
# Product names written like file or domain names.
PRODUCT_NAMES = _words(
    """
    node.js vue.js next.js nuxt.js react.js angular.js ember.js backbone.js three.js d3.js
    chart.js express.js socket.io moment.js p5.js asp.net vb.net ado.net dot.net
    """
)
_DOMAIN_CONTEXT = re.compile(
    r"(?i)\b(?:domains?|hostnames?|c2|c&c|cnc|command[- ]and[- ]control|resolv\w*|dns)\b"
    r"(?![ -]controller)"
)
# TLDs that are also words of code or prose (`process.name`, `wscript.shell`, `native.win`):
# such a name is only a domain when defanged, in a URL, or named as a domain nearby.
WORD_TLDS = _words("name target shell host data run win call case email date type link")
# Two-letter TLDs that are English words: " dot in " is prose, not a defanged name.
WORD_CCTLDS = _words(
    """
    in is it to me at by be no so us my do am as an on or of if go he we hi ok la ma pa
    """
)

# --- AV detection names, .NET/Java namespaces -------------------------------------------------

_AV_WORDS = _words(
    """
    trojan backdoor worm virus ransom ransomware hacktool hktl exploit exp trojandownloader
    trojandropper trojanspy trojanpsw trojanclicker trojanproxy downloader dropper pua pup
    riskware adware spyware heur heuristic generic gen malware behavior behaviour win32
    win64 w32 w64 msil androidos android linux osx macos unix script js vbs vba o97m x97m
    w97m html php java python powershell bat js/ multi suspicious susp tr
    """
)
_CAMEL_HUMPS = re.compile(r"[a-z][A-Z]")
_PLATFORM_LABELS = _words(
    """
    win32 win64 w32 w64 msil androidos o97m x97m w97m vba
    """
)


def looks_like_detection_or_code(labels: list[str]) -> bool:
    """AV detection names (`Trojan.Win32.Agent.abc`), namespaces (`System.Net.Http`), or a
    missing space after a full stop (`exited.It`): capitalised inner labels, known AV words."""
    lowered = [label.lower() for label in labels]
    if lowered[0] in _AV_WORDS or any(label in _PLATFORM_LABELS for label in lowered):
        return True
    whole = ".".join(labels)
    if whole.isupper() or whole.islower():
        return False
    if len(_CAMEL_HUMPS.findall(labels[0])) >= 2:
        return True  # outputFilenameRecordedTV.ms: an identifier (PayPal.com has one hump)
    # Mixed case: a domain is written in one case, maybe with a capital first letter.
    return any(label != label.lower() for label in labels[1:])


# --- IPs ------------------------------------------------------------------------------------

_VERSION_CONTEXT = re.compile(
    r"(?i)(?:\bversions?|\bver\.?|\bv\.?|\bbuild|\brelease[ds]?|\bfirmware|\bpatch(?:ed)?|"
    r"\bupdate[ds]?(?: to)?|\bupgrade[ds]?(?: to)?|\bkernel|\bproduct|\bfile)\s*[:#]?\s*$"
)


def preceded_by_version_word(text: str, start: int) -> bool:
    """`version 4.3.2.1`, `v. 1.2.3.4`, `build 10.0.19041.1`: a version number, not an IPv4."""
    return bool(_VERSION_CONTEXT.search(text[max(0, start - 24) : start]))


def ipv4_value(candidate: str) -> str | None:
    """Normalised dotted quad, or None (leading zeros are read as decimal, as reports mean)."""
    parts = candidate.split(".")
    if len(parts) != 4 or not all(p.isdigit() and len(p) <= 3 for p in parts):
        return None
    numbers = [int(p) for p in parts]
    if any(n > 255 for n in numbers):
        return None
    return ".".join(map(str, numbers))


def ipv6_value(candidate: str) -> str | None:
    """Compressed IPv6 form, or None. A time (`12:45:30`) or a MAC is not an IPv6 address."""
    if candidate.count(":") < 2 or ":::" in candidate:
        return None
    groups = [g for g in candidate.split(":") if g]
    if "::" not in candidate and len(candidate.split(":")) != 8:
        return None
    if len(groups) < 2 and candidate not in ("::1",):
        return None
    if not any(c.isdigit() for c in candidate):
        return None
    try:
        return ipaddress.IPv6Address(candidate).compressed
    except ValueError:
        return None


@lru_cache(maxsize=8192)
def ip_is_private(value: str) -> bool:
    """Private, loopback, link-local, documentation and other non-global ranges."""
    try:
        return not ipaddress.ip_address(value).is_global
    except ValueError:
        return False


RESERVED_DOMAINS = ("example.com", "example.net", "example.org")
_RESERVED_TLDS = _words(
    """
    example test invalid localhost local internal lan home corp
    """
)


def domain_is_private(domain: str) -> bool:
    """Documentation and internal names (RFC 2606/6761 and common internal TLDs)."""
    if domain.rsplit(".", 1)[-1] in _RESERVED_TLDS:
        return True
    return any(domain == d or domain.endswith("." + d) for d in RESERVED_DOMAINS)


_HOSTNAME = re.compile(
    r"(?:[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?\.){1,126}(?:[a-z]{2,63}|xn--[a-z0-9-]{1,59})"
)


@lru_cache(maxsize=8192)
def host_is_domain(host: str) -> bool:
    """Syntax and suffix check of a lower-case host name: every label valid, a known TLD, no
    underscore in the registrable part, and more than a bare public suffix (`co.uk`)."""
    if len(host) > 253 or not _HOSTNAME.fullmatch(host):
        return False
    labels = host.rsplit(".", 2)
    if not is_tld(labels[-1]) or "_" in labels[-2]:
        return False
    return host not in _suffixes()


def domain_context(text: str, start: int) -> bool:
    """Words just before a name that say it is a host (`C2 domain`, `resolves`, `connects to`)."""
    return bool(_DOMAIN_CONTEXT.search(text[max(0, start - 48) : start]))

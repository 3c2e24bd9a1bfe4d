"""Judgements on candidates: is this a real domain, an IP worth reporting, a file name?

Patterns only find candidates; these functions decide, so that precision rules live in one place
and are easy to test one by one.
"""

from __future__ import annotations

import ipaddress
import re
from functools import lru_cache


def words(text: str) -> frozenset[str]:
    """A set from a whitespace-separated word list (keeps long lists readable)."""
    return frozenset(text.split())


_words = words


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
    rs tf ps pub go ts tsx css toml lua cpp cs vb kt swift scpt service timer desktop
    """
)
# Extensions that are also TLDs and common enough in reports to need context.
# (.cc, .ai and .mo are left out: in reports such names are nearly always hosts.)
AMBIGUOUS_EXTENSIONS = _words(
    """
    app cab dot java md mov one pl pm py sh so zip rs tf ps pub
    """
)
# Product names written like file or domain names.
PRODUCT_NAMES = _words(
    """
    node.js vue.js next.js nuxt.js react.js angular.js ember.js backbone.js three.js d3.js
    chart.js express.js socket.io moment.js p5.js asp.net vb.net ado.net dot.net
    """
)
# Well-known services whose names end in a file extension (file sharing used for staging).
KNOWN_HOSTS = _words("transfer.sh temp.sh bashupload.app")
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

# Words after which a dotted quad is a version or a section number: "version 4.3.2.1",
# "v. 1.2.3.4", "build 10.0.19041.1", "section 4.2.1.3", "Table 2.1.1.4", '"version": "2.1.4.7"'.
_VERSION_WORDS = _words(
    """
    version versions ver v build release released releases firmware patch patched update
    updated updates upgrade upgraded upgrades kernel product file revision rev section sections
    sect § table tables figure figures fig figs chapter chapters appendix paragraph paragraphs
    clause clauses
    """
)
_VERSION_PAIRS = frozenset(
    ["fixed in", "introduced in", "resolved in"]
    + [f"{verb} to" for verb in ("update", "updated", "updates", "upgrade", "upgraded", "upgrades")]
)
_VERSION_HEADER = re.compile(
    r"(?i)\b(?:versions?|ver|build|release[ds]?|firmware|patch(?:ed)?|fixed|affected|"
    r"vulnerable|updated?|upgrade)\b"
)


def preceded_by_version_word(text: str, start: int, tables: dict[int, int] | None = None) -> bool:
    """`version 4.3.2.1`, `v. 1.2.3.4`, `build 10.0.19041.1`, `section 4.2.1.3`: a version or a
    section number, not an IPv4. In a Markdown table, a column headed `Version`/`Fixed in` too
    (`tables` caches where each table starts, per text)."""
    words = text[max(0, start - 24) : start].rstrip(" \t\"':#=").lower().split()
    if words:
        last = words[-1].strip("\"'`([{").rstrip(".:")
        if last in _VERSION_WORDS or (len(words) > 1 and f"{words[-2]} {last}" in _VERSION_PAIRS):
            return True
    header = table_column_header(text, start, tables)
    return header is not None and bool(_VERSION_HEADER.search(header))


_ROW = 2000  # the longest Markdown table row looked at


def table_column_header(text: str, pos: int, tops: dict[int, int] | None = None) -> str | None:
    """The header cell above `pos` when a cell of a Markdown table row (`| a | b |`) starts at
    `pos`, else None. `tops` maps a row's start to its table's first row (a cache, so that a
    long table is walked once); rows are at most `_ROW` characters long, so that the cost
    stays linear whatever the text."""
    cell = pos
    while cell > 0 and pos - cell < 8 and text[cell - 1] in " \t":
        cell -= 1
    if cell == 0 or text[cell - 1] != "|":
        return None
    line_start = text.rfind("\n", max(0, pos - _ROW), pos) + 1
    if (line_start == 0 and pos > _ROW) or not _is_row(text, line_start):
        return None
    column = text.count("|", line_start, pos)
    top = line_start
    for _ in range(200):
        if top == 0:
            break
        if tops is not None and top in tops:
            top = tops[top]
            break
        previous = text.rfind("\n", max(0, top - 1 - _ROW), top - 1) + 1
        if (previous == 0 and top - 1 > _ROW) or not _is_row(text, previous):
            break
        top = previous
    if tops is not None:
        tops[line_start] = top
    if top == line_start:
        return None  # a single row: no header to read
    header_end = text.find("\n", top, top + _ROW)
    cells = text[top : header_end if header_end != -1 else top + _ROW].split("|")
    return cells[column] if column < len(cells) else None


def _is_row(text: str, line_start: int) -> bool:
    return text[line_start : line_start + 8].lstrip(" \t").startswith("|")


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
_RESERVED_SUFFIXES = tuple("." + d for d in RESERVED_DOMAINS)
_RESERVED_TLDS = _words(
    """
    example test invalid localhost local internal lan home corp
    """
)


def domain_is_private(domain: str) -> bool:
    """Documentation and internal names (RFC 2606/6761 and common internal TLDs)."""
    if domain.rsplit(".", 1)[-1] in _RESERVED_TLDS:
        return True
    return domain in RESERVED_DOMAINS or domain.endswith(_RESERVED_SUFFIXES)


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


@lru_cache(maxsize=4096)
def idna_ascii(name: str) -> str | None:
    """The Punycode (ASCII) form of an internationalised host name, or None if it has none."""
    try:
        return name.lower().encode("idna").decode("ascii")
    except UnicodeError:
        return None


def domain_context(text: str, start: int) -> bool:
    """Words just before a name that say it is a host (`C2 domain`, `resolves`, `connects to`)."""
    return bool(_DOMAIN_CONTEXT.search(text[max(0, start - 48) : start]))

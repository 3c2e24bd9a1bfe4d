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


@lru_cache(maxsize=1)
def shared_suffixes() -> frozenset[str]:
    """The private section of the Public Suffix List: names under which anyone gets a name of
    their own (`github.io`, `duckdns.org`, `azurewebsites.net`)."""
    import tldextract

    extractor = tldextract.TLDExtract(
        suffix_list_urls=(), cache_dir=None, fallback_to_snapshot=True,
        include_psl_private_domains=True,
    )  # fmt: skip
    return frozenset(s.lower() for s in extractor.tlds) - _suffixes()


def is_public_suffix(name: str) -> bool:
    """True for a name under which anyone may register one (`com`, `co.uk`, `github.io`)."""
    return name in _suffixes()


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
# Words before a name that say it is a host: named as one, resolved, visited, redirected to, a
# lookalike, or under a TLD the text talks about (as words, not as parts of a name:
# "shorturl-redirect.ru", "example.tld").
_DOMAIN_CONTEXT = re.compile(
    r"(?i)\b(?:domains?|hostnames?|c2|c&c|cnc|command[- ]and[- ]control|resolv\w*|dns)\b"
    r"(?![ -]controller)"
    r"|(?<![-.\w])(?:visit(?:s|ed|ing)?|redirect(?:s|ed|ing)?|navigat\w+|lookalikes?|"
    r"typo-?squat\w*|tlds?)\b(?![-.]\w)"
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


def glued_sentences(labels: list[str]) -> bool:
    """`exited.So the`, `the log.Log clearing`, `in the system.Service Name`: a lower-case word,
    a full stop and a capitalised word are two sentences without the space between them; an
    extension is written in one case (`.so`, `.SO`), not capitalised."""
    return len(labels) >= 2 and labels[-1].istitle() and labels[-2].islower()


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
    whole = ".".join(labels)
    if whole.islower():  # the common case: only the AV words and platform labels can tell
        return labels[0] in _AV_WORDS or not _PLATFORM_LABELS.isdisjoint(labels)
    lowered = [label.lower() for label in labels]
    if lowered[0] in _AV_WORDS or any(label in _PLATFORM_LABELS for label in lowered):
        return True
    if whole.isupper():
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
    version versions ver v build builds release released releases firmware patch patched
    update updated updates upgrade upgraded upgrades kernel product file revision rev section
    sections sect § table tables figure figures fig figs chapter chapters appendix paragraph
    paragraphs clause clauses
    """
)
# Verbs of moving between versions: "upgraded from 3.1.0.12 to 3.2.1.4".
_UPGRADE_VERBS = _words("update updated updates upgrade upgraded upgrades downgrade downgraded")
_VERSION_PAIRS = frozenset(
    ["fixed in", "introduced in", "resolved in"]
    + [f"{verb} {word}" for verb in _UPGRADE_VERBS for word in ("to", "from")]
)
_VERSION_HEADER = re.compile(
    r"(?i)\b(?:versions?|ver|build|release[ds]?|firmware|patch(?:ed)?|fixed|affected|"
    r"vulnerable|updated?|upgrade)\b"
)
# What joins the numbers of a list of versions: "versions 1.2.3.4 and 1.2.3.5", "upgraded from
# 3.1.0.12 to 3.2.1.4" ("from" only after a verb of upgrading: "a new version from 1.2.3.4" is
# where it came from).
_VERSION_JOINERS = _words("and or to through thru till until & - – /")
_VERSION_NUMBER = re.compile(r"v?\d{1,6}(?:\.\d{1,6}){1,4}[a-z]?")
# What follows a version: "10.3.8.2 and later.", "6.2.0.17 or earlier)", "1.2.3.4 or newer
# versions" (not "45.77.1.2 and later 45.77.1.3": there the words go on).
_VERSION_AFTER = re.compile(
    r"[ \t]{1,4}(?:and|or)[ \t]{1,4}(?:later|earlier|newer|older|higher|lower|above|below|prior)"
    r"(?=[ \t]*(?:[.,;:)\]\r\n]|$|(?:versions?|releases?|builds?)\b))"
)


def version_context(text: str, start: int, end: int, tables: dict[int, int] | None = None) -> bool:
    """A dotted quad that the text calls a version or a section number, not an IPv4: after a
    version word (`version 4.3.2.1`, `v. 1.2.3.4`, `section 4.2.1.3`, `"version": "2.1.4.7"`),
    in a list of versions that follows one (`upgraded from 3.1.0.12 to 3.2.1.4`), before what
    follows a version (`10.3.8.2 and later`), or in a Markdown
    table column headed `Version` / `Fixed in` (`tables` caches where each table starts)."""
    words = text[max(0, start - 24) : start].rstrip(" \t\"':#=").lower().split()
    if words:
        last = words[-1].strip("\"'`([{").rstrip(".:")
        if last in _VERSION_WORDS or (len(words) > 1 and f"{words[-2]} {last}" in _VERSION_PAIRS):
            return True
    line = text.rfind("\n", max(0, start - 64), start) + 1
    words = text[max(line, start - 64) : start].lower().split()
    if words and (
        words[-1] in _VERSION_JOINERS
        or words[-1] == "from"
        or _VERSION_NUMBER.fullmatch(words[-1].rstrip(","))
    ):
        return _after_version_word(words)
    if end < len(text) and text[end] in " \t" and _VERSION_AFTER.match(text, end):
        return True
    header = table_column_header(text, start, tables)
    return header is not None and bool(_VERSION_HEADER.search(header))


def _after_version_word(words: list[str]) -> bool:
    """The words before a number, read backwards over joiners and other version numbers, reach
    a version word (the list started after one)."""
    after_from = False
    for word in reversed(words):
        bare = word.strip("\"'`([{").rstrip(".:,;")
        if after_from:
            return bare in _UPGRADE_VERBS
        if bare in _VERSION_WORDS:
            return True
        after_from = bare == "from"
        # A number ending a sentence ("5.0.1.12.") ends the list too.
        if (
            not after_from
            and bare not in _VERSION_JOINERS
            and not _VERSION_NUMBER.fullmatch(word.rstrip(","))
        ):
            return False
    return False


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
    top = _table_top(text, line_start, tops)
    if top == line_start:
        return None  # a single row: no header to read
    header_end = text.find("\n", top, top + _ROW)
    cells = text[top : header_end if header_end != -1 else top + _ROW].split("|")
    return cells[column] if column < len(cells) else None


def _table_top(text: str, line_start: int, tops: dict[int, int] | None) -> int:
    """The first row of the Markdown table that has a row at `line_start` (at most 200 rows
    up; `tops` remembers the answer for each row asked about)."""
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
    return top


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
    head = value.partition(".")[0]
    if head.isdigit() and ":" not in value and int(head) not in _special_ipv4_first_octets():
        return False  # most addresses: global, without building an address object
    try:
        return not ipaddress.ip_address(value).is_global
    except ValueError:
        return False


@lru_cache(maxsize=1)
def _special_ipv4_first_octets() -> frozenset[int]:
    """First octets of the special-purpose IPv4 networks, read from `ipaddress`'s own tables, so
    that an address outside them is known to be global (the answers stay the standard
    library's); every octet when those tables are not where this Python version keeps them."""
    constants = getattr(ipaddress, "_IPv4Constants", None)
    names = ("_public_network", "_reserved_network", "_multicast_network")
    networks: list[ipaddress.IPv4Network | None] = [
        *getattr(constants, "_private_networks", [None]),
        *(getattr(constants, name, None) for name in names),
    ]
    octets: set[int] = set()
    for network in networks:
        if network is None:
            return frozenset(range(256))
        first = int(network.network_address) >> 24
        octets.update(range(first, (int(network.broadcast_address) >> 24) + 1))
    return frozenset(octets)


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


# --- Context: what the text around a candidate says -------------------------------------------

_WORD_START = frozenset(" \t\r\n\"'(<[=,;`|>")


def in_url_path(text: str, start: int) -> bool:
    """A name after a slash that is part of a path (`/vpns/portal/x.xml`, `assets/js/app.js`),
    not a slash between alternatives (`Info32/Info64.dll`)."""
    if start == 0 or text[start - 1] != "/":
        return False
    word = start - 1
    while word > 0 and start - word < 256 and text[word - 1] not in _WORD_START:
        word -= 1
    return text[word] == "/" or text.count("/", word, start) >= 2


_SHORT_NAME_TLDS = words("com net org co io me ly")


# First labels of reverse-DNS identifiers (Android packages, macOS bundle and launchd labels,
# Java classes): `com.google.android.youtube`, `org.telegram.messenger`.
_REVERSE_DNS_ROOTS = _words("com org net io edu gov mil")


def not_a_host(text: str, start: int, end: int, labels: list[str]) -> bool:
    """Precision rules for a name that was not defanged (defanging says "this is a host")."""
    tld = labels[-1].lower()
    if text.startswith("(", end):
        return True  # a call in code: "file.read()", "os.system(cmd)"
    if (
        len(labels) >= 3
        and labels[0].lower() in _REVERSE_DNS_ROOTS
        and tld not in _REVERSE_DNS_ROOTS  # "org.s3.amazonaws.com": a bucket's host
        and text[end : end + 1] != "/"
    ):
        return True  # a package or bundle name: "com.sec.android.app.camera"
    if start > 0 and text[start - 1] == "/" and not text.startswith("//", start - 2):
        # Inside a path (`/j.ad`), or an AV name (`Win32/Agent.gs`): a URL is found as a whole.
        return True
    if tld in WORD_TLDS and not text.startswith("/", end) and labels[0].lower() != "www":
        return not domain_context(text, start)
    return len(labels) == 2 and len(labels[0]) == 1 and tld not in _SHORT_NAME_TLDS


def domain_wins(text: str, start: int, end: int, labels: list[str], defanged: bool) -> bool:
    """`payload.zip`, `run.sh`, `lib.so` are files; `evil[.]zip`, `www.evil.sh`, `C2: evil.sh`
    are hosts. Extensions that are no TLD (`.exe`) are always files."""
    tld = labels[-1].lower()
    if not is_tld(tld):
        return False
    if tld not in AMBIGUOUS_EXTENSIONS:
        return True
    if defanged or text.startswith("/", end) or labels[0].lower() == "www":
        return True
    if start >= 2 and text[start - 2 : start] == "*.":
        return True  # a wildcard: "*.ngrok-free.app"
    if len(labels) >= 3 and labels[-2].lower() not in FILE_EXTENSIONS:
        return True
    return domain_context(text, start)


# Public resolvers whose small numbers look like a section number ("8.8.8.8 Google DNS").
_WELL_KNOWN_SMALL_IPS = words(
    "1.1.1.1 1.0.0.1 8.8.8.8 8.8.4.4 9.9.9.9 4.2.2.1 4.2.2.2 4.2.2.3 4.2.2.4 4.2.2.5 4.2.2.6"
)
_HEADING_MARKUP = frozenset("#*_ \t>")


def numbered_heading(text: str, start: int, end: int, value: str) -> bool:
    """`**1.2.1.1** [Socat]`, `## 2.3.1.4 Persistence`: a numbered heading at the start of a
    line (every number small, then bold/heading markup or a capitalised word), no address."""
    line = text.rfind("\n", max(0, start - 12), start) + 1
    if (line == 0 and start > 12) or not _HEADING_MARKUP.issuperset(text[line:start]):
        return False
    if value in _WELL_KNOWN_SMALL_IPS or any(int(n) > 40 for n in value.split(".")):
        return False
    if "*" in text[line:start] or "#" in text[line:start]:
        return True
    return text.startswith(" ", end) and text[end + 1 : end + 2].isupper()


def hex_well_mixed(hex_digits: str) -> bool:
    """Digits and letters well mixed, as in a real digest (`a999…9z` is no glued hash)."""
    digits = sum(c.isdigit() for c in hex_digits)
    return len(hex_digits) // 5 <= digits <= len(hex_digits) * 4 // 5


def ssdeep_block_size_ok(size: int) -> bool:
    """ssdeep block sizes are 3 × 2^k."""
    return size >= 3 and size % 3 == 0 and (size // 3) & (size // 3 - 1) == 0


def attack_id_in_range(ident: str) -> bool:
    """ATT&CK numbers in use: tactics TA0001–TA0199, techniques T1000–T1999 (and the mobile
    and ICS T0800–T0899)."""
    if ident.startswith("TA"):
        return 1 <= int(ident[2:6]) <= 199
    number = int(ident[1:5])
    return 1000 <= number <= 1999 or 800 <= number <= 899


def yara_keyword_starts_line(text: str, position: int) -> bool:
    """YARA `rule` keywords start a line (after `private`/`global` at most)."""
    line = text[text.rfind("\n", 0, position) + 1 : position].strip()
    return line in ("", "private", "global", "private global", "global private")

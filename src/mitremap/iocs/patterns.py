"""Compiled patterns. Each one either starts with a literal (so the regex engine can skip ahead
fast) or is only run with `.match` at an anchor found by one; every quantifier is bounded or
possessive, so no input can make them backtrack for long."""

from __future__ import annotations

import re

URL_SCHEMES = frozenset(
    [
        "http",
        "https",
        "ftp",
        "ftps",
        "sftp",
        "tcp",
        "udp",
        "ws",
        "wss",
        "smb",
        "ldap",
        "ldaps",
        "rdp",
        "ssh",
        "telnet",
        "irc",
        "file",
    ]
)

# After "scheme://": optional user info, a host (bracketed IPv6, bare IPv6, or a name), a port,
# then path/query/fragment.
URL_REST = re.compile(
    r"(?:(?P<userinfo>[^\s/?#@\[\]<>\"'\\]{1,128})@)?"
    r"(?P<host>\[[0-9A-Fa-f:.]{2,45}\]|(?:[0-9A-Fa-f]{1,4}:){7}[0-9A-Fa-f]{1,4}(?![0-9A-Za-z:])"
    r"|[^\s/?#:\[\]<>\"'\\,;|{}()`^]{1,253})"
    r"(?P<port>:\d{1,5})?"
    r"(?P<rest>[/?#][^\s<>\"'`{}|\\^\[\]“”‘’«»]{0,4096}+)?"
)
# A path after a host written without a scheme (`evil.com/gate.php`).
PATH_REST = re.compile(r"(?::\d{1,5})?/[^\s<>\"'`{}|\\^\[\]“”‘’«»]{0,4096}+")

# The labels after an internationalised label: ".de", ".müller.com" (the TLD in ASCII).
IDN_TAIL = re.compile(
    r"(?:\.[^\W_]{1,63}(?:-{1,4}[^\W_]{1,63}){0,8}){0,8}?\.[A-Za-z]{2,24}(?![^\W_])"
)
HOST = re.compile(r"[A-Za-z0-9_-]{1,63}(?:\.[A-Za-z0-9_-]{1,63}){1,126}")
EMAIL_DOMAIN = re.compile(r"[A-Za-z0-9-]{1,63}(?:\.[A-Za-z0-9-]{1,63}){1,10}")
DOT_ANCHOR = re.compile(r"\.[A-Za-z0-9]")
# The next run of 25+ letters and digits: the short words before it are skipped inside the
# regex engine (one match per long run, not one attempt per character); group 1 is the run.
NEXT_LONG_RUN = re.compile(r"(?:[A-Za-z0-9]{0,24}+[^A-Za-z0-9]++)*+([A-Za-z0-9]{25,}+)?")
EMAIL_ANCHOR = re.compile(r"@(?=[A-Za-z0-9-]{1,63}\.[A-Za-z0-9])")
HEX_COLON_RUN = re.compile(r"[0-9A-Fa-f:.]*+")

COLON_ANCHOR = re.compile(r":(?=[0-9A-Za-z/+:])")
DASH_MAC_ANCHOR = re.compile(r"-(?=[0-9A-Fa-f]{2}-[0-9A-Fa-f]{2}-[0-9A-Fa-f]{2}-)")
MAC = re.compile(r"[0-9A-Fa-f]{2}([:-])[0-9A-Fa-f]{2}(?:\1[0-9A-Fa-f]{2}){4}(?![0-9A-Za-z:-])")
IPV6 = re.compile(r"[0-9A-Fa-f:]{2,39}+(?:(?<=:)\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3})?")
SSDEEP = re.compile(r"(\d{1,10}):[A-Za-z0-9/+]{3,64}+:[A-Za-z0-9/+]{3,64}+")

CVE = re.compile(r"(?:CVE|cve|Cve)-(\d{4})-(\d{4,7})(?![0-9A-Za-z])")
ATTACK = re.compile(r"T(?:A\d{4}|\d{4}(?:\.\d{3})?)(?![0-9A-Za-z]|\.\d)")
# "AS13335", "ASN 13335", "ASN-13335", and "AS 13335" (spaced: 3 digits or more).
ASN = re.compile(r"AS(?:N:? ?|N-?| (?=\d{3}))?(\d{1,10})(?![0-9A-Za-z]|[.,]\d)")

# Registry keys and Windows paths: a segment may hold spaces only when another backslash
# follows it ("Control Panel\"), or when it is a well-known multi-word name.
_SEG = r"[^\\\s\"<>|*?:,;()\[\]'`“”‘’]{1,255}"  # a backtick ends inline code
_REG_SEG = r"[^\\\s\"<>|,;:'`\[\]“”‘’]{1,255}"
# Words after the first one of a spaced segment: capitalised, a number, or a joining word.
# Not "and" (prose: "…\\Run and HKLM\\…"; "Documents and Settings" is a known name), not a
# hive, not an environment variable ("…\\Run and %TEMP%\\x.exe" is two paths).
_NEXT_WORD = r"(?:of|for|the|on|(?!HK(?:LM|CU|CR|CC|U)[\\:]|HKEY_)[A-Z0-9($_{][^\\\s\"<>|*?:,;\[\]'`]{0,254})"
KNOWN_MULTIWORD = (
    "Program Files (x86)",
    "Program Files",
    "Common Files",
    "Documents and Settings",
    "Application Data",
    "Local Settings",
    "Start Menu",
    "Control Panel",
    "User Shell Folders",
    "Shell Folders",
    "Volatile Environment",
    "Image File Execution Options",
    "Session Manager",
    "Windows NT",
    "Terminal Server Client",
    "Terminal Server",
    "Internet Settings",
    "Internet Explorer",
    "Windows Defender",
    "Windows Error Reporting",
    "Windows Script Host",
    "Windows Media Player",
    "Print Processors",
    "Print Monitors",
    "Security Center",
    "Network Connections",
    "Microsoft Office",
    "Google Chrome",
    "Windows PowerShell",
    "Windows Mail",
    "Task Scheduler",
    "Scheduled Tasks",
)
_KNOWN = "(?:" + "|".join(re.escape(k) for k in KNOWN_MULTIWORD) + r")(?![A-Za-z0-9_-])"


def _segments(seg: str) -> str:
    # The first word of a spaced segment holds no "." ("update.exe and Global\", "x.exe. Also
    # %TEMP%\" are a file name followed by prose, not a folder called "x.exe and Global").
    first = seg.replace("]{1,255}", ".]{1,255}")
    spaced = first + r"(?: " + _NEXT_WORD + r"){1,5}(?=\\)"
    return r"(?>\\(?:" + spaced + "|" + _KNOWN + "|" + seg + r")?)"


WIN_SEGMENTS = re.compile(_segments(_SEG) + "{1,64}")
REG_SEGMENTS = re.compile(_segments(_REG_SEG) + "{1,64}")
REG_HIVE = re.compile(
    r"(HKEY_(?:LOCAL_MACHINE|CURRENT_USER|CLASSES_ROOT|USERS|CURRENT_CONFIG|PERFORMANCE_DATA)"
    r"|HKLM|HKCU|HKCR|HKU|HKCC)(:?)(?=\\)"
)
HIVE_NAMES = {
    "HKLM": "HKEY_LOCAL_MACHINE",
    "HKCU": "HKEY_CURRENT_USER",
    "HKCR": "HKEY_CLASSES_ROOT",
    "HKU": "HKEY_USERS",
    "HKCC": "HKEY_CURRENT_CONFIG",
}
ENV_VAR = re.compile(r"%[A-Za-z][A-Za-z0-9_()]{0,40}%")
RELATIVE_HEAD = re.compile(r"[A-Za-z][A-Za-z0-9_.$~-]{0,127}")

UNIX_DIRS = [
    "etc",
    "tmp",
    "var",
    "usr",
    "bin",
    "sbin",
    "dev",
    "opt",
    "home",
    "root",
    "proc",
    "lib",
    "lib32",
    "lib64",
    "boot",
    "mnt",
    "media",
    "srv",
    "sys",
    "run",
    "Library",
    "Applications",
    "System",
    "Users",
    "Volumes",
    "private",
    "Network",
    "data",  # Android: /data/data/<package>/, /data/local/tmp/
    "sdcard",
]
UNIX_ANCHOR = re.compile(r"/(?:" + "|".join(UNIX_DIRS) + r")(?=/)")
UNIX_PATH = re.compile(r"~?(?:/[A-Za-z0-9._@%+=~$-]{0,255}){1,64}")

ARN = re.compile(
    r"arn:aws(?:-[a-z]{2,8}){0,2}:[a-z0-9-]{1,64}:[a-z0-9*-]{0,32}:(?:\d{12}|\*)?:"
    r"[^\s\"'<>,;`]{1,1024}+"
)
USER_AGENT = re.compile(
    r"Mozilla/\d\.\d{1,2}(?: \([^()\n]{1,300}\))?"
    r"(?: (?:[A-Za-z][A-Za-z0-9_.-]{0,40}/[A-Za-z0-9_.+-]{1,40}|\([^()\n]{1,300}\))){0,16}"
)
OTHER_AGENT = re.compile(
    r"(?:curl|Wget|python-requests|Python-urllib|Go-http-client|okhttp|libwww-perl|"
    r"WinHTTP|Microsoft-CryptoAPI|PowerShell)/\d[A-Za-z0-9_.+-]{0,40}"
)
OTHER_AGENTS = frozenset(
    [
        "curl",
        "Wget",
        "python-requests",
        "Python-urllib",
        "Go-http-client",
        "okhttp",
        "libwww-perl",
        "WinHTTP",
        "Microsoft-CryptoAPI",
        "PowerShell",
    ]
)
AGENT_ANCHOR = re.compile(r"/(?=\d)")
NON_SPACE_RUN = re.compile(r"\S*+")
YARA = re.compile(
    r"rule[ \t]+([A-Za-z_][A-Za-z0-9_]{0,127})(?:[ \t]*:[ \t]*[A-Za-z0-9_ \t]{1,200})?\s{0,8}\{"
)
YARA_MENTION = re.compile(
    r"(?i:yara)[ \t]+(?i:rules?)[ \t]+([A-Za-z][A-Za-z0-9]*_[A-Za-z0-9_]{1,127})"
)


def run_end(pattern: re.Pattern[str], text: str, pos: int) -> int:
    """Where a run pattern (one that may match nothing, so always matches) ends from `pos`."""
    found = pattern.match(text, pos)
    return found.end() if found is not None else pos

"""Known-benign values: what a report names as context, not as an indicator of compromise.

Why: extraction reports what the text says, and a report says `cmd.exe`, `powershell.exe`,
`C:\\Windows\\System32`, `HKCU\\...\\CurrentVersion\\Run`, `schemas.microsoft.com` and its own
address as often as it names the attacker's files and servers. Sent to a SIEM or a MISP instance
as indicators, those raise an alert on every host. `benign_reason` says why a value is
known-benign context (or None when it may be an indicator), and the exporters send only the
rest as indicators: STIX `indicator` objects, MISP attributes with `to_ids=true`.

What counts, each with its reason:
- system binaries every Windows host has (`cmd.exe`, `svchost.exe`, `lsass.exe` …) named
  alone or in their own system folder — the same name anywhere else (`C:\\Users\\Public\\
  svchost.exe`) is masquerading, an indicator;
- Windows and Unix folders and files every host has (`C:\\ProgramData`, `%TEMP%`, `/etc/passwd`,
  `/tmp`), and the registry keys every Windows host has (`…\\CurrentVersion\\Run`);
- well-known vendor and schema domains (`microsoft.com`, `schemas.microsoft.com`, `w3.org`),
  the hashes of an empty file, private, internal and documentation addresses;
- the report's own address and its domain (`source`: the URL it was read from);
- MISP's warning lists of known-benign values, where `pymispwarninglists` is installed (the
  `warninglists` extra), as `mitremap.iocs.allowlist` chooses them.

The review workspace marks the same values for analysts (issue 19); keep one list, here. An
analyst's verdict, carried in the indicator's JSON (`review`: accepted or rejected), comes
before the lists: an accepted value is an indicator, a rejected one is context.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from mitremap.iocs import validators

SYSTEM_BINARY = "a Windows system program every host has"
SYSTEM_PATH = "a Windows folder or file every host has"
UNIX_PATH = "a Unix folder or file every host has"
REGISTRY_KEY = "a registry key every Windows host has"
VENDOR_DOMAIN = "a well-known vendor or schema domain"
PUBLIC_SERVICE = "a well-known public service address (a public DNS resolver …)"
WARNING_LIST = "on a MISP warning list of known-benign values"
EMPTY_FILE = "the hash of an empty file"
PRIVATE = "a private, internal or documentation value"
OWN_SOURCE = "the report's own address"
REJECTED = "not an indicator, as an analyst reviewed it"

SYSTEM_BINARIES: frozenset[str] = validators.words(
    """
    cmd.exe powershell.exe powershell_ise.exe pwsh.exe svchost.exe lsass.exe rundll32.exe
    regsvr32.exe mshta.exe wscript.exe cscript.exe explorer.exe schtasks.exe at.exe wmic.exe
    wmiprvse.exe net.exe net1.exe whoami.exe reg.exe regedit.exe certutil.exe bitsadmin.exe
    msiexec.exe conhost.exe winlogon.exe services.exe taskhost.exe taskhostw.exe dllhost.exe
    spoolsv.exe wevtutil.exe vssadmin.exe wbadmin.exe bcdedit.exe wuauclt.exe notepad.exe
    csrss.exe smss.exe wininit.exe lsm.exe sc.exe tasklist.exe taskkill.exe ipconfig.exe
    systeminfo.exe nltest.exe ping.exe netstat.exe arp.exe route.exe nslookup.exe hostname.exe
    quser.exe qwinsta.exe query.exe mstsc.exe msbuild.exe installutil.exe regasm.exe regsvcs.exe
    cmstp.exe odbcconf.exe forfiles.exe ftp.exe curl.exe tar.exe expand.exe makecab.exe
    esentutl.exe ntdsutil.exe dsquery.exe nbtstat.exe netsh.exe sdbinst.exe userinit.exe
    werfault.exe searchindexer.exe msdt.exe control.exe eventvwr.exe fodhelper.exe
    computerdefaults.exe sethc.exe utilman.exe osk.exe magnify.exe narrator.exe atbroker.exe
    winword.exe excel.exe powerpnt.exe outlook.exe iexplore.exe msedge.exe chrome.exe
    firefox.exe ntoskrnl.exe kernel32.dll ntdll.dll user32.dll advapi32.dll ws2_32.dll
    wininet.dll winhttp.dll comsvcs.dll msvcrt.dll shell32.dll ole32.dll crypt32.dll
    dbghelp.dll dbgcore.dll samlib.dll vaultcli.dll mshtml.dll urlmon.dll gdi32.dll
    """
)
"""Programs and libraries of Windows itself (and the Office and browser programs a report
names as what the victim ran), by file name, lower case."""

_SYSTEM_FOLDERS = (
    r"c:\windows",
    r"c:\windows\system32",
    r"c:\windows\syswow64",
    r"c:\windows\system32\wbem",
    r"c:\windows\system32\windowspowershell\v1.0",
    r"c:\windows\syswow64\windowspowershell\v1.0",
    r"c:\windows\microsoft.net\framework\v4.0.30319",
    r"c:\windows\microsoft.net\framework64\v4.0.30319",
    r"c:\program files\microsoft office\root\office16",
    r"c:\program files (x86)\microsoft office\root\office16",
)
"""Where the system binaries above live (a binary in one of these is itself)."""

WINDOWS_PATHS: frozenset[str] = frozenset(
    {
        *_SYSTEM_FOLDERS,
        r"c:",
        r"c:\windows\temp",
        r"c:\windows\tasks",
        r"c:\windows\system32\tasks",
        r"c:\windows\system32\config",
        r"c:\windows\system32\config\sam",
        r"c:\windows\system32\config\system",
        r"c:\windows\system32\config\security",
        r"c:\windows\system32\drivers",
        r"c:\windows\system32\drivers\etc",
        r"c:\windows\system32\drivers\etc\hosts",
        r"c:\windows\ntds\ntds.dit",
        r"c:\windows\prefetch",
        r"c:\windows\inf",
        r"c:\windows\fonts",
        r"c:\windows\debug",
        r"c:\windows\system32\logfiles",
        r"c:\windows\system32\winevt\logs",
        r"c:\program files",
        r"c:\program files (x86)",
        r"c:\programdata",
        r"c:\users",
        r"c:\users\public",
        r"c:\users\public\documents",
        r"c:\users\public\downloads",
        r"c:\users\public\libraries",
        r"c:\users\public\music",
        r"c:\users\public\pictures",
        r"c:\users\public\videos",
        r"c:\users\default",
        r"c:\perflogs",
        r"c:\recycler",
        r"c:\$recycle.bin",
        r"c:\system volume information",
        r"%temp%",
        r"%tmp%",
        r"%appdata%",
        r"%localappdata%",
        r"%programdata%",
        r"%public%",
        r"%userprofile%",
        r"%systemroot%",
        r"%windir%",
        r"%systemdrive%",
        r"%programfiles%",
        r"%programfiles(x86)%",
        r"%userprofile%\appdata\local\temp",
        r"%userprofile%\appdata\roaming",
        r"%userprofile%\appdata\local",
        r"%userprofile%\downloads",
        r"%userprofile%\documents",
        r"%userprofile%\desktop",
        r"%appdata%\microsoft\windows\start menu\programs\startup",
        r"%programdata%\microsoft\windows\start menu\programs\startup",
        r"c:\programdata\microsoft\windows\start menu\programs\startup",
    }
)
"""Windows folders and files every host has (lower case, no trailing separator)."""

_ENVIRONMENT = {
    "%systemroot%": r"c:\windows",
    "%windir%": r"c:\windows",
    "%systemdrive%": "c:",
    "%programfiles%": r"c:\program files",
    "%programfiles(x86)%": r"c:\program files (x86)",
    "%programdata%": r"c:\programdata",
    "%public%": r"c:\users\public",
}

UNIX_PATHS: frozenset[str] = validators.words(
    """
    / /bin /sbin /usr /usr/bin /usr/sbin /usr/local /usr/local/bin /usr/local/sbin /usr/lib
    /usr/share /lib /lib64 /etc /etc/passwd /etc/shadow /etc/group /etc/sudoers /etc/hosts
    /etc/hostname /etc/resolv.conf /etc/crontab /etc/cron.d /etc/cron.daily /etc/cron.hourly
    /etc/rc.local /etc/init.d /etc/systemd/system /etc/profile /etc/bashrc /etc/bash.bashrc
    /etc/ld.so.preload /etc/ssh /etc/ssh/sshd_config /etc/os-release /etc/issue /tmp /var
    /var/tmp /var/log /var/log/auth.log /var/log/syslog /var/log/secure /var/log/messages
    /var/run /var/spool/cron /var/spool/cron/crontabs /var/www /var/www/html /dev /dev/null
    /dev/shm /dev/tcp /dev/zero /dev/random /dev/urandom /home /root /root/.ssh
    /root/.ssh/authorized_keys /root/.bash_history /proc /sys /opt /mnt /media /srv /boot
    /bin/sh /bin/bash /bin/dash /bin/zsh /usr/bin/bash /usr/bin/sh /usr/bin/env /usr/bin/python
    /usr/bin/python3 /usr/bin/perl /usr/bin/curl /usr/bin/wget /usr/bin/nohup /usr/bin/crontab
    /usr/bin/sudo /usr/bin/ssh /usr/bin/base64 /usr/bin/chmod /usr/bin/whoami /usr/bin/id
    /bin/chmod /bin/rm /bin/cat /bin/ps /bin/ls /sbin/iptables ~/.ssh ~/.ssh/authorized_keys
    ~/.bashrc ~/.bash_profile ~/.profile ~/.bash_history /library/launchagents
    /library/launchdaemons ~/library/launchagents /system/library /applications
    /private/tmp /private/var
    """
)
"""Unix (Linux, macOS) folders and files every host has (lower case, no trailing slash)."""

_UNIX_TREES = ("/proc/", "/sys/", "/usr/share/", "/usr/lib/")

_HIVES = {
    "hkcu": "hkey_current_user",
    "hklm": "hkey_local_machine",
    "hkcr": "hkey_classes_root",
    "hku": "hkey_users",
    "hkcc": "hkey_current_config",
}
REGISTRY_KEYS: frozenset[str] = frozenset(
    f"{hive}\\{key}"
    for hive in ("hkey_current_user", "hkey_local_machine")
    for key in (
        r"software\microsoft\windows\currentversion\run",
        r"software\microsoft\windows\currentversion\runonce",
        r"software\microsoft\windows\currentversion\runonceex",
        r"software\microsoft\windows\currentversion\runservices",
        r"software\microsoft\windows\currentversion\policies\explorer\run",
        r"software\microsoft\windows\currentversion\explorer\shell folders",
        r"software\microsoft\windows\currentversion\explorer\user shell folders",
        r"software\microsoft\windows nt\currentversion\winlogon",
        r"software\microsoft\windows nt\currentversion\windows",
        r"software\microsoft\windows nt\currentversion\image file execution options",
        r"software\wow6432node\microsoft\windows\currentversion\run",
        r"software\microsoft\windows\currentversion",
        r"software\microsoft\windows nt\currentversion",
        r"software\microsoft",
        r"software\classes",
        r"software\policies\microsoft\windows defender",
        r"system\currentcontrolset\services",
        r"system\currentcontrolset\control\lsa",
        r"system\currentcontrolset\control\session manager",
        r"environment",
    )
)
"""Registry keys every Windows host has (the autostart locations included: the value written
under them is what marks an intrusion, not the key)."""

SCHEMA_DOMAINS: frozenset[str] = validators.words(
    """
    schemas.microsoft.com schemas.openxmlformats.org schemas.xmlsoap.org purl.org ns.adobe.com
    www.w3.org w3.org xml.org schema.org www.apache.org apache.org openxmlformats.org
    microsoft.com www.microsoft.com docs.microsoft.com learn.microsoft.com support.microsoft.com
    msdn.microsoft.com technet.microsoft.com go.microsoft.com aka.ms attack.mitre.org mitre.org
    cve.mitre.org cve.org nvd.nist.gov nist.gov cisa.gov first.org oasis-open.org ietf.org
    rfc-editor.org iana.org example.com example.org example.net
    """
)
"""Vendor, standards and schema names reports cite (XML namespaces in Office documents,
references), on top of `allowlist.DEFAULT_ALLOWLIST`."""

EMPTY_HASHES: frozenset[str] = validators.words(
    """
    d41d8cd98f00b204e9800998ecf8427e da39a3ee5e6b4b0d3255bfef95601890afd80709
    e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855
    cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e
    """
)

_HASHES = ("md5", "sha1", "sha256", "sha512")
_HOSTS = ("domain", "url", "email", "ipv4", "ipv6")


def benign_reason(indicator: Any, source: str | None = None) -> str | None:
    """Why `indicator` is known-benign context rather than an indicator of compromise, or None
    when it may be one. `indicator`: an `Indicator`, its JSON form (a mapping with `type`,
    `value` and `private`) or a `(type, value)` pair; `source`: the report's own URL, when it
    was read from one. A mapping's `review` (the workspace's verdict) decides first."""
    verdict = indicator.get("review") if isinstance(indicator, Mapping) else None
    if verdict == "accepted":
        return None
    if verdict == "rejected":
        return REJECTED
    kind, value, private = _parts(indicator)
    if kind == "cve":
        return None  # a vulnerability is knowledge, never "benign"
    if private:
        return PRIVATE
    lowered = value.strip().lower()
    if source and _own_source(kind, lowered, source):
        return OWN_SOURCE
    return _known_value(kind, lowered)


def _known_value(kind: str, lowered: str) -> str | None:
    """Why a value is known-benign whoever writes it (a system program, path or registry key,
    the empty file's hash, a listed vendor host or hash), or None."""
    if kind == "file_name" and lowered in SYSTEM_BINARIES:
        return SYSTEM_BINARY
    if kind == "windows_path":
        return _windows_path(lowered)
    if kind == "unix_path":
        return _unix_path(lowered)
    if kind == "registry_key":
        return REGISTRY_KEY if _registry_key(lowered) in REGISTRY_KEYS else None
    if kind in _HASHES and lowered in EMPTY_HASHES:
        return EMPTY_FILE
    if kind in _HOSTS or kind in _HASHES:
        return _listed(kind, lowered)
    return None


def _parts(indicator: Any) -> tuple[str, str, bool]:
    if isinstance(indicator, tuple):
        return str(indicator[0]), str(indicator[1]), False
    if isinstance(indicator, Mapping):
        return str(indicator["type"]), str(indicator["value"]), bool(indicator.get("private"))
    return str(indicator.type), str(indicator.value), bool(getattr(indicator, "private", False))


def _windows_path(path: str) -> str | None:
    path = re.sub(r"[\\/]+", r"\\", path).rstrip("\\")
    if path in WINDOWS_PATHS or _expanded(path) in WINDOWS_PATHS:
        return SYSTEM_PATH
    folder, _, name = _expanded(path).rpartition("\\")
    if name in SYSTEM_BINARIES and folder in _SYSTEM_FOLDERS:
        return SYSTEM_BINARY
    return None


def _expanded(path: str) -> str:
    """`%SystemRoot%\\System32` read as `c:\\windows\\system32` (another drive letter as c:)."""
    head, _, rest = path.partition("\\")
    head = _ENVIRONMENT.get(head, head)
    if re.fullmatch(r"[a-z]:", head):
        head = "c:"
    return f"{head}\\{rest}" if rest else head


def _unix_path(path: str) -> str | None:
    path = re.sub(r"/+", "/", path)
    path = path.rstrip("/") or "/"
    if path in UNIX_PATHS or path.startswith(_UNIX_TREES):
        return UNIX_PATH
    return None


def _registry_key(key: str) -> str:
    key = key.replace("/", "\\").strip("\\")
    hive, _, rest = key.partition("\\")
    return f"{_HIVES.get(hive, hive)}\\{rest}" if rest else _HIVES.get(hive, hive)


def _url_host(url: str) -> str:
    authority = re.split(r"[/?#]", url.split("://", 1)[-1], maxsplit=1)[0]
    return authority.rsplit("@", 1)[-1].split(":", 1)[0]


def _own_source(kind: str, value: str, source: str) -> bool:
    """The report's own URL (any fragment or trailing slash aside), or its host."""
    source = source.strip().lower()
    if not source.startswith(("http://", "https://")):
        return False
    if kind == "url":
        return _same_url(value, source)
    if kind in ("domain", "ipv4", "ipv6"):
        host = _url_host(source)
        return value.removeprefix("www.") == host.removeprefix("www.")
    return False


def _same_url(a: str, b: str) -> bool:
    def norm(url: str) -> str:
        return url.split("#", 1)[0].split("://", 1)[-1].rstrip("/").removeprefix("www.")

    return norm(a) == norm(b)


def _listed(kind: str, value: str) -> str | None:
    """The built-in vendor and schema names; then MISP's warning lists, where installed."""
    from mitremap.iocs.allowlist import default_allowlist

    if (kind, value) in _vendor_list():
        return PUBLIC_SERVICE if kind in ("ipv4", "ipv6") else VENDOR_DOMAIN
    if (kind, value) in default_allowlist():
        return WARNING_LIST if _warning_lists_installed() else VENDOR_DOMAIN
    return None


@lru_cache(maxsize=1)
def _vendor_list() -> Any:
    from mitremap.iocs.allowlist import DEFAULT_ALLOWLIST, user_allowlist

    listed = user_allowlist(DEFAULT_ALLOWLIST | SCHEMA_DOMAINS)
    listed.shared.update(validators.shared_suffixes())
    return listed


@lru_cache(maxsize=1)
def _warning_lists_installed() -> bool:
    from importlib.util import find_spec

    return find_spec("pymispwarninglists") is not None

"""Registry keys (from a hive: `HKLM\\`), Windows paths (from a backslash) and Unix paths
(from a well-known top folder: `/etc/`, `/tmp/`, `~/`)."""

from __future__ import annotations

from collections.abc import Iterator

from mitremap.iocs import patterns
from mitremap.iocs.refanging import Refanged
from mitremap.iocs.scanner import PATH_OPENERS, TRAILING, Candidate, find_all, trim_end, walk_left

_RELATIVE_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.$~-")
# Windows object-manager namespaces: "Global\\X" names a mutex or an event, not a file.
_KERNEL_NAMESPACES = frozenset({"Global", "Local", "Session", "BaseNamedObjects", "Sessions"})


def find_registry_keys(text: str, refanged: Refanged) -> Iterator[Candidate]:
    """`HKLM\\Software\\...`, `HKEY_CURRENT_USER\\...`: the hive spelled out in the value."""
    for start in find_all(text, "HK"):
        if start > 0 and (text[start - 1].isalnum() or text[start - 1] == "_"):
            continue
        hive = patterns.REG_HIVE.match(text, start)
        if not hive:
            continue
        segments = patterns.REG_SEGMENTS.match(text, hive.end())
        if not segments or segments.end() - hive.end() < 2:
            continue
        end = trim_end(text, start, segments.end(), refanged)
        name = patterns.HIVE_NAMES.get(hive.group(1), hive.group(1))
        yield (start, end, "registry_key", name + text[hive.end() : end], False)


def find_windows_paths(text: str, refanged: Refanged) -> Iterator[Candidate]:
    """`C:\\x\\y.exe`, `\\\\server\\share\\x`, `%TEMP%\\x.exe`, `AppData\\Roaming\\x.exe`."""
    backslash = text.find("\\")
    while backslash != -1:
        start = windows_path_start(text, backslash)
        segments = patterns.WIN_SEGMENTS.match(text, backslash) if start is not None else None
        if start is None or segments is None:
            # No path starts here: skip the rest of this word (C speed, not per backslash).
            word_end = patterns.run_end(patterns.NON_SPACE_RUN, text, backslash + 1)
            backslash = text.find("\\", word_end)
            continue
        end = trim_end(text, start, segments.end(), refanged, TRAILING + "&")  # "x.dll& next"
        found = _windows_path(text, start, end, backslash)
        backslash = text.find("\\", max(end, backslash + 1))
        if found is not None:
            yield found


def _windows_path(text: str, start: int, end: int, backslash: int) -> Candidate | None:
    """The path `text[start:end]` whose first backslash is at `backslash`, judged."""
    path = text[start:end]
    if len(path.rstrip("\\")) <= 3 or (start == backslash and not path.startswith("\\\\")):
        return None
    if path.startswith("\\\\") and path.count("\\") < 3:
        return None  # "psexec \\FS01": a host name, no path
    if text[start].isalpha() and text[start + 1 : start + 2] != ":":
        # Relative path ("AppData\Roaming\x.exe"): ask for two backslashes or a file.
        last = path.rsplit("\\", 1)[-1]
        if path.count("\\") < 2 and "." not in last:
            return None
        if path.split("\\", 1)[0].upper() in ("SOFTWARE", "SYSTEM"):
            # "SOFTWARE\Microsoft\...": a registry key written without its hive.
            return (start, end, "registry_key", path, False)
    return (start, end, "windows_path", path, False)


def windows_path_start(text: str, backslash: int) -> int | None:
    """Where the path that has a backslash at `backslash` begins, or None when it is no path."""
    if backslash >= 2 and text[backslash - 1] == ":" and text[backslash - 2].isalpha():
        if backslash >= 3 and (text[backslash - 3].isalnum() or text[backslash - 3] in "_\\"):
            return None
        return backslash - 2  # a drive letter: "C:\"
    if text.startswith("\\\\", backslash) and (
        backslash == 0 or text[backslash - 1] in PATH_OPENERS
    ):
        return backslash  # a UNC path: "\\server\share"
    if backslash > 0 and text[backslash - 1] == "%":
        variable = text.rfind("%", max(0, backslash - 44), backslash - 1)
        if variable != -1 and patterns.ENV_VAR.fullmatch(text, variable, backslash):
            return variable  # "%APPDATA%\"
        return None
    return _relative_path_start(text, backslash)


def _relative_path_start(text: str, backslash: int) -> int | None:
    """`AppData\\Roaming\\...`, `$env:TEMP\\x.ps1`: a folder name at the start of a word."""
    head = walk_left(text, backslash, _RELATIVE_CHARS, 128)
    if (
        head < backslash
        and (head == 0 or text[head - 1] in PATH_OPENERS)
        and patterns.RELATIVE_HEAD.fullmatch(text, head, backslash)
        and not patterns.REG_HIVE.match(text, head)
    ):
        if text[head:backslash] in _KERNEL_NAMESPACES:
            return None  # a mutex or event name ("Global\\MSCTF.Asm"), no file
        if head >= 5 and text[head - 5 : head].lower() == "$env:":
            return head - 5  # PowerShell: "$env:TEMP\\s.ps1"
        return head
    return None


def find_unix_paths(text: str, refanged: Refanged) -> Iterator[Candidate]:
    """`/etc/cron.d/x`, `/tmp/.x/kworker`, `~/.bash_history`."""
    starts = [match.start() for match in patterns.UNIX_ANCHOR.finditer(text)]
    starts += find_all(text, "~/")
    covered = -1
    for start in sorted(starts):
        if start < covered or (start > 0 and text[start - 1] not in PATH_OPENERS):
            continue
        match = patterns.UNIX_PATH.match(text, start)
        if not match:
            continue
        end = trim_end(text, start, match.end(), refanged)
        covered = end
        path = text[start:end]
        if path.endswith("//"):
            continue
        if path.count("/") >= 2 or (path.startswith("~/") and len(path) > 3):
            yield (start, end, "unix_path", path, False)  # "~/.bash_history" too

"""Files in and out: writes that never leave a half-written file, and one folder walker.

Every file MitreMap writes (exports, indicator lists, corpus files, caches) goes through
`atomic_writer`: the bytes go to a temporary file beside the target, which replaces the target
only once complete and flushed. A full disk, a read-only folder or a missing parent keeps the
previous good file and becomes an `OutputError` naming the path. A new file gets the
permissions any program's new file gets (0666 less the umask: `mkstemp` alone would make every
export private to its owner); a replaced file keeps its own.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any, Literal, overload

from mitremap.errors import OutputError


@overload
def atomic_writer(
    path: str | os.PathLike[str], *, binary: Literal[False] = False
) -> contextlib.AbstractContextManager[IO[str]]: ...
@overload
def atomic_writer(
    path: str | os.PathLike[str], *, binary: Literal[True]
) -> contextlib.AbstractContextManager[IO[bytes]]: ...
@contextlib.contextmanager
def atomic_writer(path: str | os.PathLike[str], *, binary: bool = False) -> Iterator[IO[Any]]:
    """A handle that writes `path` all at once, or not at all."""
    target = Path(path)
    if target.is_dir():
        raise OutputError(f"cannot write {target}: it is a folder; give a file name")
    if target.exists() and not target.is_file():  # a device or pipe (/dev/stdout): no rename
        try:
            with _open(os.open(target, os.O_WRONLY), binary) as handle:
                yield handle
        except OSError as exc:
            raise OutputError(f"cannot write {target}: {exc.strerror or exc}") from exc
        return
    if not target.parent.is_dir():
        raise OutputError(f"cannot write {target}: the folder {target.parent} does not exist")
    try:
        fd, tmp_name = tempfile.mkstemp(
            prefix=f".{target.name}.", suffix=".part", dir=target.parent
        )
    except OSError as exc:
        raise OutputError(f"cannot write {target}: {exc.strerror or exc}") from exc
    tmp = Path(tmp_name)
    try:
        os.chmod(fd, _mode_for(target))
        with _open(fd, binary) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except OSError as exc:
        raise OutputError(f"cannot write {target}: {exc.strerror or exc}") from exc
    finally:
        tmp.unlink(missing_ok=True)


def _mode_for(target: Path) -> int:
    """The permission bits the written file should have: the replaced file's, else 0666 less
    the process' umask."""
    try:
        return stat.S_IMODE(target.stat().st_mode)
    except OSError:
        return 0o666 & ~current_umask()


def current_umask() -> int:
    """The process' umask, read without changing it where the system says it (Linux's
    /proc/self/status); elsewhere set and restored at once."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _open(fd: int, binary: bool) -> IO[Any]:
    return os.fdopen(fd, "wb") if binary else os.fdopen(fd, "w", encoding="utf-8")


def write_text(path: str | os.PathLike[str], text: str) -> Path:
    """`text` into `path`, atomically (see `atomic_writer`)."""
    with atomic_writer(path) as handle:
        handle.write(text)
    return Path(path)


def check_writable_folder(path: str | os.PathLike[str]) -> Path:
    """Fail before long work when its output folder cannot be made or written."""
    folder = Path(path)
    if folder.exists() and not folder.is_dir():
        raise OutputError(f"cannot write into {folder}: it is a file, not a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create {folder}: {exc.strerror or exc}") from exc
    if not os.access(folder, os.W_OK):
        raise OutputError(f"cannot write into {folder}: permission denied")
    return folder


@contextlib.contextmanager
def exclusive_lock(
    path: str | os.PathLike[str], on_wait: Callable[[], object] | None = None
) -> Iterator[None]:
    """Hold an exclusive lock on the file `path` (made if needed) for the `with` block; when
    another process holds it, call `on_wait()` once and wait for it. The system releases the
    lock when its holder exits, however it exits, so a killed holder never blocks the next."""
    lock = Path(path)
    lock.parent.mkdir(parents=True, exist_ok=True)
    with open(lock, "a+b") as handle:
        if not _try_lock(handle, blocking=False):
            if on_wait is not None:
                on_wait()
            _try_lock(handle, blocking=True)
        try:
            yield
        finally:
            _unlock(handle)


def _try_lock(handle: IO[bytes], *, blocking: bool) -> bool:
    try:
        import fcntl
    except ImportError:  # Windows: a byte-range lock on the file's first byte
        import msvcrt

        mode = msvcrt.LK_LOCK if blocking else msvcrt.LK_NBLCK  # type: ignore[attr-defined]
        while True:
            try:
                msvcrt.locking(handle.fileno(), mode, 1)  # type: ignore[attr-defined]
                return True
            except OSError:
                if not blocking:
                    return False
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
    except BlockingIOError:
        return False
    return True


def _unlock(handle: IO[bytes]) -> None:
    try:
        import fcntl
    except ImportError:
        import msvcrt

        handle.seek(0)
        msvcrt.locking(handle.fileno(), msvcrt.LK_UNLCK, 1)  # type: ignore[attr-defined]
        return
    fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def visible_files(root: str | os.PathLike[str]) -> Iterator[Path]:
    """Every file under a folder, hidden files and folders left out, in name order.

    The one folder walker: `read_folder` and `mitremap batch` see the same files in the same
    order. It streams, so a batch over a huge tree starts at once.
    """
    for folder, subfolders, names in os.walk(root):
        subfolders[:] = sorted(name for name in subfolders if not name.startswith("."))
        for name in sorted(names):
            if not name.startswith("."):
                yield Path(folder, name)

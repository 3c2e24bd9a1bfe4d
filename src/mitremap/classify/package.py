"""A trained model as one shareable file: a team trains once and everyone installs it.

`export_model` writes a model folder's files — the two model files and the ATT&CK knowledge
it carries (`classify.knowledge`) — into a `.tar.gz` and returns its SHA-256. The archive is
reproducible: members in name order with fixed metadata (no time, owner or mode of the
machine) in a gzip stream without a time stamp, so the same model gives the same bytes and the
same SHA-256 on any machine, at any time. `install_model` reads such an archive (a file, or a
URL downloaded with the data module's size and hash checks), refuses anything but the expected
regular files (no links, no paths, bounded sizes), loads the result with every check
`load_model` makes (and the knowledge with its own), and only then moves it into place: a
damaged or hostile archive never replaces a working model.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import tarfile
import tempfile
from pathlib import Path

from mitremap.classify.base import ARRAYS, MANIFEST
from mitremap.classify.knowledge import KNOWLEDGE, MAX_KNOWLEDGE_BYTES, read_knowledge
from mitremap.classify.load import load_model
from mitremap.errors import ModelError

MAX_PACKAGE_BYTES = 512 * 1024 * 1024
MAX_MEMBER_BYTES = {
    MANIFEST: 64 * 1024 * 1024,
    ARRAYS: 1024 * 1024 * 1024,
    KNOWLEDGE: MAX_KNOWLEDGE_BYTES,
}
REQUIRED = (MANIFEST, ARRAYS)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def export_model(folder: str | os.PathLike[str], target: str | os.PathLike[str]) -> str:
    """Pack the model at `folder` (checked to load first, its knowledge too) into `target`,
    reproducibly (see the module docstring); its SHA-256."""
    from mitremap.files import atomic_writer

    source = Path(folder)
    load_model(source)  # never share a model that does not load
    names = [*REQUIRED, *([KNOWLEDGE] if read_knowledge(source) is not None else [])]
    with (
        atomic_writer(target, binary=True) as handle,
        gzip.GzipFile(filename="", mode="wb", fileobj=handle, mtime=0) as zipped,
        tarfile.open(fileobj=zipped, mode="w", format=tarfile.USTAR_FORMAT) as archive,
    ):
        for name in sorted(names):
            with (source / name).open("rb") as member:
                archive.addfile(_member_info(name, (source / name).stat().st_size), member)
    return sha256_of(Path(target))


def _member_info(name: str, size: int) -> tarfile.TarInfo:
    """A member's header with nothing of this machine or this moment in it."""
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = size, 0o644, 0
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def install_model(
    package: str | os.PathLike[str],
    target: str | os.PathLike[str],
    sha256: str | None = None,
) -> str:
    """Install the model archive `package` (a path or an http(s) URL) as the folder `target`;
    returns the archive's SHA-256 (checked against `sha256` when given)."""
    with tempfile.TemporaryDirectory(prefix="mitremap-install-") as work:
        archive_path = _local_copy(str(package), Path(work))
        digest = sha256_of(archive_path)
        if sha256 is not None and digest != sha256.lower():
            raise ModelError(f"{package}: SHA-256 is {digest}, expected {sha256}")
        staged = Path(work) / "model"
        staged.mkdir()
        _unpack(archive_path, staged, str(package))
        load_model(staged)  # every check a load makes, before anything is replaced
        read_knowledge(staged)  # and the knowledge's (size, hash, layout) when it carries one
        destination = Path(target)
        destination.parent.mkdir(parents=True, exist_ok=True)
        old = destination.with_name(f".{destination.name}.old")
        if destination.exists():
            shutil.rmtree(old, ignore_errors=True)
            destination.rename(old)
        shutil.move(str(staged), destination)
        shutil.rmtree(old, ignore_errors=True)
    return digest


def _local_copy(package: str, work: Path) -> Path:
    if package.startswith(("http://", "https://")):
        from mitremap.data import download
        from mitremap.errors import DownloadError

        try:
            return download(package, work / "model.tar.gz", max_bytes=MAX_PACKAGE_BYTES)
        except DownloadError as exc:
            raise ModelError(str(exc)) from exc
    path = Path(package)
    if not path.is_file():
        raise ModelError(f"{package}: no such model archive")
    if path.stat().st_size > MAX_PACKAGE_BYTES:
        raise ModelError(f"{package}: larger than {MAX_PACKAGE_BYTES // 2**20} MB")
    return path


def _unpack(archive_path: Path, staged: Path, label: str) -> None:
    """Exactly the two model files (and the knowledge, when there), as regular files, within
    their size bounds."""
    try:
        with tarfile.open(archive_path, mode="r:gz") as archive:
            members = archive.getmembers()
            names = sorted(m.name for m in members)
            if names not in (sorted(REQUIRED), sorted((*REQUIRED, KNOWLEDGE))):
                raise ModelError(f"{label}: not a MitreMap model archive (holds {names[:5]})")
            for member in members:
                if not member.isfile() or member.size > MAX_MEMBER_BYTES[member.name]:
                    raise ModelError(f"{label}: {member.name} is not a bounded regular file")
                source = archive.extractfile(member)
                if source is None:
                    raise ModelError(f"{label}: {member.name} cannot be read")
                with (staged / member.name).open("wb") as out:
                    shutil.copyfileobj(source, out, 1 << 20)
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise ModelError(f"{label}: not a readable model archive ({exc})") from exc

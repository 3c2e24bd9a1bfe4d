"""A trained model as one shareable file: a team trains once and everyone installs it.

`export_model` writes a model folder's two files into a `.tar.gz` and returns its SHA-256.
`install_model` reads such an archive (a file, or a URL downloaded with the data module's size
and hash checks), refuses anything but the two expected regular files (no links, no paths,
bounded sizes), loads the result with every check `load_model` makes, and only then moves it
into place: a damaged or hostile archive never replaces a working model.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import tarfile
import tempfile
from pathlib import Path

from mitremap.classify.base import ARRAYS, MANIFEST
from mitremap.classify.load import load_model
from mitremap.errors import ModelError

MAX_PACKAGE_BYTES = 512 * 1024 * 1024
MAX_MEMBER_BYTES = {MANIFEST: 64 * 1024 * 1024, ARRAYS: 1024 * 1024 * 1024}


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def export_model(folder: str | os.PathLike[str], target: str | os.PathLike[str]) -> str:
    """Pack the model at `folder` (checked to load first) into `target`; its SHA-256."""
    from mitremap.files import atomic_writer

    source = Path(folder)
    load_model(source)  # never share a model that does not load
    with (
        atomic_writer(target, binary=True) as handle,
        tarfile.open(fileobj=handle, mode="w:gz") as archive,
    ):
        for name in (MANIFEST, ARRAYS):
            data = (source / name).read_bytes()
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o644
            archive.addfile(info, io.BytesIO(data))
    return sha256_of(Path(target))


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
    """Exactly the two model files, as regular files, within their size bounds."""
    try:
        with tarfile.open(archive_path, mode="r:gz") as archive:
            members = archive.getmembers()
            names = sorted(m.name for m in members)
            if names != sorted((MANIFEST, ARRAYS)):
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

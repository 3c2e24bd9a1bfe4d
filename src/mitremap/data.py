"""Where data comes from. One resolver decides; everything else asks it.

Order: an explicit folder (`--data DIR` / `data_dir=`), the `MITREMAP_DATA` environment
variable (a local mirror laid out like the project's shared data folder), the user cache,
and — for users with internet — a download from the public origin into the user cache.

This module only locates and downloads files; turning a downloaded archive into a mirror file
is `mitremap.training.converters`' job. Every origin URL can be redirected with one setting:
`MITREMAP_ORIGIN=http://host/path` (or `DataResolver(origin=...)`) fetches
`https://github.com/a/b/...` from `http://host/path/github.com/a/b/...` — an internal artifact
mirror for machines without internet, or a local server in tests.

Downloads report progress through a callback (the pipeline never prints), verify size and
SHA-256 when known, and write atomically: the bytes go to a temporary file that is renamed
into place only once complete and verified, so an interrupted download is never read as valid.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from mitremap.errors import DataNotFoundError, DownloadError
from mitremap.sources import ATTACK_ORIGIN, DEFAULT_ATTACK_VERSION, SOURCES

ENV_DATA = "MITREMAP_DATA"
ENV_CACHE = "MITREMAP_CACHE"
ENV_OFFLINE = "MITREMAP_OFFLINE"
ENV_ORIGIN = "MITREMAP_ORIGIN"

MAX_DOWNLOAD_BYTES = 512 * 1024 * 1024

Progress = Callable[[int, int | None], None]
"""Called with (bytes so far, total bytes or None) while a download runs."""


@dataclass(frozen=True)
class Located:
    """Where one data file was found: `where` is 'option', 'env', 'cache' or 'missing'."""

    name: str
    path: Path | None
    where: str
    size: int = 0


class DataResolver:
    """Finds data files; downloads ATT&CK into the cache when allowed and needed, and the
    artifacts `mitremap data fetch` converts."""

    def __init__(
        self,
        data_dir: str | os.PathLike[str] | None = None,
        cache_dir: str | os.PathLike[str] | None = None,
        offline: bool | None = None,
        origin: str | None = None,
    ) -> None:
        self.mirror, self.mirror_origin = _choose_mirror(data_dir)
        self.cache_dir = Path(cache_dir) if cache_dir else default_cache_dir()
        self.offline = bool(os.environ.get(ENV_OFFLINE)) if offline is None else offline
        if origin is None:
            origin = os.environ.get(ENV_ORIGIN)
        self.origin = origin or None  # "": the real origins, whatever the environment says
        self._downloaded: dict[str, Path] = {}

    @property
    def models_dir(self) -> Path:
        return self.cache_dir / "models"

    def find(self, relative: str) -> Located:
        """A file by its mirror-relative path, from the mirror or the cache; never downloads."""
        for root, where in ((self.mirror, self.mirror_origin), (self.cache_dir / "data", "cache")):
            if root is not None and (root / relative).is_file():
                path = root / relative
                return Located(relative, path, where, path.stat().st_size)
        return Located(relative, None, "missing")

    def require(self, relative: str) -> Path:
        """A file that must exist locally, with an error that says how to provide it."""
        located = self.find(relative)
        if located.path is None:
            raise DataNotFoundError(
                f"{relative} not found in {self._where_looked()}; point --data or "
                f"{ENV_DATA} at a data mirror, or run 'mitremap data fetch'"
            )
        return located.path

    def attack_bundle(
        self, version: str = DEFAULT_ATTACK_VERSION, progress: Progress | None = None
    ) -> Path:
        """The ATT&CK Enterprise bundle of `version`: local if present, else downloaded."""
        relative = f"attack/enterprise-attack-{version}.json"
        located = self.find(relative)
        if located.path is not None:
            return located.path
        gzipped = self.find(relative + ".gz")
        if gzipped.path is not None:
            return gzipped.path
        if self.offline:
            raise DataNotFoundError(
                f"ATT&CK {version} bundle not found in {self._where_looked()} and downloads are off "
                f"({ENV_OFFLINE} is set); point --data or {ENV_DATA} at a data mirror"
            )
        target = self.cache_file(relative)
        try:
            download(
                self.origin_url(ATTACK_ORIGIN.format(version=version)), target, progress=progress
            )
        except DownloadError as exc:
            raise DataNotFoundError(
                f"ATT&CK {version} bundle not found in {self._where_looked()} and the download "
                f"failed ({exc}); point --data or {ENV_DATA} at a data mirror"
            ) from exc
        return target

    def cache_file(self, relative: str) -> Path:
        """Where a mirror file fetched from its origin lives in the cache."""
        return self.cache_dir / "data" / relative

    def origin_url(self, url: str) -> str:
        """`url`, or where the origin override (`MITREMAP_ORIGIN`) serves it."""
        if self.origin is None:
            return url
        return f"{self.origin.rstrip('/')}/{url.split('://', 1)[-1]}"

    def download_origin(self, url: str, progress: Progress | None = None) -> Path:
        """Download an origin artifact into the cache's raw folder (once per resolver: sources
        that share an archive share the download)."""
        if url in self._downloaded and self._downloaded[url].is_file():
            return self._downloaded[url]
        digest = hashlib.sha256(url.encode()).hexdigest()[:12]
        name = re.sub(r"[^A-Za-z0-9._-]", "_", url.rsplit("/", 1)[-1])[-80:]
        target = self.download_to(url, self.cache_dir / "raw" / f"{digest}-{name}", progress)
        self._downloaded[url] = target
        return target

    def download_to(self, url: str, target: Path, progress: Progress | None = None) -> Path:
        """Download an origin's `url` (redirected by the override) to `target`, if allowed."""
        if self.offline:
            raise DataNotFoundError(
                f"downloads are off ({ENV_OFFLINE} is set); point --data or {ENV_DATA} at a "
                "data mirror"
            )
        return download(self.origin_url(url), target, progress=progress)

    def discard_downloads(self) -> None:
        """Delete the raw artifacts this resolver downloaded (their converted files stay)."""
        for path in self._downloaded.values():
            path.unlink(missing_ok=True)
        self._downloaded.clear()

    def status(self) -> list[Located]:
        return [self.find(s.path) if s.path else Located(s.name, None, "bundle") for s in SOURCES]

    def _where_looked(self) -> str:
        places = []
        if self.mirror is not None:
            places.append(
                f"{self.mirror} ({'--data' if self.mirror_origin == 'option' else ENV_DATA})"
            )
        places.append(f"{self.cache_dir / 'data'} (cache)")
        return " or ".join(places)


def default_cache_dir() -> Path:
    """`MITREMAP_CACHE`, else the platform's user cache folder (e.g. ~/.cache/mitremap)."""
    env = os.environ.get(ENV_CACHE)
    if env:
        return Path(env).expanduser()
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("mitremap", appauthor=False))


def _choose_mirror(data_dir: str | os.PathLike[str] | None) -> tuple[Path | None, str]:
    if data_dir is not None:
        path = Path(data_dir).expanduser()
        if not path.is_dir():
            raise DataNotFoundError(f"Data folder given with --data does not exist: {path}")
        return path, "option"
    env = os.environ.get(ENV_DATA)
    if env:
        path = Path(env).expanduser()
        if not path.is_dir():
            raise DataNotFoundError(f"{ENV_DATA} points at a folder that does not exist: {path}")
        return path, "env"
    return None, "missing"


def download(
    url: str,
    target: Path,
    *,
    sha256: str | None = None,
    size: int | None = None,
    progress: Progress | None = None,
    timeout: float = 30.0,
    max_bytes: int = MAX_DOWNLOAD_BYTES,
) -> Path:
    """Download `url` to `target` atomically, checking size and hash when given."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
    tmp = Path(tmp_name)
    try:
        request = urllib.request.Request(url, headers={"User-Agent": "mitremap"})
        with (
            os.fdopen(fd, "wb") as out,
            urllib.request.urlopen(request, timeout=timeout) as response,
        ):
            length = response.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else size
            received, digest = _copy(response, out, url, total, progress, max_bytes)
        _check(url, received, digest, size=size, total=total, sha256=sha256)
        os.replace(tmp, target)
        return target
    except urllib.error.HTTPError as exc:
        exc.close()  # it holds the answer, and so the connection
        raise DownloadError(f"cannot download {url}: HTTP {exc.code} {exc.reason}") from exc
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise DownloadError(f"cannot download {url}: {reason}") from exc
    finally:
        if tmp.exists():
            tmp.unlink()


def _copy(
    response: IO[bytes],
    out: IO[bytes],
    url: str,
    total: int | None,
    progress: Progress | None,
    max_bytes: int,
) -> tuple[int, str]:
    """The response copied into `out`, never past `max_bytes`: the bytes received, and their
    SHA-256."""
    digest = hashlib.sha256()
    received = 0
    while chunk := response.read(1 << 16):
        received += len(chunk)
        if received > max_bytes:
            raise DownloadError(f"{url} is larger than {max_bytes // 2**20} MB")
        digest.update(chunk)
        out.write(chunk)
        if progress is not None:
            progress(received, total)
    return received, digest.hexdigest()


def _check(
    url: str,
    received: int,
    digest: str,
    *,
    size: int | None,
    total: int | None,
    sha256: str | None,
) -> None:
    """A download is whole (the size expected, the size the server said) and, when a hash is
    given, the file meant."""
    if size is not None and received != size:
        raise DownloadError(f"{url}: got {received} bytes, expected {size}")
    if total is not None and received != total:
        raise DownloadError(f"{url}: download interrupted ({received} of {total} bytes)")
    if sha256 is not None and digest != sha256.lower():
        raise DownloadError(f"{url}: SHA-256 mismatch (got {digest[:12]}…)")

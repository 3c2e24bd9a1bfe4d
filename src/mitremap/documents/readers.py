"""Reading a report from wherever an analyst has it: a file, stdin, a URL, bytes, a folder.

Every reader ends in `read_bytes`, which detects the format by content and extracts the text
(see `formats`). Limits are checked before anything big is read: a file's size from the file
system, a download's size as it arrives (and its Content-Length up front), so a 200 MB file
fails at once and a slow server cannot hang a run. Problems raise `DocumentError` (an
`InputError`) with a one-line message; a missing optional reader raises `MissingExtraError`.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import stat
import sys
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from mitremap.deadline import Deadline
from mitremap.documents import formats
from mitremap.documents.budget import DEFAULT, Budget
from mitremap.documents.dates import stated_date
from mitremap.documents.docx import docx_text
from mitremap.documents.formats import DocumentError, TooLargeDocumentError
from mitremap.documents.html import html_text
from mitremap.documents.model import Document, first_line
from mitremap.documents.pdf import pdf_text
from mitremap.errors import MitreMapError
from mitremap.files import visible_files

DEFAULT_MAX_BYTES = 50 * 1024 * 1024
DEFAULT_TIMEOUT = 30.0
"""Seconds a URL may take in all (connecting, and the whole download)."""

_URL_TYPES = {
    "text/plain",
    "text/html",
    "text/markdown",
    "text/x-markdown",
    "application/xhtml+xml",
    "application/pdf",
    "application/x-pdf",
    formats.DOCX,
    "application/octet-stream",  # servers that do not know: the content decides
    "binary/octet-stream",
}

MAX_REDIRECTS = 5
AddressCheck = Callable[[str, ipaddress.IPv4Address | ipaddress.IPv6Address], None]
"""Called with a host name and one address it resolves to; raises to refuse connecting."""

FolderProgress = Callable[[int, int, Path], None]
"""Called after each file of a folder with (files done, files in all, the file)."""


@dataclass(frozen=True)
class FolderResult:
    """The documents read from a folder, and each file skipped with the reason why."""

    documents: list[Document] = field(default_factory=list)
    skipped: list[tuple[Path, str]] = field(default_factory=list)


def read_document(
    source: str | os.PathLike[str],
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    timeout: float = DEFAULT_TIMEOUT,
    deadline: Deadline | None = None,
    budget: Budget = DEFAULT,
) -> Document:
    """A document from a path, an http(s) URL, or "-" for standard input.

    Every reader takes a `deadline` (reading stops with `TimeLimitError` when it passes) and
    a `budget` of work by the document's shape (reading stops early, keeping what it read,
    and the document's warnings say so)."""
    if isinstance(source, str):
        if source == "-":
            return read_stdin(max_bytes=max_bytes, deadline=deadline, budget=budget)
        if source.lower().startswith(("http://", "https://")):
            return read_url(
                source, max_bytes=max_bytes, timeout=timeout, deadline=deadline, budget=budget
            )
    return read_file(source, max_bytes=max_bytes, deadline=deadline, budget=budget)


def read_file(
    path: str | os.PathLike[str],
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    deadline: Deadline | None = None,
    budget: Budget = DEFAULT,
) -> Document:
    """A document from a file; its size is checked before a byte is read."""
    path = Path(path)
    origin = str(path)
    try:
        info = path.stat()
    except FileNotFoundError:
        raise DocumentError(origin, "no such file") from None
    except OSError as error:
        raise DocumentError(origin, f"cannot open: {error.strerror or error}") from None
    if stat.S_ISDIR(info.st_mode):
        raise DocumentError(origin, "this is a folder: name a file, or read the folder as a batch")
    if not stat.S_ISREG(info.st_mode):
        raise DocumentError(origin, "not a regular file")
    _check_size(origin, info.st_size, max_bytes)
    try:
        with path.open("rb") as file:
            data = file.read(max_bytes + 1)
    except OSError as error:
        raise DocumentError(origin, f"cannot read: {error.strerror or error}") from None
    _check_size(origin, len(data), max_bytes)  # it may have grown since stat()
    # no `date`: a file's modification time says when it was copied, not when it was written
    return read_bytes(data, name=path.name, origin=origin, deadline=deadline, budget=budget)


def read_stdin(
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    deadline: Deadline | None = None,
    budget: Budget = DEFAULT,
) -> Document:
    """A document piped into standard input (any supported format)."""
    stream = getattr(sys.stdin, "buffer", None)
    if stream is None:
        raise DocumentError("<stdin>", "no standard input to read")
    if stream.isatty():
        raise DocumentError("<stdin>", "standard input is a terminal: pipe a report in")
    data = stream.read(max_bytes + 1)
    _check_size("<stdin>", len(data), max_bytes)
    return read_bytes(data, origin="<stdin>", deadline=deadline, budget=budget)


def read_bytes(
    data: bytes,
    *,
    name: str = "",
    origin: str = "<bytes>",
    charset: str | None = None,
    title: str | None = None,
    deadline: Deadline | None = None,
    budget: Budget = DEFAULT,
) -> Document:
    """A document from raw bytes (an upload, a download): the format comes from the content,
    then from `name`; `charset` is a hint for text (an HTTP header's)."""
    if not data.strip():
        raise DocumentError(origin, "the input is empty")
    kind = formats.detect(data, name, origin)
    notes: list[str] = []
    found_title = ""
    if kind == formats.PDF:
        text, found_title, notes = pdf_text(data, origin, deadline=deadline, budget=budget)
    elif kind == formats.DOCX:
        text, found_title, notes = docx_text(data, origin, deadline=deadline, budget=budget)
    else:
        text, notes = formats.decode(data, origin, charset or formats.html_charset(data))
        kind = formats.text_kind(text, name)
        if kind == formats.HTML:
            text, found_title, more = html_text(text, origin, deadline=deadline, budget=budget)
            notes += more
    if not text.strip():
        raise DocumentError(origin, "the input has only whitespace")
    title = title if title is not None else found_title or first_line(text)
    published = stated_date(text)
    date = published.isoformat() if published else ""
    return Document(text, title, origin, kind, tuple(notes), date)


def read_url(
    url: str,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    timeout: float = DEFAULT_TIMEOUT,
    check: Callable[[str], None] | None = None,
    check_address: AddressCheck | None = None,
    deadline: Deadline | None = None,
    budget: Budget = DEFAULT,
) -> Document:
    """A document downloaded over http(s), refused when too big, too slow or not a document.

    Redirects are followed, at most `MAX_REDIRECTS`, and only to http(s). `check` is called
    with the URL and with every redirect's target before it is requested (it raises to refuse
    one). `check_address` is called with the host name and each address it resolves to, on
    every connection (redirects included), and the connection goes to the addresses it was
    shown, so a name that resolves differently a second time (DNS rebinding) cannot slip
    past it; with it, proxies from the environment are not used."""
    import http.client
    import urllib.error
    import urllib.request

    from mitremap import __version__

    if check is not None:
        check(url)
    opener = _opener(url, check, check_address)
    request = urllib.request.Request(url, headers={"User-Agent": f"mitremap/{__version__}"})
    deadline = deadline or Deadline.none()
    download_until = time.monotonic() + timeout
    chunks: list[bytes] = []
    try:
        with opener.open(request, timeout=min(timeout, deadline.left())) as response:
            final_url = response.geturl()
            media_type = response.headers.get_content_type()
            charset = response.headers.get_content_charset()
            if media_type not in _URL_TYPES:
                raise DocumentError(url, f"the server sent {media_type}, not a report")
            length = response.headers.get("Content-Length", "")
            if length.isdigit():
                _check_size(url, int(length), max_bytes)
            received = 0
            while chunk := response.read1(64 * 1024):
                received += len(chunk)
                _check_size(url, received, max_bytes)
                if time.monotonic() > download_until:
                    raise DocumentError(url, f"the download took more than {timeout:g} s")
                deadline.check("downloading the report")
                chunks.append(chunk)
    except urllib.error.HTTPError as error:
        error.close()  # it holds the answer, and so the connection
        raise DocumentError(url, f"the server answered HTTP {error.code} {error.reason}") from None
    except urllib.error.URLError as error:
        raise DocumentError(url, f"cannot connect: {formats.one_line(error.reason)}") from None
    except TimeoutError:
        deadline.check("downloading the report")
        raise DocumentError(url, f"no answer within {timeout:g} s") from None
    except (OSError, http.client.HTTPException, ValueError) as error:
        raise DocumentError(url, f"the download failed: {formats.one_line(error)}") from None
    name = PurePosixPath(urllib.parse.urlparse(final_url).path).name
    return read_bytes(
        b"".join(chunks),
        name=name,
        origin=final_url,
        charset=charset,
        deadline=deadline,
        budget=budget,
    )


def _opener(
    url: str, check: Callable[[str], None] | None, check_address: AddressCheck | None
) -> Any:
    """A urllib opener whose redirects are capped and checked, and whose connections (when
    `check_address` is given) go only to addresses it allowed."""
    import http.client
    import urllib.request

    class Redirects(urllib.request.HTTPRedirectHandler):
        followed = 0

        def redirect_request(
            self,
            req: urllib.request.Request,
            fp: Any,
            code: int,
            msg: str,
            headers: Any,
            newurl: str,
        ) -> urllib.request.Request | None:
            try:
                self.followed += 1
                if self.followed > MAX_REDIRECTS:
                    raise DocumentError(url, f"more than {MAX_REDIRECTS} redirects")
                if urllib.parse.urlsplit(newurl).scheme.lower() not in ("http", "https"):
                    raise DocumentError(url, f"a redirect to {newurl[:200]}: not http(s)")
                if check is not None:
                    check(newurl)
            except BaseException:
                fp.close()
                raise
            return super().redirect_request(req, fp, code, msg, headers, newurl)

    handlers: list[urllib.request.BaseHandler] = [Redirects()]
    if check_address is not None:
        connect = _checked_connect(check_address)

        def pinned(base: type[http.client.HTTPConnection]) -> Callable[..., Any]:
            def connection(host: str, **options: Any) -> http.client.HTTPConnection:
                made = base(host, **options)
                made._create_connection = connect  # type: ignore[attr-defined]
                return made

            return connection

        class Http(urllib.request.HTTPHandler):
            def http_open(self, req: urllib.request.Request) -> Any:
                return self.do_open(pinned(http.client.HTTPConnection), req)

        class Https(urllib.request.HTTPSHandler):
            def https_open(self, req: urllib.request.Request) -> Any:
                return self.do_open(
                    pinned(http.client.HTTPSConnection),
                    req,
                    context=self._context,  # type: ignore[attr-defined]
                )

        handlers += [urllib.request.ProxyHandler({}), Http(), Https()]
    return urllib.request.build_opener(*handlers)


def _checked_connect(check_address: AddressCheck) -> Callable[..., socket.socket]:
    """`socket.create_connection` that resolves the name once, shows every address to
    `check_address`, then connects to those same addresses (never resolving again)."""

    def connect(
        address: tuple[str, int],
        timeout: Any = socket._GLOBAL_DEFAULT_TIMEOUT,  # type: ignore[attr-defined]
        source_address: Any = None,
        **_: Any,
    ) -> socket.socket:
        host, port = address
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        for *_rest, sockaddr in found:
            check_address(host, ipaddress.ip_address(str(sockaddr[0]).split("%")[0]))
        error: OSError | None = None
        for *_rest, sockaddr in found:
            try:
                return socket.create_connection((str(sockaddr[0]), port), timeout, source_address)
            except OSError as exc:
                error = exc
        raise error or OSError(f"cannot resolve {host}")

    return connect


def read_folder(
    path: str | os.PathLike[str],
    *,
    progress: FolderProgress | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    time_limit: float | None = None,
    budget: Budget = DEFAULT,
) -> FolderResult:
    """Every readable file under a folder (hidden files and folders ignored), in name order.

    Files that cannot be read (within `time_limit` seconds each) are skipped with their
    reason; a folder with nothing readable raises DocumentError, since a batch of zero
    reports is always a mistake.
    """
    root = Path(path)
    if not root.is_dir():
        raise DocumentError(str(root), "no such folder" if not root.exists() else "not a folder")
    files = list(visible_files(root))
    if not files:
        raise DocumentError(str(root), "the folder has no files")
    result = FolderResult()
    for done, file in enumerate(files, 1):
        try:
            deadline = Deadline.after(time_limit)
            read = read_file(file, max_bytes=max_bytes, deadline=deadline, budget=budget)
            result.documents.append(read)
        except DocumentError as error:
            result.skipped.append((file, error.reason))
        except MitreMapError as error:  # a missing optional reader, the time limit
            result.skipped.append((file, str(error)))
        if progress is not None:
            progress(done, len(files), file)
    if not result.documents:
        first, reason = result.skipped[0]
        raise DocumentError(
            str(root),
            f"none of its {len(files)} files could be read (first: {first.name}: {reason})",
        )
    return result


def _check_size(origin: str, size: int, max_bytes: int) -> None:
    if size > max_bytes:
        raise TooLargeDocumentError(
            origin, f"too large ({_megabytes(size)}; the limit is {_megabytes(max_bytes)})"
        )


def _megabytes(size: int) -> str:
    return f"{size / 2**20:.1f} MB" if size >= 2**20 else f"{size:,} bytes"

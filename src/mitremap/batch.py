"""A whole corpus: every report in folders or JSONL files, analyzed in parallel, into JSONL.

Each line of the output is one document's result (the CLI's JSON schema plus `id`), or
`{"id", "origin", "error"}` for a document that could not be read — a file that cannot be
opened as one (a dangling symbolic link, a link loop, a named pipe) included: nothing in a
folder is passed over without a record, except the output file itself. Lines are written and
flushed as documents finish, and a re-run skips the documents already in the output, so an
interrupted run loses no work. Sources are streamed: a JSONL corpus is read a line at a time
(once to count and check it, once to do the work), and only a few documents per worker are in
flight. Each document has its own time limit (`Settings.time_limit_s`). Work runs in local
processes (`workers`), or on a Dask cluster (`scheduler="tcp://host:8786"`, the `cluster`
extra) where each worker loads the model once.
"""

from __future__ import annotations

import errno
import json
import os
import stat
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from mitremap.deadline import DEFAULT_TIME_LIMIT_S, Deadline
from mitremap.errors import InputError, MissingExtraError, MitreMapError
from mitremap.files import visible_files

MAX_LINE_BYTES = 50 * 1024 * 1024
IN_FLIGHT_PER_WORKER = 4
"""Documents handed to each worker ahead of time (the rest stay unread in their source)."""


@dataclass(frozen=True)
class Job:
    """One document to analyze: a file to read, or text from a JSONL record."""

    id: str
    path: str | None = None
    text: str | None = None
    title: str = ""
    origin_hint: str = ""  # where it was read (file:line), to tell repeated ids apart
    problem: str = ""  # why a file found in a folder cannot be read at all (then recorded)


@dataclass(frozen=True)
class Settings:
    model: str | None = None
    threshold: float = 0.6
    window: int = 3
    iocs: bool = True
    time_limit_s: float | None = DEFAULT_TIME_LIMIT_S  # per document; None: no limit


@dataclass
class BatchSummary:
    done: int = 0
    skipped: int = 0  # already in the output from an earlier run
    failed: int = 0
    errors: list[tuple[str, str]] = field(default_factory=list)


def jobs_from(
    sources: Iterable[str | os.PathLike[str]], *, leave_out: Path | None = None
) -> Iterator[Job]:
    """Jobs from files, folders (every file inside, hidden ones excepted) and `.jsonl` files
    whose lines hold `{"id"?, "title"?, "text"}`, one at a time. A file's id is its absolute
    path, however the folder was spelled; an id seen before gets its source line added, so no
    record is mistaken for one already done. A file found in a folder that is not a regular
    file is a job with its `problem`; `leave_out` (the run's own output) is no job at all."""
    seen: set[str] = set()
    left_out = _identity(leave_out) if leave_out is not None else None
    for job in _jobs(sources, left_out):
        if job.id in seen:
            job = replace(job, id=f"{job.id}@{job.origin_hint}")
        seen.add(job.id)
        yield job


def _jobs(
    sources: Iterable[str | os.PathLike[str]], left_out: tuple[int, int] | None
) -> Iterator[Job]:
    for source in sources:
        path = Path(source)
        if path.is_dir():
            for file in visible_files(path):
                problem = _not_a_file(file)
                if problem:
                    yield Job(id=str(file.absolute()), path=str(file), problem=problem)
                elif left_out is None or _identity(file) != left_out:
                    yield Job(id=str(file.resolve()), path=str(file))
        elif path.suffix.lower() == ".jsonl" and path.is_file():
            yield from _jsonl_jobs(path)
        elif path.is_file():
            yield Job(id=str(path.resolve()), path=str(path))
        else:
            raise InputError(f"{path}: no such file or folder")


def _not_a_file(path: Path) -> str:
    """Why `path` cannot be read as a document ("" for a regular file), found without
    opening it (opening a named pipe would wait for a writer forever)."""
    try:
        info = path.stat()
    except FileNotFoundError:
        if path.is_symlink():
            return "a dangling symbolic link (its target does not exist)"
        return "no such file (removed while the folder was read)"
    except OSError as error:
        if error.errno == errno.ELOOP:
            return "a symbolic link loop"
        return f"cannot open: {error.strerror or error}"
    if stat.S_ISREG(info.st_mode):
        return ""
    if stat.S_ISDIR(info.st_mode):
        return "a symbolic link to a folder (not followed)"
    if stat.S_ISFIFO(info.st_mode):
        return "a named pipe (FIFO), not a file"
    if stat.S_ISSOCK(info.st_mode):
        return "a socket, not a file"
    return "a device, not a file"


def _identity(path: Path) -> tuple[int, int] | None:
    try:
        info = path.stat()
    except OSError:
        return None
    return info.st_dev, info.st_ino


def _jsonl_jobs(path: Path) -> Iterator[Job]:
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            if len(line) > MAX_LINE_BYTES:
                raise InputError(f"{path}, line {number}: longer than {MAX_LINE_BYTES // 2**20} MB")
            try:
                record = json.loads(line)
                text = record["text"]
            except (json.JSONDecodeError, KeyError, TypeError) as exc:
                raise InputError(f"{path}, line {number}: not a JSON object with 'text'") from exc
            yield Job(
                id=str(record.get("id", f"{path.name}:{number}")),
                text=str(text),
                title=str(record.get("title", "")),
                origin_hint=f"{path.name}:{number}",
            )


_MODELS: dict[str | None, Any] = {}


def _model(settings: Settings) -> Any:
    """The model, loaded once per process (and per Dask worker)."""
    if settings.model not in _MODELS:
        from mitremap.analysis import MitreMap

        _MODELS[settings.model] = MitreMap.load(settings.model)
    return _MODELS[settings.model]


def run_job(job: Job, settings: Settings) -> dict[str, Any]:
    """Analyze one document within its time limit; a document that cannot be read (or not in
    time) becomes an error record."""
    from mitremap.documents import Document, read_document

    if job.problem:
        return _error_record(job, f"{job.id}: {job.problem}")
    try:
        deadline = Deadline.after(settings.time_limit_s, "give it more time with --time-limit")
        if job.path is not None:
            document = read_document(job.path, deadline=deadline)
        else:
            document = Document(job.text or "", title=job.title, origin=job.id)
        if not document.text.strip():
            raise InputError(f"{job.id}: the input is empty")
        result = _model(settings).analyze(
            document,
            threshold=settings.threshold,
            window=settings.window,
            iocs=settings.iocs,
            deadline=deadline,
        )
    except MitreMapError as exc:
        return _error_record(job, str(exc))
    return {"id": job.id, **result.to_dict()}


def _error_record(job: Job, error: str) -> dict[str, Any]:
    """The output line of a document that could not be analysed (`schema.BatchErrorJSON`)."""
    from mitremap.schema import SCHEMA_VERSION

    return {
        "schema_version": SCHEMA_VERSION,
        "id": job.id,
        "origin": job.path or job.id,
        "error": error,
    }


def done_ids(output: Path) -> set[str]:
    """Ids already written to `output` by an earlier run (a torn last line is ignored)."""
    if not output.exists():
        return set()
    ids = set()
    with output.open(encoding="utf-8") as lines:
        for line in lines:
            try:
                ids.add(json.loads(line)["id"])
            except (json.JSONDecodeError, KeyError, TypeError):
                continue
    return ids


def analyze_corpus(
    sources: Iterable[str | os.PathLike[str]],
    output: str | os.PathLike[str],
    settings: Settings = Settings(),
    workers: int = 1,
    scheduler: str | None = None,
    progress: Callable[[int, int, str], None] | None = None,
) -> BatchSummary:
    """Analyze every document of `sources` into the JSONL file `output` (appending, resumable)."""
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    with output.open("a", encoding="utf-8") as out:
        _lock(out, output)  # a second run on the same output would duplicate every record
        _mend_last_line(output)  # before reading what is done: a torn line is not done
        finished = done_ids(output)
        sources = list(sources)

        def todo() -> Iterator[Job]:
            return (j for j in jobs_from(sources, leave_out=output) if j.id not in finished)

        total = sum(1 for _ in todo())  # every source checked before any work, nothing kept
        summary = BatchSummary(skipped=len(finished))
        workers = workers if total > 1 else 1  # one document: no pool to start
        for record in _results(todo(), settings, workers, scheduler):
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
            out.flush()
            if "error" in record:
                summary.failed += 1
                summary.errors.append((record["id"], record["error"]))
            else:
                summary.done += 1
            if progress is not None:
                progress(summary.done + summary.failed, total, record["id"])
    return summary


def _results(
    jobs: Iterator[Job], settings: Settings, workers: int, scheduler: str | None
) -> Iterator[dict[str, Any]]:
    """Each job's record, in the jobs' order, with a few jobs per worker in flight."""
    if scheduler:
        yield from _dask_results(jobs, settings, scheduler, workers)
    elif workers <= 1:
        for job in jobs:
            yield run_job(job, settings)
    else:
        pool = ProcessPoolExecutor(max_workers=workers, initializer=_watch_parent)
        try:
            running: deque[Future[dict[str, Any]]] = deque()
            for job in jobs:
                running.append(pool.submit(run_job, job, settings))
                if len(running) >= workers * IN_FLIGHT_PER_WORKER:
                    yield running.popleft().result()
            while running:
                yield running.popleft().result()
        finally:
            # interrupted (Ctrl-C, SIGTERM, an error): stop the workers now, not after the queue
            for process in list(getattr(pool, "_processes", {}).values()):
                process.terminate()
            pool.shutdown(wait=False, cancel_futures=True)


def _dask_results(
    jobs: Iterator[Job], settings: Settings, scheduler: str, workers: int
) -> Iterator[dict[str, Any]]:
    """Records as the cluster finishes them, with a bounded number of jobs submitted."""
    try:
        from dask.distributed import Client, as_completed
    except ImportError as exc:
        raise MissingExtraError("dask[distributed]", "cluster", "Running on a cluster") from exc
    with Client(scheduler) as client:
        ahead = max(workers, len(client.scheduler_info().get("workers", {})), 1)
        ahead *= IN_FLIGHT_PER_WORKER
        finished = as_completed()
        for job in jobs:
            finished.add(client.submit(run_job, job, settings=settings, pure=False))
            if finished.count() >= ahead:
                yield next(finished).result()
        for future in finished:
            yield future.result()


def _mend_last_line(output: Path) -> None:
    """A last line without its newline (a run killed mid-write): a complete record gets its
    newline and counts as done; a torn one is dropped and redone."""
    size = output.stat().st_size
    if size == 0:
        return
    with output.open("rb+") as handle:
        start = max(0, size - MAX_LINE_BYTES)
        handle.seek(start)
        tail = handle.read()
        if tail.endswith(b"\n"):
            return
        cut = tail.rfind(b"\n") + 1
        try:
            json.loads(tail[cut:])
            handle.seek(0, os.SEEK_END)
            handle.write(b"\n")
        except ValueError:
            handle.truncate(start + cut)


def _lock(handle: Any, output: Path) -> None:
    """One run per output file at a time."""
    try:
        import fcntl
    except ImportError:  # Windows: no advisory locks here
        return
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        raise InputError(f"{output} is being written by another batch run; wait for it") from exc


def _watch_parent() -> None:
    """In a worker process: the parent decides when to stop (Ctrl-C reaches the parent; its
    SIGTERM ends a worker at once), and the worker exits when the parent dies (SIGKILL leaves
    no one to stop it)."""
    import signal
    import threading
    import time

    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    parent = os.getppid()

    def watch() -> None:
        while True:
            time.sleep(1.0)
            if os.getppid() != parent:
                os._exit(0)

    threading.Thread(target=watch, daemon=True).start()

"""Hand-annotated threat-report text: TRAM's MAT-annotated reports and single-label set,
AnnoCTR's linked mentions and reports (train and dev splits only), Text2TTP's sentences."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from mitremap.errors import DataError
from mitremap.training.converters._archive import (
    Record,
    archive_files,
    decode,
    merge_same_text,
    record,
    relative_from,
    squash,
    technique_ids,
)
from mitremap.training.corpus import LabelledText

# ---- Text2TTP: data/sentences.csv ----------------------------------------------------------

_TEXT2TTP_DATASETS = {"text2ttp-manual": "manual", "text2ttp-tramv1": "tram"}


def read_text2ttp_csv(path: Path, source: str) -> Iterator[LabelledText]:
    """Text2TTP's sentences.csv (tech_id, text, …, dataset); `source` picks the rows:
    text2ttp-manual the hand-annotated ones, text2ttp-tramv1 those carried over from TRAM v1.

    A sentence with several techniques is one row per technique: they become one record, whose
    id is the dataset and the index of its first row in the file.
    """
    dataset = _TEXT2TTP_DATASETS.get(source.replace("_", "-"))
    if dataset is None:
        known = ", ".join(_TEXT2TTP_DATASETS)
        raise DataError(f"text2ttp-csv converts the sources {known}, not {source!r}")
    records = []
    for name, content in archive_files(path, ("sentences.csv",)):
        for index, row in enumerate(csv.DictReader(io.StringIO(decode(content)))):
            if row.get("dataset") == dataset:
                record_id = f"{dataset}-{index:05d}"
                labels = technique_ids(row.get("tech_id"))
                records.append(Record(squash(row.get("text")), record_id, labels, {"path": name}))
    return merge_same_text(records, source)


# ---- TRAM: MAT-annotated reports and the single-label set ----------------------------------

_TRAM_TECHNIQUE = re.compile(r"\((T\d{4}(?:\.\d{3})?)\)\s*$")  # "Windows Command Shell (T1059.003)"
_TRAM_MAX_BYTES = 16 * 1024 * 1024  # a long report's token spans make its .mjson large
_NOT_WORD = re.compile(r"[^\w\s]")


def tram_title(title: str) -> str:
    """A TRAM report's title as the mirror keys it: without punctuation ("AA20-258A: Chinese …"
    → "AA20258A Chinese …"), so the reports, spans and single-label sentences agree."""
    return _NOT_WORD.sub("", title)


class _Span(NamedTuple):
    start: int
    end: int
    label: str
    label_name: str


@dataclass
class _TramReport:
    title: str
    text: str
    spans: list[_Span]


def read_tram_mat(path: Path, source: str = "tram-reports") -> Iterator[LabelledText]:
    """TRAM's annotated reports: `mat_annotated_data/mjson_files/*.mjson`, the MAT annotation
    tool's JSON (the report as "signal"; one annotation set per technique, typed
    "Name (T1234.001)", of [start, end] character spans).

    `tram-reports`: one record per report (its whole text, the technique set, and every span in
    `meta.spans`); `tram-spans`: one record per annotated span, keyed "title:start-end".
    """
    if source not in ("tram-reports", "tram-spans"):
        raise DataError(
            f"tram-mat converts the sources tram-reports and tram-spans, not {source!r}"
        )
    reports = [
        report
        for name, content in archive_files(path, (".mjson",), _TRAM_MAX_BYTES)
        if (report := _tram_report(name, content)) is not None
    ]
    for report in reports:
        if source == "tram-reports":
            labels = sorted({span.label for span in report.spans})
            spans = [span._asdict() for span in report.spans]
            yield record(report.text, labels, source, report.title, spans=spans)
            continue
        for span in report.spans:
            text = report.text[span.start : span.end]
            if text.strip():
                span_id = f"{report.title}:{span.start}-{span.end}"
                yield record(text, [span.label], source, span_id, doc_title=report.title)


def _tram_report(name: str, content: bytes) -> _TramReport | None:
    """One .mjson file; None when it is not the MAT JSON expected. The title is the report's
    "title:" line (the file name when it has none)."""
    try:
        data = json.loads(content)
    except ValueError:
        return None
    text = data.get("signal") if isinstance(data, dict) else None
    if not isinstance(text, str) or not text.strip():
        return None
    first = text.split("\n", 1)[0]
    title = first[len("title:") :].strip(" ") if first.startswith("title:") else ""
    title = tram_title(title or name.rsplit("/", 1)[-1].removesuffix(".mjson"))
    spans = []
    for aset in data.get("asets") or ():
        kind = str(aset.get("type") or "") if isinstance(aset, dict) else ""
        match = _TRAM_TECHNIQUE.search(kind)
        if match is None:
            continue  # the tokens ("lex") and the whole-document SEGMENT
        for annot in aset.get("annots") or ():
            found = _annotation(annot, len(text))
            if found is not None:
                spans.append(_Span(*found, match.group(1), kind))
    return _TramReport(title, text, sorted(spans))


def _annotation(annot: Any, length: int) -> tuple[int, int] | None:
    """An annotation's [start, end) when it is one: two integer offsets inside the text."""
    if not isinstance(annot, list) or len(annot) < 2:
        return None
    start, end = annot[0], annot[1]
    if isinstance(start, int) and isinstance(end, int) and 0 <= start < end <= length:
        return start, end
    return None


def read_tram_single_label(path: Path, source: str = "tram-single") -> Iterator[LabelledText]:
    """TRAM's sentence-level single-label set (`mat_annotated_data/single_label.json`: a list of
    {"text", "label", "doc_title"}); each sentence keeps its report's title for held-out folds."""
    files = [f for f in archive_files(path, ("single_label.json",), _TRAM_MAX_BYTES)]
    preferred = [f for f in files if "mat_annotated_data/" in f[0]] or files
    try:
        rows = json.loads(preferred[0][1])
    except ValueError as exc:
        raise DataError(f"{path}: {preferred[0][0]} is not JSON") from exc
    if not isinstance(rows, list):
        raise DataError(f"{path}: {preferred[0][0]} is not a list of sentences")
    for number, row in enumerate(rows):
        if isinstance(row, dict) and str(row.get("text") or "").strip():
            labels = technique_ids(row.get("label"))
            title = tram_title(str(row.get("doc_title") or ""))
            yield record(str(row["text"]), labels, source, f"tram-sl-{number}", doc_title=title)


# ---- AnnoCTR: linking/{split}_w_con.jsonl and text/{split}/*.txt ---------------------------

_ANNOCTR_SPLITS = ("train", "dev")  # its test split is kept for evaluation elsewhere: never read
_ANNOCTR_MAX_BYTES = 64 * 1024 * 1024  # linking/train_w_con.jsonl is about 13 MB
_ATTACK_TECHNIQUE_URL = re.compile(r"attack\.mitre\.org/techniques/(T\d{4})(?:/(\d{3}))?/?$")


def read_annoctr_mentions(path: Path, source: str = "annoctr-train") -> Iterator[LabelledText]:
    """AnnoCTR's technique mentions of the train and dev splits (`linking/{split}_w_con.jsonl`,
    KILT format): the mention, labelled with the technique its ATT&CK link names, with the words
    around it in its sentence and the neighbouring sentences in `meta`, and its split."""
    for split, index, row in _annoctr_linking(path):
        label = _annoctr_technique(row)
        mention, document = squash(row.get("mention")), str(row.get("document") or "")
        if label is None or not mention or not document:
            continue
        yield LabelledText(
            mention,
            (label,),
            source,
            f"{document}:{index}",
            {
                "doc": document,
                "context_left": str(row.get("_context_left") or "").strip(),
                "context_right": str(row.get("_context_right") or "").strip(),
                "sentence_left": str(row.get("sentence_left") or ""),
                "sentence_right": str(row.get("sentence_right") or ""),
                "label_title": str(row.get("label_title") or ""),
                "entity_type": "TECHNIQUE",
                "split": split,
            },
        )


def read_annoctr_reports(path: Path, source: str = "annoctr-reports") -> Iterator[LabelledText]:
    """AnnoCTR's whole reports of the train and dev splits (`text/{split}/*.txt`), each labelled
    with the techniques its mentions are linked to, and its split."""
    techniques: dict[str, set[str]] = {}
    for _, _, row in _annoctr_linking(path):
        label = _annoctr_technique(row)
        if label is not None:
            techniques.setdefault(str(row.get("document") or ""), set()).add(label)
    for name, content in archive_files(path, (".txt",), _ANNOCTR_MAX_BYTES):
        relative = relative_from(name, "text") or ""
        parts = relative.split("/")
        if len(parts) != 3 or parts[1] not in _ANNOCTR_SPLITS:
            continue
        document, text = parts[2].removesuffix(".txt"), decode(content)
        if text.strip():
            labels = sorted(techniques.get(document, ()))
            yield record(text, labels, source, document, split=parts[1])


def _annoctr_linking(path: Path) -> Iterator[tuple[str, int, dict[str, object]]]:
    """(split, line number, record) of the linking files of the train and dev splits."""
    names = tuple(f"linking/{split}_w_con.jsonl" for split in _ANNOCTR_SPLITS)
    files = [
        f for f in archive_files(path, names, _ANNOCTR_MAX_BYTES) if relative_from(f[0], "linking")
    ]
    for name, content in files:
        split = name.rsplit("/", 1)[-1].split("_", 1)[0]
        for index, line in enumerate(decode(content).splitlines()):
            try:
                row = json.loads(line)
            except ValueError:
                continue
            if isinstance(row, dict):
                yield split, index, row


def _annoctr_technique(row: dict[str, object]) -> str | None:
    """The ATT&CK technique a linked mention names (its type alone is not enough: some
    "TECHNIQUE" mentions link to software or to an internal placeholder)."""
    if row.get("entity_type") != "TECHNIQUE":
        return None
    match = _ATTACK_TECHNIQUE_URL.search(str(row.get("label_link") or ""))
    if match is None:
        return None
    return match.group(1) + (f".{match.group(2)}" if match.group(2) else "")

"""The JSON contract: every JSON document MitreMap writes, as typed dictionaries.

Why: the analysis' JSON form (`Analysis.to_dict()`, the CLI's `--format json`) is what every
exporter, `diff`, the batch runner and the workspace read, and what users' scripts parse. Typed
here once, mypy checks every producer and reader of it; and the JSON Schema files shipped in
`mitremap/resources/schema/` (printed by `mitremap schema NAME`) are generated from these
classes (`scripts/generate_schemas.py`, with pydantic at development time; a test fails when a
shipped file differs from what the classes say), so the published schema and the code cannot
drift apart.

Every JSON document carries `schema_version` ("major.minor"): a consumer checks the major
number; a new optional field raises the minor one. Objects may gain fields (the schemas allow
additional properties), so readers ignore what they do not know.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final, Literal

if TYPE_CHECKING:
    from typing import NotRequired, TypedDict
else:  # pydantic (development only) reads TypedDicts from typing_extensions on Python < 3.12
    try:
        from typing import NotRequired

        from typing_extensions import TypedDict
    except ImportError:  # pragma: no cover - typer depends on typing_extensions
        from typing import NotRequired, TypedDict

SCHEMA_VERSION: Final = "1.1"
SchemaVersion = Literal["1.1"]


# ---- an analysis ------------------------------------------------------------------------------


class DocumentJSON(TypedDict):
    """The report as MitreMap read it; offsets everywhere point into its text."""

    title: str
    origin: str  # a file's name (its path only with --keep-path), a URL, <stdin> or <text>
    media_type: str
    length: int
    warnings: NotRequired[list[str]]
    date: NotRequired[str]  # ISO 8601: when the report says it was published


class ModelJSON(TypedDict):
    """The model that made an analysis."""

    backend: str
    attack_version: str
    recipe: dict[str, Any]
    package_version: str
    trained_at: str


class EvidenceJSON(TypedDict):
    """A passage [start, end) that supports a technique, with its window confidence."""

    start: int
    end: int
    confidence: float
    text: NotRequired[str]


class AttributionJSON(TypedDict):
    """A word's share of a technique's score (`--explain`)."""

    start: int
    end: int
    weight: float


class NamedSoftwareJSON(TypedDict):
    """ATT&CK software (or a group, a campaign) named in the report that ATT&CK says uses
    the technique."""

    id: str
    name: str
    kind: str
    webpage_link: str


class ReviewedJSON(TypedDict):
    """A span of the report close to a passage analysts decided on (the review memory):
    the technique was `accepted` (or added) or `rejected` there; who, when, in which report."""

    start: int
    end: int
    similarity: float
    confidence: float
    action: str  # "accepted" | "rejected"
    reviewed_passage: str
    report: NotRequired[int]
    title: NotRequired[str]
    user: NotRequired[str]
    at: NotRequired[str]
    text: NotRequired[str]


class TechniqueJSON(TypedDict):
    """A technique found in the report."""

    technique: str
    technique_name: str
    tactics: list[str]
    webpage_link: str
    confidence_score: float
    evidence: list[EvidenceJSON]
    implied_by_subtechnique: NotRequired[bool]
    named_software_known_to_use: NotRequired[list[NamedSoftwareJSON]]
    reviewed: NotRequired[list[ReviewedJSON]]
    attributions: NotRequired[list[AttributionJSON]]


class IndicatorJSON(TypedDict):
    """An indicator of compromise: `value` refanged and normalised, `raw` as written at
    [start, end); `private`: a private, internal or documentation value."""

    type: str
    value: str
    raw: str
    start: int
    end: int
    private: bool


class EntityJSON(TypedDict):
    """A mention of ATT&CK software, a group or a campaign."""

    id: str
    name: str
    kind: str  # "malware" | "tool" | "group" | "campaign"
    start: int
    end: int
    webpage_link: str
    text: NotRequired[str]


class CoveredJSON(TypedDict):
    technique: str
    confidence: float
    how: str
    from_parent: NotRequired[str]


class MitigationJSON(TypedDict):
    """A mitigation with the report's techniques it covers; `score` orders the list."""

    id: str
    name: str
    webpage_link: str
    score: float
    techniques: list[CoveredJSON]


class LogSourceJSON(TypedDict):
    name: str
    channel: str
    data_component: NotRequired[str]


class AnalyticJSON(TypedDict):
    id: str
    platforms: list[str]
    description: str
    log_sources: list[LogSourceJSON]


class StrategyJSON(TypedDict):
    id: str
    name: str
    webpage_link: str
    analytics: list[AnalyticJSON]


class DataComponentJSON(TypedDict):
    id: str
    name: str
    webpage_link: str
    log_sources: list[LogSourceJSON]


class DetectionJSON(TypedDict):
    """How to detect one of the report's techniques."""

    technique: str
    technique_name: str
    confidence: float
    mitigations: list[str]
    strategies: list[StrategyJSON]
    data_components: NotRequired[list[DataComponentJSON]]
    detections_from_parent: NotRequired[str]
    mitigations_from_parent: NotRequired[str]


class OverlapJSON(TypedDict):
    technique: str
    matched: str
    partial: NotRequired[Literal["parent", "sub-technique"]]
    through_software: NotRequired[str]


class SimilarAdversaryJSON(TypedDict):
    """An ATT&CK group, campaign or software with techniques in common (not attribution)."""

    id: str
    name: str
    kind: str
    webpage_link: str
    score: float
    coverage: float
    techniques_known: int
    techniques_in_common: list[OverlapJSON]


class DefenceJSON(TypedDict):
    """Mitigations, detections and similar adversaries (`analyze --defend`)."""

    attack_version: str
    mitigations: list[MitigationJSON]
    uncovered: list[str]
    detections: list[DetectionJSON]
    similar: list[SimilarAdversaryJSON]
    similar_note: str
    replaced: dict[str, str]
    unknown: list[str]


class AnalysisJSON(TypedDict):
    """One report's analysis (`mitremap analyze -f json`, `Analysis.to_dict()`)."""

    schema_version: SchemaVersion
    document: DocumentJSON
    model: ModelJSON
    threshold: float
    window: int
    analyzed_at: NotRequired[str]  # ISO 8601, UTC
    techniques: list[TechniqueJSON]
    indicators: NotRequired[list[IndicatorJSON]]  # present when indicators were looked for
    entities: list[EntityJSON]
    defend: NotRequired[DefenceJSON]
    message: NotRequired[str]
    timings: dict[str, float]


class SkippedJSON(TypedDict):
    path: str
    reason: str


class FolderJSON(TypedDict):
    """Every report of a folder (`mitremap analyze FOLDER -f json`)."""

    schema_version: SchemaVersion
    documents: list[AnalysisJSON]
    skipped: list[SkippedJSON]


class BatchAnalysisJSON(AnalysisJSON):
    """A line of `mitremap batch`'s output: an analysis with the document's id."""

    id: str


class BatchErrorJSON(TypedDict):
    """A line of `mitremap batch`'s output for a document that could not be analysed."""

    schema_version: SchemaVersion
    id: str
    origin: str
    error: str


class BatchJSON(TypedDict):
    """What a `mitremap batch` run did (`-f json`; the results are in its output file)."""

    schema_version: SchemaVersion
    output: str
    done: int
    failed: int
    skipped: int
    errors: list[dict[str, str]]


# ---- the other commands ---------------------------------------------------------------------


class IocsJSON(TypedDict):
    """`mitremap iocs -f json`."""

    schema_version: SchemaVersion
    indicators: list[IndicatorJSON]


class TechniqueDiffJSON(TypedDict):
    technique: str
    technique_name: str
    tactics: list[str]  # tactic short names (command-and-control), as the ATT&CK read in has them
    confidence_a: NotRequired[float]
    confidence_b: NotRequired[float]


class IdChangeJSON(TypedDict):
    analysis: str  # "A" | "B"
    was: str
    now: str | None
    why: str  # "revoked" | "deprecated" | "unknown"


class DiffJSON(TypedDict):
    """`mitremap diff A B -f json`: techniques only in A, only in B, in both."""

    schema_version: SchemaVersion
    a: str
    b: str
    attack_version: str
    only_a: list[TechniqueDiffJSON]
    only_b: list[TechniqueDiffJSON]
    both: list[TechniqueDiffJSON]
    changes: list[IdChangeJSON]


class SimilarJSON(TypedDict):
    """`mitremap similar -f json`."""

    schema_version: SchemaVersion
    source: str
    attack_version: str
    note: str
    similar: list[SimilarAdversaryJSON]


class TacticJSON(TypedDict):
    id: str
    name: str


class AttackTechniqueJSON(TypedDict):
    """`mitremap attack show -f json`."""

    schema_version: SchemaVersion
    id: str
    name: str
    tactics: list[TacticJSON]
    url: str
    is_subtechnique: bool
    parent: str | None
    platforms: list[str]
    deprecated: bool
    revoked: bool
    description: str
    replaced_by: NotRequired[str]


class SearchResultJSON(TypedDict):
    id: str
    name: str
    kind: str
    matched: str


class AttackSearchJSON(TypedDict):
    """`mitremap attack search -f json`."""

    schema_version: SchemaVersion
    query: str
    results: list[SearchResultJSON]


class SourceStatusJSON(TypedDict):
    source: str
    where: str
    path: str | None
    bytes: int
    licence: str
    role: str
    fetchable: bool
    origin: str | None


class DataStatusJSON(TypedDict):
    """`mitremap data status -f json`."""

    schema_version: SchemaVersion
    mirror: str | None
    cache: str
    sources: list[SourceStatusJSON]


class FetchedJSON(TypedDict):
    source: str
    path: str
    records: int | None


class DataFetchJSON(TypedDict):
    """`mitremap data fetch -f json`."""

    schema_version: SchemaVersion
    cache: str
    fetched: list[FetchedJSON]
    failed: dict[str, str]


class ModelInfoJSON(TypedDict):
    """A model's card without its long tables (`model info | ensure`, `train -f json`)."""

    schema_version: SchemaVersion
    path: str
    backend: str
    attack_version: str
    package_version: str
    recipe: dict[str, Any]
    sources: dict[str, int]
    labels: int
    training_texts: int
    label_report: dict[str, Any]
    metrics: dict[str, Any]
    settings: dict[str, Any]
    trained_at: str
    train_seconds: float
    report_confidence: str
    attack_knowledge: str | None
    warnings: list[str]
    status: NotRequired[Literal["present", "trained"]]


class ModelExportJSON(TypedDict):
    """`mitremap model export -f json`."""

    schema_version: SchemaVersion
    archive: str
    sha256: str


class ModelInstallJSON(TypedDict):
    """`mitremap model install -f json`."""

    schema_version: SchemaVersion
    installed: str
    sha256: str


class PrfJSON(TypedDict):
    precision: float
    recall: float
    f1: float


class EvaluateJSON(TypedDict):
    """`mitremap evaluate -f json`: sentence-level (n, top1, top5 …) or report-level
    (per_report_f1, rolled_up_micro …) metrics."""

    schema_version: SchemaVersion
    file: str
    level: Literal["sentence", "report"]
    n: int
    micro: PrfJSON
    macro: PrfJSON
    ece: float


SCHEMAS: dict[str, Any] = {
    "analyze": AnalysisJSON,
    "analyze-folder": FolderJSON,
    "batch": BatchJSON,
    "batch-record": BatchAnalysisJSON | BatchErrorJSON,
    "iocs": IocsJSON,
    "diff": DiffJSON,
    "similar": SimilarJSON,
    "attack-show": AttackTechniqueJSON,
    "attack-search": AttackSearchJSON,
    "data-status": DataStatusJSON,
    "data-fetch": DataFetchJSON,
    "model": ModelInfoJSON,
    "model-export": ModelExportJSON,
    "model-install": ModelInstallJSON,
    "evaluate": EvaluateJSON,
}
"""Every JSON output by name (`mitremap schema NAME`): the type it is."""

SCHEMA_FOLDER = "resources/schema"


def json_schema(name: str) -> dict[str, Any]:
    """The shipped JSON Schema of one output (`SCHEMAS`), as generated from its type."""
    import json
    from importlib.resources import files

    from mitremap.errors import MitreMapError

    if name not in SCHEMAS:
        raise MitreMapError(f"no schema {name!r}; choose one of: {', '.join(SCHEMAS)}")
    resource = files("mitremap").joinpath(f"{SCHEMA_FOLDER}/{name}.schema.json")
    return dict(json.loads(resource.read_text(encoding="utf-8")))


def generate_schema(name: str) -> dict[str, Any]:
    """The JSON Schema of one output, generated from its type with pydantic (a development
    dependency: `scripts/generate_schemas.py` writes what ships; a test compares them)."""
    from pydantic import TypeAdapter

    generated = TypeAdapter(SCHEMAS[name]).json_schema()
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": generated.pop("title", name),
        "$comment": f"mitremap {name} output, schema_version {SCHEMA_VERSION}; generated from "
        "mitremap.schema by scripts/generate_schemas.py: do not edit",
        **generated,
    }

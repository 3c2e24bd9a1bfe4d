"""Raw upstream artifacts turned into labelled text, and `fetch`: origin → mirror file.

`mitremap data fetch` downloads a source from its origin (`mitremap.sources`: a GitHub tarball,
or one raw file) through `mitremap.data`, then rebuilds the mirror's JSONL file from it with one
of these converters, chosen by the source's `convert`. Each reads a `.tar.gz` without
extracting it (regular files of bounded size only), or an already-extracted folder, and yields
`LabelledText` whose labels are technique ids exactly as the source writes them: normalising
them is `corpus.LabelNormaliser`'s job. A broken file is skipped; a path that is not a folder
or a readable tarball, or holds none of the files its format needs, is a `DataError`.

The records reproduce the mirror files (text, labels and ids). The mirror was also filtered
against evaluation text, and some of its sources were taken at an unrecorded commit, so a
conversion may hold more records than it.

One module per family of formats: `_annotated` (TRAM, AnnoCTR, Text2TTP), `_mappings` (KEV,
MBC, CAPEC), `_rules` (Splunk, CAR, Chronicle, KQL, Elastic, Panther, LOLBAS); `_archive`
reads archives safely.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from mitremap.errors import DataError, DataNotFoundError
from mitremap.sources import SOURCES, Source, attack_source, source
from mitremap.training.converters._annotated import (
    read_annoctr_mentions,
    read_annoctr_reports,
    read_text2ttp_csv,
    read_tram_mat,
    read_tram_single_label,
    tram_title,
)
from mitremap.training.converters._archive import MAX_MEMBER_BYTES, archive_files
from mitremap.training.converters._mappings import read_capec_stix, read_ctid_kev, read_mbc_markdown
from mitremap.training.converters._rules import (
    read_car_yaml,
    read_chronicle_yaral,
    read_elastic_toml,
    read_kql_markdown,
    read_lolbas_yml,
    read_panther_yml,
    read_splunk_yml,
)
from mitremap.training.corpus import LabelledText, read_tram_json, read_yaml_rules, write_jsonl

if TYPE_CHECKING:
    from mitremap.data import DataResolver, Progress

__all__ = [
    "CONVERTERS_BY_FORMAT",
    "MAX_MEMBER_BYTES",
    "Converter",
    "Fetched",
    "archive_files",
    "fetch_plan",
    "fetch_source",
    "read_annoctr_mentions",
    "read_annoctr_reports",
    "read_capec_stix",
    "read_car_yaml",
    "read_chronicle_yaral",
    "read_ctid_kev",
    "read_elastic_toml",
    "read_kql_markdown",
    "read_lolbas_yml",
    "read_mbc_markdown",
    "read_panther_yml",
    "read_splunk_yml",
    "read_text2ttp_csv",
    "read_tram_mat",
    "read_tram_single_label",
    "tram_title",
]

Converter = Callable[[Path, str], Iterator[LabelledText]]
"""(raw archive or folder, source name) → records; the source name goes into each record."""


CONVERTERS_BY_FORMAT: dict[str, Converter] = {
    "yaml-rules": lambda path, source: read_yaml_rules(path),
    "tram-json": read_tram_json,
    "tram-mat": read_tram_mat,
    "tram-single-label": read_tram_single_label,
    "splunk-yml": read_splunk_yml,
    "car-yaml": read_car_yaml,
    "chronicle-yaral": read_chronicle_yaral,
    "kql-markdown": read_kql_markdown,
    "annoctr-mentions": read_annoctr_mentions,
    "annoctr-reports": read_annoctr_reports,
    "capec-stix": read_capec_stix,
    "elastic-toml": read_elastic_toml,
    "text2ttp-csv": read_text2ttp_csv,
    "ctid-kev": read_ctid_kev,
    "lolbas-yml": read_lolbas_yml,
    "panther-yml": read_panther_yml,
    "mbc-markdown": read_mbc_markdown,
}
"""Format name → converter, for a source's `convert` (`mitremap.sources`). One archive may
serve several sources (TRAM's reports, spans and single-label set; both Text2TTP sets): the
source name picks what is read."""


@dataclass(frozen=True)
class Fetched:
    """One mirror file rebuilt from its origin: where it is and how many records it holds
    (None for a file copied as is, like the ATT&CK bundle)."""

    source: str
    path: Path
    records: int | None


def fetch_plan(names: Iterable[str], attack_version: str | None = None) -> list[Source]:
    """The sources to fetch for `names` ("all": every source with an origin), each mirror file
    once (sources that share a file, like AnnoCTR's splits, are fetched by the first). Unknown
    names and sources without an origin fail before anything is downloaded."""
    wanted = list(names)
    if "all" in wanted:
        wanted = [s.name for s in SOURCES if s.fetch]
    plan: dict[str, Source] = {}
    for name in wanted:
        try:
            spec = source(name)
        except KeyError as exc:
            raise DataNotFoundError(str(exc.args[0])) from None
        if name == "attack" and attack_version is not None:
            spec = attack_source(attack_version)
        if not spec.fetch or spec.path is None:
            raise DataNotFoundError(
                f"{name} cannot be downloaded by MitreMap; get it from {spec.home} and put it at "
                f"{spec.path or 'its place'} in a data mirror (--data or MITREMAP_DATA)"
            )
        plan.setdefault(spec.path, spec)
    return list(plan.values())


def fetch_source(spec: Source, resolver: DataResolver, progress: Progress | None = None) -> Fetched:
    """Download `spec` from its origin (through `resolver`, which may redirect it) and convert
    it into the cache's mirror layout, atomically. A conversion that yields nothing is an
    error: the upstream layout has changed, and an empty file would silently train nothing."""
    if spec.path is None or not spec.fetch:
        raise DataNotFoundError(f"{spec.name} has no origin to fetch from")
    target = resolver.cache_file(spec.path)
    if spec.convert == "copy":
        return Fetched(spec.name, resolver.download_to(spec.fetch, target, progress), None)
    raw = resolver.download_origin(spec.fetch, progress=progress)
    empty = DataError(
        f"{spec.name}: {spec.fetch} held no records in the {spec.convert} format; its "
        "layout may have changed upstream"
    )
    records = CONVERTERS_BY_FORMAT[spec.convert](raw, spec.name)
    count = write_jsonl(records, target, if_empty=empty)  # the previous file stays if so
    return Fetched(spec.name, target, count)

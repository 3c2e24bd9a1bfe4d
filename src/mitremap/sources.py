"""Every data source MitreMap knows, described once: where it lives in a data mirror, where it
comes from, its licence, what it is used for, and how its records are read.

`mitremap.data` locates and downloads them; `mitremap.training.converters` turns what `fetch`
downloads (a repository archive at a pinned commit or branch, or one raw file) into the mirror
file with the converter named by `convert`; `mitremap.training.corpus` reads them for training;
`mitremap.training.train` takes the annotated reports for calibration; `mitremap data status`
lists them. A leaf module: it imports nothing from the rest of the package.

Where the mirror names the commit it was made from (its `licenses/*/NOTICE`), `fetch` pins it;
otherwise it takes the default branch's head, so a fetched file may hold more (or newer)
records than the mirror's copy, which was also filtered against evaluation text.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

DEFAULT_ATTACK_VERSION = "18.1"
ATTACK_ORIGIN = (
    "https://raw.githubusercontent.com/mitre-attack/attack-stix-data/master/"
    "enterprise-attack/enterprise-attack-{version}.json"
)

# what a source is for
TRAIN = "train"  # in the default recipe's reach (a recipe names which)
OPT_IN = "opt-in"  # trained on only when asked (licence or measured quality)
CALIBRATION = "calibration"  # annotated whole reports: calibrate report confidence
EVALUATION = "evaluation"  # never trained on
KNOWLEDGE = "knowledge"  # the ATT&CK knowledge base itself


@dataclass(frozen=True)
class Source:
    """A public data source: where it lives in a mirror, where it comes from, its licence,
    what MitreMap uses it for, and how its records are read."""

    name: str
    path: str | None  # relative to the mirror root; None for ATT&CK's own text
    home: str = ""  # the project it comes from
    licence: str = ""
    description: str = ""
    role: str = TRAIN  # TRAIN, OPT_IN, CALIBRATION, EVALUATION or KNOWLEDGE
    fetch: str = ""  # the artifact `mitremap data fetch` downloads (its origin URL)
    # how it becomes the mirror file: "copy" or a `mitremap.training.converters` format
    convert: str = ""
    # how its records are read for training
    negatives: bool = False  # label-less records are "no technique" examples
    skip_deprecated: bool = False
    split: str | None = None  # only the records of this split (AnnoCTR: train / dev)
    reader: str = "jsonl"  # "jsonl", or "mentions": a short mention read in its sentence

    @property
    def training(self) -> bool:
        """May be trained on (by default or on request)."""
        return self.role in (TRAIN, OPT_IN)


_GITHUB = "https://github.com"
_RAW = "https://raw.githubusercontent.com"
_TRAM = f"{_RAW}/center-for-threat-informed-defense/tram/main/data/training"
_ANNOCTR = f"{_GITHUB}/boschresearch/anno-ctr-lrec-coling-2024"


def _archive(repo: str, commit: str) -> str:
    """A repository's tarball at the commit the mirror was made from (its NOTICE names it)."""
    return f"{_GITHUB}/{repo}/archive/{commit}.tar.gz"


def _branch(repo: str, branch: str) -> str:
    """A repository's tarball at its default branch's head (the mirror names no commit)."""
    return f"{_GITHUB}/{repo}/archive/refs/heads/{branch}.tar.gz"


# TRAM's MAT-annotated reports and its single-label set (data/training/mat_annotated_data/)
_TRAM_ANNOTATED = _archive(
    "center-for-threat-informed-defense/tram", "255a8163bb8151ede8becc1f35ab1c475bd1c32e"
)
# AnnoCTR: text/{train,dev}/*.txt and linking/{train,dev}_w_con.jsonl (its test split is never read)
_ANNOCTR_ARCHIVE = _archive(
    "boschresearch/anno-ctr-lrec-coling-2024", "d510b6949e1938d47c93a43eedd562dc538439dc"
)


SOURCES: tuple[Source, ...] = (
    Source(
        "attack",
        f"attack/enterprise-attack-{DEFAULT_ATTACK_VERSION}.json",
        f"{_GITHUB}/mitre-attack/attack-stix-data",
        "MITRE ATT&CK terms of use",
        "ATT&CK Enterprise STIX bundle",
        fetch=ATTACK_ORIGIN.format(version=DEFAULT_ATTACK_VERSION),
        role=KNOWLEDGE,
        convert="copy",
    ),
    Source(
        "attack-procedures",
        None,
        f"{_GITHUB}/mitre-attack/attack-stix-data",
        "MITRE ATT&CK terms of use",
        "ATT&CK procedure examples (from the bundle)",
    ),
    Source(
        "attack-descriptions",
        None,
        f"{_GITHUB}/mitre-attack/attack-stix-data",
        "MITRE ATT&CK terms of use",
        "ATT&CK technique names and descriptions (from the bundle)",
    ),
    Source(
        "sigma",
        "corpora/sigma_rules.jsonl",
        f"{_GITHUB}/SigmaHQ/sigma",
        "DRL 1.1",
        "SigmaHQ detection rules",
        fetch=f"{_GITHUB}/SigmaHQ/sigma/archive/refs/heads/master.tar.gz",
        convert="yaml-rules",
    ),
    Source(
        "atomic",
        "corpora/atomic_tests.jsonl",
        f"{_GITHUB}/redcanaryco/atomic-red-team",
        "MIT",
        "Atomic Red Team tests",
        fetch=f"{_GITHUB}/redcanaryco/atomic-red-team/archive/refs/heads/master.tar.gz",
        convert="yaml-rules",
    ),
    Source(
        "splunk",
        "corpora/splunk_detections.jsonl",
        f"{_GITHUB}/splunk/security_content",
        "Apache-2.0",
        "Splunk security content detections",
        fetch=_branch("splunk/security_content", "develop"),
        convert="splunk-yml",
    ),
    Source(
        "car",
        "corpora/car_analytics.jsonl",
        f"{_GITHUB}/mitre-attack/car",
        "Apache-2.0",
        "MITRE Cyber Analytics Repository",
        fetch=_branch("mitre-attack/car", "master"),
        convert="car-yaml",
    ),
    Source(
        "chronicle",
        "corpora/chronicle_rules.jsonl",
        f"{_GITHUB}/chronicle/detection-rules",
        "Apache-2.0",
        "Chronicle detection rules",
        skip_deprecated=True,
        fetch=_branch("chronicle/detection-rules", "main"),
        convert="chronicle-yaral",
    ),
    Source(
        "kql",
        "corpora/kql_bertjanp.jsonl",
        f"{_GITHUB}/Bert-JanP/Hunting-Queries-Detection-Rules",
        "BSD-3-Clause",
        "KQL hunting queries",
        fetch=_branch("Bert-JanP/Hunting-Queries-Detection-Rules", "main"),
        convert="kql-markdown",
    ),
    Source(
        "capec",
        "corpora/capec_to_attack.jsonl",
        f"{_GITHUB}/mitre/cti",
        "CAPEC terms of use",
        "CAPEC attack patterns linked to ATT&CK (weak taxonomy links)",
        role=OPT_IN,
        fetch=f"{_RAW}/mitre/cti/master/capec/2.1/stix-capec.json",
        convert="capec-stix",
    ),
    Source(
        "elastic",
        "corpora/elastic_rules.jsonl",
        f"{_GITHUB}/elastic/detection-rules",
        "Elastic License 2.0",
        "Elastic detection rules (opt-in: not an open-source licence)",
        role=OPT_IN,
        fetch=_branch("elastic/detection-rules", "main"),
        convert="elastic-toml",
    ),
    Source(
        "tram-bootstrap",
        "corpora/tram_bootstrap.jsonl",
        f"{_GITHUB}/center-for-threat-informed-defense/tram",
        "Apache-2.0",
        "TRAM bootstrap training sentences",
        fetch=f"{_TRAM}/bootstrap-training-data.json",
        convert="tram-json",
    ),
    Source(
        "tram-negative",
        "corpora/tram_negative.jsonl",
        f"{_GITHUB}/center-for-threat-informed-defense/tram",
        "Apache-2.0",
        "TRAM sentences that describe no technique",
        fetch=f"{_TRAM}/archive/negative_data.json",
        convert="tram-json",
        negatives=True,
    ),
    Source(
        "tram-reports",
        "tram/reports.jsonl",
        f"{_GITHUB}/center-for-threat-informed-defense/tram",
        "Apache-2.0",
        "121 TRAM reports with annotated spans",
        role=CALIBRATION,
        fetch=_TRAM_ANNOTATED,
        convert="tram-mat",
    ),
    Source(
        "tram-single",
        "tram/single_label.jsonl",
        f"{_GITHUB}/center-for-threat-informed-defense/tram",
        "Apache-2.0",
        "TRAM sentence-level single-label set",
        fetch=_TRAM_ANNOTATED,
        convert="tram-single-label",
    ),
    Source(
        "tram-spans",
        "tram/spans.jsonl",
        f"{_GITHUB}/center-for-threat-informed-defense/tram",
        "Apache-2.0",
        "TRAM annotated spans",
        fetch=_TRAM_ANNOTATED,
        convert="tram-mat",
    ),
    Source(
        "text2ttp-manual",
        "corpora/text2ttp_manual.jsonl",
        f"{_GITHUB}/qcri/Text2TTP",
        "GPL-3.0",
        "Text2TTP hand-annotated threat-report sentences",
        fetch=_archive("qcri/Text2TTP", "aa9e0bfa07b2ee81f5ddffc7ed72021159b423d8"),
        convert="text2ttp-csv",
    ),
    Source(
        "text2ttp-tramv1",
        "corpora/text2ttp_tramv1.jsonl",
        f"{_GITHUB}/qcri/Text2TTP",
        "GPL-3.0 over Apache-2.0",
        "TRAM v1 report sentences as carried by Text2TTP",
        role=OPT_IN,
        fetch=_archive("qcri/Text2TTP", "aa9e0bfa07b2ee81f5ddffc7ed72021159b423d8"),
        convert="text2ttp-csv",
    ),
    Source(
        "ctid-kev",
        "corpora/ctid_kev.jsonl",
        f"{_GITHUB}/center-for-threat-informed-defense/mappings-explorer",
        "Apache-2.0",
        "CISA KEV vulnerabilities mapped to ATT&CK by MITRE CTID",
        fetch=_archive(
            "center-for-threat-informed-defense/mappings-explorer",
            "2911162ca45dc34971f3a9fbc9892d1c7fa07b99",
        ),
        convert="ctid-kev",
    ),
    Source(
        "mbc",
        "corpora/mbc.jsonl",
        f"{_GITHUB}/MBCProject/mbc-markdown",
        "MBC terms of use",
        "Malware Behavior Catalog behaviours linked to ATT&CK",
        fetch=_archive("MBCProject/mbc-markdown", "10461c1cf055f138c434247fd2acaffdeb906091"),
        convert="mbc-markdown",
    ),
    Source(
        "panther",
        "corpora/panther.jsonl",
        f"{_GITHUB}/panther-labs/panther-analysis",
        "Apache-2.0",
        "Panther detection rules",
        role=OPT_IN,
        fetch=_archive("panther-labs/panther-analysis", "daa10c888566839e9918dfba1cd652743781e5fe"),
        convert="panther-yml",
    ),
    Source(
        "lolbas",
        "corpora/lolbas.jsonl",
        f"{_GITHUB}/LOLBAS-Project/LOLBAS",
        "GPL-3.0",
        "LOLBAS: misuse of Windows binaries",
        fetch=_archive("LOLBAS-Project/LOLBAS", "3403b338875b8a99a0cd7ba4ced5086e8d310bf7"),
        convert="lolbas-yml",
    ),
    Source(
        "annoctr-train",
        "annoctr/mentions_train_dev.jsonl",
        _ANNOCTR,
        "CC BY-SA 4.0",
        "AnnoCTR annotated mentions, train split, each read in its sentence",
        split="train",
        reader="mentions",
        fetch=_ANNOCTR_ARCHIVE,
        convert="annoctr-mentions",
    ),
    Source(
        "annoctr-dev",
        "annoctr/mentions_train_dev.jsonl",
        _ANNOCTR,
        "CC BY-SA 4.0",
        "AnnoCTR annotated mentions, dev split (kept for evaluation)",
        role=EVALUATION,
        split="dev",
        reader="mentions",
        fetch=_ANNOCTR_ARCHIVE,
        convert="annoctr-mentions",
    ),
    Source(
        "annoctr-reports",
        "annoctr/reports_train_dev.jsonl",
        _ANNOCTR,
        "CC BY-SA 4.0",
        "AnnoCTR whole reports, train split (calibration)",
        role=CALIBRATION,
        split="train",
        fetch=_ANNOCTR_ARCHIVE,
        convert="annoctr-reports",
    ),
    Source(
        "annoctr",
        "annoctr/reports_train_dev.jsonl",
        _ANNOCTR,
        "CC BY-SA 4.0",
        "AnnoCTR whole reports, dev split (kept for evaluation)",
        role=EVALUATION,
        split="dev",
        fetch=_ANNOCTR_ARCHIVE,
        convert="annoctr-reports",
    ),
)


def source(name: str) -> Source:
    """The source called `name`; `KeyError` with the known names when there is none."""
    for item in SOURCES:
        if item.name == name:
            return item
    raise KeyError(f"Unknown data source {name!r}; known: {', '.join(s.name for s in SOURCES)}")


def with_role(*roles: str) -> list[Source]:
    return [s for s in SOURCES if s.role in roles]


def attack_source(version: str = DEFAULT_ATTACK_VERSION) -> Source:
    """The ATT&CK Enterprise bundle of `version` as a source (`data fetch --attack-version`)."""
    path = f"attack/enterprise-attack-{version}.json"
    return replace(source("attack"), path=path, fetch=ATTACK_ORIGIN.format(version=version))

"""Training text readers, the label normaliser, and the default recipe."""

from __future__ import annotations

import io
import json
import tarfile

import pytest

from mitremap.data import DataResolver
from mitremap.errors import DataError
from mitremap.training.corpus import (
    DEFAULT_RECIPE,
    LabelNormaliser,
    Recipe,
    attack_texts,
    build_corpus,
    read_any,
    read_csv,
    read_jsonl,
    read_stix_bundle,
    read_yaml_rules,
)

SIGMA_RULE = """title: Scheduled Task Creation
id: 92626ddd-662c-49e3-ac59-f6535f12d189
status: test
description: Detects the creation of scheduled tasks by schtasks.exe
tags:
    - attack.execution
    - attack.t1053.005
    - attack.s0111
logsource:
    category: process_creation
    product: windows
detection:
    selection:
        Image|endswith: '\\\\schtasks.exe'
    condition: selection
"""

ATOMIC_FILE = """attack_technique: T1053.005
display_name: 'Scheduled Task/Job: Scheduled Task'
atomic_tests:
- name: Scheduled Task Startup Script
  auto_generated_guid: fec27f65-db86-4c2d-b66c-61945aee87c2
  description: Run an exe on user logon or system startup.
  executor:
    name: command_prompt
    command: schtasks /create /tn "T1053_005_OnLogon" /sc onlogon /tr "cmd.exe /c calc.exe"
- name: Task with a v19 id
  description: Creates a task.
"""


def test_normaliser_maps_revoked_and_drops_unknown(tiny_kb):
    normaliser = LabelNormaliser(tiny_kb, newer={"T1999": "T1059"})
    assert normaliser.normalise(["t1168", "T1053.005", "T1999", "T8888", "attack.x"]) == (
        "T1053.005",
        "T1059",
    )
    report = normaliser.report.to_dict()
    assert report["revoked_mapped"] == 1 and report["newer_version_mapped"] == 1
    assert report["dropped_ids"] == {"T8888": 1, "ATTACK.X": 1}


def test_read_jsonl_and_its_errors(tmp_path):
    path = tmp_path / "x.jsonl"
    path.write_text(
        json.dumps({"text": "runs schtasks", "labels": ["T1053.005"], "id": "a"})
        + "\n\n"
        + json.dumps({"text": "  ", "labels": []})
        + "\n"
    )
    (item,) = read_jsonl(path, source="mine")
    assert item.text == "runs schtasks" and item.labels == ("T1053.005",) and item.source == "mine"
    path.write_text('{"text": "ok", "labels": []}\nnot json\n')
    with pytest.raises(DataError, match="line 2"):
        list(read_jsonl(path))


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('{"text": "x", "labels": 5}', "list of technique ids"),
        ('{"text": "x", "labels": [1059]}', "list of technique ids"),
        ('{"text": "x", "labels": "T1059"}', "list of technique ids"),  # not split into letters
        ('{"text": "x", "labels": [], "meta": [1, 2]}', '"meta" must be an object'),
        ("[1, 2]", "not a JSON object"),
    ],
)
def test_read_jsonl_refuses_records_outside_the_schema(tmp_path, line, message):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"text": "fine", "labels": []}\n' + line + "\n")
    with pytest.raises(DataError, match=message) as error:
        list(read_jsonl(path))
    assert "bad.jsonl, line 2" in str(error.value)


def test_read_jsonl_refuses_binary_files(tmp_path):
    path = tmp_path / "binary.jsonl"
    path.write_bytes(b'{"text": "ok", "labels": []}\n\xff\xfe\x00garbage\n')
    with pytest.raises(DataError, match="not UTF-8"):
        list(read_jsonl(path))


def test_read_csv_with_either_separator(tmp_path):
    path = tmp_path / "x.csv"
    path.write_text('text,labels\n"uses cmd.exe",T1059\n"task, then shell","T1053.005; T1059"\n')
    items = list(read_csv(path))
    assert [i.labels for i in items] == [("T1059",), ("T1053.005", "T1059")]
    path.write_text("sentence,technique\nx,T1059\n")
    with pytest.raises(DataError, match="'text' and 'labels' columns"):
        list(read_csv(path))


def test_sigma_and_atomic_from_folder_and_tarball(tmp_path):
    folder = tmp_path / "rules"
    (folder / "windows").mkdir(parents=True)
    (folder / "windows" / "rule.yml").write_text(SIGMA_RULE)
    (folder / "T1053.005.yaml").write_text(ATOMIC_FILE)
    (folder / "broken.yml").write_text("title: [unclosed")
    items = sorted(read_yaml_rules(folder), key=lambda i: i.source)
    assert [i.source for i in items] == ["atomic", "atomic", "sigma"]
    sigma = items[-1]
    assert sigma.text.startswith("Scheduled Task Creation. Detects the creation")
    assert sigma.labels == ("T1053.005",)  # the software tag s0111 is not a technique
    assert items[0].labels == ("T1053.005",)
    tarball = tmp_path / "rules.tar.gz"
    with tarfile.open(tarball, "w:gz") as archive:
        data = SIGMA_RULE.encode()
        info = tarfile.TarInfo("sigma-master/rules/rule.yml")
        info.size = len(data)
        archive.addfile(info, io.BytesIO(data))
    assert [i.labels for i in read_any(tarball)] == [("T1053.005",)]


def test_stix_bundle_reader(tmp_path, tiny_bundle):
    path = tmp_path / "bundle.json"
    path.write_text(json.dumps(tiny_bundle))
    items = list(read_stix_bundle(path))
    assert {i.labels for i in items} == {("T1053.005",), ("T1059",)}
    assert all("(Citation" not in i.text for i in items)


def test_read_any_rejects_unknown_types(tmp_path):
    (tmp_path / "notes.docx").write_text("x")
    with pytest.raises(DataError, match="unknown training file type"):
        read_any(tmp_path / "notes.docx")
    with pytest.raises(DataError, match="not found"):
        read_any(tmp_path / "missing.jsonl")


def test_attack_texts(tiny_kb):
    items = list(attack_texts(tiny_kb))
    sources = {i.source for i in items}
    assert sources == {"attack-procedures", "attack-descriptions"}
    assert len([i for i in items if i.source == "attack-descriptions"]) == 3  # active only


def test_build_corpus_merges_duplicates_and_normalises(tiny_kb, tmp_path):
    mine = tmp_path / "mine.csv"
    mine.write_text(
        'text,labels\n"TinyRAT creates a scheduled task for persistence.",T1168\n'
        '"a brand new text",T1059\n"unlabelled",\n'
    )
    recipe = Recipe("test", "1", ("attack-procedures",))
    corpus = build_corpus(tiny_kb, recipe, resolver=DataResolver(cache_dir=tmp_path), add=[mine])
    texts = {i.text: i.labels for i in corpus.items}
    # the CSV's copy of the procedure (revoked id T1168 → T1053.005) merged into the procedure
    assert texts["TinyRAT creates a scheduled task for persistence."] == ("T1053.005",)
    assert "unlabelled" not in texts  # unlabelled rows are not "no technique" evidence
    report = corpus.report.to_dict()
    assert report["duplicates_merged"] == 1 and report["labels"]["revoked_mapped"] == 1
    excluded = build_corpus(
        tiny_kb,
        recipe,
        resolver=DataResolver(cache_dir=tmp_path),
        exclude=lambda item: "cmd.exe" in item.text,
    )
    assert excluded.report.excluded == 1 and len(excluded.items) == 1


def test_evaluation_only_sources_cannot_be_trained_on(tiny_kb, tmp_path):
    for name in ("annoctr", "annoctr-dev"):  # AnnoCTR's dev split, reports and mentions
        with pytest.raises(DataError, match="evaluation-only"):
            build_corpus(
                tiny_kb, Recipe("x", "1", (name,)), resolver=DataResolver(cache_dir=tmp_path)
            )
    with pytest.raises(DataError, match="calibration-only"):  # whole reports calibrate
        build_corpus(
            tiny_kb, Recipe("x", "1", ("tram-reports",)), resolver=DataResolver(cache_dir=tmp_path)
        )
    with pytest.raises(DataError, match="Unknown training source"):
        build_corpus(
            tiny_kb, Recipe("x", "1", ("nope",)), resolver=DataResolver(cache_dir=tmp_path)
        )


def test_default_recipe_on_real_data(real_kb, shared_data):
    corpus = build_corpus(real_kb, resolver=DataResolver(data_dir=shared_data))
    assert "elastic" not in DEFAULT_RECIPE.sources and "annoctr" not in DEFAULT_RECIPE.sources
    mentions = [i for i in corpus.items if i.source == "annoctr-train"]
    assert len(mentions) > 1000  # AnnoCTR's train split only, each mention in its sentence
    dev_docs = {
        i.meta["doc"]
        for i in read_jsonl(shared_data / "annoctr" / "mentions_train_dev.jsonl")
        if i.meta.get("split") == "dev"
    }
    assert not {m.meta["doc_title"] for m in mentions} & dev_docs
    labels = corpus.label_set
    assert len(labels) >= 600 and all(real_kb[x].active for x in labels)
    report = corpus.report.to_dict()
    assert report["labels"]["newer_version_mapped"] > 100  # v19 ids in Sigma / Atomic
    assert report["sources"]["chronicle"]["kept"] < report["sources"]["chronicle"]["read"]
    negatives = [i for i in corpus.items if not i.labels]
    assert len(negatives) > 5000 and all(i.source == "tram-negative" for i in negatives)
    assert {"text2ttp-manual", "ctid-kev", "mbc", "lolbas"} <= {i.source for i in corpus.items}
    assert "panther" not in DEFAULT_RECIPE.sources  # opt-in: measured no gain


def test_real_sigma_tarball(shared_data):
    items = list(read_yaml_rules(shared_data / "raw" / "sigma-rules.tar.gz"))
    labelled = [i for i in items if i.labels]
    assert len(items) > 4000 and len(labelled) > 3500


def test_an_added_file_without_usable_labels_is_an_error(tiny_kb, tmp_path):
    extra = tmp_path / "mine.jsonl"
    extra.write_text(
        json.dumps({"text": "It ran schtasks.", "labels": ["T9999"]})
        + "\n"
        + json.dumps({"text": "Nothing here.", "labels": []})
        + "\n"
    )
    with pytest.raises(DataError, match=r"no usable labelled text \(2 records read"):
        build_corpus(
            tiny_kb, Recipe("x", "1", ()), resolver=DataResolver(cache_dir=tmp_path), add=[extra]
        )


def test_an_evaluation_source_is_read_for_scoring_never_for_training(real_kb, shared_data):
    from mitremap.training.corpus import evaluation_items

    resolver = DataResolver(data_dir=shared_data)
    with pytest.raises(DataError, match="evaluation-only"):
        build_corpus(real_kb, Recipe("x", "1", ("annoctr-dev",)), resolver=resolver)
    dev = evaluation_items(real_kb, "annoctr-dev", resolver)
    assert len(dev) > 300 and all(i.labels and i.source == "annoctr-dev" for i in dev)
    assert all(real_kb[x].active for i in dev for x in i.labels)  # normalised like training
    dev_docs = {
        i.meta["doc"]
        for i in read_jsonl(shared_data / "annoctr" / "mentions_train_dev.jsonl")
        if i.meta.get("split") == "dev"
    }
    assert {i.meta["doc_title"] for i in dev} <= dev_docs  # the dev split only

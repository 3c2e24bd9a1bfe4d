"""A model folder from elsewhere: 100 random corruptions of a tiny model's arrays and manifest,
each a clean `ModelError` or a working load — never a crash, a hang or a traceback.

The loads run in a child process, so a segmentation fault or an endless loop fails the test
instead of killing or stalling the test run.
"""

from __future__ import annotations

import io
import json
import random
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from mitremap.training.corpus import LabelledText
from mitremap.training.fit import LinearSettings, train_linear

TEXTS = {
    "T1053.005": ["A scheduled task was created with schtasks.", "schtasks /create ran daily."],
    "T1059.001": ["PowerShell ran an encoded command.", "It used powershell -enc to run."],
    "T1486": ["Files were encrypted for ransom.", "The ransomware encrypted the disks."],
}
PROBE = """
import json, sys
from mitremap.classify import load_model
from mitremap.errors import ModelError
out = {}
for folder in sys.argv[1:]:
    try:
        model = load_model(folder)
        model.predict_proba(["schtasks created a task", ""])
        model.score_document(["PowerShell ran.", "Files were encrypted."], [(0, 2), (1, 2)])
        out[folder] = "loaded"
    except ModelError as exc:
        out[folder] = "error: " + str(exc).splitlines()[0]
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    items = [LabelledText(t, (label,), "t", t) for label, ts in TEXTS.items() for t in ts]
    items.append(LabelledText("The report was published in May.", (), "t", "none"))
    settings = LinearSettings(
        min_df=1,
        max_word_features=500,
        max_char_features=500,
        negatives_per_label=50,
        calibration_folds=0,
        n_jobs=1,
        prune=0.0,
    )
    path = tmp_path_factory.mktemp("fuzz") / "model"
    train_linear(items, settings=settings).save(path)
    return path


def _arrays(folder: Path) -> dict[str, np.ndarray]:
    with np.load(folder / "arrays.npz", allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


def _corrupt_arrays(folder: Path, rng: random.Random) -> None:
    arrays = _arrays(folder)
    name = rng.choice(sorted(arrays))
    value = arrays[name]
    kind = rng.choice(["shift", "negate", "dtype", "truncate", "extra", "big", "nan"])
    if kind == "shift" and value.dtype.kind in "iu" and value.size:
        value = value.copy()
        value.flat[rng.randrange(value.size)] += rng.choice([1, 10**6, -(10**6)])
    elif kind == "negate" and value.dtype.kind in "if" and value.size:
        value = -value
    elif kind == "dtype" and value.dtype.kind in "iuf":
        value = value.astype(rng.choice([np.int64, np.float64, np.int8]))
    elif kind == "truncate" and value.ndim and value.size:
        value = value[: rng.randrange(value.shape[0])]
    elif kind == "extra":
        arrays["zz_extra"] = np.zeros(10, dtype=np.float32)
    elif kind == "big" and value.dtype.kind == "S":
        value = np.array(b"\xff\xfe" + bytes(value))
    elif kind == "nan" and value.dtype.kind == "f" and value.size:
        value = value.copy()
        value.flat[0] = np.nan
    arrays[name] = value
    # numpy's stub: a name among the arrays could be `allow_pickle`
    np.savez_compressed(folder / "arrays.npz", **arrays)  # type: ignore[arg-type]


def _corrupt_bytes(folder: Path, rng: random.Random) -> None:
    file = folder / "arrays.npz"
    data = bytearray(file.read_bytes())
    if rng.random() < 0.5:
        data = data[: rng.randrange(len(data))]
    else:
        for _ in range(rng.randint(1, 8)):
            data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
    file.write_bytes(bytes(data))


def _corrupt_manifest(folder: Path, rng: random.Random) -> None:
    file = folder / "manifest.json"
    manifest = json.loads(file.read_text())
    calibration = manifest["calibration"]
    edits = [
        lambda m: m.update(format_version="abc"),
        lambda m: m.update(format_version=None),
        lambda m: m.update(card=[1, 2]),
        lambda m: m.update(weights_shape=[m["weights_shape"][0] + 1, m["weights_shape"][1]]),
        lambda m: m.update(weights_shape="x"),
        lambda m: m["features"]["blocks"][0].update(analyzer="python"),
        lambda m: m["features"]["blocks"][0].update(ngram_range=[0, 99]),
        lambda m: m["features"]["blocks"][0].update(size=-1),
        lambda m: m["features"].update(blocks=[]),
        lambda m: m.pop("calibration"),
        lambda m: calibration.update(window_a="1"),
        lambda m: calibration.update(window_a=float("inf")),
        lambda m: calibration.update(report_features=["best", "rm -rf"]),
        lambda m: calibration.update(unknown_field=1),
        lambda m: calibration.update(
            report_trees={"init": 0, "rate": 1, "trees": [[[0], [1.0], [0], [0], [0.0]]]}
        ),  # a node that is its own child: would loop forever
        lambda m: calibration.update(
            report_trees={
                "init": 0,
                "rate": 1,
                "trees": [[[99, 0, 0], [1, 0, 0], [1, -1, -1], [2, -1, -1], [0, 1, 2]]],
            }
        ),  # a feature that does not exist
        lambda m: calibration.update(report_trees={"init": 0, "rate": 1, "trees": "x"}),
        lambda m: m.update(backend="transformer"),
    ]
    rng.choice(edits)(manifest)
    file.write_text(json.dumps(manifest))


def _add_member_without_inflating(folder: Path) -> None:
    """A member that would inflate to gigabytes: refused from the zip directory alone."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(folder / "arrays.npz", "a", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("bomb.npy", b"\0" * (1 << 20))
    del buffer


@pytest.mark.slow
def test_a_hundred_corrupted_models_fail_cleanly(tiny_model, tmp_path):
    rng = random.Random(12345)
    folders = []
    for case in range(100):
        folder = tmp_path / f"case{case:03d}"
        shutil.copytree(tiny_model, folder)
        choice = case % 4
        if choice == 0:
            _corrupt_arrays(folder, rng)
        elif choice == 1:
            _corrupt_bytes(folder, rng)
        elif choice == 2:
            _corrupt_manifest(folder, rng)
        else:
            _corrupt_arrays(folder, rng)
            _corrupt_manifest(folder, rng)
        folders.append(str(folder))
    extra = tmp_path / "extra-member"
    shutil.copytree(tiny_model, extra)
    _add_member_without_inflating(extra)
    folders.append(str(extra))
    run = subprocess.run(
        [sys.executable, "-c", PROBE, *folders], capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0, run.stderr[-2000:]  # no crash, no traceback
    outcome = json.loads(run.stdout)
    assert len(outcome) == 101
    assert outcome[str(extra)].startswith("error:") and "unexpected members" in outcome[str(extra)]
    errors = [v for v in outcome.values() if v.startswith("error:")]
    assert len(errors) >= 60  # most corruptions are caught; the rest still load and score
    assert all(
        "run `mitremap train`" in e
        or "newer MitreMap" in e
        or "not a MitreMap" in e
        or "unknown backend" in e
        or "older MitreMap" in e
        or "corrupt" in e
        for e in errors
    )

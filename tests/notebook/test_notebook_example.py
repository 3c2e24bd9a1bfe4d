"""The example notebook runs top to bottom with the default model (headless, nbclient)."""

from __future__ import annotations

from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")
pytest.importorskip("ipywidgets")

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.fixture
def default_model(real_model_path, tmp_path, monkeypatch):
    """The session's real model, installed as the default model of a cache of the test's own
    (the notebook calls `MitreMap.load()`): never the developer's cached model."""
    import shutil

    cache = tmp_path / "cache"
    shutil.copytree(real_model_path, cache / "models" / "default")
    monkeypatch.setenv("MITREMAP_CACHE", str(cache))


def _text(cell) -> str:
    parts = []
    for output in cell.get("outputs", ()):
        parts.append(output.get("text", ""))
        parts.extend(str(v) for v in output.get("data", {}).values())
    return "\n".join(parts)


def test_example_notebook_runs_and_shows_results(default_model):
    notebook = nbformat.read(EXAMPLES / "mitremap.ipynb", as_version=4)
    client = nbclient.NotebookClient(
        notebook,
        timeout=120,
        kernel_name="python3",
        resources={"metadata": {"path": str(EXAMPLES)}},
    )
    client.execute()
    cells = [c for c in notebook.cells if c.cell_type == "code"]
    errors = [o for c in cells for o in c.get("outputs", ()) if o.get("output_type") == "error"]
    assert not errors, errors
    table = _text(cells[2])
    assert "technique_name" in table and "T1" in table
    assert '<div class="mitremap">' in _text(cells[3])
    indicators = _text(cells[5])
    assert "185.220.101.47" in indicators and "freight-docs.com" in indicators
    assert "techniqueID" not in _text(cells[6]) and "T1" in _text(cells[6])
    assert "application/vnd.jupyter.widget-view+json" in str(cells[-1]["outputs"])

"""Learning from the workspace's reviews on the command line: `mitremap train --add-reviews`
(a full retraining) and `mitremap train --add-reviews --quick` (the quick update).

Either writes a new model folder beside the default model, named like the workspace names
its own, and never replaces the default model: the command says how to use the new one.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from mitremap.cli.common import console, err_console

if TYPE_CHECKING:
    from mitremap.web.workspace.learning import ReviewSet


def reviews_from(db: str | None) -> ReviewSet:
    """The reviews of the workspace database `db` (None: serve's SQLite file)."""
    from mitremap.web.workspace.store import review_set_in

    data = review_set_in(db or None)
    err_console.print(
        f"adding {len(data.passages)} reviewed passages and {len(data.reports)} reviewed reports",
        highlight=False,
    )
    return data


def beside_default(prefix: str) -> Path:
    """A new folder beside the default model, for a model learned from reviews."""
    from mitremap.analysis import default_model_path
    from mitremap.web.workspace.registry import ModelRegistry

    folder = default_model_path().parent
    return folder / ModelRegistry(folder, None).new_name(prefix)


def quick_update(data: ReviewSet, base: Path | None, out: Path | None) -> Path:
    """The base model (default: the default model) corrected by the reviewed passages."""
    from mitremap.analysis import MitreMap, default_model_path
    from mitremap.files import check_writable_folder
    from mitremap.web.workspace.registry import LEARNED_FROM
    from mitremap.web.workspace.retrain import quick_update as update

    target = check_writable_folder(out or beside_default("updated"))
    model = update(MitreMap.load(base), data.passages)
    model.card.recipe[LEARNED_FROM] = {
        "model": (base or default_model_path()).name,
        "mode": "quick",
    }
    model.save(target)
    facts = model.card.recipe.get("quick_update", {})
    err_console.print(
        f"updated {facts.get('techniques', 0)} techniques from {len(data.passages)} reviewed "
        f"passages in {facts.get('seconds', 0)} s → {target}",
        highlight=False,
    )
    return target


def how_to_use(target: Path) -> None:
    """Say where the new model is and how to use it (the default model is left as it was)."""
    console.print(
        f"the default model is unchanged; analyse with the new one: --model {target}\n"
        f"in the workspace an admin makes it active under Models (or POST "
        f"/api/models/{target.name}/activate)",
        highlight=False,
    )

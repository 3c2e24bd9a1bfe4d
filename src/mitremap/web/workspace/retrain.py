"""Retraining from the analysts' reviews, in the background.

`POST /api/retrain` starts one job at a time in a thread: the default training recipe plus
every reviewed passage (`reviews.reviewed_passages`), saved as a new model folder beside the
previous ones, then made the active model. The job row says how far it got; a failure is
kept in its message and the previous model stays active.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from typing import Any

from mitremap.errors import MitreMapError
from mitremap.training.corpus import LabelledText
from mitremap.web.workspace.registry import ModelRegistry
from mitremap.web.workspace.store import Store

log = logging.getLogger("mitremap.workspace")

Trainer = Callable[[Sequence[LabelledText], Callable[[str, int, int], None]], Any]
"""(reviewed passages, progress(stage, done, total)) → a trained model with `.save(dir)`."""

ACTIVE_MODEL = "active_model"  # the settings key


def default_trainer(
    reviewed: Sequence[LabelledText], progress: Callable[[str, int, int], None]
) -> Any:
    """The default recipe (as `mitremap train`) plus the reviewed passages."""
    from mitremap.training.train import train_model

    return train_model(reviewed=reviewed, progress=progress)


def fraction(stage: str, done: int, total: int) -> float:
    """How far training is, from `train_model`'s stages: corpus, features, calibration folds,
    then the final fit."""
    part = min(1.0, done / total) if total else 1.0
    if stage == "corpus":
        return 0.05 * part
    if stage == "features":
        return 0.05 + 0.05 * part
    if stage.startswith("calibrate"):
        fold, _, folds = stage.removeprefix("calibrate").strip().partition("/")
        if fold.isdigit() and folds.isdigit() and int(folds):
            return 0.1 + 0.45 * (int(fold) - 1 + part) / int(folds)
        return 0.1
    if stage == "train":
        return 0.55 + 0.4 * part
    return 0.0


class Retrainer:
    """Starts retraining jobs and runs them in a thread."""

    def __init__(self, store: Store, registry: ModelRegistry, trainer: Trainer | None = None):
        self.store = store
        self.registry = registry
        self.trainer = trainer or default_trainer
        self.thread: threading.Thread | None = None

    def start(self, user: str) -> dict[str, Any]:
        job = self.store.new_job(user)  # 409 when one is running
        self.thread = threading.Thread(
            target=self._run, args=(job["id"],), name="mitremap-retrain", daemon=True
        )
        self.thread.start()
        return job

    def _run(self, job_id: str) -> None:
        done = [0.0]

        def progress(stage: str, step: int, total: int) -> None:
            value = max(done[0], fraction(stage, step, total))
            if value - done[0] >= 0.01 or step == total:
                done[0] = value
                self.store.update_job(
                    job_id, progress=value, message=f"training: {stage} {step}/{total}"
                )

        try:
            self.store.update_job(job_id, state="running", message="reading the reviews")
            reviewed = list(self.store.reviewed_passages())
            self.store.update_job(
                job_id, message=f"training with {len(reviewed)} reviewed passages"
            )
            model = self.trainer(reviewed, progress)
            name = self.registry.new_name()
            self.registry.folder.mkdir(parents=True, exist_ok=True)
            model.save(self.registry.path(name))
            self.registry.activate(name)
            self.store.set_setting(ACTIVE_MODEL, name)
            self.store.update_job(
                job_id,
                state="done",
                progress=1.0,
                model=name,
                message=f"trained with {len(reviewed)} reviewed passages; {name} is active",
            )
        except MitreMapError as exc:
            self.store.update_job(job_id, state="failed", message=str(exc))
        except Exception as exc:  # a failed job must say so, not die silently in its thread
            log.exception("retraining failed")
            self.store.update_job(
                job_id, state="failed", message=f"retraining failed: {type(exc).__name__}"
            )

"""Learning from the analysts' reviews, in the background: a full retraining or a quick update.

`POST /api/retrain` starts one job at a time in a thread:
- `full` (the default): the default training recipe plus every reviewed passage, calibrated
  on the annotated reports and the reports marked reviewed (`learning.review_set`);
- `quick`: the active model's weights for the techniques the reviews touch, corrected by the
  reviewed passages (`training.adapt`), in seconds.
Either is saved as a new model folder beside the previous ones (named from the time its card
shows), with what it learned (`learning.json`: before/after on the reviewed reports, see
`learning.learning_report`), then made the active model. The job row says how far it got; a
failure is kept in its message and the previous model stays active.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from mitremap.errors import MitreMapError
from mitremap.files import write_text
from mitremap.web.workspace.errors import InvalidError
from mitremap.web.workspace.learning import (
    ReviewSet,
    cross_fitted_confidences,
    learning_report,
    out_of_fold_confidences,
    review_set,
)
from mitremap.web.workspace.registry import LEARNED_FROM, LEARNING, ModelRegistry, learned_from
from mitremap.web.workspace.store import Store

if TYPE_CHECKING:
    from mitremap.training.corpus import LabelledText

log = logging.getLogger("mitremap.workspace")

Progress = Callable[[str, int, int], None]
Trainer = Callable[[ReviewSet, Progress], Any]
"""(the reviews, progress(stage, done, total)) → a trained model with `.save(dir)`; it may
fill `ReviewSet.out_of_fold` so the job can say how the model does on reports it never saw."""

ACTIVE_MODEL = "active_model"  # the settings key
MODES = ("full", "quick")


def default_trainer(data: ReviewSet, progress: Progress) -> Any:
    """The default recipe (as `mitremap train`) plus the reviews."""
    from mitremap.training.train import train_model

    return train_model(
        reviewed=data.passages,
        reviewed_reports=data.reports,
        progress=progress,
        out_of_fold=data.out_of_fold,
    )


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


def _in_threads(function: Callable[..., None]) -> Callable[..., None]:
    """`function` with joblib's parallel work in threads of this process: the default process
    workers (loky) outlive a server that is killed, threads cannot (the linear SVMs fit
    without the GIL, so threads are as fast)."""

    def run(*args: Any) -> None:
        from joblib import parallel_config

        with parallel_config(backend="threading"):
            function(*args)

    return run


class Retrainer:
    """Starts learning jobs (one at a time) and runs them in a thread."""

    def __init__(
        self,
        store: Store,
        registry: ModelRegistry,
        trainer: Trainer | None = None,
        threshold: float = 0.6,
    ):
        self.store = store
        self.registry = registry
        self.trainer = trainer or default_trainer
        self.threshold = threshold
        self.thread: threading.Thread | None = None

    def start(self, user: str, mode: str = "full") -> dict[str, Any]:
        if mode not in MODES:
            raise InvalidError(f"unknown mode {mode!r}; use one of: {', '.join(MODES)}")
        job = self.store.new_job(user)  # 409 when one is running
        self.thread = threading.Thread(
            target=_in_threads(self._run),
            args=(job["id"], mode, user),
            name="mitremap-retrain",
            daemon=True,
        )
        self.thread.start()
        return job

    def _run(self, job_id: str, mode: str, user: str = "") -> None:
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
            data = review_set(self.store)
            used = f"{len(data.passages)} reviewed passages"
            self.store.update_job(job_id, message=f"learning from {used} ({mode})")
            model, learned = self._learn(data, mode, progress)
            name = self._save(model, learned, "reviewed" if mode == "full" else "updated", user)
            after = learned.get("after", {}).get("f1")
            before = learned.get("before", {}).get("f1")
            figure = (
                f"; per-report F1 on {learned['reports']} reviewed reports {before} → {after}"
                if learned.get("reports")
                else ""
            )
            self.store.update_job(
                job_id,
                state="done",
                progress=1.0,
                model=name,
                message=f"learned from {used}{figure}; {name} is active",
            )
        except MitreMapError as exc:
            self.store.update_job(job_id, state="failed", message=str(exc))
        except Exception as exc:  # a failed job must say so, not die silently in its thread
            log.exception("retraining failed")
            self.store.update_job(
                job_id, state="failed", message=f"retraining failed: {type(exc).__name__}"
            )

    def _learn(self, data: ReviewSet, mode: str, progress: Progress) -> tuple[Any, dict[str, Any]]:
        """The new model and what it learned (before/after on the reviewed reports)."""
        if mode == "full":
            base_name = self.registry.name
            model = self.trainer(data, progress)
            after = out_of_fold_confidences(data, list(getattr(model, "labels", ())))
        else:
            base, base_name = self._base()
            model = quick_update(base, data.passages)
            texts = self.store.report_texts([r.report for r in data.reviewed])
            after = cross_fitted_confidences(
                data, base, lambda p: _loaded(quick_update(base, p)), texts
            )
            progress("train", 1, 1)
        recipe = getattr(getattr(model, "card", None), "recipe", None)
        if isinstance(recipe, dict):
            recipe[LEARNED_FROM] = {"model": base_name, "mode": mode}
        learned = learning_report(self.store, data, after, mode=mode, threshold=self.threshold)
        return model, learned

    def _base(self) -> tuple[Any, str]:
        """The model a quick update corrects: the active one, or, when that is itself a quick
        update, the model it was made from (updates never pile up on each other)."""
        current, name = self.registry.active()
        link = learned_from(current)
        if link and link["mode"] == "quick":
            path = self.registry.path(link["model"])
            if (path / "manifest.json").is_file():
                return _loaded_path(path), link["model"]
        return current, name

    def _save(self, model: Any, learned: dict[str, Any], prefix: str, user: str) -> str:
        """The new model in its own folder with what it learned, made active (a switch of
        the model for everyone: recorded in the history, as `activate` does)."""
        card = getattr(model, "card", None)
        name = self.registry.new_name(prefix, getattr(card, "trained_at", ""))
        self.registry.folder.mkdir(parents=True, exist_ok=True)
        folder = self.registry.path(name)
        model.save(folder)
        write_text(folder / LEARNING, json.dumps(learned, indent=1))
        before = self.registry.name
        self.registry.activate(name)
        self.store.set_setting(ACTIVE_MODEL, name)
        self.store.record_model_switch(user, before, name)
        return name


def quick_update(current: Any, passages: Sequence[LabelledText]) -> Any:
    """The active model (a loaded `MitreMap`) corrected by the reviewed passages."""
    from mitremap.training.adapt import adapt_linear

    model = getattr(current, "model", None)
    if model is None or not hasattr(model, "features"):
        raise InvalidError("the active model cannot be updated quickly: retrain it fully")
    return adapt_linear(model, passages)


def _loaded(model: Any) -> Any:
    from mitremap.analysis import MitreMap

    return MitreMap(model)


def _loaded_path(path: Any) -> Any:
    from mitremap.analysis import MitreMap

    return MitreMap.load(path)

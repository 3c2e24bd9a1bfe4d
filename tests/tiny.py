"""The tiny labelled corpus the unit tests train on (a few sentences per technique)."""

from __future__ import annotations

from mitremap.training.corpus import LabelledText
from mitremap.training.fit import LinearSettings

TASK = [
    "The malware creates a scheduled task with schtasks to run every hour.",
    "A scheduled task named Updater was registered with schtasks /create.",
    "It persists by adding a task to the Windows Task Scheduler.",
    "schtasks.exe was used to create a daily scheduled task for the loader.",
]
SHELL = [
    "The actor ran commands through cmd.exe on the victim host.",
    "Commands were executed with cmd.exe /c to launch the payload.",
    "The backdoor spawns cmd.exe to execute shell commands.",
    "Operators used the Windows command shell to run batch scripts.",
]
JOB = [
    "Adversaries may abuse job scheduling to execute code at a set time.",
    "Scheduled jobs such as cron or at run programs at startup.",
]
NONE = [
    "The report was published on 3 March 2024 by the research team.",
    "Thanks to our colleagues for their help with this analysis.",
    "The victims were mainly logistics companies in Europe.",
    "Contact us for more information about our products.",
    "This blog post was written by two analysts.",
    "The company has offices in twelve countries.",
]

SETTINGS = LinearSettings(
    min_df=1,
    max_word_features=5000,
    max_char_features=5000,
    negatives_per_label=100,
    calibration_folds=2,
    n_jobs=1,
    prune=0.0,
)


def items() -> list[LabelledText]:
    out = [LabelledText(t, ("T1053.005",), "test", f"task{i}") for i, t in enumerate(TASK)]
    out += [LabelledText(t, ("T1059",), "test", f"shell{i}") for i, t in enumerate(SHELL)]
    out += [LabelledText(t, ("T1053",), "test", f"job{i}") for i, t in enumerate(JOB)]
    out += [LabelledText(t, (), "test", f"none{i}") for i, t in enumerate(NONE)]
    return out


def reports() -> list[LabelledText]:
    return [
        LabelledText(" ".join([TASK[0], NONE[0], NONE[1]]), ("T1053.005",), "r", "r1"),
        LabelledText(" ".join([SHELL[0], NONE[2], NONE[3]]), ("T1059",), "r", "r2"),
        LabelledText(" ".join([TASK[1], SHELL[1], NONE[4]]), ("T1053.005", "T1059"), "r", "r3"),
        LabelledText(" ".join([NONE[5], NONE[0], NONE[2]]), (), "r", "r4"),
    ]


REPORT = " ".join([NONE[0], TASK[0], TASK[3], NONE[1], NONE[2], SHELL[2], NONE[3]])

"""`mitremap similar SOURCE`: ATT&CK groups, campaigns and software with techniques in common
with a report — the similar-adversaries part of `analyze --defend`, on its own."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from mitremap.cli.common import FormatOption, ModelOption, ThresholdOption, options, read_analysis
from mitremap.cli.render import print_similar


def similar(
    source: Annotated[
        str,
        typer.Argument(help="Analysis JSON (analyze -f json) or a report: file, URL.", metavar="A"),
    ],
    kind: Annotated[
        list[str] | None,
        typer.Option(
            "--kind", help="group, campaign or software (repeat; default: all).", metavar="KIND"
        ),
    ] = None,
    top: Annotated[
        int, typer.Option("--top", "-n", min=1, help="At most N of each kind.", metavar="N")
    ] = 5,
    threshold: ThresholdOption = 0.6,
    fmt: FormatOption = "table",
    model: ModelOption = None,
) -> None:
    """ATT&CK groups, campaigns and software with techniques in common with a report (shared
    tradecraft, never attribution)."""
    from mitremap.classify.knowledge import attack_for_model
    from mitremap.schema import SCHEMA_VERSION
    from mitremap.similar import KINDS, NOTE, Similarity

    unknown = sorted(set(kind or ()) - set(KINDS))
    if unknown:
        raise typer.BadParameter(
            f"{', '.join(unknown)}: choose from {', '.join(KINDS)}", param_hint="--kind"
        )
    data = read_analysis(source, threshold=threshold, model=model)
    version = str((data.get("model") or {}).get("attack_version") or "") or None
    kb = attack_for_model(version, data_dir=options.data_dir, model=model)
    found: dict[str, float] = {}
    for hit in data.get("techniques", ()):
        ident = str(hit.get("technique", ""))
        if ident in kb and not hit.get("implied_by_subtechnique"):
            current = kb.resolve(ident).id
            found[current] = max(found.get(current, 0.0), float(hit.get("confidence_score", 0)))
    ranking = Similarity.from_attack(kb)
    ranked = [
        adversary
        for each in kind or KINDS
        for adversary in ranking.rank(found, kinds=(each,), top=top)
    ]
    if fmt == "json":
        body = {
            "schema_version": SCHEMA_VERSION,
            "source": Path(source).name if "://" not in source else source,
            "attack_version": kb.version,
            "note": NOTE,
            "similar": [s.to_dict() for s in ranked],
        }
        typer.echo(json.dumps(body, indent=2, ensure_ascii=False))
        return
    print_similar(ranked)


def register(app: typer.Typer) -> None:
    """Add this module's commands to the app."""
    app.command("similar")(similar)

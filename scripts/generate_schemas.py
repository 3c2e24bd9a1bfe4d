"""Write the JSON Schema of every JSON output into `src/mitremap/resources/schema/` from the
typed dictionaries in `mitremap.schema` (needs pydantic, a development dependency).

Run it after changing `mitremap/schema.py`; `tests/core/test_schema.py` fails until you do.
"""

from __future__ import annotations

import json
from pathlib import Path

from mitremap.schema import SCHEMA_FOLDER, SCHEMAS, generate_schema

FOLDER = Path(__file__).resolve().parents[1] / "src" / "mitremap" / SCHEMA_FOLDER


def schema_text(name: str) -> str:
    return json.dumps(generate_schema(name), indent=1, sort_keys=True) + "\n"


def main() -> None:
    FOLDER.mkdir(parents=True, exist_ok=True)
    for stale in FOLDER.glob("*.schema.json"):
        if stale.name.removesuffix(".schema.json") not in SCHEMAS:
            stale.unlink()
    for name in SCHEMAS:
        (FOLDER / f"{name}.schema.json").write_text(schema_text(name), encoding="utf-8")
        print(f"wrote {name}.schema.json")


if __name__ == "__main__":
    main()

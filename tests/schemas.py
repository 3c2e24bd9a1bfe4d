"""Checks an output against the JSON Schema MitreMap ships for it (`mitremap.schema`)."""

from __future__ import annotations

from typing import Any

import jsonschema

from mitremap.schema import SCHEMA_VERSION, json_schema


def valid(name: str, data: Any) -> Any:
    """`data`, after checking it against the shipped schema `name` (jsonschema raises with the
    path to what is wrong) and that it names the schema version."""
    jsonschema.validate(data, json_schema(name), cls=jsonschema.Draft202012Validator)
    assert data["schema_version"] == SCHEMA_VERSION
    return data

"""Request bodies checked against GitHub's own OpenAPI description of each operation.

``github_openapi.json`` is the cut of ``@octokit/openapi`` that ``cut_github_openapi.py`` writes: one
entry per operation the fake serves, with every ``$ref`` inlined.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema

from tests.fakes.github.objects import Json

SPEC_PATH = Path(__file__).parents[1] / "github_openapi.json"


@dataclass
class SchemaViolation:
    """A request body GitHub would have rejected (the fake answered it 422 or 400)."""

    method: str
    path: str
    operation_id: str
    message: str


@dataclass(frozen=True)
class Operation:
    operation_id: str
    body_required: bool
    validator: jsonschema.protocols.Validator | None


def to_json_schema(node: Any) -> Any:
    """OpenAPI 3.0 schema -> JSON Schema: ``nullable: true`` becomes a ``null`` alternative."""
    if not isinstance(node, dict):
        return node
    out: Json = {}
    for key, value in node.items():
        if key == "nullable":
            continue
        if key == "properties":
            out[key] = {name: to_json_schema(schema) for name, schema in value.items()}
        elif key in ("items", "additionalProperties", "not"):
            out[key] = to_json_schema(value)
        elif key in ("allOf", "anyOf", "oneOf"):
            out[key] = [to_json_schema(schema) for schema in value]
        else:
            out[key] = value
    if node.get("nullable"):
        if "type" in out:
            out["type"] = [out["type"], "null"]
            if "enum" in out:
                out["enum"] = [*out["enum"], None]
        else:
            out = {"anyOf": [out, {"type": "null"}]}
    return out


_OPERATIONS: dict[str, Operation] | None = None


def load_operations(spec_path: Path = SPEC_PATH) -> dict[str, Operation]:
    """operationId -> its request body validator (read once per process)."""
    global _OPERATIONS
    if _OPERATIONS is None:
        spec = json.loads(spec_path.read_text(encoding="utf-8"))
        operations: dict[str, Operation] = {}
        for item in spec["paths"].values():
            for op in item.values():
                body = op.get("requestBody")
                schema = body["content"]["application/json"]["schema"] if body else None
                validator = jsonschema.Draft4Validator(to_json_schema(schema)) if schema else None
                operations[op["operationId"]] = Operation(
                    op["operationId"], bool(body and body.get("required")), validator
                )
        _OPERATIONS = operations
    return _OPERATIONS


def body_problem(operation_id: str, body: Any) -> str | None:
    """Why GitHub would reject ``body`` (parsed JSON, None when empty) for this operation; None
    when it would accept it."""
    operation = load_operations()[operation_id]
    if body is None:
        return "request body is required" if operation.body_required else None
    if operation.validator is None:
        return None
    errors = sorted(operation.validator.iter_errors(body), key=lambda e: list(e.absolute_path))
    if not errors:
        return None
    return "; ".join(f"{'/'.join(map(str, e.absolute_path)) or '(body)'}: {e.message}" for e in errors)

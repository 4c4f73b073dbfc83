"""The `/api/docs` page's data: the OpenAPI document arranged as tags → operations → fields."""

from __future__ import annotations

import json
from typing import Any

REF_PREFIX = "#/components/schemas/"


def ref_name(ref: str) -> str:
    return ref.removeprefix(REF_PREFIX)


def type_text(schema: dict[str, Any]) -> str:
    """A JSON Schema in a few words: `string`, `integer | null`, `array of Volume`, `"a" | "b"`."""
    if "$ref" in schema:
        return ref_name(schema["$ref"])
    if "const" in schema:
        return json.dumps(schema["const"])
    if "enum" in schema:
        return " | ".join(json.dumps(v) for v in schema["enum"])
    for key in ("anyOf", "oneOf"):
        if key in schema:
            return " | ".join(type_text(s) for s in schema[key])
    kind = schema.get("type")
    if isinstance(kind, list):
        return " | ".join(kind)
    if kind == "array":
        return "array of " + type_text(schema.get("items", {}))
    if kind == "object" and isinstance(schema.get("additionalProperties"), dict):
        return "map of " + type_text(schema["additionalProperties"])
    return str(kind or "any")


def constraint_text(schema: dict[str, Any]) -> str:
    parts = []
    for key, label in (
        ("minimum", "≥"),
        ("exclusiveMinimum", ">"),
        ("maximum", "≤"),
        ("minLength", "length ≥"),
        ("maxLength", "length ≤"),
        ("minItems", "items ≥"),
        ("maxItems", "items ≤"),
    ):
        if key in schema:
            parts.append(f"{label} {schema[key]}")
    if "pattern" in schema:
        parts.append(f"pattern {schema['pattern']}")
    if schema.get("default") is not None:
        parts.append(f"default {json.dumps(schema['default'])}")
    for sub in schema.get("anyOf", ()):
        if sub.get("type") != "null" and (text := constraint_text(sub)):
            parts.append(text)
    return "; ".join(parts)


def _links(schema: dict[str, Any]) -> list[str]:
    """The component names a schema refers to, for links."""
    found: list[str] = []
    if "$ref" in schema:
        found.append(ref_name(schema["$ref"]))
    for key in ("anyOf", "oneOf"):
        for sub in schema.get(key, ()):
            found += _links(sub)
    if isinstance(schema.get("items"), dict):
        found += _links(schema["items"])
    if isinstance(schema.get("additionalProperties"), dict):
        found += _links(schema["additionalProperties"])
    return found


def fields(schema: dict[str, Any]) -> list[dict[str, Any]]:
    required = set(schema.get("required", ()))
    return [
        {
            "name": name,
            "type": type_text(prop),
            "links": _links(prop),
            "required": name in required,
            "description": prop.get("description", ""),
            "constraints": constraint_text(prop),
        }
        for name, prop in schema.get("properties", {}).items()
    ]


def _response(status: str, response: dict[str, Any], components: dict[str, Any]) -> dict:
    if "$ref" in response:
        response = components["responses"][response["$ref"].rsplit("/", 1)[1]]
    media = []
    for media_type, content in response.get("content", {}).items():
        schema = content.get("schema", {})
        media.append({"type": media_type, "schema": type_text(schema), "links": _links(schema)})
    return {
        "status": status,
        "error": status[0] in "45",
        "description": response.get("description", ""),
        "media": media,
    }


def page_context(document: dict[str, Any]) -> dict[str, Any]:
    components = document["components"]
    by_tag: dict[str, list[dict[str, Any]]] = {}
    for path, item in document["paths"].items():
        for method, op in item.items():
            body = None
            if "requestBody" in op:
                schema = op["requestBody"]["content"]["application/json"]["schema"]
                model = components["schemas"].get(ref_name(schema.get("$ref", "")), {})
                body = {
                    "schema": type_text(schema),
                    "links": _links(schema),
                    "required": op["requestBody"].get("required", False),
                    "fields": fields(model),
                }
            responses = [_response(s, r, components) for s, r in op["responses"].items()]
            by_tag.setdefault(op["tags"][0], []).append(
                {
                    "id": op["operationId"],
                    "method": method.upper(),
                    "path": path,
                    "summary": op.get("summary", ""),
                    "description": op.get("description", ""),
                    "parameters": [
                        {
                            "name": p["name"],
                            "in": p["in"],
                            "required": p.get("required", False),
                            "type": type_text(p.get("schema", {})),
                            "description": p.get("description", ""),
                            "constraints": constraint_text(p.get("schema", {})),
                        }
                        for p in op.get("parameters", ())
                    ],
                    "body": body,
                    "successes": [r for r in responses if not r["error"]],
                    "errors": [r for r in responses if r["error"]],
                }
            )
    tags = [{"name": name, "operations": by_tag[name]} for name in sorted(by_tag)]
    schemas = [
        {
            "name": name,
            "description": (schema.get("description") or "").strip(),
            "fields": fields(schema),
            "open": schema.get("additionalProperties") is not False,
        }
        for name, schema in components["schemas"].items()
    ]
    return {
        "title": document["info"]["title"],
        "version": document["info"]["version"],
        "openapi": document["openapi"],
        "tags": tags,
        "schemas": schemas,
        "operation_count": sum(len(t["operations"]) for t in tags),
    }

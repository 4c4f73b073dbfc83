"""Markdown renderings of the discovery bodies: the same data as the JSON, as prose."""

from __future__ import annotations

import json
from typing import Any

from django.http import HttpResponse


def markdown_response(text: str, status: int = 200) -> HttpResponse:
    return HttpResponse(text, status=status, content_type="text/markdown; charset=utf-8")


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def health_md(body: dict[str, Any]) -> str:
    lines = [
        f"# {body['concern']} health: {body['status']}",
        "",
        f"Checked at {body['checked_at']}.",
        "",
        "| check | ok | detail |",
        "|---|---|---|",
    ]
    for check in body["checks"]:
        mark = "yes" if check["ok"] else "**no**"
        lines.append(f"| `{check['name']}` | {mark} | {_cell(check['detail'])} |")
    return "\n".join(lines) + "\n"


def help_md(body: dict[str, Any]) -> str:
    lines = [
        f"# {body['concern']}",
        "",
        body["summary"],
        "",
        "## Routes",
        "",
        "| method | path | kind | summary |",
        "|---|---|---|---|",
    ]
    for route in body["routes"]:
        lines.append(
            f"| {route['method']} | `{route['path']}` | {route['kind']} | {_cell(route['summary'])} |"
        )
    lines += ["", "## Rules", ""]
    lines += [f"- {rule}" for rule in body["rules"]]
    lines += [
        "",
        f"Kinds: `direct` answers with the result, `operation` answers 202 with a receipt to follow "
        f"at `status_url`, `stream` keeps the connection open. Examples: `/api/{body['concern']}/examples`.",
    ]
    return "\n".join(lines) + "\n"


def _block(value: Any) -> list[str]:
    if isinstance(value, str):
        return ["```", value.rstrip("\n"), "```"]
    return ["```json", json.dumps(value, indent=2), "```"]


def examples_md(body: dict[str, Any]) -> str:
    lines = [f"# {body['concern']} examples", ""]
    for example in body["examples"]:
        lines += [f"## {example['title']}", "", f"`{example['method']} {example['path']}`", ""]
        if example["request"] is not None:
            lines += ["Request:", "", *_block(example["request"]), ""]
        lines += ["Response:", "", *_block(example["response"]), ""]
    return "\n".join(lines)

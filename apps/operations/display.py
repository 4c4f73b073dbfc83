"""How an operation reads on a page: kind labels, target and result links. No queries here."""

from __future__ import annotations

from typing import Any

from django.urls import reverse

from apps.core.engine_messages import engine_cause
from apps.operations.models import Operation

KIND_LABELS = {
    "start": "Start",
    "resume": "Resume",
    "batch_create": "Batch create",
    "snapshot": "Snapshot",
    "clone": "Clone",
    "fork": "Fork",
    "volume_delete": "Delete volume",
    "archive_upload": "Upload archive",
    "image_pull": "Pull image",
    "create": "Create",
    "stop": "Stop",
    "kill": "Kill",
    "delete": "Delete",
    "function_deploy": "Deploy function",
    "workload_create": "Create workload",
    "workload_update": "Update workload",
    "workload_scale": "Scale workload",
    "workload_delete": "Delete workload",
}


def kind_label(kind: str) -> str:
    return KIND_LABELS.get(kind, kind.replace("_", " ").capitalize())


def target_url(target_type: str, target_id: str) -> str:
    if target_type == "container" and target_id:
        return reverse("containers:detail", args=[target_id])
    if target_type == "snapshot" and target_id:
        return reverse("snapshots:detail", args=[target_id])
    if target_type == "volume" and target_id:
        return reverse("volumes:detail", args=[target_id])
    if target_type == "function" and target_id:
        return reverse("functions:detail", args=[target_id])
    if target_type == "image":
        return reverse("images:list")
    return ""


def short(value: str) -> str:
    """Engine ids as people recognise them (12 hex); other ids whole."""
    if len(value) == 64 and all(c in "0123456789abcdef" for c in value):
        return value[:12]
    return value


def result_links(op: Operation, names: dict[str, str] | None = None) -> list[dict[str, str]]:
    """Each id in the result as a labelled link (or plain text when there is no page for it)."""
    result: dict[str, Any] = op.result or {}
    links: list[dict[str, str]] = []
    names = names or {}
    if cid := result.get("container_id"):
        text = names.get(cid) or short(cid)
        links.append(
            {"label": "Container", "text": text, "url": reverse("containers:detail", args=[cid])}
        )
    if sid := result.get("snapshot_id"):
        links.append(
            {"label": "Snapshot", "text": sid, "url": reverse("snapshots:detail", args=[sid])}
        )
    for cid in result.get("container_ids") or []:
        text = names.get(cid) or short(cid)
        links.append(
            {"label": "Container", "text": text, "url": reverse("containers:detail", args=[cid])}
        )
    if ref := result.get("reference"):
        links.append({"label": "Image", "text": ref, "url": reverse("images:list")})
    if image_id := result.get("image_id"):
        links.append(
            {"label": "Image id", "text": short(image_id.removeprefix("sha256:")), "url": ""}
        )
    if path := result.get("path"):
        links.append({"label": "Path", "text": str(path), "url": ""})
    if "files_extracted" in result:
        links.append(
            {"label": "Files extracted", "text": str(result["files_extracted"]), "url": ""}
        )
    return links


def failed_items(op: Operation) -> list[dict[str, Any]]:
    """Batch items that failed: `[{index, error}]` with the error's message flattened."""
    out = []
    for item in (op.result or {}).get("failed") or []:
        error = item.get("error")
        message = error.get("error") if isinstance(error, dict) else str(error)
        out.append({"index": item.get("index"), "error": message})
    return out


def duration(op: Operation) -> str:
    """How long it ran (or has been running), as people say it: 2.1 s, 3 min 4 s, 1 h 2 min."""
    if op.started_at is None:
        return ""
    from django.utils import timezone

    seconds = ((op.finished_at or timezone.now()) - op.started_at).total_seconds()
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"


def failure(op: Operation) -> dict[str, Any] | None:
    """A failed (or cancelled) operation's error as a page shows it, or None.

    `cause` is the one line a headline and the tray show, taken from the engine's message when
    there is one; `full` is the engine's whole (cleaned) message, or the error's own, for a
    disclosure; `details` are the other detail fields.
    """
    error: dict[str, Any] = op.error or {}
    if not error:
        return None
    message = str(error.get("error") or "")
    details = dict(error.get("details") or {})
    engine_text = str(details.pop("engine_message", "") or "")
    # Our own messages are already one sentence; only the engine's text needs its cause found.
    cause = engine_cause(engine_text) if engine_text else message.splitlines()[0] if message else ""
    full = engine_text or message
    return {
        "cause": cause or error.get("error_code", "failed"),
        # The error's own sentence, when the cause line does not already say it.
        "summary": message if message and cause not in message else "",
        "full": full,
        "has_more": full.strip() != cause.strip(),
        "error_code": error.get("error_code", ""),
        "hint": error.get("hint", ""),
        "details": details,
    }


def row(op: Operation, names: dict[str, str] | None = None) -> dict[str, Any]:
    """What a list row, the tray and the detail page show; `names` maps target ids (containers,
    functions: the types registered with `registry.target_names`) to names."""
    return {
        "op": op,
        "failure": failure(op),
        "kind_label": kind_label(op.kind),
        "target_text": (names or {}).get(op.target_id) or short(op.target_id),
        "duration": duration(op),
        "target_url": target_url(op.target_type, op.target_id),
        "requested_by": (op.requested_by or {}).get("name", ""),
    }

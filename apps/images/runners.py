"""The `image_pull` runner: registry pulls with byte and layer progress, and the Debian build."""

from __future__ import annotations

import logging
from typing import Any

from apps.core.engine_messages import clean_engine_message, engine_cause
from apps.engine.client import engine
from apps.images import actions, debian
from apps.operations.models import Operation
from apps.operations.registry import OperationCancelled, OperationFailed, Progress, runner

LAYER_STATUSES = {
    "Pulling fs layer",
    "Waiting",
    "Downloading",
    "Verifying Checksum",
    "Download complete",
    "Extracting",
    "Pull complete",
    "Already exists",
}
DONE = {"Pull complete", "Already exists"}

log = logging.getLogger(__name__)


def human(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"


class PullTracker:
    """Folds the engine's pull stream into (percent, "3/5 layers, 1.2 MiB of 4.0 MiB")."""

    def __init__(self) -> None:
        self.layers: dict[str, dict[str, Any]] = {}
        self.highest = 0

    def feed(self, event: dict[str, Any]) -> None:
        status = event.get("status", "")
        layer = event.get("id")
        if not layer or status not in LAYER_STATUSES:
            return
        entry = self.layers.setdefault(layer, {"current": 0, "total": 0, "done": False})
        detail = event.get("progressDetail") or {}
        if status == "Downloading":
            entry["current"] = int(detail.get("current") or 0)
            entry["total"] = int(detail.get("total") or entry["total"])
        elif status in ("Download complete", "Extracting") or status in DONE:
            entry["current"] = entry["total"] = max(entry["total"], entry["current"])
        if status in DONE:
            entry["done"] = True

    @property
    def done(self) -> int:
        return sum(1 for e in self.layers.values() if e["done"])

    @property
    def bytes(self) -> tuple[int, int]:
        return (
            sum(e["current"] for e in self.layers.values()),
            sum(e["total"] for e in self.layers.values()),
        )

    def percent(self) -> int:
        """Never goes down: layer sizes only become known as each layer starts downloading."""
        count = len(self.layers)
        if not count:
            return 0
        fractions = [
            1.0 if e["done"] else (e["current"] / e["total"] if e["total"] else 0.0)
            for e in self.layers.values()
        ]
        value = min(99, int(80 * sum(fractions) / count + 19 * self.done / count))
        self.highest = max(self.highest, value)
        return self.highest

    def message(self) -> str:
        current, total = self.bytes
        text = f"{self.done}/{len(self.layers)} layers"
        if total:
            text += f", {human(current)} of {human(total)}"
        return text


def pull_failed(op: Operation, message: str) -> OperationFailed:
    """PULL_FAILED: `error` names the cause in one line ("no such host: registry.example"),
    `details.engine_message` is the engine's text cleaned of socket URLs, host paths and the
    resolver's address; the full text goes to the server log under the operation's request id."""
    log.warning(
        "image pull %s of %s failed (request_id=%s): %s",
        op.operation_id,
        op.target_id,
        op.request_id or "-",
        message,
    )
    cleaned = clean_engine_message(message)
    return OperationFailed(
        "PULL_FAILED", f"the pull failed: {engine_cause(cleaned)}", {"engine_message": cleaned}
    )


@runner("image_pull")
def run_image_pull(op: Operation, progress: Progress) -> dict[str, Any]:
    repository = str(op.params["repository"])
    tag = str(op.params["tag"])
    reference = op.target_id
    if op.params.get("source") == "debootstrap":
        try:
            image_id = debian.build(repository, tag, progress.report, progress.check_cancel)
        except RuntimeError as exc:
            raise OperationFailed(
                "BUILD_FAILED", clean_engine_message(str(exc)), engine_text=str(exc)
            ) from None
        actions.published(
            op.requester("admin"),
            "pulled",
            "image.pulled",
            reference,
            image_id,
            {"source": "debootstrap"},
        )
        return {"reference": reference, "image_id": image_id}
    tracker = PullTracker()
    progress.report(0, "contacting the registry")
    try:
        for event in engine().pull_image(repository, tag):
            if "error" in event or "errorDetail" in event:
                detail = event.get("errorDetail") or {}
                raise pull_failed(op, str(detail.get("message") or event.get("error")))
            tracker.feed(event)
            if event.get("status") in LAYER_STATUSES:
                progress.report(tracker.percent(), tracker.message())
            progress.check_cancel()
    except (OperationFailed, OperationCancelled):
        raise
    except Exception as exc:  # the stream raises docker's or the engine seam's errors
        raise pull_failed(op, str(exc)) from None
    image_id = str(engine().inspect_image(reference)["Id"])
    _current, total = tracker.bytes
    progress.report(
        100, f"pulled: {tracker.message()}" if tracker.layers else "pulled (up to date)"
    )
    actions.published(
        op.requester("admin"), "pulled", "image.pulled", reference, image_id, {"bytes": total}
    )
    return {
        "reference": reference,
        "image_id": image_id,
        "layers": len(tracker.layers),
        "bytes": total,
    }

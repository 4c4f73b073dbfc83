"""`GET /api/events`: the persisted event table as Server-Sent Events (spec 2.4).

The worker and the web process both write Event rows; this view polls the table (about every
0.3 s) from an async generator, so one Daphne process serves many streams without a thread each
blocking on a queue, and events cross processes with no broker. `Last-Event-ID` resumes after
that id; when the rows after it have already been deleted (24 h), `ready` says `gap:true` and
the client refetches what it shows.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from asgiref.sync import sync_to_async
from django.contrib.auth import get_user_model
from django.db.models import Max, Min, Q
from django.http import HttpRequest, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt

from apps.accounts import idle
from apps.accounts.actor import Actor, actor_for
from apps.accounts.models import ApiKey
from apps.core.api import check_query, error_response
from apps.core.apidoc import describe
from apps.core.errors import ApiError, invalid
from apps.core.ids import iso
from apps.events import schemas
from apps.events.models import Event

EVENT_TYPES = (
    "container_update",
    "snapshot_update",
    "volume_update",
    "terminal_update",
    "image_update",
    "operation_update",
    "function_update",
    "invocation_update",
)
ALWAYS_SENT = ("ready", "heartbeat")
POLL_SECONDS = 0.3
LATE_WINDOW = 50
HEARTBEAT_SECONDS = 15.0
BATCH = 200
# Events any signed-in user may see although they belong to no tenant (images are global).
GLOBAL_TYPES = ("image_update",)


@dataclass
class Subscription:
    """Who listens and what they asked for, fixed when the stream opens."""

    actor: Actor
    user_id: int | None
    api_key_id: int | None
    types: list[str] | None
    container_id: str | None
    cursor: int
    resumed: bool
    gap: bool
    # The browser session behind a cookie- or ticket-opened stream: signing out ends the stream.
    session_key: str | None = None
    # Ids delivered lately. On PostgreSQL a row can commit after a row with a higher id, so
    # each poll looks back LATE_WINDOW ids for rows not yet sent (SQLite commits in id order).
    sent: deque[int] = field(default_factory=lambda: deque(maxlen=LATE_WINDOW * 2))
    floor: int = 0  # never look back past where the stream started

    def query(self) -> Any:
        low = max(self.floor, self.cursor - LATE_WINDOW)
        rows = Event.objects.filter(id__gt=low).exclude(id__in=[i for i in self.sent if i > low])
        if not self.actor.is_admin:
            rows = rows.filter(
                Q(tenant_id=self.actor.tenant_id) | Q(tenant_id__isnull=True, type__in=GLOBAL_TYPES)
            )
        if self.types is not None:
            rows = rows.filter(type__in=self.types)
        if self.container_id is not None:
            rows = rows.filter(container_id=self.container_id)
        return rows.order_by("id")


def format_event(event_type: str, data: dict[str, Any], event_id: int | None = None) -> bytes:
    lines = []
    if event_id is not None:
        lines.append(f"id: {event_id}")
    lines.append(f"event: {event_type}")
    lines.append("data: " + json.dumps(data, separators=(",", ":"), default=str))
    return ("\n".join(lines) + "\n\n").encode()


def _parse_types(raw: str | None) -> list[str] | None:
    if raw is None or raw.strip() == "":
        return None
    types = [t.strip() for t in raw.split(",") if t.strip()]
    for t in types:
        if t not in EVENT_TYPES and t not in ALWAYS_SENT:
            raise invalid(
                "types",
                f"unknown event type {t!r}",
                expected=list(EVENT_TYPES),
                received=t,
            )
    return [t for t in types if t not in ALWAYS_SENT]


# The stream's `container_id` filter: the full id of a container the caller may see (deleted ones
# too: their history stays). apps.containers fills it in from its AppConfig.ready(): containers
# sit above events in the layers (docs/architecture.md, "Registries").
ContainerResolver = Callable[[Actor, str], str]
_container_resolver: list[ContainerResolver] = []


def register_container_resolver(resolver: ContainerResolver) -> None:
    _container_resolver[:] = [resolver]


def _resolve_container(actor: Actor, ref: str) -> str:
    if not _container_resolver:
        raise RuntimeError("apps.containers registers the container resolver in ready()")
    return _container_resolver[0](actor, ref)


def subscribe(request: HttpRequest) -> Subscription:
    """Validate the request and place the cursor; raises ApiError (sync: touches the database)."""
    if request.method != "GET":
        raise ApiError(
            405,
            "METHOD_NOT_ALLOWED",
            f"{request.method} is not allowed here",
            details={"expected": ["GET"]},
        )
    # `token` (an API key, as Quilt's SDK sends it) and `ticket` were read by the auth middleware.
    check_query(request, ["types", "container_id", "last_event_id", "token", "ticket"])
    actor = actor_for(request)
    types = _parse_types(request.GET.get("types"))
    container_id = None
    if ref := request.GET.get("container_id"):
        container_id = _resolve_container(actor, ref)

    raw_last = request.headers.get("Last-Event-ID") or request.GET.get("last_event_id")
    bounds = Event.objects.aggregate(low=Min("id"), high=Max("id"))
    high = bounds["high"] or 0
    cursor, resumed, gap = high, False, False
    if raw_last not in (None, ""):
        try:
            last = int(str(raw_last).strip())
            if last < 0:
                raise ValueError
        except ValueError:
            raise invalid("last_event_id", "Last-Event-ID must be a non-negative integer") from None
        low = bounds["low"]
        if last > high or (low is None and last > 0) or (low is not None and last < low - 1):
            gap = True  # the rows after `last` are gone (kept 24 h): the client refetches
        else:
            cursor, resumed = last, True
    key = getattr(request, "api_key", None)
    return Subscription(
        actor=actor,
        user_id=request.user.pk,
        api_key_id=key.pk if key is not None else None,
        types=types,
        container_id=container_id,
        cursor=cursor,
        floor=cursor,
        resumed=resumed,
        gap=gap,
        session_key=_browser_session(request),
    )


def _browser_session(request: HttpRequest) -> str | None:
    """The signed-in session behind this stream, when a browser opened it: with its cookie, or
    with a ticket while that cookie is present (EventSource sends same-origin cookies)."""
    if getattr(request, "api_key", None) is not None:
        return None
    session = getattr(request, "session", None)
    if session is None or not session.session_key:
        return None
    if str(session.get("_auth_user_id", "")) != str(request.user.pk):
        return None
    return str(session.session_key)


def _next_rows(sub: Subscription) -> list[tuple[int, str, dict[str, Any]]]:
    return list(sub.query().values_list("id", "type", "data")[:BATCH])


def _still_allowed(sub: Subscription) -> bool:
    """Re-checked on every heartbeat: a revoked or expired key or a deactivated user ends the
    stream."""
    if not get_user_model().objects.filter(pk=sub.user_id or -1, is_active=True).exists():
        return False
    if sub.api_key_id is not None:
        return ApiKey.live().filter(pk=sub.api_key_id).exists()
    return idle.session_alive(sub.session_key, sub.user_id)


async def stream(sub: Subscription) -> AsyncIterator[bytes]:
    """`ready`, then every matching row after the cursor, with a heartbeat every 15 s."""
    yield format_event(
        "ready",
        {
            "server_time": iso(timezone.now()),
            "last_event_id": sub.cursor,
            "resumed": sub.resumed,
            "gap": sub.gap,
        },
        sub.cursor,
    )
    last_beat = time.monotonic()
    while True:
        rows = await sync_to_async(_next_rows)(sub)
        for event_id, event_type, data in rows:
            sub.cursor = max(sub.cursor, event_id)
            sub.sent.append(event_id)
            yield format_event(event_type, data, event_id)
        if len(rows) == BATCH:
            continue
        if time.monotonic() - last_beat >= HEARTBEAT_SECONDS:
            if not await sync_to_async(_still_allowed)(sub):
                return
            last_beat = time.monotonic()
            yield format_event("heartbeat", {"at": iso(timezone.now())})
        await asyncio.sleep(POLL_SECONDS)


@describe("GET", doc=schemas.EVENTS)
@csrf_exempt  # GET only (anything else is a JSON 405 from subscribe), like every API route
async def events(request: HttpRequest) -> HttpResponseBase:
    try:
        sub = await sync_to_async(subscribe)(request)
    except ApiError as err:
        return error_response(request, err)
    response = StreamingHttpResponse(stream(sub), content_type="text/event-stream")
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"
    return response

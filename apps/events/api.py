"""`GET /api/events`: the persisted event table as Server-Sent Events (spec 2.4).

The worker and every web process write Event rows; each web process reads new ones once for all
of its streams and hands them out in memory (apps/events/hub.py), so one Daphne serves many
streams with no thread and no query of each, and events cross processes through the table (and
PostgreSQL's NOTIFY) with no broker. A stream first joins the hub, then replays the table after
its `Last-Event-ID` (or from where it opened), then sends what the hub handed it meanwhile and
from then on, skipping what the replay already sent. When the rows after that id have already
been deleted (24 h), `ready` says `gap:true` and the client refetches what it shows.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from asgiref.sync import sync_to_async
from django.db.models import Max, Min
from django.http import HttpRequest, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt

from apps.accounts.actor import Actor, actor_for
from apps.core.api import check_query, error_response
from apps.core.apidoc import describe
from apps.core.database import closing_connections
from apps.core.errors import ApiError, invalid
from apps.core.ids import iso
from apps.events import schemas
from apps.events.hub import BATCH, Listener, Row, Scope, hub, read
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
    "workload_update",
)
ALWAYS_SENT = ("ready", "heartbeat")


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

    @property
    def scope(self) -> Scope:
        return Scope(
            is_admin=self.actor.is_admin,
            tenant_id=self.actor.tenant_id,
            types=tuple(self.types) if self.types is not None else None,
            container_id=self.container_id,
        )

    def query(self, after: int) -> Any:
        """The rows this stream receives after id `after`, in id order (its replay)."""
        return Event.objects.filter(self.scope.q(), id__gt=after).order_by("id")


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


def _replay(sub: Subscription, after: int) -> list[Row]:
    return read(sub.query(after), BATCH)


async def stream(sub: Subscription) -> AsyncIterator[bytes]:
    """`ready`, then every matching row after the cursor, with a heartbeat every 15 s (while the
    hub's check finds the caller still allowed; when it does not, the stream ends)."""
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
    events_hub = hub()
    listener = events_hub.join(
        Listener(
            sub.scope,
            cursor=sub.cursor,
            user_id=sub.user_id,
            api_key_id=sub.api_key_id,
            session_key=sub.session_key,
        )
    )
    # On the request's own thread, where the middleware and `subscribe` already opened a
    # connection, closed after each page: it would otherwise stay open for as long as the stream
    # does, one per idle client (past PostgreSQL's 100 at a few dozen clients a process).
    replay = sync_to_async(closing_connections(_replay))
    try:
        while not listener.ended:
            listener.clear_wake()
            if not events_hub.started:
                await listener.wait()  # the hub places its cursor first (see Hub._start)
                continue
            after = listener.take_replay()
            if after is not None:
                # In id order, before anything buffered: a client that drops the stream resumes
                # after the last id it saw, and must not have skipped one below it.
                while not listener.ended:
                    rows = await replay(sub, after)
                    for row in rows:
                        if listener.fresh(row.id):
                            yield format_event(row.type, row.data, row.id)
                    if len(rows) < BATCH:
                        break
                    after = rows[-1].id
                    listener.replaying(after)
                    listener.forget_old(events_hub.low)
                listener.replayed()
            elif listener.buffer:
                row = listener.buffer.popleft()
                if listener.fresh(row.id):
                    yield format_event(row.type, row.data, row.id)
                listener.forget_old(events_hub.low)
            elif listener.beat:
                listener.beat = False
                yield format_event("heartbeat", {"at": iso(timezone.now())})
            else:
                await listener.wait()
    finally:
        events_hub.leave(listener)


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

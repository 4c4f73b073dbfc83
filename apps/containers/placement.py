"""Which engine a new container goes to (contract 2.11, "Placement").

A create, a batch item, a clone or a fork may name an `engine`. Named: it must be registered
(422 otherwise), active (409 ENGINE_DRAINING) and answering (503 ENGINE_UNAVAILABLE with
`details.engine`). Omitted: the active, ready engine with the fewest running managed containers,
ties broken by name. The count comes from the container records, which a create updates at once,
so the items of one batch spread instead of all landing where the engine checks (every 5 s) last
counted fewest.

Volumes stay on the engine they were made on: a container that mounts named volumes is placed
on theirs when no engine is named; naming another one, or mounting volumes of two engines, is
422 WRONG_ENGINE.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db.models import Count, Q

from apps.containers.models import ContainerRecord
from apps.core.errors import ApiError, engine_unavailable, invalid
from apps.engine.hosts import LOCAL
from apps.engines import fanout, registry
from apps.engines.models import Availability, EngineState, RegisteredEngine


def place(
    requested: Any, *, volumes: list[tuple[str, str]] | None = None, image: str | None = None
) -> str:
    """The engine's name for a new container that mounts `volumes` ((name, the engine it lives
    on) pairs) and runs `image`; raises ApiError as the contract says."""
    if requested is not None and not isinstance(requested, str):
        raise invalid("engine", "engine must be an engine's name")
    rows = registry.all_engines()
    if requested:
        row = next((r for r in rows if r.name == requested), None)
        if row is None:
            raise invalid(
                "engine",
                f"no engine named {requested!r}",
                expected=[r.name for r in rows],
                received=requested[:100],
                hint="GET /api/engines lists them.",
            )
        _usable(row)
        for volume, on in volumes or ():
            if on != row.name:
                raise wrong_engine(volume, on)
        return row.name
    if volumes:
        first, on = volumes[0]
        for volume, other in volumes[1:]:
            if other != on:
                raise wrong_engine_error(
                    f"volumes {first!r} and {volume!r} live on different engines ({on!r} and "
                    f"{other!r}); a container runs on one",
                    engine=other,
                    field="volumes",
                    volume=volume,
                    hint="Mount volumes of one engine only; a snapshot with include_named "
                    "copies a volume's data to a clone on another engine.",
                )
        row = next((r for r in rows if r.name == on), None)
        if row is None:  # the engine was removed under the volume
            raise engine_unavailable(on, f"volume {first!r} lives on engine {on!r}, which is gone")
        _usable(row)
        return row.name
    return fewest_running(_holding(rows, image))


def _holding(rows: list[RegisteredEngine], image: str | None) -> list[RegisteredEngine]:
    """The engines that already have `image`, when it is not the managed base image (which
    QuiltWeb imports onto any engine): a container or pool with an image pulled onto one engine
    goes there. When none has it, every engine (the image check then says it is missing)."""
    if not image or image == settings.QUILTWEB_BASE_IMAGE or len(rows) < 2:
        return rows
    found = fanout.across(lambda _name, client: client.image_exists(image))
    having = [r for r in rows if found.results.get(r.name) and _takes_new(r)]
    return having or rows


def _takes_new(row: RegisteredEngine) -> bool:
    """Active and ready: the local engine's own watchdog speaks for it; the others' state is
    the checks'."""
    return row.availability == Availability.ACTIVE and (
        row.state == EngineState.READY or row.name == LOCAL
    )


def fewest_running(rows: list[RegisteredEngine]) -> str:
    candidates = [r for r in rows if _takes_new(r)]
    if not candidates:
        draining = [r.name for r in rows if r.availability != Availability.ACTIVE]
        if draining and len(draining) == len(rows):
            raise ApiError(
                409,
                "ENGINE_DRAINING",
                "every engine is draining: none takes new containers",
                hint="Set an engine's availability back to active (PATCH /api/engines/<name>).",
            )
        raise engine_unavailable(None, "no active engine answers")
    if len(candidates) == 1:
        return candidates[0].name
    running = dict(
        ContainerRecord.objects.filter(deleted_at__isnull=True)
        .filter(Q(state="running") | Q(state=""))
        .values_list("engine")
        .annotate(n=Count("id"))
        .values_list("engine", "n")
    )
    return min(candidates, key=lambda r: (running.get(r.name, 0), r.name)).name


def _usable(row: RegisteredEngine) -> None:
    if row.availability != Availability.ACTIVE:
        raise ApiError(
            409,
            "ENGINE_DRAINING",
            f"engine {row.name!r} is draining: it takes no new containers",
            details={"engine": row.name},
            hint="Name another engine, omit engine to let QuiltWeb choose, or set this one "
            "back to active.",
        )
    if row.state != EngineState.READY and row.name != LOCAL:
        raise engine_unavailable(row.name, row.error or "the engine does not answer its checks")


def wrong_engine_error(message: str, *, engine: str, hint: str, **details: Any) -> ApiError:
    """422 WRONG_ENGINE: a resource lives on `engine` and the request needs it elsewhere."""
    return ApiError(422, "WRONG_ENGINE", message, details={"engine": engine, **details}, hint=hint)


def wrong_engine(name: str, engine: str) -> ApiError:
    return wrong_engine_error(
        f"volume {name!r} lives on engine {engine!r}",
        engine=engine,
        field="engine",
        volume=name,
        hint=f"Place the container on {engine!r} (or omit engine), or use a volume on the "
        "engine you named.",
    )

"""JSON routes for volumes, their files and archive uploads (spec 2.6)."""

from __future__ import annotations

import base64
import posixpath
from typing import Any

from django.http import HttpRequest

from apps.accounts.access import require_api
from apps.accounts.models import Tenant
from apps.containers.access import get_container_for_api
from apps.core.api import api_route, check_query, json_body
from apps.core.errors import ApiError, invalid
from apps.engines import fanout
from apps.operations.actions import replay
from apps.operations.execution import execution_mode, sync_result
from apps.operations.idempotency import header_key
from apps.volumes import actions, files, listing, schemas
from apps.volumes.access import (
    client_of,
    get_volume_for_api,
    require_file_reader_api,
    visible,
)
from apps.volumes.archive import archive_fields, decode_content, stash
from apps.volumes.paths import clean_path as _clean_path


def clean_path(raw: object, *, allow_root: bool = True) -> str:
    """Every path the JSON API takes may start with `/`, the volume root (contract 2.17)."""
    return _clean_path(raw, allow_root=allow_root, rooted=True)


MODE_HINT = "mode is three octal digits of permission bits (at most 777), such as 644 or 755"


@api_route("GET", "POST", doc=schemas.VOLUMES)
def volumes(request: HttpRequest) -> Any:
    if request.method == "POST":
        return create(request)
    actor = require_api(request, "viewer")
    check_query(request, ["format", "engine"])
    on = fanout.check_engine_param(request.GET.get("engine"))
    items, unreachable = listing.as_dicts(visible(actor), extra=actor.is_admin, engine=on)
    out: dict[str, Any] = {"volumes": items}
    if unreachable:
        out["unreachable_engines"] = unreachable
    return out


def create(request: HttpRequest) -> Any:
    actor = require_api(request, "operator")
    body = json_body(request, ["name", "driver", "labels", "engine"])
    name = actions.check_name(body.get("name"))
    driver = actions.check_driver(body.get("driver"))
    labels = actions.check_labels(body.get("labels"))
    on = actions.check_engine(body.get("engine"))
    tenant = Tenant.objects.get(pk=actor.tenant_id or 0)
    volume = actions.create_volume(
        actor, tenant, name=name, driver=driver, labels=labels, engine=on
    )
    return listing.as_dict(volume, {}, extra=actor.is_admin), 201


@api_route("GET", "DELETE", doc=schemas.VOLUME)
def volume(request: HttpRequest, name: str) -> Any:
    if request.method == "DELETE":
        actor, vol = get_volume_for_api(request, name, "operator")
        check_query(request, ["execution"])
        mode = execution_mode(request)
        json_body(request, [])
        op = actions.request_delete(actor, vol, idempotency_key=header_key(request))
        if mode != "sync":
            return op.envelope(), 202
        # `?execution=sync` (2.17): wait; the runner's result is {name, deleted: true}.
        done = sync_result(op)
        return done if isinstance(done, tuple) else done.result
    actor, vol = get_volume_for_api(request, name)
    check_query(request, [])
    return listing.as_dict(vol, listing.attached(vol), extra=actor.is_admin)


@api_route("GET", doc=schemas.INSPECT)
def inspect(request: HttpRequest, name: str) -> Any:
    actor, vol = get_volume_for_api(request, name)
    check_query(request, [])
    info = client_of(vol).inspect_volume(vol.engine_name)
    data = listing.as_dict(vol, listing.attached(vol), extra=actor.is_admin)
    # The host path tells viewers and support about the host's layout and nothing they need.
    data["mountpoint"] = info.mountpoint if actor.can("operator") else None
    data["size_bytes"] = files.volume_size(vol)
    return data


@api_route("POST", doc=schemas.RENAME)
def rename(request: HttpRequest, name: str) -> Any:
    actor, vol = get_volume_for_api(request, name, "operator")
    body = json_body(request, ["new_name"])
    new_name = actions.check_name(body.get("new_name"), "new_name")
    try:
        vol = actions.rename_volume(actor, vol, new_name)
    except ApiError as err:
        if err.error_code == "NAME_CONFLICT":
            err.details = {**(err.details or {}), "field": "new_name"}
        raise
    data = listing.as_dict(vol, listing.attached(vol), extra=actor.is_admin)
    # Quilt's SDK reads `success` and the echoed `new_name` (2.17), next to the volume's fields.
    return {**data, "success": True, "new_name": vol.name}


@api_route("GET", doc=schemas.LS)
def ls(request: HttpRequest, name: str) -> Any:
    _, vol = get_volume_for_api(request, name)
    check_query(request, ["path"])
    return files.list_dir(vol, clean_path(request.GET.get("path", "")))


@api_route("GET", "DELETE", doc=schemas.FILE)
def file(request: HttpRequest, name: str, path: str) -> Any:
    if request.method == "DELETE":
        actor, vol = get_volume_for_api(request, name, "operator")
        check_query(request, ["recursive"])
        json_body(request, [])
        recursive = request.GET.get("recursive", "false")
        if recursive not in ("true", "false", "1", "0"):
            raise invalid("recursive", "recursive must be true or false", received=recursive)
        clean = clean_path(path, allow_root=False)
        result = files.delete_path(vol, clean, recursive in ("true", "1"))
        actions.file_changed(actor, vol, clean, {"deleted": True})
        return {**result, "success": True}  # `success` for Quilt's SDK (2.17)
    actor, vol = get_volume_for_api(request, name)
    require_file_reader_api(actor)
    check_query(request, [])
    clean = clean_path(path, allow_root=False)
    content, meta = files.read_file(vol, clean)
    return {**meta, "content": base64.b64encode(content).decode()}


def parse_mode(value: Any) -> int:
    """Permission bits only, as three octal digits (≤ 777).

    Setuid, setgid and sticky bits (4755, 2755, 1777) are refused: a volume is mounted into
    other containers, where a setuid file would run with its owner's rights.
    """
    if value is None:
        return 644
    if isinstance(value, bool) or not isinstance(value, int):
        raise invalid("mode", MODE_HINT, received=str(value)[:20], example=644)
    text = str(value)
    if len(text) == 4 and text[0] in "1234567" and all(ch in "01234567" for ch in text[1:]):
        raise invalid(
            "mode",
            "mode takes permission bits only (at most 777): setuid, setgid and sticky bits"
            " cannot be set through the API",
            received=value,
            example=755,
        )
    if len(text) != 3 or any(ch not in "01234567" for ch in text):
        raise invalid("mode", MODE_HINT, received=value, example=644)
    return value


@api_route("POST", doc=schemas.WRITE)
def write(request: HttpRequest, name: str) -> Any:
    actor, vol = get_volume_for_api(request, name, "operator")
    body = json_body(request, ["path", "content", "mode"])
    path = clean_path(body.get("path"), allow_root=False)
    content = body.get("content")
    data = decode_content("" if content is None else content) if content != "" else b""
    mode = parse_mode(body.get("mode"))
    result = files.write_file(vol, path, data, mode)
    actions.file_changed(actor, vol, path, {"size_bytes": result["size_bytes"]})
    return {**result, "success": True}  # `success` for Quilt's SDK (2.17)


ARCHIVE_FIELDS = ["content", "path", "strip_components"]


@api_route("POST", doc=schemas.VOLUME_ARCHIVE)
def volume_archive(request: HttpRequest, name: str) -> Any:
    actor, vol = get_volume_for_api(request, name, "operator")
    body = json_body(request, ARCHIVE_FIELDS)
    route = f"POST /api/volumes/{name}/archive"
    key = header_key(request)
    if (existing := replay(actor, key, route, body)) is not None:
        return existing.envelope(), 202
    path = clean_path(body.get("path"))
    data, strip = archive_fields(body)
    op = actions.request_archive(
        actor,
        target_type="volume",
        target_id=vol.name,
        tenant_id=vol.tenant_id,
        params={
            "volume_pk": vol.pk,
            "path": path,
            "strip_components": strip,
            "upload": stash(data),
        },
        route=route,
        body=body,
    )
    return op.envelope(), 202


@api_route("POST", doc=schemas.CONTAINER_ARCHIVE)
def container_archive(request: HttpRequest, container_id: str) -> Any:
    target = get_container_for_api(request, container_id, "operator")
    body = json_body(request, ARCHIVE_FIELDS)
    route = f"POST /api/containers/{target.id}/archive"
    key = header_key(request)
    if (existing := replay(target.actor, key, route, body)) is not None:
        return existing.envelope(), 202
    raw_path = body.get("path")
    workdir = target.info.working_dir or target.record.working_directory or "/"
    if raw_path is None or raw_path == "":
        path = workdir
    elif not isinstance(raw_path, str) or "\x00" in raw_path:
        raise invalid("path", "path must be a string", received=str(raw_path)[:100])
    else:
        if ".." in raw_path.split("/"):
            raise invalid("path", "path may not contain '..'", received=raw_path[:200])
        path = posixpath.normpath(posixpath.join(workdir, raw_path))
    data, strip = archive_fields(body)
    if not target.engine.path_exists(target.id, path):
        raise ApiError(
            422,
            "UNPROCESSABLE_ENTITY",
            f"{path} does not exist in the container",
            details={"field": "path", "received": path},
            hint="Create the directory first (exec mkdir -p) or upload to an existing one.",
        )
    op = actions.request_archive(
        target.actor,
        target_type="container",
        target_id=target.id,
        tenant_id=target.record.tenant_id,
        params={"path": path, "strip_components": strip, "upload": stash(data)},
        route=route,
        body=body,
    )
    return op.envelope(), 202

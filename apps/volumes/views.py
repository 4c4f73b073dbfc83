"""Dashboard pages for volumes: the list with create form, and a volume's page with its file browser.

Views mutate only through `apps.volumes.actions` and `apps.volumes.files`; POSTs answer htmx with
the re-rendered fragment and plain browsers with a redirect, so every form works without JS.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.core.files.uploadedfile import UploadedFile
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import HttpResponseClientRedirect, trigger_client_event

from apps.accounts.access import require_page
from apps.accounts.actor import Actor
from apps.accounts.models import Tenant
from apps.containers.forms import engine_choices
from apps.core.errors import ApiError, error_text
from apps.core.formwords import in_form_words
from apps.core.http import AuthedRequest
from apps.core.ids import iso
from apps.core.pages import PageFailure, attempt, flash_error, page_errors
from apps.engine.errors import EngineError
from apps.engine.hosts import engine_named
from apps.engines import registry as engines_registry
from apps.operations.idempotency import header_key
from apps.operations.models import Operation
from apps.volumes import actions, files, listing
from apps.volumes.access import (
    can_read_files,
    get_volume_for_page,
    require_file_reader_page,
    visible,
)
from apps.volumes.archive import check_tar, stash
from apps.volumes.models import Volume
from apps.volumes.paths import clean_path

PAGE_SIZE = 50
MAX_TAR_BYTES = 32 * 1024 * 1024


def _parse_labels(text: str) -> dict[str, str]:
    labels: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        key, sep, value = line.partition("=")
        if not sep:
            raise ApiError(422, "UNPROCESSABLE_ENTITY", f"label line {line!r} needs key=value")
        labels[key.strip()] = value.strip()
    return actions.check_labels(labels)


def _breadcrumbs(path: str) -> list[tuple[str, str]]:
    crumbs = []
    parts = path.split("/") if path else []
    for i, part in enumerate(parts):
        crumbs.append((part, "/".join(parts[: i + 1])))
    return crumbs


# -- list --------------------------------------------------------------------------------


def _list_context(request: AuthedRequest, **extra: Any) -> dict[str, Any]:
    actor = require_page(request, "viewer")
    query = request.GET.get("q", "").strip()
    engine_names = [row.name for row in engines_registry.all_engines()]
    on = request.GET.get("engine", "").strip()
    filter_error = None
    if on and on not in engine_names:
        filter_error = f"no engine named {on!r}; pick one of {', '.join(engine_names)}"
        on = ""
    qs = visible(actor).select_related("tenant")
    if query:
        qs = qs.filter(name__icontains=query)
    if on:
        qs = qs.filter(engine=on)
    page = Paginator(qs, PAGE_SIZE).get_page(request.GET.get("page"))
    found, failure = attempt(
        listing.across, [(v.engine, v.engine_name) for v in page.object_list], on or None
    )
    attached = found.attached if found is not None else {}
    engine_error = error_text(failure) if failure is not None else filter_error
    # Strings are prepared here: template date filters cost more than the engine call.
    rows = [
        {
            "pk": v.pk,
            "name": v.name,
            "engine": v.engine,
            "users": attached.get(v.engine_name, []),
            "tenant": v.tenant.slug,
            "labels": [f"{k}={val}" for k, val in v.labels.items()],
            "created_iso": iso(v.created_at),
            "created_label": v.created_at.strftime("%Y-%m-%d %H:%M"),
        }
        for v in page.object_list
    ]
    page_query = urlencode([(k, v) for k, v in (("q", query), ("engine", on)) if v])
    return {
        "nav": "volumes",
        "rows": rows,
        "page": page,
        "q": query,
        "can_act": actor.can("operator"),
        "engine_error": engine_error,
        # The Engine column, filter and picker show once there is more than one engine.
        "engines": engine_names if len(engine_names) > 1 else [],
        "engine": on,
        "engine_choices": engine_choices(),
        "unreachable_engines": found.unreachable if found is not None else [],
        "page_query": page_query,
        **extra,
    }


@require_GET
def volume_list(request: AuthedRequest) -> HttpResponse:
    ctx = _list_context(request)
    if request.htmx and request.htmx.target == "volume-rows":
        return render(request, "volumes/list.html#volume-rows", ctx)
    return render(request, "volumes/list.html", ctx)


@require_GET
def sizes(request: AuthedRequest) -> HttpResponse:
    """Sizes arrive after the list, out of band: the engine's disk-usage report takes seconds."""
    actor = require_page(request, "viewer")
    names = request.GET.getlist("v")
    listed = list(visible(actor).filter(name__in=names[:PAGE_SIZE]))
    measured: dict[str, int] = {}
    # Each engine's disk-usage report takes seconds: asked of the engines holding these volumes
    # only, side by side on a pool of its own (not the lists' 1.5 s one), each waited for.
    # An engine that cannot report shows no sizes for its volumes (no error for a side panel).
    holding = sorted({v.engine for v in listed})
    futures = [_sizes_pool.submit(_sizes_of, name) for name in holding]
    for future in futures:
        measured.update(future.result())
    items = [(v.pk, measured.get(v.engine_name)) for v in listed]
    return render(request, "volumes/list.html#volume-sizes", {"items": items})


_sizes_pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="volume-sizes")


def _sizes_of(engine: str) -> dict[str, int]:
    try:
        return engine_named(engine).volume_sizes()
    except EngineError:  # UnknownEngine too
        return {}


def _form(request: AuthedRequest) -> dict[str, str]:
    return {
        "name": request.POST.get("name", ""),
        "labels": request.POST.get("labels", ""),
        "engine": request.POST.get("engine", ""),
    }


# The forms' labels (templates/volumes/), for errors in their own words.
CREATE_LABELS = {"name": "Name", "labels": "Labels", "label": "Label", "engine": "Engine"}
RENAME_LABELS = {"new_name": "New name"}


def _in_form_words(exc: PageFailure, labels: dict[str, str]) -> str:
    return in_form_words(exc, labels) if isinstance(exc, ApiError) else error_text(exc)


def _create_failed(request: AuthedRequest, exc: PageFailure) -> HttpResponse:
    ctx = _list_context(
        request, create_error=_in_form_words(exc, CREATE_LABELS), form=_form(request)
    )
    return render(request, "volumes/list.html", ctx, status=422)


@require_POST
@page_errors(_create_failed)
def create(request: AuthedRequest) -> HttpResponse:
    actor = require_page(request, "operator")
    form = _form(request)
    name = actions.check_name(form["name"].strip())
    labels = _parse_labels(form["labels"])
    on = actions.check_engine(form["engine"].strip())
    tenant = Tenant.objects.get(pk=actor.tenant_id or 0)
    actions.create_volume(actor, tenant, name=name, driver="local", labels=labels, engine=on)
    messages.success(request, f"Volume {name} created.")
    return redirect("volumes:detail", name=name)


# -- detail ------------------------------------------------------------------------------


def _detail_context(
    request: HttpRequest, volume: Volume, path: str, **extra: Any
) -> dict[str, Any]:
    actor = require_page(request, "viewer")
    ctx: dict[str, Any] = {
        "nav": "volumes",
        "volume": volume,
        "path": path,
        "crumbs": _breadcrumbs(path),
        "parent": path.rsplit("/", 1)[0] if "/" in path else "",
        "can_act": actor.can("operator"),
        "can_read": can_read_files(actor),
        "is_admin": actor.is_admin,
        "users": [],
        "files": [],
        # Read before the listing, not lazily at render: an extraction that ends between the
        # two would otherwise show as finished (no polling, so no refresh) over a listing made
        # before its files existed.
        "operations": list(
            Operation.objects.filter(
                target_type="volume", target_id=volume.name, tenant_id=volume.tenant_id
            )[:5]
        ),
        **extra,
    }
    users, failure = attempt(listing.users_of, volume)
    if failure is None:
        ctx["users"] = users
        listed, failure = attempt(files.list_dir, volume, path)
    if failure is not None:
        ctx.setdefault("browse_error", error_text(failure))
    else:
        assert listed is not None
        for f in listed["files"]:
            f["modified_label"] = (f["modified_at"] or "")[:16].replace("T", " ")
        ctx["files"] = listed["files"]
    return ctx


def _path_param(request: AuthedRequest) -> tuple[str, str | None]:
    try:
        return clean_path(request.GET.get("path", "")), None
    except ApiError as exc:
        return "", error_text(exc)


@require_GET
def detail(request: AuthedRequest, name: str) -> HttpResponse:
    _, volume = get_volume_for_page(request, name)
    path, error = _path_param(request)
    ctx = _detail_context(request, volume, path, **({"browse_error": error} if error else {}))
    if request.htmx and request.htmx.target in ("file-browser", "file-list"):
        return render(request, "volumes/detail.html#file-browser", ctx)
    return render(request, "volumes/detail.html", ctx)


def _back(
    request: AuthedRequest, volume: Volume, path: str, flash: str = "", error: str = ""
) -> HttpResponse:
    """htmx: the re-rendered page (the caller's hx-select picks its part); else a redirect.

    Errors come back as 200 for htmx, which does not swap 4xx responses by default.
    """
    if request.htmx:
        ctx = _detail_context(request, volume, path, flash=flash, error=error)
        return render(request, "volumes/detail.html", ctx)
    if error:
        flash_error(request, error)
    if flash:  # both, when some of several uploads were written and some refused
        messages.success(request, flash)
    url = reverse("volumes:detail", args=[volume.name])
    return redirect(url + (f"?{urlencode({'path': path})}" if path else ""))


def _failed_at_top(request: AuthedRequest, exc: PageFailure, name: str) -> HttpResponse:
    """The volume's page (its top directory) saying why the action failed."""
    _, volume = get_volume_for_page(request, name)
    return _back(request, volume, "", error=error_text(exc))


def _failed_in_directory(request: AuthedRequest, exc: PageFailure, name: str) -> HttpResponse:
    """The directory the form posted from (`path`), saying why the action failed."""
    _, volume = get_volume_for_page(request, name)
    return _back(request, volume, _safe(request.POST.get("path", "")), error=error_text(exc))


def _failed_beside_file(request: AuthedRequest, exc: PageFailure, name: str) -> HttpResponse:
    """The directory holding the file the form named (`path`), saying why the action failed."""
    _, volume = get_volume_for_page(request, name)
    raw = request.POST.get("path", "")
    here = _safe(raw.rsplit("/", 1)[0] if "/" in raw else "")
    return _back(request, volume, here, error=error_text(exc))


def _rename_failed(request: AuthedRequest, exc: PageFailure, name: str) -> HttpResponse:
    _, volume = get_volume_for_page(request, name)
    return _back(request, volume, "", error=_in_form_words(exc, RENAME_LABELS))


@require_POST
@page_errors(_rename_failed, catch=(ApiError,))
def rename(request: AuthedRequest, name: str) -> HttpResponse:
    actor, volume = get_volume_for_page(request, name, "operator")
    new_name = actions.check_name(request.POST.get("new_name", "").strip(), "new_name")
    volume = actions.rename_volume(actor, volume, new_name)
    if request.htmx:
        messages.success(request, f"Renamed to {volume.name}.")
        return HttpResponseClientRedirect(reverse("volumes:detail", args=[volume.name]))
    messages.success(request, f"Renamed to {volume.name}.")
    return redirect("volumes:detail", name=volume.name)


@require_POST
@page_errors(_failed_at_top)
def delete(request: AuthedRequest, name: str) -> HttpResponse:
    actor, volume = get_volume_for_page(request, name, "operator")
    op = actions.request_delete(actor, volume, idempotency_key=header_key(request))
    messages.info(request, f"Deleting volume {volume.name} ({op.operation_id}).")
    if request.htmx:
        return HttpResponseClientRedirect(reverse("volumes:list"))
    return redirect("volumes:list")


def _write_upload(
    actor: Actor, volume: Volume, base: str, upload_file: UploadedFile
) -> tuple[str, int]:
    """Write one uploaded file into `base`; returns the path and size written (ApiError if
    refused)."""
    if upload_file.size and upload_file.size > files.MAX_WRITE_BYTES:
        raise ApiError(422, "UNPROCESSABLE_ENTITY", "files over 16 MiB: upload a tar archive")
    filename = clean_path(upload_file.name or "", allow_root=False).rsplit("/", 1)[-1]
    target = f"{base}/{filename}" if base else filename
    result = files.write_file(volume, target, upload_file.read(), 644)
    actions.file_changed(actor, volume, target, {"size_bytes": result["size_bytes"]})
    return target, int(result["size_bytes"])


def _upload_row(request: AuthedRequest, name: str, text: str, ok: bool) -> HttpResponse:
    """One file's result, for static/js/uploads.js (it sends one request per file)."""
    response = render(
        request,
        "volumes/detail.html#upload-row",
        {"upload": {"name": name, "text": text, "ok": ok}},
        status=200 if ok else 422,
    )
    response["X-Upload-Row"] = "1"
    return response


def _upload_failed(request: AuthedRequest, exc: PageFailure, name: str) -> HttpResponse:
    if request.headers.get("X-Upload-Row"):
        upload_file = request.FILES.get("file")
        filename = (upload_file.name if upload_file else "") or ""
        return _upload_row(request, filename, error_text(exc), False)
    return _failed_in_directory(request, exc, name)


@require_POST
@page_errors(_upload_failed)
def upload(request: AuthedRequest, name: str) -> HttpResponse:
    """Write the posted files (one or several `file` fields) into the folder `path`.

    A file that fails does not stop the others; the answer says which were written and why
    each other one was not. The page's script sends one file per request (`X-Upload-Row`) and
    gets that file's result row back, to show progress and a result per file.
    """
    actor, volume = get_volume_for_page(request, name, "operator")
    uploads = request.FILES.getlist("file")
    base = clean_path(request.POST.get("path", ""))
    if not uploads:
        raise ApiError(422, "UNPROCESSABLE_ENTITY", "choose a file to upload")
    if request.headers.get("X-Upload-Row"):
        target, size = _write_upload(actor, volume, base, uploads[0])
        return _upload_row(request, uploads[0].name or "", f"/{target}, {size} bytes", True)
    written, refused = [], []
    for upload_file in uploads:
        try:
            target, size = _write_upload(actor, volume, base, upload_file)
            written.append(f"{target} ({size} bytes)")
        except ApiError as exc:
            refused.append(f"{upload_file.name}: {error_text(exc)}")
    flash = f"Uploaded {', '.join(written)}." if written else ""
    error = f"Not uploaded: {'; '.join(refused)}." if refused else ""
    return _back(request, volume, base, flash=flash, error=error)


def _safe(path: str) -> str:
    try:
        return clean_path(path)
    except ApiError:
        return ""


@require_POST
@page_errors(_failed_in_directory)
def upload_archive(request: AuthedRequest, name: str) -> HttpResponse:
    actor, volume = get_volume_for_page(request, name, "operator")
    archive = request.FILES.get("archive")
    base = clean_path(request.POST.get("path", ""))
    if archive is None:
        raise ApiError(422, "UNPROCESSABLE_ENTITY", "choose a .tar or .tar.gz file")
    if archive.size and archive.size > MAX_TAR_BYTES:
        raise ApiError(422, "UNPROCESSABLE_ENTITY", "archives over 32 MiB are refused")
    strip_text = request.POST.get("strip_components", "0") or "0"
    if not strip_text.isdigit() or int(strip_text) > 64:
        raise ApiError(422, "UNPROCESSABLE_ENTITY", "strip components must be between 0 and 64")
    data = archive.read()
    check_tar(data)
    op = actions.request_archive(
        actor,
        target_type="volume",
        target_id=volume.name,
        tenant_id=volume.tenant_id,
        params={
            "volume_pk": volume.pk,
            "path": base,
            "strip_components": int(strip_text),
            "upload": stash(data),
        },
        route="",
        body=None,
    )
    return _back(request, volume, base, flash=f"Extracting {archive.name} ({op.operation_id}).")


@require_POST
@page_errors(_failed_beside_file)
def delete_file(request: AuthedRequest, name: str) -> HttpResponse:
    actor, volume = get_volume_for_page(request, name, "operator")
    raw = request.POST.get("path", "")
    here = _safe(raw.rsplit("/", 1)[0] if "/" in raw else "")
    path = clean_path(raw, allow_root=False)
    files.delete_path(volume, path, request.POST.get("recursive") == "1")
    actions.file_changed(actor, volume, path, {"deleted": True})
    return _back(request, volume, here, flash=f"Deleted {path}.")


@require_GET
@page_errors(_failed_at_top)
def download(request: AuthedRequest, name: str) -> HttpResponse:
    actor, volume = get_volume_for_page(request, name)
    require_file_reader_page(actor)
    path = clean_path(request.GET.get("path", ""), allow_root=False)
    content, _ = files.read_file(volume, path)
    response = HttpResponse(content, content_type="application/octet-stream")
    filename = path.rsplit("/", 1)[-1].replace('"', "")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@require_GET
def operation(request: AuthedRequest, name: str, operation_id: str) -> HttpResponse:
    """One operation's progress row (polled while it runs)."""
    _, volume = get_volume_for_page(request, name)
    op = Operation.objects.filter(
        operation_id=operation_id, target_type="volume", tenant_id=volume.tenant_id
    ).first()
    response = render(request, "volumes/detail.html#op-row", {"op": op, "volume": volume})
    if op is not None and op.is_terminal:
        # The browser refreshes its listing once, when an extraction ends (not on every event).
        trigger_client_event(response, "volume-files-changed")
    return response

"""Dashboard forms for containers. They only parse the browser's text fields into the API's body
shape; all the rules live in `apps.containers.validation` so the page and the API agree."""

from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings

from apps.core.errors import ApiError
from apps.core.formwords import in_form_words
from apps.engine import errors as engine_errors
from apps.engine.client import engine
from apps.engines import registry
from apps.engines.models import Availability, EngineState
from apps.images.references import RETAINED_REPOSITORY, SNAPSHOT_REPOSITORY
from apps.images.tenancy import Owners, tenant_may_use

# Snapshot images are cloned from the snapshots page; retained ones belong to deleted snapshots.
HIDDEN_PREFIXES = (SNAPSHOT_REPOSITORY + ":", RETAINED_REPOSITORY + ":")


def image_choices(tenant_id: int | None = None) -> list[tuple[str, str]]:
    """Tagged local images a new container of `tenant_id` may use, the managed image first.

    Snapshot and retained tags are never offered (snapshots are cloned from their page), and
    neither is any other tag of a tenant's image (say `backup:1` on a snapshot image an admin
    tagged): ownership follows the image, not the tag (`apps.images.tenancy`), so another
    tenant's snapshot never appears here. `None` offers only images of everyone's.
    """
    base = settings.QUILTWEB_BASE_IMAGE
    refs: set[str] = set()
    try:
        images = engine().list_images()
        owners = Owners((i.repo_tags, i.labels) for i in images)
        for image in images:
            if not tenant_may_use(owners.of(image.repo_tags, image.labels), tenant_id):
                continue
            for tag in image.repo_tags:
                if tag and tag != "<none>:<none>" and not tag.startswith(HIDDEN_PREFIXES):
                    refs.add(tag.removesuffix(":latest"))
    except engine_errors.EngineError:
        pass
    refs.discard(base)
    return [(base, f"{base} (managed)"), *[(r, r) for r in sorted(refs)]]


def engine_choices() -> list[tuple[str, str, bool]]:
    """(name, label, usable) for the create form's engine picker; empty with one engine."""
    rows = registry.all_engines()
    if len(rows) < 2:
        return []
    out = []
    for row in rows:
        notes = []
        if row.state != EngineState.READY:
            notes.append("unreachable")
        if row.availability != Availability.ACTIVE:
            notes.append("draining")
        usable = not notes
        label = row.name + (
            f" ({', '.join(notes)})" if notes else f" ({row.containers_running} running)"
        )
        out.append((row.name, label, usable))
    return out


def lines(text: str) -> list[str]:
    return [line.strip() for line in (text or "").splitlines() if line.strip()]


def parse_pairs(text: str, field: str) -> dict[str, str]:
    """`KEY=VALUE` per line into a map; a line without `=` is a field error."""
    out: dict[str, str] = {}
    for number, line in enumerate(lines(text), start=1):
        key, sep, value = line.partition("=")
        if not sep or not key.strip():
            raise forms.ValidationError(
                f"line {number} ({line[:40]!r}) is not KEY=VALUE", code=field
            )
        out[key.strip()] = value
    return out


def argv_from(text: str, in_shell: bool) -> list[str] | None:
    """One argument per line; or, in shell mode, the text as one `/bin/sh -lc` script."""
    if in_shell:
        script = (text or "").strip()
        return ["/bin/sh", "-lc", script] if script else None
    args = [line for line in (text or "").splitlines() if line.strip()]
    return args or None


class CreateForm(forms.Form):
    name = forms.CharField(max_length=200)
    image = forms.CharField(max_length=300, required=False)
    command = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), required=False)
    run_in_shell = forms.BooleanField(required=False)
    environment = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), required=False)
    labels = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False)
    working_directory = forms.CharField(max_length=400, required=False)
    memory_limit_mb = forms.IntegerField(required=False)
    cpu_limit_percent = forms.FloatField(required=False)
    volumes = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False)
    strict = forms.BooleanField(required=False)
    engine = forms.CharField(max_length=63, required=False)

    def clean_environment(self) -> dict[str, str]:
        return parse_pairs(self.cleaned_data.get("environment", ""), "environment")

    def clean_labels(self) -> dict[str, str]:
        return parse_pairs(self.cleaned_data.get("labels", ""), "labels")

    def body(self) -> dict[str, Any]:
        """The API create body for the cleaned form (only the fields the user filled)."""
        data = self.cleaned_data
        body: dict[str, Any] = {"name": data["name"].strip(), "strict": bool(data.get("strict"))}
        if data.get("image"):
            body["image"] = data["image"].strip()
        command = argv_from(data.get("command", ""), bool(data.get("run_in_shell")))
        if command is not None:
            body["command"] = command
        for key in ("environment", "labels"):
            if data.get(key):
                body[key] = data[key]
        if data.get("working_directory"):
            body["working_directory"] = data["working_directory"].strip()
        if data.get("memory_limit_mb") is not None:
            body["memory_limit_mb"] = data["memory_limit_mb"]
        if data.get("cpu_limit_percent") is not None:
            body["cpu_limit_percent"] = data["cpu_limit_percent"]
        volumes = lines(data.get("volumes", ""))
        if volumes:
            body["volumes"] = volumes
        if data.get("engine"):
            body["engine"] = data["engine"].strip()
        return body

    # The page's labels (templates/containers/new.html), for errors in the form's own words.
    LABELS = {
        "name": "Name",
        "image": "Image",
        "command": "Command",
        "environment": "Environment",
        "labels": "Labels",
        "working_directory": "Working directory",
        "memory_limit_mb": "Memory limit (MiB)",
        "cpu_limit_percent": "CPU limit (%)",
        "volumes": "Volumes",
        "strict": "Strict",
        "engine": "Engine",
    }
    HINTS = {"image": "Pull it on the Images page first."}

    def add_api_error(self, err: ApiError) -> None:
        """Put a validation/action error next to the field it names, else at the top."""
        field = (err.details or {}).get("field")
        message = in_form_words(err, self.LABELS, self.HINTS)
        if field in self.fields:
            self.add_error(field, message)
        else:
            self.add_error(None, message)


class ExecForm(forms.Form):
    command = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}))
    run_in_shell = forms.BooleanField(required=False)
    workdir = forms.CharField(max_length=400, required=False)
    timeout_s = forms.FloatField(required=False, min_value=0.001, max_value=600)

    def clean_workdir(self) -> str:
        workdir = (self.cleaned_data.get("workdir") or "").strip()
        if workdir and not workdir.startswith("/"):
            raise forms.ValidationError("the working directory must be an absolute path")
        return workdir

    def argv(self) -> list[str]:
        return (
            argv_from(self.cleaned_data["command"], bool(self.cleaned_data.get("run_in_shell")))
            or []
        )


class EnvForm(forms.Form):
    key = forms.CharField(max_length=200)
    value = forms.CharField(required=False, widget=forms.TextInput, strip=False)

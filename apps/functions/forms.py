"""Dashboard forms for functions. They parse the browser's text fields into the API's body
shape; the rules live in `apps.functions.validation` (`validate_spec`), so the page and the API
agree. An error the validation names by its API field is shown next to that field, worded with
the form's own label ("Memory (MiB)", not `memory_limit_mb`)."""

from __future__ import annotations

import re
from typing import Any

from django import forms

from apps.core.errors import ApiError


def parse_pairs(text: str) -> dict[str, str]:
    """`KEY=VALUE` per line into a map; a line without `=` is an error of the field."""
    out: dict[str, str] = {}
    for number, line in enumerate((text or "").splitlines(), start=1):
        if not line.strip():
            continue
        key, sep, value = line.partition("=")
        if not sep or not key.strip():
            raise forms.ValidationError(f"line {number} ({line.strip()[:40]!r}) is not KEY=VALUE")
        out[key.strip()] = value
    return out


class LabelledErrors(forms.Form):
    """Puts an `ApiError` next to the field its `details.field` names, in the form's words."""

    id_prefix = "fn"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("auto_id", f"{self.id_prefix}-%s")
        super().__init__(*args, **kwargs)

    def add_api_error(self, err: ApiError) -> None:
        field = str((err.details or {}).get("field") or "")
        message = err.text()
        # The API words its rules with field names; the form says them with its labels.
        for name in sorted(self.fields, key=len, reverse=True):
            message = re.sub(rf"\b{name}\b", str(self.fields[name].label or name), message)
        if field in self.fields:
            label = str(self.fields[field].label or field)
            if message.startswith(label + " "):
                message = message[len(label) + 1 :]
            self.add_error(field, message)
        else:
            self.add_error(None, message)

    def error_summary(self) -> list[str]:
        """Every error as one sentence starting with its field's label (for the top of the form)."""
        out: list[str] = []
        for name, errors in self.errors.items():
            label = self.fields[name].label if name in self.fields else None
            for error in errors:
                out.append(f"{label}: {error}" if label else str(error))
        return out


class FunctionForm(LabelledErrors):
    """The create (and new version) form: the fields of contract 2.13's create body."""

    name = forms.CharField(label="Name", max_length=63)
    handler = forms.CharField(
        label="Handler", widget=forms.Textarea(attrs={"rows": 3}), strip=False
    )
    image = forms.CharField(label="Image", max_length=300, required=False)
    description = forms.CharField(label="Description", max_length=1000, required=False)
    environment = forms.CharField(
        label="Environment", widget=forms.Textarea(attrs={"rows": 2}), required=False
    )
    memory_limit_mb = forms.IntegerField(label="Memory (MiB)", required=False)
    cpu_limit_percent = forms.FloatField(label="CPU limit (%)", required=False)
    timeout_seconds = forms.IntegerField(label="Timeout (s)", required=False)
    min_instances = forms.IntegerField(label="Minimum instances", required=False)
    max_instances = forms.IntegerField(label="Maximum instances", required=False)
    cleanup_on_exit = forms.BooleanField(label="Recycle after each invocation", required=False)
    working_directory = forms.CharField(label="Working directory", max_length=400, required=False)
    # The create form's picker, shown with more than one engine (the pool stays where it is made).
    engine = forms.CharField(label="Engine", max_length=64, required=False)

    def clean_environment(self) -> dict[str, str]:
        return parse_pairs(self.cleaned_data.get("environment", ""))

    def clean_handler(self) -> str:
        handler = self.cleaned_data.get("handler", "")
        if not handler.strip():
            raise forms.ValidationError("This field is required.")
        return str(handler)

    def body(self) -> dict[str, Any]:
        """The API create body for the cleaned form (only the fields the user filled)."""
        data = self.cleaned_data
        body: dict[str, Any] = {"name": data["name"].strip(), "handler": data["handler"]}
        for key in ("image", "description", "working_directory", "engine"):
            if (data.get(key) or "").strip():
                body[key] = data[key].strip()
        if data.get("environment"):
            body["environment"] = data["environment"]
        for key in (
            "memory_limit_mb",
            "cpu_limit_percent",
            "timeout_seconds",
            "min_instances",
            "max_instances",
        ):
            if data.get(key) is not None:
                body[key] = data[key]
        if data.get("cleanup_on_exit"):
            body["cleanup_on_exit"] = True
        return body


def initial_for(fn: Any) -> dict[str, Any]:
    """The form's fields filled with a function's current spec (the "New version" form)."""
    env = fn.environment or {}
    return {
        "name": fn.name,
        "handler": fn.handler,
        "image": fn.image,
        "description": fn.description or "",
        "environment": "\n".join(f"{key}={value}" for key, value in sorted(env.items())),
        "memory_limit_mb": fn.memory_limit_mb,
        "cpu_limit_percent": fn.cpu_limit_percent,
        "timeout_seconds": fn.timeout_seconds,
        "min_instances": fn.min_instances,
        "max_instances": fn.max_instances,
        "cleanup_on_exit": fn.cleanup_on_exit,
        "working_directory": fn.working_directory or "",
    }


class InvokeForm(LabelledErrors):
    id_prefix = "invoke"

    payload = forms.CharField(
        label="Payload", widget=forms.Textarea(attrs={"rows": 6}), required=False, strip=False
    )
    environment = forms.CharField(
        label="Environment", widget=forms.Textarea(attrs={"rows": 2}), required=False
    )
    timeout_seconds = forms.IntegerField(
        label="Timeout (s)", required=False, min_value=1, max_value=900
    )

    def clean_environment(self) -> dict[str, str]:
        return parse_pairs(self.cleaned_data.get("environment", ""))


class RollbackForm(forms.Form):
    version = forms.IntegerField(min_value=1)

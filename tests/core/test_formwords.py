"""API errors in a form's own words (apps.core.formwords)."""

from __future__ import annotations

from apps.core.errors import ApiError, invalid
from apps.core.formwords import in_form_words

LABELS = {"name": "Name", "new_name": "New name", "memory_limit_mb": "Memory limit (MiB)"}


def test_it_names_the_forms_label_instead_of_the_api_field() -> None:
    err = invalid("memory_limit_mb", "memory_limit_mb must be an integer between 16 and 262144")
    assert in_form_words(err, LABELS) == (
        "Memory limit (MiB) must be an integer between 16 and 262144"
    )


def test_it_prefers_the_longest_field_and_leaves_quoted_text_alone() -> None:
    assert in_form_words(invalid("new_name", "new_name is required"), LABELS) == (
        "New name is required"
    )
    conflict = ApiError(409, "NAME_CONFLICT", "a volume named 'name' already exists")
    assert in_form_words(conflict, LABELS) == "A volume named 'name' already exists"


def test_it_says_the_name_rules_in_words_without_repeating_the_hint() -> None:
    err = invalid("name", "name must match ^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$", hint="Names are…")
    text = in_form_words(err, LABELS)
    assert text.startswith("Name must start with a letter or digit")
    assert "^" not in text and "Names are" not in text


def test_it_drops_api_route_hints_and_takes_the_forms_own() -> None:
    err = invalid(
        "image", "image 'x' is not present", hint="Pull it with POST /api/oci/images/pull"
    )
    assert in_form_words(err, {"image": "Image"}) == "Image 'x' is not present"
    assert in_form_words(err, {"image": "Image"}, {"image": "Pull it first."}) == (
        "Image 'x' is not present — Pull it first."
    )
    kept = invalid("name", "name is required", hint="Pick one.")
    assert in_form_words(kept, LABELS) == "Name is required — Pick one."

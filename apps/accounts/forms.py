"""Forms for API keys, users and tenants. Validation messages are written for people."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.auth import get_user_model, password_validation
from django.core.validators import RegexValidator

from apps.accounts.models import Role, Tenant


class KeyForm(forms.Form):
    name = forms.CharField(
        max_length=100,
        help_text="What the key is for, e.g. “CI deploys” or “laptop”.",
        widget=forms.TextInput(attrs={"placeholder": "CI deploys", "autocomplete": "off"}),
    )


class TenantForm(forms.Form):
    slug = forms.SlugField(
        max_length=32,
        label="Tenant id",
        help_text="Lowercase letters, digits and dashes; it appears in container names.",
        validators=[
            RegexValidator(r"^[a-z0-9][a-z0-9-]*$", "Use lowercase letters, digits and dashes.")
        ],
    )
    name = forms.CharField(max_length=100, required=False, label="Display name")

    def clean_slug(self) -> str:
        slug: str = self.cleaned_data["slug"]
        if Tenant.objects.filter(slug=slug).exists():
            raise forms.ValidationError("A tenant with this id already exists.")
        return slug


class UserCreateForm(forms.Form):
    username = forms.CharField(
        max_length=150,
        validators=[RegexValidator(r"^[\w.@+-]+$", "Letters, digits and @ . + - _ only.")],
        widget=forms.TextInput(attrs={"autocomplete": "off"}),
    )
    password = forms.CharField(
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text="At least 8 characters, not a common password.",
    )
    role = forms.ChoiceField(choices=Role.choices, initial=Role.VIEWER)
    tenant = forms.ModelChoiceField(queryset=Tenant.objects.order_by("slug"), empty_label=None)

    def clean_username(self) -> str:
        username: str = self.cleaned_data["username"]
        if get_user_model().objects.filter(username__iexact=username).exists():
            raise forms.ValidationError("This username is taken.")
        return username

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        password = data.get("password")
        if password:
            user = get_user_model()(username=data.get("username", ""))
            try:
                password_validation.validate_password(password, user)
            except forms.ValidationError as exc:
                self.add_error("password", exc)
        return data


class RoleForm(forms.Form):
    role = forms.ChoiceField(choices=Role.choices)

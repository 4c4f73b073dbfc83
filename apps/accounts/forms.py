"""Forms for API keys, users and tenants. Validation messages are written for people."""

from __future__ import annotations

from typing import Any, NoReturn

from django import forms
from django.contrib.auth import get_user_model, password_validation
from django.contrib.auth.forms import AuthenticationForm
from django.core.validators import RegexValidator

from apps.accounts import throttle
from apps.accounts.models import Role, Tenant


class ThrottledAuthenticationForm(AuthenticationForm):
    """Django's sign-in form, throttled per (account, client address), per client address and,
    with a much higher limit, per account from all addresses (apps.accounts.throttle).

    Each attempt is counted before the password is checked, so parallel guesses cannot all slip
    under the limit; a success then clears its (account, client) counter and takes its count
    back from the other two. While a counter is locked even the right password is refused, with
    a form error saying when to try again (`retry_after` tells the view to answer 429). An
    attempt refused by one counter is not counted by the next: it tested no password, and one
    address cannot push an account's backstop past what its own pair limit allows.
    """

    retry_after: int | None = None

    def clean(self) -> dict[str, Any]:
        username = self.cleaned_data.get("username") or ""
        password = self.cleaned_data.get("password")
        if not username or not password:
            return super().clean()
        client = throttle.client_address(self.request.META if self.request else {})
        by_client = throttle.fail(throttle.LOGIN_CLIENT, throttle.client_key(client))
        if by_client.failures > throttle.LOGIN_CLIENT.limit:
            self._locked(by_client, throttle.LOGIN_CLIENT, client=client, username=None)
        pair = throttle.pair_key(username, client)
        by_pair = throttle.fail(throttle.LOGIN_PAIR, pair)
        if by_pair.failures > throttle.LOGIN_PAIR.limit:
            self._locked(by_pair, throttle.LOGIN_PAIR, client=client, username=username)
        by_account = throttle.fail(throttle.LOGIN_ACCOUNT, username)
        if by_account.failures > throttle.LOGIN_ACCOUNT.limit:
            self._locked(by_account, throttle.LOGIN_ACCOUNT, client=client, username=username)
        data = super().clean()  # raises invalid_login: all three counts stand
        throttle.reset(throttle.LOGIN_PAIR, pair)
        throttle.forgive(throttle.LOGIN_ACCOUNT, username)
        throttle.forgive(throttle.LOGIN_CLIENT, throttle.client_key(client))
        return data

    def _locked(
        self, count: throttle.Count, rule: throttle.Rule, *, client: str, username: str | None
    ) -> NoReturn:
        if count.failures == rule.limit + 1:  # the first refusal of this window: audit it once
            from apps.accounts.actions import record_lockout

            record_lockout(
                "auth.login_throttled",
                client=client,
                username=username,
                failures=rule.limit,
                retry_after=count.retry_after,
            )
        self.retry_after = count.retry_after
        whose = {
            throttle.LOGIN_PAIR.scope: "for this account from your address",
            throttle.LOGIN_ACCOUNT.scope: "for this account",
        }.get(rule.scope, "from your address")
        raise forms.ValidationError(
            f"Too many failed sign-ins {whose}. Try again {throttle.in_words(count.retry_after)}.",
            code="throttled",
        )


KEY_LIFETIMES = [("30", "30 days"), ("90", "90 days"), ("365", "365 days")]
NEVER = "never"


class KeyForm(forms.Form):
    name = forms.CharField(
        max_length=100,
        help_text="What the key is for, e.g. “CI deploys” or “laptop”.",
        widget=forms.TextInput(attrs={"placeholder": "CI deploys", "autocomplete": "off"}),
    )
    expires = forms.ChoiceField(
        label="Expires after",
        choices=KEY_LIFETIMES,
        initial="90",
        required=False,  # absent: the default lifetime
        help_text="The key stops working then; issue a new one before it does.",
    )

    def __init__(self, *args: Any, allow_never: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if allow_never:  # admins only: a key that never expires must be asked for explicitly
            self.fields["expires"].choices = [*KEY_LIFETIMES, (NEVER, "Never (admins only)")]  # type: ignore[attr-defined]

    def lifetime(self) -> int | None:
        """Days until the key expires (-1: the default), or None for never."""
        value = self.cleaned_data.get("expires") or ""
        if value == NEVER:
            return None
        return int(value) if value else -1


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

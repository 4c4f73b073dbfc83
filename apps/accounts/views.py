"""Account pages: your API keys, and (admins) users and tenants."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.views import LoginView
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from apps.accounts import actions, viewas
from apps.accounts.access import require_page
from apps.accounts.actor import actor_for
from apps.accounts.forms import (
    KeyForm,
    RoleForm,
    TenantForm,
    ThrottledAuthenticationForm,
    UserCreateForm,
)
from apps.accounts.models import ApiKey, Tenant
from apps.core.http import AuthedRequest


class ThrottledLoginView(LoginView):
    """Django's sign-in page with the throttled form; a locked-out attempt answers 429."""

    authentication_form = ThrottledAuthenticationForm
    redirect_authenticated_user = True

    def form_invalid(self, form: Any) -> HttpResponse:
        response = super().form_invalid(form)
        if form.retry_after is not None:
            response.status_code = 429
            response["Retry-After"] = str(form.retry_after)
        return response


login = ThrottledLoginView.as_view()


def _user_id(request: AuthedRequest) -> int:
    return int(request.user.pk or 0)  # pages require login, so there is always a user


def _get_key_for_user(request: AuthedRequest, pk: int) -> ApiKey:
    """Only the key's owner sees or revokes it; anyone else gets a 404."""
    return get_object_or_404(ApiKey, pk=pk, user_id=_user_id(request))


def _get_user_for_admin(request: AuthedRequest, pk: int) -> Any:
    require_page(request, "admin")
    return get_object_or_404(get_user_model().objects.select_related("profile"), pk=pk)


def keys(request: AuthedRequest) -> HttpResponse:
    actor = actor_for(request)
    form = KeyForm(request.POST or None, allow_never=actor.is_admin)
    new_key = None
    if request.method == "POST" and form.is_valid():
        key, raw = actions.issue_key(
            request.user, form.cleaned_data["name"], actor=actor, days=form.lifetime()
        )
        # Rendered straight into this response and never stored: a reload cannot show it again.
        new_key = {"name": key.name, "raw": raw, "expires_at": key.expires_at}
        form = KeyForm(allow_never=actor.is_admin)
    context = {
        "nav": "keys",
        "form": form,
        "new_key": new_key,
        "keys": ApiKey.objects.filter(user_id=_user_id(request)).order_by(
            "revoked_at", "-created_at"
        ),
        "now": timezone.now(),
    }
    return render(request, "accounts/keys.html", context)


@require_POST
def key_revoke(request: AuthedRequest, pk: int) -> HttpResponse:
    key = _get_key_for_user(request, pk)
    actions.revoke_key(key, actor=actor_for(request))
    messages.success(request, f"Key “{key.name}” ({key.prefix}…) is revoked; it stops working now.")
    return redirect("accounts:keys")


def _users_context(request: AuthedRequest, **forms: Any) -> dict[str, Any]:
    users = (
        get_user_model()
        .objects.select_related("profile", "profile__tenant")
        .order_by("-is_active", "username")
    )
    return {
        "nav": "users",
        "users": users,
        "tenants": Tenant.objects.order_by("slug"),
        "roles": RoleForm.base_fields["role"].choices,  # type: ignore[attr-defined]
        "user_form": forms.get("user_form") or UserCreateForm(),
        "tenant_form": forms.get("tenant_form") or TenantForm(),
    }


def users(request: AuthedRequest) -> HttpResponse:
    require_page(request, "admin")
    return render(request, "accounts/users.html", _users_context(request))


@require_POST
def user_create(request: AuthedRequest) -> HttpResponse:
    actor = require_page(request, "admin")
    form = UserCreateForm(request.POST)
    if not form.is_valid():
        return render(request, "accounts/users.html", _users_context(request, user_form=form))
    data = form.cleaned_data
    actions.create_user(
        data["username"], data["password"], data["role"], data["tenant"], actor=actor
    )
    messages.success(
        request, f"Created {data['username']} ({data['role']} in {data['tenant'].slug})."
    )
    return redirect("accounts:users")


@require_POST
def tenant_create(request: AuthedRequest) -> HttpResponse:
    actor = require_page(request, "admin")
    form = TenantForm(request.POST)
    if not form.is_valid():
        return render(request, "accounts/users.html", _users_context(request, tenant_form=form))
    tenant = actions.create_tenant(
        form.cleaned_data["slug"], form.cleaned_data["name"], actor=actor
    )
    messages.success(request, f"Created tenant {tenant.slug}.")
    return redirect("accounts:users")


@require_POST
def user_role(request: AuthedRequest, pk: int) -> HttpResponse:
    user = _get_user_for_admin(request, pk)
    actor = actor_for(request)
    form = RoleForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Pick one of the listed roles.")
    elif user.pk == request.user.pk:
        messages.error(request, "You can't change your own role; ask another admin.")
    elif actions.change_role(user, form.cleaned_data["role"], actor=actor):
        messages.success(
            request,
            f"{user.username} is now {form.cleaned_data['role']}; their open terminals were closed.",
        )
    return redirect("accounts:users")


@require_POST
def user_active(request: AuthedRequest, pk: int) -> HttpResponse:
    user = _get_user_for_admin(request, pk)
    active = request.POST.get("active") == "1"
    if user.pk == request.user.pk and not active:
        messages.error(request, "You can't deactivate yourself.")
    elif actions.set_active(user, active, actor=actor_for(request)):
        if active:
            messages.success(request, f"{user.username} can sign in again.")
        else:
            messages.success(
                request, f"{user.username} is deactivated: sign-in, API keys and terminals stopped."
            )
    return redirect("accounts:users")


def view_as(request: AuthedRequest) -> HttpResponse:
    """The tenant switcher (2.14): support and admins pick a tenant to view, read-only."""
    actor = getattr(request, "real_actor", None) or actor_for(request)
    if not viewas.may_view(actor):
        raise PermissionDenied(
            f"your role ({actor.role}) cannot view as another tenant; support and admins can"
        )
    current: Tenant | None = getattr(request, "view_tenant", None)
    error = ""
    if request.method == "POST":
        value = request.POST.get("tenant", "").strip()
        if not value:
            if current is not None:
                del request.session[viewas.SESSION_KEY]
                actions.stop_viewing(current, actor=actor)
                messages.success(request, f"Stopped viewing {current.name}.")
            return redirect("containers:list")
        tenant = viewas.find_tenant(value)
        if tenant is None:
            error = f"There is no tenant “{value}”. Pick one from the list."
        else:
            if current is not None and current.pk != tenant.pk:
                actions.stop_viewing(current, actor=actor)
            request.session[viewas.SESSION_KEY] = tenant.pk
            actions.start_viewing(tenant, actor=actor)
            return redirect("containers:list")
    context = {
        "nav": "view_as",
        "tenants": Tenant.objects.order_by("name", "slug"),
        "current": current,
        "own_tenant_id": actor.tenant_id,
        "error": error,
    }
    return render(request, "accounts/view_as.html", context, status=422 if error else 200)

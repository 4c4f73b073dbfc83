"""View as tenant (contract 2.14): support and admins read one tenant's resources as its own
users see them.

The API asks with `X-View-Tenant: <slug or number>` on each request; the dashboard keeps the
choice in the session (the switcher, `accounts:view_as`) and its own `/api` calls and event
stream follow it. Under it the request's actor (`actor_for`, which reads `request.view_tenant`; a
websocket's consumer passes `scope["view_tenant"]`) is the real user scoped to that tenant: their
name, id and role stay (the audit log and permissions see who really acts), `tenant_id` becomes
the viewed tenant and `is_admin` is off, so every access helper shows that tenant and no other.

Reads only: an unsafe method is refused (403 on the API, a message in the dashboard), except
starting and stopping the view, signing out and the one-time tickets the event stream and a
watched terminal need. Every request under it is audited (`tenant.view_request`) with the real
user, the viewed tenant, the method, the path and the status.
"""

from __future__ import annotations

from collections.abc import Callable

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.utils.html import escape
from django.views.defaults import permission_denied

from apps.accounts import actions
from apps.accounts.access import TENANT_HEADER_RE, TENANT_NUMBER_RE
from apps.accounts.actor import Actor, actor_for
from apps.accounts.models import Tenant
from apps.core.api import error_response
from apps.core.errors import ApiError
from apps.core.middleware import is_api_path

HEADER = "X-View-Tenant"
SESSION_KEY = "view_tenant_id"
ROLES = ("support", "admin")
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


def may_view(actor: Actor) -> bool:
    return actor.role in ROLES


def find_tenant(value: str) -> Tenant | None:
    """A tenant by slug or number; None for a value that names none (or could not)."""
    if not TENANT_HEADER_RE.fullmatch(value):
        return None
    return Tenant.objects.filter(slug=value).first() or (
        Tenant.objects.filter(pk=int(value)).first() if TENANT_NUMBER_RE.fullmatch(value) else None
    )


def header_tenant(actor: Actor, value: str) -> Tenant:
    """The tenant `X-View-Tenant` names, or the ApiError that says why not."""
    if not may_view(actor):
        raise ApiError(
            403,
            "FORBIDDEN",
            f"your role ({actor.role}) cannot view as another tenant; support and admins can",
            details={"field": HEADER, "expected": "support", "received": actor.role},
        )
    if not TENANT_HEADER_RE.fullmatch(value):
        raise ApiError(
            422,
            "UNPROCESSABLE_ENTITY",
            f"{HEADER} must be a tenant's slug or number",
            details={"field": HEADER, "received": value[:64]},
            hint="For example X-View-Tenant: acme",
        )
    tenant = find_tenant(value)
    if tenant is None:
        raise ApiError(
            404,
            "NOT_FOUND",
            f"no tenant {value!r} to view",
            details={"field": HEADER, "received": value},
            hint="Name a tenant by its slug or number, as the dashboard's tenant switcher lists them.",
        )
    return tenant


def session_tenant(request: HttpRequest, actor: Actor) -> Tenant | None:
    """The dashboard's chosen tenant, when this request is the session's user's own.

    A choice the user may no longer make (their role changed, the tenant is gone) is dropped.
    """
    session = getattr(request, "session", None)
    if session is None or SESSION_KEY not in session:
        return None
    if getattr(request, "api_key", None) is not None:
        return None  # a key speaks for itself; it asks with the header
    if str(session.get("_auth_user_id")) != str(request.user.pk):
        return None
    tenant = Tenant.objects.filter(pk=session.get(SESSION_KEY)).first()
    if tenant is None or not may_view(actor):
        del session[SESSION_KEY]
        return None
    return tenant


def _exempt_paths() -> tuple[str, ...]:
    return (reverse("accounts:view_as"), reverse("logout"), reverse("accounts_api:ticket_create"))


class ViewTenantMiddleware:
    """Scopes the request's actor to the viewed tenant, refuses writes, audits every request."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated:
            return self.get_response(request)
        actor = actor_for(request)
        api = is_api_path(request.path)
        value = request.headers.get(HEADER, "").strip() if api else ""
        if value:
            try:
                tenant: Tenant | None = header_tenant(actor, value)
            except ApiError as err:
                return error_response(request, err)
        else:
            tenant = session_tenant(request, actor)
        if tenant is None:
            return self.get_response(request)
        request.real_actor = actor  # type: ignore[attr-defined]
        request.view_tenant = tenant  # type: ignore[attr-defined]
        del request._actor  # type: ignore[attr-defined]  # actor_for() scopes it from now on
        allowed = request.method in SAFE_METHODS or request.path in _exempt_paths()
        response = self.get_response(request) if allowed else refuse(request, tenant, api)
        actions.record_view_request(
            tenant,
            actor=actor,
            method=str(request.method),
            path=request.path,
            status=response.status_code,
            refused=not allowed,
        )
        return response


def read_only_message(tenant: Tenant) -> str:
    return (
        f"you are viewing tenant {tenant.slug} read-only; "
        "stop viewing it to change anything (your own tenant's resources stay yours)"
    )


def refuse(request: HttpRequest, tenant: Tenant, api: bool) -> HttpResponse:
    if api:
        return error_response(
            request,
            ApiError(
                403,
                "FORBIDDEN",
                read_only_message(tenant),
                details={"field": HEADER},
                hint=f"Send this request without {HEADER}.",
            ),
        )
    if getattr(request, "htmx", False):
        # htmx does not swap a 4xx: say it in the banner every page has while viewing.
        message = read_only_message(tenant)
        response = HttpResponse(escape(f"Not done: {message}."))
        response["HX-Retarget"] = "#view-tenant-refused"
        response["HX-Reswap"] = "innerHTML"
        return response
    return permission_denied(request, PermissionDenied(read_only_message(tenant)))

"""Top-level routes. Each app owns `urls.py` (pages) and, where it has an API, `api_urls.py`."""

import importlib
import re

from django.contrib.auth import views as auth_views
from django.urls import URLPattern, include, path, re_path
from django.urls.resolvers import RoutePattern

from apps.accounts.views import login as throttled_login

# Zero-width guards: an API path is only tried against the apps' api_urls and a page path only
# against their urls, so Django does not walk (and list as "tried") every other app's patterns.
API_ONLY = r"^(?=api(?:/|$))"
PAGES_ONLY = r"^(?!api(?:/|$))"


def optional(module: str, guard: str) -> list:
    """Include an app's urls when the module exists (apps land one by one)."""
    try:
        loaded = importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name != module:
            raise
        return []
    return [re_path(narrowed(guard, loaded.urlpatterns), include(module))]


def narrowed(guard: str, patterns: list) -> str:
    """`guard`, narrowed to the paths one of these routes could match: a literal route whole,
    a route with converters by its literal head. A request then walks the one or two apps that
    can answer it instead of every app before them. Regex routes keep the plain guard."""
    alternatives = []
    for pattern in patterns:
        if not isinstance(pattern, URLPattern) or not isinstance(pattern.pattern, RoutePattern):
            return guard
        head, converter, _ = str(pattern.pattern).partition("<")
        alternatives.append(re.escape(head) + ("" if converter else "$"))
    return guard + r"(?=(?:" + "|".join(alternatives) + "))"


urlpatterns = [
    # Django's LoginView with a form throttled per account and client (apps.accounts.throttle).
    path("accounts/login/", throttled_login, name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
]
for app in (
    "health",
    "accounts",
    "containers",
    "operations",
    "events",
    "snapshots",
    "volumes",
    "network",
    "images",
    "terminals",
    "activity",
    "core",  # /api/openapi.json and /api/docs describe the routes above (contract 2.15)
):
    urlpatterns += optional(f"apps.{app}.api_urls", API_ONLY)
    urlpatterns += optional(f"apps.{app}.urls", PAGES_ONLY)

# Under /api, unknown paths and crashes answer with the spec's JSON error body; pages keep their HTML.
handler404 = "apps.core.api.not_found_handler"
handler500 = "apps.core.api.server_error_handler"

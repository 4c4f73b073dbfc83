"""Top-level routes. Each app owns `urls.py` (pages) and, where it has an API, `api_urls.py`."""

import importlib

from django.contrib.auth import views as auth_views
from django.urls import include, path, re_path

# Zero-width guards: an API path is only tried against the apps' api_urls and a page path only
# against their urls, so Django does not walk (and list as "tried") every other app's patterns.
API_ONLY = r"^(?=api(?:/|$))"
PAGES_ONLY = r"^(?!api(?:/|$))"


def optional(module: str, guard: str) -> list:
    """Include an app's urls when the module exists (apps land one by one)."""
    try:
        importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name != module:
            raise
        return []
    return [re_path(guard, include(module))]


urlpatterns = [
    path(
        "accounts/login/",
        auth_views.LoginView.as_view(redirect_authenticated_user=True),
        name="login",
    ),
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
):
    urlpatterns += optional(f"apps.{app}.api_urls", API_ONLY)
    urlpatterns += optional(f"apps.{app}.urls", PAGES_ONLY)

# Under /api, unknown paths and crashes answer with the spec's JSON error body; pages keep their HTML.
handler404 = "apps.core.api.not_found_handler"
handler500 = "apps.core.api.server_error_handler"

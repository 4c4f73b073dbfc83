"""Top-level routes. Each app owns `urls.py` (pages) and, where it has an API, `api_urls.py`."""

import importlib

from django.contrib.auth import views as auth_views
from django.urls import include, path


def optional(module: str) -> list:
    """Include an app's urls when the module exists (apps land one by one)."""
    try:
        importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name != module:
            raise
        return []
    return [path("", include(module))]


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
    urlpatterns += optional(f"apps.{app}.api_urls")
    urlpatterns += optional(f"apps.{app}.urls")

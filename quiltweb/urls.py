"""Top-level routes. Each app owns `urls.py` (pages) and, where it has an API, `api_urls.py`."""

import re
from types import ModuleType

from django.contrib.auth import views as auth_views
from django.urls import URLPattern, include, path, re_path
from django.urls.resolvers import RoutePattern, URLResolver

from apps.accounts import api_urls as accounts_api
from apps.accounts import urls as accounts_pages
from apps.accounts.views import login as throttled_login
from apps.activity import api_urls as activity_api
from apps.activity import urls as activity_pages
from apps.containers import api_urls as containers_api
from apps.containers import urls as containers_pages
from apps.core import api_urls as core_api
from apps.engines import api_urls as engines_api
from apps.engines import urls as engines_pages
from apps.events import api_urls as events_api
from apps.functions import api_urls as functions_api
from apps.functions import urls as functions_pages
from apps.health import api_urls as health_api
from apps.health import urls as health_pages
from apps.images import api_urls as images_api
from apps.images import urls as images_pages
from apps.network import api_urls as network_api
from apps.network import urls as network_pages
from apps.operations import api_urls as operations_api
from apps.operations import urls as operations_pages
from apps.snapshots import api_urls as snapshots_api
from apps.snapshots import urls as snapshots_pages
from apps.terminals import api_urls as terminals_api
from apps.terminals import urls as terminals_pages
from apps.volumes import api_urls as volumes_api
from apps.volumes import urls as volumes_pages
from apps.workloads import api_urls as workloads_api
from apps.workloads import urls as workloads_pages

# Zero-width guards: an API path is only tried against the apps' api_urls and a page path only
# against their urls, so Django does not walk (and list as "tried") every other app's patterns.
API_ONLY = r"^(?=api(?:/|$))"
PAGES_ONLY = r"^(?!api(?:/|$))"


def routes(module: ModuleType, guard: str) -> URLPattern | URLResolver:
    """An app's urls module, tried only for the paths `guard` (narrowed) lets through."""
    return re_path(narrowed(guard, module.urlpatterns), include(module))


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


urlpatterns: list[URLPattern | URLResolver] = [
    # Django's LoginView with a form throttled per account and client (apps.accounts.throttle).
    path("accounts/login/", throttled_login, name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
]
# Each app's API routes, then its pages, in this order (the first match wins).
for api, pages in (
    (health_api, health_pages),
    (accounts_api, accounts_pages),
    (containers_api, containers_pages),
    (operations_api, operations_pages),
    (events_api, None),
    (snapshots_api, snapshots_pages),
    (volumes_api, volumes_pages),
    (functions_api, functions_pages),
    (network_api, network_pages),
    (images_api, images_pages),
    (engines_api, engines_pages),
    (workloads_api, workloads_pages),
    (terminals_api, terminals_pages),
    (activity_api, activity_pages),
    # /api/openapi.json and /api/docs describe the routes above (contract 2.15).
    (core_api, None),
):
    urlpatterns.append(routes(api, API_ONLY))
    if pages is not None:
        urlpatterns.append(routes(pages, PAGES_ONLY))

# Under /api, unknown paths and crashes answer with the spec's JSON error body; pages keep their HTML.
handler404 = "apps.core.api.not_found_handler"
handler500 = "apps.core.api.server_error_handler"

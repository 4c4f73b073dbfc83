"""Discovery routes. Included before every other app, so `/api/volumes/health` is ours."""

from django.urls import path

from apps.health import api
from apps.health.catalog import ALIASES, CONCERNS

app_name = "health_api"

urlpatterns = [path("api/system/info", api.system_info, name="system_info")]
for _concern in (*CONCERNS, *ALIASES):
    urlpatterns += [
        path(
            f"api/{_concern}/health",
            api.concern_health,
            {"concern": _concern},
            name="concern_health",
        ),
        path(f"api/{_concern}/help", api.concern_help, {"concern": _concern}, name="concern_help"),
        path(
            f"api/{_concern}/examples",
            api.concern_examples,
            {"concern": _concern},
            name="concern_examples",
        ),
    ]

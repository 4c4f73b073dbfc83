"""Routes of the functions JSON API (contract 2.13).

The literal paths (`pool/stats`, `by-name/<name>`, `invoke/<name>`) come before
`<function_id>`, so a function id can never capture them. `/api/functions/health|help|examples`
are the health app's (included before every app).
"""

from django.urls import path

from apps.functions import api

app_name = "functions_api"

urlpatterns = [
    path("api/functions", api.functions, name="list"),
    path("api/functions/pool/stats", api.stats, name="pool_stats"),
    path("api/functions/by-name/<str:name>", api.by_name, name="by_name"),
    path("api/functions/invoke/<str:name>", api.invoke_by_name, name="invoke_by_name"),
    path("api/functions/<str:function_id>", api.detail, name="detail"),
    path("api/functions/<str:function_id>/deploy", api.deploy, name="deploy"),
    path("api/functions/<str:function_id>/resume", api.resume, name="resume"),
    path("api/functions/<str:function_id>/pause", api.pause, name="pause"),
    path("api/functions/<str:function_id>/invoke", api.invoke, name="invoke"),
    path("api/functions/<str:function_id>/invocations", api.invocations, name="invocations"),
    path(
        "api/functions/<str:function_id>/invocations/<str:invocation_id>",
        api.invocation,
        name="invocation",
    ),
    path("api/functions/<str:function_id>/versions", api.versions, name="versions"),
    path("api/functions/<str:function_id>/rollback", api.rollback, name="rollback"),
    path("api/functions/<str:function_id>/pool", api.pool, name="pool"),
]

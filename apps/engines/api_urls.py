from django.urls import path

from apps.engines import api

app_name = "engines_api"

urlpatterns = [
    path("api/engines", api.engines, name="list"),
    path("api/engines/<str:name>", api.engine, name="detail"),
]

"""The API's own description (contract 2.15)."""

from django.urls import path

from apps.core import openapi_views

app_name = "core_api"

urlpatterns = [
    path("api/openapi.json", openapi_views.openapi_json, name="openapi"),
    path("api/docs", openapi_views.docs, name="docs"),
]

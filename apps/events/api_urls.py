from django.urls import path

from apps.events import api

app_name = "events_api"

urlpatterns = [
    path("api/events", api.events, name="stream"),
]

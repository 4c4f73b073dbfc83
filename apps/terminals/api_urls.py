from django.urls import path

from apps.terminals import api

app_name = "terminals_api"

urlpatterns = [
    path("api/terminal/sessions", api.sessions, name="sessions"),
    path("api/terminal/sessions/<str:session_id>", api.session, name="session"),
    path("api/terminal/sessions/<str:session_id>/resize", api.resize, name="resize"),
]

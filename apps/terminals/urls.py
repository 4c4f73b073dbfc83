from django.urls import path

from apps.terminals import views

app_name = "terminals"

urlpatterns = [
    path(
        "containers/<str:container_id>/terminal",
        views.container_panel,
        name="container_panel",
    ),
    path(
        "containers/<str:container_id>/terminal/new",
        views.open_for_container,
        name="open",
    ),
    path("terminals/", views.session_list, name="list"),
    path("terminals/<str:session_id>/close", views.close, name="close"),
    path("terminals/<str:session_id>/replay", views.replay, name="replay"),
    path("terminals/<str:session_id>/recording.cast", views.recording, name="recording"),
]

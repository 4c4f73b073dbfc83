from django.urls import path

from apps.network import views

app_name = "network"

urlpatterns = [
    path("networks/", views.network_list, name="list"),
    path("networks/create", views.create, name="create"),
    path("networks/connect", views.connect_chosen, name="connect_chosen"),
    path("networks/<str:network_id>/remove", views.remove, name="remove"),
    path("networks/<str:network_id>/connect", views.connect, name="connect"),
    path("networks/<str:network_id>/disconnect", views.disconnect, name="disconnect"),
    path("containers/<str:container_id>/network", views.container_panel, name="container_panel"),
    path(
        "containers/<str:container_id>/network/diagnostics",
        views.container_diagnostics,
        name="diagnostics",
    ),
    path(
        "containers/<str:container_id>/network/connectivity",
        views.container_connectivity,
        name="connectivity",
    ),
]

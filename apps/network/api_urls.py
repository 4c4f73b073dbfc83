from django.urls import path

from apps.network import api

app_name = "network_api"

urlpatterns = [
    path("api/containers/<str:container_id>/network", api.container_network, name="container"),
    path(
        "api/containers/<str:container_id>/network/diagnostics",
        api.diagnostics,
        name="diagnostics",
    ),
    path(
        "api/containers/<str:container_id>/network/connectivity",
        api.connectivity,
        name="connectivity",
    ),
    path("api/containers/<str:container_id>/egress", api.egress, name="egress"),
    path("api/containers/<str:container_id>/network/egress", api.egress, name="egress_alias"),
    path("api/network/allocations", api.allocations, name="allocations"),
    path("api/networks", api.networks, name="list"),
    path("api/networks/<str:network_id>", api.network_detail, name="detail"),
    path("api/networks/<str:network_id>/connect", api.connect, name="connect"),
    path("api/networks/<str:network_id>/disconnect", api.disconnect, name="disconnect"),
]

from django.urls import path

from apps.snapshots import api

app_name = "snapshots_api"

urlpatterns = [
    path("api/snapshots", api.snapshot_list, name="list"),
    path("api/snapshots/<str:snapshot_id>", api.snapshot_detail, name="detail"),
    path("api/snapshots/<str:snapshot_id>/clone", api.snapshot_clone, name="clone"),
    path("api/snapshots/<str:snapshot_id>/pin", api.snapshot_pin, name="pin"),
    path("api/snapshots/<str:snapshot_id>/unpin", api.snapshot_unpin, name="unpin"),
    path("api/snapshots/<str:snapshot_id>/ttl", api.snapshot_ttl, name="ttl"),
    path("api/snapshots/<str:snapshot_id>/lineage", api.snapshot_lineage, name="lineage"),
    path("api/containers/<str:container_id>/snapshot", api.snapshot_create, name="create"),
    path("api/containers/<str:container_id>/fork", api.container_fork, name="fork"),
    path(
        "api/containers/<str:container_id>/lineage", api.container_lineage, name="container_lineage"
    ),
]

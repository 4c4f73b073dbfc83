from django.urls import path

from apps.snapshots import views

app_name = "snapshots"

S = "snapshots/<str:snapshot_id>/"

urlpatterns = [
    path("snapshots/", views.snapshot_list, name="list"),
    path("snapshots/rows", views.rows, name="rows"),
    path("snapshots/lineage/<str:node_id>", views.family, name="lineage"),
    path("snapshots/lineage/<str:node_id>/tree", views.family_tree, name="lineage_tree"),
    path("snapshots/operations/<str:operation_id>", views.operation_status, name="operation"),
    path(S, views.detail, name="detail"),
    path(S + "clone", views.clone_form, name="clone_form"),
    path(S + "clone/run", views.clone, name="clone"),
    path(S + "pin", views.pin, name="pin"),
    path(S + "unpin", views.unpin, name="unpin"),
    path(S + "ttl", views.set_ttl, name="ttl"),
    path(S + "delete", views.delete, name="delete"),
    path("containers/<str:container_id>/snapshots", views.container_panel, name="container_panel"),
    path("containers/<str:container_id>/snapshots/forms", views.container_forms, name="forms"),
    path("containers/<str:container_id>/snapshots/take", views.take_snapshot, name="take"),
    path("containers/<str:container_id>/snapshots/fork", views.fork, name="fork"),
]

"""Dashboard pages for containers. Tabs owned by other apps (network, snapshots, terminal,
activity) live in those apps' urls under the same `/containers/<id>/...` prefix."""

from django.urls import path

from apps.containers import unmanaged, views

app_name = "containers"

C = "containers/<str:container_id>/"

urlpatterns = [
    path("", views.root, name="root"),
    path("containers/", views.container_list, name="list"),
    path("containers/resolve", views.resolve_view, name="resolve"),
    path("containers/bulk", views.bulk_action, name="bulk"),
    path("containers/bulk/status", views.bulk_status, name="bulk_status"),
    path("containers/new", views.create, name="create"),
    path("containers/unmanaged/", unmanaged.unmanaged_list, name="unmanaged"),
    path(C, views.detail, name="detail"),
    path(C + "head", views.head, name="head"),
    path(C + "actions", views.actions_bar, name="actions"),
    path(C + "readiness", views.readiness, name="readiness"),
    path(C + "runtime", views.runtime, name="runtime"),
    path(C + "start", views.lifecycle, {"verb": "start"}, name="start"),
    path(C + "resume", views.lifecycle, {"verb": "resume"}, name="resume"),
    path(C + "stop", views.lifecycle, {"verb": "stop"}, name="stop"),
    path(C + "kill", views.lifecycle, {"verb": "kill"}, name="kill"),
    path(C + "pause", views.lifecycle, {"verb": "pause"}, name="pause"),
    path(C + "rename", views.rename, name="rename"),
    path(C + "delete", views.delete, name="delete"),
    path(C + "exec", views.exec_run, name="exec"),
    path(C + "exec/history", views.exec_history, name="exec_history"),
    path(C + "logs", views.logs, name="logs"),
    path(C + "logs/download", views.logs_download, name="logs_download"),
    path(C + "metrics", views.metrics, name="metrics"),
    path(C + "diagnose", views.diagnose_tab, name="diagnose"),
    path(C + "env", views.env, name="env"),
    path(C + "processes", views.processes, name="processes"),
    path(C + "processes/<int:pid>/signal", views.signal, name="signal"),
]

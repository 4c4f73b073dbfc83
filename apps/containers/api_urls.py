"""Routes of the containers JSON API (spec 2.2, 2.3)."""

from django.urls import path

from apps.containers import api

app_name = "containers_api"

urlpatterns = [
    path("api/containers", api.containers, name="list"),
    path("api/containers/batch", api.batch, name="batch"),
    path("api/containers/by-name/<str:name>", api.by_name, name="by_name"),
    path("api/containers/<str:container_id>", api.detail, name="detail"),
    path("api/containers/<str:container_id>/ready", api.ready, name="ready"),
    path("api/containers/<str:container_id>/metrics", api.metrics, name="metrics"),
    path("api/containers/<str:container_id>/logs", api.logs, name="logs"),
    path("api/containers/<str:container_id>/diagnose", api.diagnose_, name="diagnose"),
    path("api/containers/<str:container_id>/start", api.start, name="start"),
    path("api/containers/<str:container_id>/resume", api.resume, name="resume"),
    path("api/containers/<str:container_id>/stop", api.stop, name="stop"),
    path("api/containers/<str:container_id>/kill", api.kill, name="kill"),
    path("api/containers/<str:container_id>/rename", api.rename, name="rename"),
    path("api/containers/<str:container_id>/env", api.env, name="env"),
    path("api/containers/<str:container_id>/processes", api.processes, name="processes"),
    path(
        "api/containers/<str:container_id>/processes/<int:pid>",
        api.process,
        name="process",
    ),
    path("api/containers/<str:container_id>/exec", api.exec_, name="exec"),
    path("api/containers/<str:container_id>/stream", api.stream, name="stream"),
    path("api/containers/<str:container_id>/jobs", api.job_list, name="jobs"),
    path("api/containers/<str:container_id>/jobs/<str:job_id>", api.job_detail, name="job"),
]

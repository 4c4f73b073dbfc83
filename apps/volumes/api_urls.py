from django.urls import path

from apps.volumes import api

app_name = "volumes_api"

urlpatterns = [
    path("api/volumes", api.volumes, name="list"),
    path("api/volumes/<str:name>", api.volume, name="detail"),
    path("api/volumes/<str:name>/inspect", api.inspect, name="inspect"),
    path("api/volumes/<str:name>/rename", api.rename, name="rename"),
    path("api/volumes/<str:name>/ls", api.ls, name="ls"),
    path("api/volumes/<str:name>/files", api.write, name="write"),
    path("api/volumes/<str:name>/files/<path:path>", api.file, name="file"),
    path("api/volumes/<str:name>/archive", api.volume_archive, name="archive"),
    path(
        "api/containers/<str:container_id>/archive", api.container_archive, name="container_archive"
    ),
]

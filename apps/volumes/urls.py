from django.urls import path

from apps.volumes import views

app_name = "volumes"

urlpatterns = [
    path("volumes/", views.volume_list, name="list"),
    path("volumes/create", views.create, name="create"),
    path("volumes/sizes", views.sizes, name="sizes"),
    path("volumes/<str:name>/", views.detail, name="detail"),
    path("volumes/<str:name>/rename", views.rename, name="rename"),
    path("volumes/<str:name>/delete", views.delete, name="delete"),
    path("volumes/<str:name>/upload", views.upload, name="upload"),
    path("volumes/<str:name>/upload-archive", views.upload_archive, name="upload_archive"),
    path("volumes/<str:name>/delete-file", views.delete_file, name="delete_file"),
    path("volumes/<str:name>/download", views.download, name="download"),
    path("volumes/<str:name>/operations/<str:operation_id>", views.operation, name="operation"),
]

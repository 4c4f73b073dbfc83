from django.urls import path

from apps.images import api

app_name = "images_api"

urlpatterns = [
    path("api/oci/images", api.images, name="list"),
    path("api/oci/images/pull", api.pull, name="pull"),
    path("api/oci/images/inspect", api.inspect, name="inspect"),
    path("api/oci/images/history", api.history, name="history"),
]

from django.urls import path

from apps.workloads import api

app_name = "workloads_api"

urlpatterns = [
    path("api/workloads", api.workloads, name="list"),
    path("api/workloads/<str:workload_id>", api.workload, name="detail"),
    path("api/workloads/<str:workload_id>/scale", api.scale, name="scale"),
    path("api/workloads/<str:workload_id>/placements", api.placements, name="placements"),
]

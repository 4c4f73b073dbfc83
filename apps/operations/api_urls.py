from django.urls import path

from apps.operations import api

app_name = "operations_api"

urlpatterns = [
    path("api/operations", api.operation_list, name="list"),
    path("api/operations/<str:operation_id>", api.operation_detail, name="detail"),
    path("api/operations/<str:operation_id>/cancel", api.operation_cancel, name="cancel"),
]

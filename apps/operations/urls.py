from django.urls import path

from apps.operations import views

app_name = "operations"

urlpatterns = [
    path("operations/", views.operation_list, name="list"),
    path("operations/tray", views.tray, name="tray"),
    path("operations/<str:operation_id>", views.operation_detail, name="detail"),
    path("operations/<str:operation_id>/cancel", views.operation_cancel, name="cancel"),
]

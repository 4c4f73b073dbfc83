from django.urls import path

from apps.workloads import views

app_name = "workloads"

urlpatterns = [
    path("workloads/", views.workload_list, name="list"),
    path("workloads/new", views.create, name="create"),
    path("workloads/<str:workload_id>/scale", views.scale, name="scale"),
    path("workloads/<str:workload_id>/delete", views.delete, name="delete"),
]

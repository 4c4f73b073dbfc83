from django.urls import path

from apps.images import views

app_name = "images"

urlpatterns = [
    path("images/", views.image_list, name="list"),
    path("images/pull", views.pull, name="pull"),
    path("images/delete", views.delete, name="delete"),
    path("images/rebuild-base", views.rebuild_base, name="rebuild_base"),
    path("images/build-debian", views.build_debian, name="build_debian"),
    path("images/inspect", views.inspect, name="inspect"),
    path("images/operations/<str:operation_id>", views.operation, name="operation"),
]

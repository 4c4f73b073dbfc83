from django.urls import path

from apps.activity import views

app_name = "activity"

urlpatterns = [
    path("activity/", views.activity_list, name="list"),
    path("containers/<str:container_id>/activity", views.container_panel, name="container_panel"),
]

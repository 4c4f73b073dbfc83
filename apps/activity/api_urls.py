from django.urls import path

from apps.activity import api

app_name = "activity_api"

urlpatterns = [path("api/activity", api.activity, name="list")]

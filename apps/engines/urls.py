from django.urls import path

from apps.engines import views

app_name = "engines"

urlpatterns = [
    path("engines/", views.engine_list, name="list"),
    path("engines/register", views.register, name="register"),
    path("engines/<str:name>/", views.engine_detail, name="detail"),
    path("engines/<str:name>/availability", views.availability, name="availability"),
    path("engines/<str:name>/delete", views.delete, name="delete"),
]

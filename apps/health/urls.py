from django.urls import path

from apps.health import views

app_name = "health"

urlpatterns = [
    path("health", views.liveness, name="liveness"),
    path("health/", views.health_page, name="page"),
    path("health/badge", views.badge, name="badge"),
    path("guide/", views.guide, name="guide"),
    path("guide/<slug:concern>/", views.guide, name="guide_concern"),
]

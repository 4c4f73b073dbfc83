from django.urls import path

from apps.functions import views

app_name = "functions"

urlpatterns = [
    path("functions/", views.function_list, name="list"),
    path("functions/create", views.create, name="create"),
    path("functions/<str:function_id>/", views.detail, name="detail"),
    path("functions/<str:function_id>/live", views.pool_panel, name="live"),
    path("functions/<str:function_id>/actions", views.action_bar, name="actions"),
    path("functions/<str:function_id>/deploy", views.deploy, name="deploy"),
    path("functions/<str:function_id>/resume", views.resume, name="resume"),
    path("functions/<str:function_id>/pause", views.pause, name="pause"),
    path("functions/<str:function_id>/delete", views.delete, name="delete"),
    path("functions/<str:function_id>/invoke", views.invoke_tab, name="invoke"),
    path("functions/<str:function_id>/invocations/", views.invocations, name="invocations"),
    path(
        "functions/<str:function_id>/invocations/<str:invocation_id>",
        views.invocation_detail,
        name="invocation",
    ),
    path("functions/<str:function_id>/versions", views.versions, name="versions"),
    path("functions/<str:function_id>/edit", views.edit, name="edit"),
    path("functions/<str:function_id>/rollback", views.rollback, name="rollback"),
]

from django.urls import path

from apps.accounts import views

app_name = "accounts"

urlpatterns = [
    path("accounts/keys/", views.keys, name="keys"),
    path("accounts/keys/<int:pk>/revoke", views.key_revoke, name="key_revoke"),
    path("accounts/users/", views.users, name="users"),
    path("accounts/users/new", views.user_create, name="user_create"),
    path("accounts/users/<int:pk>/role", views.user_role, name="user_role"),
    path("accounts/users/<int:pk>/active", views.user_active, name="user_active"),
    path("accounts/tenants/new", views.tenant_create, name="tenant_create"),
    path("accounts/view-as/", views.view_as, name="view_as"),
]

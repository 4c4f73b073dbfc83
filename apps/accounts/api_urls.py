from django.urls import path

from apps.accounts import api

app_name = "accounts_api"

urlpatterns = [
    path("api/tickets", api.ticket_create, name="ticket_create"),
]

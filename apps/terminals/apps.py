from django.apps import AppConfig


class TerminalsConfig(AppConfig):
    name = "apps.terminals"
    label = "terminals"

from django.apps import AppConfig


class CskpiConfig(AppConfig):
    name = "cskpi"
    verbose_name = "Access: departments, grants and tokens"

from django.apps import AppConfig

from cskpi.signals import department_service_levels_changed, department_timezone_changed


class IngestionConfig(AppConfig):
    name = "ingestion"
    verbose_name = "Ingestion: interactions, surveys, cashouts"

    def ready(self):
        # Django's way to connect receivers: their module uses models, importable only once apps are ready.
        from ingestion import receivers

        department_service_levels_changed.connect(receivers.service_levels_changed,
                                                  dispatch_uid="ingestion.service_levels_changed")
        department_timezone_changed.connect(receivers.zone_changed, dispatch_uid="ingestion.zone_changed")

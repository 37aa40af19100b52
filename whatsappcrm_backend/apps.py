from django.apps import AppConfig


class ProjectConfig(AppConfig):
    """The project package as an app, for its system checks, commands and Beat sync."""

    name = "whatsappcrm_backend"
    verbose_name = "WhatsApp CRM"

    def ready(self) -> None:
        from django.db.models.signals import post_migrate

        from whatsappcrm_backend import checks  # noqa: F401  (registers the system checks)
        from whatsappcrm_backend.beat import sync_after_migrate

        post_migrate.connect(sync_after_migrate, sender=self)

        from whatsappcrm_backend.logging import connect_task_logging
        from whatsappcrm_backend.metrics import connect_task_metrics

        connect_task_metrics()
        connect_task_logging()

from django.apps import AppConfig


class FlowsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "flows"

    def ready(self) -> None:
        from flows.gauges import session_gauges
        from whatsappcrm_backend import metrics

        # The metrics module imports no app: flows registers the gauges it reads from its tables.
        metrics.register_gauges(session_gauges)

from django.apps import AppConfig


class MetaIntegrationConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "meta_integration"
    verbose_name = "Meta (WhatsApp Cloud API)"

    def ready(self) -> None:
        from django.db.models.signals import post_migrate

        from meta_integration.webhook import ensure_default_app_config_after_migrate

        # Every migrate (deploys, the dev launcher) brings the META_* business number into the database.
        post_migrate.connect(ensure_default_app_config_after_migrate, sender=self)

from django.apps import AppConfig


class MetaIntegrationConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "meta_integration"

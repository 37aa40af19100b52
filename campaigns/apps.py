from django.apps import AppConfig


class CampaignsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "campaigns"

    def ready(self) -> None:
        # conversations imports no app that writes bulk sends: delivery asks the campaign's
        # gate before sending a "campaign:<id>" message (paused, cancelled, opted out).
        from campaigns.services import chains

        chains.register()

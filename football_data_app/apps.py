from django.apps import AppConfig


class FootballDataConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "football_data_app"
    verbose_name = "Football data and betting"

    def ready(self) -> None:
        # The flow actions (football.list_leagues, football.place_ticket, ...) by name, so
        # football.json's "call" steps validate on import and run in the flow engine.
        from football_data_app import actions

        actions.register()

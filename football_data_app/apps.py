from django.apps import AppConfig


class FootballDataConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "football_data_app"
    verbose_name = "Football data and betting"

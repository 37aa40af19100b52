from django.apps import AppConfig


class SimulatorConfig(AppConfig):
    """The WhatsApp simulator (development only: installed and mounted with DEBUG)."""

    name = "devtools.simulator"
    label = "simulator"

from django.apps import AppConfig


class ConversationsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "conversations"

    def ready(self) -> None:
        from conversations.services.inbound import InboundStore
        from meta_integration import ports

        # meta_integration imports no app: the webhook reaches conversations through the inbound port.
        ports.register_inbound_sink(InboundStore())

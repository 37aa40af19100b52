"""The WhatsApp simulator: chat with the bot in a browser (development only, see ``views``)."""

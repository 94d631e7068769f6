"""Web applications beside the bot: thin adapters over the services in ``bot/``."""

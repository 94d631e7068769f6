"""Property-fee collection assistant: domain logic shared by the bot, the coach and the dashboard."""

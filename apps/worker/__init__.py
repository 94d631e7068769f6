"""The reminder worker process (``python -m apps.worker``): a thin adapter over :mod:`bot.reminders.worker`."""

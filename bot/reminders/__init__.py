"""Reminders as rows, checked against the contact policy when due and delivered where the owner is.

They are scheduled when a promise is made or broken and at the start of each month.

* :mod:`bot.reminders.schedule` — writing, moving and cancelling reminder rows (idempotent), opt-outs.
* :mod:`bot.reminders.policy` — the rules checked at send time (quiet hours, holidays, weekly cap, paid,
  opted out, unverified).
* :mod:`bot.reminders.delivery` — WeChat (customer-service message in the 48-hour window, else a template
  message), web chat (the durable outbox), else a collector's call task.
* :mod:`bot.reminders.calls` — the collectors' call list.
* :mod:`bot.reminders.worker` — claims due rows (``FOR UPDATE SKIP LOCKED`` on PostgreSQL) and runs the
  daily jobs; ``python -m apps.worker`` runs it.

Everything takes the caller's session; nothing imports Rasa or a web framework.
"""

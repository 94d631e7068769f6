"""The staff console: a FastAPI app with Chinese pages, its own process (``python -m apps.staff``).

It holds no business rules: every screen calls a service in ``bot/services`` with the request's one database
session (:mod:`apps.staff.deps`).
"""

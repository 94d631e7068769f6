"""Domain services: the rules of the business, usable without Rasa.

Each function takes the SQLAlchemy session of the caller's unit of work (or no session at all for pure
rules); none opens a session of its own. Actions, channels, the staff app, the worker and the coach call
these.
"""

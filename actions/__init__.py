"""Rasa SDK actions: thin adapters that read the tracker, call :mod:`bot` and return events."""

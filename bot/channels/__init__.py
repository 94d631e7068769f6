"""Rasa input channels of the project (each module documents its own channel)."""

"""Conversations as staff read them: transcripts from Rasa's tracker store, and an owner's conversations."""

"""Measuring the NLU: the held-out set, the baselines, and the scores."""

"""The collector coach: what an owner means, what to say, on what grounds, what next; and practice (话术演练).

``get_coach()`` gives the process's :class:`~bot.coach.coach.Coach` (the bot's trained model, loaded once,
and the playbook); ``Coach.answer(text)`` reads a collector's note. :mod:`bot.coach.render` turns an answer
into JSON (``as_json``), compact text for chat apps (``plain_text``) or terminal text.
"""

from bot.coach.coach import AnswerStatus, Card, Coach, CoachAnswer, Guess, NextStep, get_coach

__all__ = ["AnswerStatus", "Card", "Coach", "CoachAnswer", "Guess", "NextStep", "get_coach"]

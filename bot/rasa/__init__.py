"""The one door to Rasa: everything that relies on Rasa's internals or on its ``events`` table lives here.

* :mod:`bot.rasa.runtime` — the Rasa server's entry point, with our patches to its processor (a deadline on
  custom actions, a polite answer when one fails).
* :mod:`bot.rasa.endpoints` — the endpoints file the server reads (tracker store, lock store, action server).
* :mod:`bot.rasa.events` — Rasa's ``events`` table as its SQL tracker store writes it, and every query of
  it the domain makes (transcripts, review, QA, the NLU inbox, retention, erasure …); no Rasa import.
* :mod:`bot.rasa.trackers` — trackers read and edited under Rasa's lock (pause, resume, held messages).
* :mod:`bot.rasa.delivery` — the Rasa process's outbox deliverer, started by the server itself.
* :mod:`bot.rasa.agent` — a trained model loaded with ``Agent.load`` and parsed from any thread.
* :mod:`bot.rasa.nlu_scoring` — scoring a trained model on held-out examples as the server parses them.

``tests/unit/test_rasa_door.py`` pins every Rasa internal these modules rely on against the installed Rasa
(3.6.21), so an upgrade fails there first. This package imports nothing at package level, so importing
:mod:`bot.rasa.events` costs no Rasa import.
"""

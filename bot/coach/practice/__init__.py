"""Practice mode (话术演练): a simulated owner to rehearse with, a rubric to score each answer, kept per collector.

:mod:`.rubric` scores an answer (data in ``data/coach/practice/rubric.yml``), :mod:`.simulator` plays the
owner (``data/coach/practice/owners.yml``), :mod:`.service` keeps sessions and turns in the database.
"""

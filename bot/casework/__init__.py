"""Staff casework on one owner: the owner page (records, conversations, payments) and following requests up.

It sits above the services and the conversations: it reads both and notifies owners through the outbox.
"""

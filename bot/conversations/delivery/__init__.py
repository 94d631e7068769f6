"""The one way out to owners for everything that is not the bot's own answer to the owner's message.

Staff replies, takeover notices and approvals' notices are queued in the outbox
(:mod:`bot.conversations.outbox`); the :class:`~bot.conversations.delivery.deliverer.Deliverer` of each Rasa
process sends them through one :class:`~bot.conversations.delivery.senders.Sender` per channel and records each
delivered text in the conversation (through a :class:`~bot.conversations.delivery.deliverer.ConversationLog`
the Rasa adapter provides):

* WeChat — the customer-service API while the 48-hour window is open
  (:class:`~bot.conversations.delivery.senders.WeChatCustomerServiceSender`); any process sends.
* Web chat — the owner's socket, from the process that holds it (the web chat channel registers that sender,
  ``bot.channels.webchat``).
* REST — the channel cannot push: its rows wait for the owner's next request, whose answer carries them
  (``bot.channels.takeover.HoldGate.outbox_reply``).

The Rasa process starts its deliverer itself (``bot.rasa.delivery``), whichever channels credentials.yml lists.
Nothing here imports Rasa or a web framework.
"""

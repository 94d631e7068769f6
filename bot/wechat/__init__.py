"""The WeChat Official Account platform as we use it, channel-neutral.

* :mod:`bot.wechat.api` — the client of WeChat's HTTP API (access token, customer-service and template
  messages), used by the WeChat channel and by reminders alike.
* :mod:`bot.wechat.store` — what we keep about WeChat in our database: the cached access token, processed
  message ids, pending choices and bindings.
* :mod:`bot.wechat.format` — replies shaped for WeChat's limits (text length, numbered choices).

The Rasa channel that receives owners' messages is :mod:`bot.channels.wechat`.
"""

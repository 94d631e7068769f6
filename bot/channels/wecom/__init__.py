"""The WeCom (企业微信) self-built-app channel: collectors ask the coach from their work chat.

* :mod:`~bot.channels.wecom.crypto` — WeCom's callback scheme: ``msg_signature`` and AES-256-CBC.
* :mod:`~bot.channels.wecom.api` — the server API: ``gettoken`` and ``message/send``.
* :mod:`~bot.channels.wecom.store` — callbacks already handled (replays and retries answered once).
* :mod:`~bot.channels.wecom.callback` — what a callback does, independent of the web framework.

The staff app serves the callback URL (``apps/staff/wecom.py``): collectors are staff.
"""

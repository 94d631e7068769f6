"""The WeCom (企业微信) self-built app, the staff console's front end for collectors asking the coach at work.

* :mod:`~apps.staff.wecom.crypto` — WeCom's callback scheme: ``msg_signature`` and AES-256-CBC.
* :mod:`~apps.staff.wecom.api` — the server API: ``gettoken`` and ``message/send``.
* :mod:`~apps.staff.wecom.store` — callbacks already handled (replays and retries answered once).
* :mod:`~apps.staff.wecom.callback` — what a callback does, independent of the web framework.
* :mod:`~apps.staff.wecom.app` — the callback URL the staff console serves (collectors are staff).
"""

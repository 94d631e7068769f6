"""Personal information as the 个人信息保护法 (PIPL) asks of us.

Kept only as long as needed (:mod:`.retention`), and shown or erased on an owner's request (:mod:`.subject`).
"""

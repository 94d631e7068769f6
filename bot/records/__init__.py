"""Services over the owner database, called by actions by intent (``promises.record(...)``)."""

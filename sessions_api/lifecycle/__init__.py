"""A session's life after ingest: expiry, stuck, purge, prune, reconcile."""

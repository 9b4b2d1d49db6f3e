"""Every way a document gets in: API ingest, files, the Mongo source."""

"""SQLite with queued writers: see base.py."""

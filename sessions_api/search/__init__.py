"""Full-text search over every session's whole content: the entries a session is indexed as,
the query language, the SQLite FTS5 and PostgreSQL matchers, and snippets."""

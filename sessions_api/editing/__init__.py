"""Changing sessions on someone's behalf: edits, lineage, audit."""

"""The picoflow format: its parser and its editor."""

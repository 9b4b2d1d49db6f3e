"""The falai format: its parser and its editor."""

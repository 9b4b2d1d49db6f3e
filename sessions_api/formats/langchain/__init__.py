"""The langchain format: its parser and its editor."""

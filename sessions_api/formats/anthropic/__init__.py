"""The anthropic format: its parser and its editor."""

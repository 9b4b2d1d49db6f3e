"""The openai_chat format: its parser and its editor."""

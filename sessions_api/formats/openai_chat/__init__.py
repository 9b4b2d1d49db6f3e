"""The openai_chat format: its parser, its editor and its framework's stores."""

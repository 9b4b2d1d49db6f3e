"""The openai_agents format: its parser, its editor and the reader of its framework's own stores."""

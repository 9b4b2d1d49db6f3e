"""The openai_agents format: its parser, its editor and its framework's stores."""

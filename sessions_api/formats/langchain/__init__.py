"""The langchain format: its parser, its editor and its framework's stores."""

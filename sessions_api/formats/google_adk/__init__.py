"""The google_adk format: its parser, its editor and its framework's stores."""

"""The picoflow format: its parser, its editor and its framework's stores."""

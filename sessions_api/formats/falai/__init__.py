"""The falai format: its parser, its editor and its framework's stores."""

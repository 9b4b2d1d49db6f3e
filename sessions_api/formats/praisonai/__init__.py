"""The praisonai format: its parser, its editor and its framework's stores."""

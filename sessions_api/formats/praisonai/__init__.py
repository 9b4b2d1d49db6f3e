"""The praisonai format: its parser and its editor."""

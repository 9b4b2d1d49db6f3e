"""The agentflow format: its parser, its editor and the reader of its framework's own stores."""

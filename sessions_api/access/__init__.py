"""Who may do what: roles and API keys."""

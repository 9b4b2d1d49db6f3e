"""The REST face: one router module per area, wired into config/api.py."""

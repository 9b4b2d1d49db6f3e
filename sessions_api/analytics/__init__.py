"""Analytics: rollups, the overview's aggregates and model pricing."""

"""Demo data: realistic documents in every framework's shape, and loading."""

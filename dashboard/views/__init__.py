"""Dashboard pages, one module per area (thin views over selectors, analytics and charts)."""

"""Seed the price table with a few example public list prices (skips rows that exist).

These are EXAMPLES taken from providers' public price pages (USD per million tokens) to make
cost estimates meaningful out of the box. Prices change: check your provider and edit them on
the dashboard's Prices page (admins).
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from django.core.management.base import BaseCommand

from sessions_api.analytics import pricing
from sessions_api.errors import DuplicatePrice

EFFECTIVE_FROM = date(2025, 1, 1)
NOTE = "example public list price; verify with your provider"
# model: (input, cached input, output) in USD per million tokens.
EXAMPLE_PRICES: dict[str, tuple[str, str | None, str]] = {
    "gpt-4o": ("2.50", "1.25", "10.00"),
    "gpt-4o-mini": ("0.15", "0.075", "0.60"),
    "gpt-4.1": ("2.00", "0.50", "8.00"),
    "gpt-4.1-mini": ("0.40", "0.10", "1.60"),
    "gpt-5": ("1.25", "0.125", "10.00"),
    "gpt-5-mini": ("0.25", "0.025", "2.00"),
    "claude-sonnet-4": ("3.00", "0.30", "15.00"),
    "claude-opus-4": ("15.00", "1.50", "75.00"),
    "claude-3-5-haiku": ("0.80", "0.08", "4.00"),
    "gemini-2.5-pro": ("1.25", "0.31", "10.00"),
    "gemini-2.5-flash": ("0.30", "0.075", "2.50"),
}


class Command(BaseCommand):
    help = "Add example list prices for common models (existing rows are left alone)."

    def handle(self, *args, **options) -> None:
        added = skipped = 0
        for model, (input_price, cached, output_price) in EXAMPLE_PRICES.items():
            try:
                pricing.save_price(
                    model=model,
                    input_per_mtok=Decimal(input_price),
                    cached_input_per_mtok=Decimal(cached) if cached is not None else None,
                    output_per_mtok=Decimal(output_price),
                    effective_from=EFFECTIVE_FROM,
                    currency="USD",
                    notes=NOTE,
                )
            except DuplicatePrice:
                skipped += 1
            else:
                added += 1
        self.stdout.write(
            f"seed_prices: added {added}, kept {skipped} existing (examples effective from "
            f"{EFFECTIVE_FROM}; edit them on /prices/)"
        )

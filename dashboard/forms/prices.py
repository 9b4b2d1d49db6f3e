"""The price table's form: one row of model prices, added or changed by an admin."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from django import forms

from sessions_api.analytics.pricing import PriceRecord


class PriceForm(forms.Form):
    model = forms.CharField(max_length=255, help_text="Exact model name, or a prefix of it")
    input_per_mtok = forms.DecimalField(
        max_digits=12, decimal_places=4, min_value=Decimal(0), label="Input / 1M tokens"
    )
    cached_input_per_mtok = forms.DecimalField(
        max_digits=12,
        decimal_places=4,
        min_value=Decimal(0),
        required=False,
        label="Cached input / 1M tokens",
    )
    output_per_mtok = forms.DecimalField(
        max_digits=12, decimal_places=4, min_value=Decimal(0), label="Output / 1M tokens"
    )
    effective_from = forms.DateField(widget=forms.DateInput(attrs={"type": "date"}))
    currency = forms.CharField(max_length=3, initial="USD")
    notes = forms.CharField(max_length=500, required=False)

    def clean_model(self) -> str:
        model = self.cleaned_data["model"].strip()
        if not model:
            raise forms.ValidationError("Name a model.")
        return model

    def clean_currency(self) -> str:
        currency = self.cleaned_data["currency"].strip().upper()
        if len(currency) != 3 or not currency.isalpha():
            raise forms.ValidationError("A three-letter currency code, e.g. USD.")
        return currency

    @classmethod
    def blank(cls, *, today: date) -> PriceForm:
        """The add form: a new price takes effect today, in USD unless changed."""
        return cls(initial={"effective_from": today, "currency": "USD"})

    @classmethod
    def of(cls, price: PriceRecord) -> PriceForm:
        """The edit form, filled with a stored row."""
        return cls(
            initial={
                "model": price.model,
                "input_per_mtok": price.input_per_mtok,
                "cached_input_per_mtok": price.cached_input_per_mtok,
                "output_per_mtok": price.output_per_mtok,
                "effective_from": price.effective_from,
                "currency": price.currency,
                "notes": price.notes,
            }
        )

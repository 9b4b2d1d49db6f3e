"""Model prices: the table costs are estimated from, its reads and its one write.

Costs are estimates: tokens per model (``ModelUsage``) times the ``ModelPrice`` effective on
the day the session started, priced when read, so a price edit shows at once. Tokens the
document does not attribute to one model, and models without a price, stay unpriced and are
reported as such rather than guessed.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal

from django.db import IntegrityError, transaction

from sessions_api.analytics.rollups import UNATTRIBUTED
from sessions_api.errors import DuplicatePrice
from sessions_api.models import ModelPrice, ModelUsage

MILLION = Decimal(1_000_000)


@dataclass(frozen=True)
class PriceRecord:
    id: int
    model: str
    input_per_mtok: Decimal
    output_per_mtok: Decimal
    cached_input_per_mtok: Decimal | None
    effective_from: date
    currency: str
    notes: str
    updated_at: datetime | None
    updated_by: str


@dataclass(frozen=True)
class PriceBook:
    """Every price row, answering "what did this model cost on that day"."""

    prices: tuple[PriceRecord, ...] = ()
    _by_model: dict[str, list[PriceRecord]] = field(default_factory=dict, compare=False)

    @classmethod
    def of(cls, prices: list[PriceRecord]) -> PriceBook:
        by_model: dict[str, list[PriceRecord]] = defaultdict(list)
        for price in prices:
            by_model[price.model].append(price)
        for rows in by_model.values():
            rows.sort(key=lambda p: p.effective_from, reverse=True)
        return cls(prices=tuple(prices), _by_model=dict(by_model))

    def price_for(self, model: str, on: date) -> PriceRecord | None:
        """The price effective on ``on`` for ``model``: an exact name first, else the longest
        priced name that the model's name starts with (``gpt-4o-2024-08-06`` -> ``gpt-4o``)."""
        if not model:
            return None
        names = [model] if model in self._by_model else []
        if not names:
            prefixes = [name for name in self._by_model if model.startswith(name)]
            names = sorted(prefixes, key=len, reverse=True)[:1]
        for name in names:
            for price in self._by_model[name]:
                if price.effective_from <= on:
                    return price
        return None


def price_from_row(row: ModelPrice) -> PriceRecord:
    return PriceRecord(
        id=row.id,
        model=row.model,
        input_per_mtok=row.input_per_mtok,
        output_per_mtok=row.output_per_mtok,
        cached_input_per_mtok=row.cached_input_per_mtok,
        effective_from=row.effective_from,
        currency=row.currency,
        notes=row.notes,
        updated_at=row.updated_at,
        updated_by=row.updated_by.get_username() if row.updated_by_id else "",
    )


# --- reads --------------------------------------------------------------------------------------


def list_prices() -> list[PriceRecord]:
    """Every price row, by model then newest effective date first."""
    rows = ModelPrice.objects.select_related("updated_by").order_by("model", "-effective_from")
    return [price_from_row(row) for row in rows]


def price_book() -> PriceBook:
    return PriceBook.of(list_prices())


def get_price(*, price_id: int) -> PriceRecord | None:
    row = ModelPrice.objects.select_related("updated_by").filter(id=price_id).first()
    return price_from_row(row) if row else None


# --- cost estimates -----------------------------------------------------------------------------


def estimate_cost(
    price: PriceRecord,
    *,
    input_tokens: int | None,
    output_tokens: int | None,
    cached_input_tokens: int | None = None,
) -> Decimal:
    """Input tokens (cached ones at the cached rate when there is one) plus output tokens."""
    inputs = input_tokens or 0
    cached = min(cached_input_tokens or 0, inputs)
    cached_rate = (
        price.cached_input_per_mtok
        if price.cached_input_per_mtok is not None
        else price.input_per_mtok
    )
    amount = (
        Decimal(inputs - cached) * price.input_per_mtok
        + Decimal(cached) * cached_rate
        + Decimal(output_tokens or 0) * price.output_per_mtok
    )
    return amount / MILLION


@dataclass(frozen=True)
class CostEstimate:
    """A session's estimated cost: ``amount`` over the priced models, ``complete`` when every
    token it reports is priced."""

    amount: Decimal | None
    complete: bool
    unpriced_models: tuple[str, ...] = ()


def session_costs(
    *, sessions: dict[str, datetime], book: PriceBook | None = None
) -> dict[str, CostEstimate]:
    """Estimated costs of a handful of sessions (a list page), keyed by session id.

    ``sessions`` maps id -> when the session started (prices are those effective then)."""
    if not sessions:
        return {}
    book = book or price_book()
    amounts: dict[str, Decimal | None] = {}
    complete: dict[str, bool] = {}
    unpriced: dict[str, list[str]] = defaultdict(list)
    rows = ModelUsage.objects.filter(session_id__in=list(sessions)).values(
        "session_id",
        "model",
        "input_tokens",
        "output_tokens",
        "cached_input_tokens",
        "total_tokens",
    )
    for r in rows:
        sid = str(r["session_id"])
        has_tokens = any(r[k] for k in ("input_tokens", "output_tokens", "total_tokens"))
        if not has_tokens:
            continue
        price = book.price_for(r["model"], sessions[sid].date())
        if price is None or (r["input_tokens"] is None and r["output_tokens"] is None):
            complete[sid] = False
            unpriced[sid].append(r["model"] or UNATTRIBUTED)
            continue
        amounts[sid] = (amounts.get(sid) or Decimal(0)) + estimate_cost(
            price,
            input_tokens=r["input_tokens"],
            output_tokens=r["output_tokens"],
            cached_input_tokens=r["cached_input_tokens"],
        )
        complete.setdefault(sid, True)
    return {
        sid: CostEstimate(
            amount=amounts.get(sid),
            complete=complete.get(sid, True),
            unpriced_models=tuple(unpriced.get(sid, ())),
        )
        for sid in sessions
    }


# --- the write ----------------------------------------------------------------------------------


def save_price(
    *,
    model: str,
    input_per_mtok: Decimal,
    output_per_mtok: Decimal,
    cached_input_per_mtok: Decimal | None,
    effective_from: date,
    currency: str = "USD",
    notes: str = "",
    user_id: int | None = None,
    price_id: int | None = None,
) -> PriceRecord:
    """Add a price (``price_id`` None) or change one."""
    values = {
        "model": model.strip(),
        "input_per_mtok": input_per_mtok,
        "output_per_mtok": output_per_mtok,
        "cached_input_per_mtok": cached_input_per_mtok,
        "effective_from": effective_from,
        "currency": currency.upper(),
        "notes": notes,
        "updated_by_id": user_id,
    }
    try:
        with transaction.atomic():
            if price_id is None:
                row = ModelPrice.objects.create(**values)
            else:
                row = ModelPrice.objects.select_for_update().get(id=price_id)
                for key, value in values.items():
                    setattr(row, key, value)
                row.save()
    except IntegrityError:
        raise DuplicatePrice(
            f"{model} already has a price effective from {effective_from}"
        ) from None
    return price_from_row(ModelPrice.objects.select_related("updated_by").get(id=row.id))


def delete_price(*, price_id: int) -> bool:
    return bool(ModelPrice.objects.filter(id=price_id).delete()[0])

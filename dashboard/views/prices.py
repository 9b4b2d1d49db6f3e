"""Model prices: everyone reads the table; admins add and change rows."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_http_methods

from dashboard.forms.prices import PriceForm
from dashboard.views.common import is_dashboard_admin
from sessions_api.analytics import pricing
from sessions_api.errors import DuplicatePrice


def _current_ids(prices: list[pricing.PriceRecord]) -> set[int]:
    """The row in force today for each model."""
    today = timezone.now().date()
    book = pricing.PriceBook.of(prices)
    current = set()
    for model in {p.model for p in prices}:
        price = book.price_for(model, today)
        if price is not None and price.model == model:
            current.add(price.id)
    return current


@login_required
@require_http_methods(["GET", "POST"])
def prices(request: HttpRequest) -> HttpResponse:
    can_edit = is_dashboard_admin(request.user)
    form = PriceForm.blank(today=timezone.now().date())
    if request.method == "POST":
        if not can_edit:
            raise PermissionDenied("Only admins can change prices.")
        form = PriceForm(request.POST)
        if form.is_valid():
            try:
                saved = pricing.save_price(**form.cleaned_data, user_id=request.user.pk)
            except DuplicatePrice as exc:
                form.add_error("effective_from", str(exc))
            else:
                messages.success(request, f"Added a price for {saved.model}.")
                return redirect("dashboard:prices")
    return _prices_page(request, form=form, can_edit=can_edit, editing=None)


@login_required
@require_http_methods(["GET", "POST"])
def edit_price(request: HttpRequest, price_id: int) -> HttpResponse:
    if not is_dashboard_admin(request.user):
        raise PermissionDenied("Only admins can change prices.")
    price = pricing.get_price(price_id=price_id)
    if price is None:
        raise Http404("no such price")
    if request.method == "POST":
        form = PriceForm(request.POST)
        if form.is_valid():
            try:
                pricing.save_price(**form.cleaned_data, user_id=request.user.pk, price_id=price.id)
            except DuplicatePrice as exc:
                form.add_error("effective_from", str(exc))
            else:
                messages.success(request, f"Saved the price for {form.cleaned_data['model']}.")
                return redirect("dashboard:prices")
    else:
        form = PriceForm.of(price)
    return _prices_page(request, form=form, can_edit=True, editing=price)


def _prices_page(
    request: HttpRequest,
    *,
    form: PriceForm,
    can_edit: bool,
    editing: pricing.PriceRecord | None,
) -> HttpResponse:
    """The price table with the add form, or the form for the row being changed; a POST that
    comes back here was refused (400)."""
    rows = pricing.list_prices()
    return render(
        request,
        "dashboard/prices.html",
        {
            "nav": "prices",
            "prices": rows,
            "current_ids": _current_ids(rows),
            "can_edit": can_edit,
            "form": form,
            "editing": editing,
        },
        status=400 if request.method == "POST" else 200,
    )

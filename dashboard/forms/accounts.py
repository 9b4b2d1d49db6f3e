"""Sign-in and password-reset forms: Django's own, with the sign-in throttle's plain refusal and
a reset that answers the same way, as fast, whether or not the address is registered."""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable
from typing import Any

from django import forms
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.forms import AuthenticationForm, PasswordResetForm
from django.db import connection

from sessions_api.access import login as sign_in

logger = logging.getLogger("observatory.access")


def _refuse_if_locked(form: AuthenticationForm) -> None:
    seconds = sign_in.locked_for(form.request, form.data.get("username"))
    if seconds:
        minutes = max(1, math.ceil(seconds / 60))
        raise forms.ValidationError(
            "Too many failed sign-ins for this account or from this address: sign-in is "
            f"locked. Try again in {minutes} minute{'s' if minutes != 1 else ''}.",
            code="locked",
        )


class ThrottledAuthenticationForm(AuthenticationForm):
    def clean(self) -> dict[str, Any]:
        _refuse_if_locked(self)
        return super().clean()


class ThrottledAdminAuthenticationForm(AdminAuthenticationForm):
    def clean(self) -> dict[str, Any]:
        _refuse_if_locked(self)
        return super().clean()


class BackgroundPasswordResetForm(PasswordResetForm):
    """Looks the address up and sends the mail after the answer: the page answers the same,
    in the same time, for registered and unknown addresses (no way to tell them apart), and a
    slow or failing mail server never holds a web worker."""

    def save(self, **kwargs: Any) -> None:
        def send() -> None:
            try:
                PasswordResetForm.save(self, **kwargs)
            except Exception:
                logger.exception("password reset mail could not be sent")
            finally:
                connection.close()

        run_later(send)


def run_later(work: Callable[[], None]) -> None:
    """Run ``work`` after the answer, on its own thread (tests collect it instead)."""
    threading.Thread(target=work, name="password-reset-mail", daemon=True).start()

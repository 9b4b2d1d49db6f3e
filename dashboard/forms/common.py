"""Field parsing the dashboard's forms share."""

from __future__ import annotations

from datetime import UTC, datetime

from django import forms

from sessions_api import bounds

# The ValidationError code of a readable value outside what can be stored or compared: the
# pages answer it 400 naming the parameter (other unreadable values count as absent).
OUT_OF_RANGE = "out_of_range"


def parse_moment(text: str) -> datetime | None:
    """An ISO 8601 date and time, as the API takes it or a datetime-local input sends it ("Z"
    included); naive means UTC. None for anything else."""
    text = text.strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    try:
        moment = datetime.fromisoformat(text) if text else None
    except ValueError:
        return None
    if moment is None:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def check_moment_range(moment: datetime) -> datetime:
    """``moment``, or a ValidationError (code ``out_of_range``) saying why it is out of range."""
    if problem := bounds.moment_problem(moment):
        raise forms.ValidationError(problem, code=OUT_OF_RANGE)
    return moment


class BoundedIntegerField(forms.IntegerField):
    """An integer a database column can hold; beyond that, ``out_of_range``."""

    def validate(self, value):
        super().validate(value)
        if value is not None and (problem := bounds.integer_problem(value)):
            raise forms.ValidationError(problem, code=OUT_OF_RANGE)


def range_problem(form: forms.Form) -> str:
    """The first out-of-range parameter of a bound form, named ("" when there is none)."""
    for name, errors in form.errors.as_data().items():
        for error in errors:
            if error.code == OUT_OF_RANGE:
                return f"{name}: {error.messages[0]}"
    return ""

"""Query parameter types whose values are range-checked as they are read.

``Moment`` and ``Int64`` refuse what :mod:`sessions_api.bounds` refuses; the error handler
answers such a refusal 400 ``invalid_query`` naming the parameter, before the operation runs.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator
from pydantic_core import PydanticCustomError

from sessions_api import bounds

OUT_OF_RANGE = "out_of_range"


def _moment(value: datetime) -> datetime:
    if problem := bounds.moment_problem(value):
        raise PydanticCustomError(OUT_OF_RANGE, problem)
    return value


def _int64(value: int) -> int:
    if problem := bounds.integer_problem(value):
        raise PydanticCustomError(OUT_OF_RANGE, problem)
    return value


Moment = Annotated[datetime, AfterValidator(_moment)]
Int64 = Annotated[int, AfterValidator(_int64)]

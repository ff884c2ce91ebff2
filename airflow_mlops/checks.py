"""Argument checks in one form, scikit-learn's (``sklearn.utils.check_scalar``):

    The 'threshold' parameter of DriftCheckOperator must be a float in (0, 1]. Got 2.5 instead.

Each checker returns the value it accepted, so ``self.workers = check_int(workers, "workers",
"BatchScoreOperator")`` validates and assigns in one line, and raises
:class:`~airflow_mlops.exceptions.ArgumentError` (a ``ValueError``; non-retryable) otherwise.
``bool`` is never accepted as a number: ``True`` is an ``int`` to Python, not to a user.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Literal

from airflow_mlops.exceptions import ArgumentError

if TYPE_CHECKING:
    from collections.abc import Sequence

Closed = Literal["both", "left", "right", "neither"]

_BRACKETS: dict[Closed, tuple[str, str]] = {
    "both": ("[", "]"),
    "left": ("[", ")"),
    "right": ("(", "]"),
    "neither": ("(", ")"),
}


def argument_error(name: str, owner: str, expected: str, value: object) -> ArgumentError:
    """The one message form: ``The {name!r} parameter of {owner} must be {expected}. Got …``."""
    return ArgumentError(
        f"The {name!r} parameter of {owner} must be {expected}. Got {value!r} instead."
    )


def check_int(value: object, name: str, owner: str, *, min_value: int = 1) -> int:
    """``value`` if it is an ``int`` (not a bool) ``>= min_value``.

    :raises ArgumentError: "must be an int >= {min_value}".
    """
    if isinstance(value, bool) or not isinstance(value, int) or value < min_value:
        raise argument_error(name, owner, f"an int >= {min_value}", value)
    return value


def check_number(
    value: object,
    name: str,
    owner: str,
    *,
    low: float,
    high: float = math.inf,
    closed: Closed = "both",
    expected: str | None = None,
) -> float:
    """``value`` as a float if it is a real number (not a bool, not NaN) within the bounds.

    :param low: the lower bound.
    :param high: the upper bound; ``inf`` (the default) for none.
    :param closed: which bounds are included: ``"both"``, ``"left"``, ``"right"`` or
        ``"neither"``.
    :param expected: the wording after "must be"; by default "a float in [low, high]" with
        the brackets ``closed`` gives, or "a number >= low" when there is no upper bound.
    :raises ArgumentError: when the value is not a number or out of bounds.
    """
    if expected is None:
        if math.isinf(high):
            expected = f"a number {'>=' if closed in ('both', 'left') else '>'} {low:g}"
        else:
            left, right = _BRACKETS[closed]
            expected = f"a float in {left}{low:g}, {high:g}{right}"
    if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
        raise argument_error(name, owner, expected, value)
    above = value >= low if closed in ("both", "left") else value > low
    below = value <= high if closed in ("both", "right") else value < high
    if not (above and below):
        raise argument_error(name, owner, expected, value)
    return float(value)


def check_bool(value: object, name: str, owner: str) -> bool:
    """``value`` if it is ``True`` or ``False`` (not a truthy string such as ``"no"``).

    :raises ArgumentError: "must be True or False".
    """
    if not isinstance(value, bool):
        raise argument_error(name, owner, "True or False", value)
    return value


def check_choice(value: object, name: str, owner: str, choices: Sequence[str]) -> str:
    """``value`` if it is one of ``choices``.

    :raises ArgumentError: "must be one of 'a', 'b'".
    """
    if not isinstance(value, str) or value not in choices:
        raise argument_error(name, owner, f"one of {', '.join(map(repr, choices))}", value)
    return value


def check_names(
    value: object, name: str, owner: str, *, what: str = "column names", allow_empty: bool = True
) -> list[str]:
    """``value`` as a list if it is a list or tuple of non-empty strings.

    A bare string is refused with the fix spelled out (``write ['a']``): iterating it would
    silently give its characters.

    :param what: what the names are, for the message ("column names", "alias names").
    :param allow_empty: whether an empty list is accepted.
    :raises ArgumentError: "must be a list of {what}".
    """
    if isinstance(value, str):
        raise ArgumentError(
            f"The {name!r} parameter of {owner} must be a list of {what}. "
            f"Got the string {value!r} instead: write [{value!r}]."
        )
    if (
        not isinstance(value, list | tuple)
        or not all(isinstance(n, str) and n for n in value)
        or (not value and not allow_empty)
    ):
        kind = "a list" if allow_empty else "a non-empty list"
        raise argument_error(name, owner, f"{kind} of {what}", value)
    return list(value)

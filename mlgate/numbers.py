"""How mlgate writes a number for a person: one policy for every table, gate row, summary and log line.

- **Measured values** keep 3 significant digits, trailing zeros included, so that neighbours line up
  (``0.121`` beside ``0.120``, never ``0.12``); from 100 up they are rounded to a whole number, and
  whole numbers carry thousands separators (``1,900``, ``10,913``).
- **Limits the user typed** are shown as typed (``0.001``, ``10``, ``1.2``), never padded.
- **Fractions** (accuracy, shares) are percentages with one decimal (``83.8%``), more decimals only
  where one would round a value that is not 0 or 1 to ``0.0%`` or ``100.0%``; a difference between
  two fractions is in percentage points (``2.0 pp``); a relative change is signed (``+12.5%``).
- **Ratios** have two decimals and a ``×`` (``1.04×``).
- **Units** follow the number after a space: ``ms``, ``s``, ``MB`` (10⁶ bytes), ``items/s``.
- Missing is ``–``, booleans are ``yes``/``no``.

Step outputs that programs read (``latency-p95-ms``, ``accuracy``) never come through here: their
raw format is documented in action.yml.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

MISSING = "–"
SIGNIFICANT = 3


def _special(value: float) -> str | None:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "∞" if value > 0 else "-∞"
    return None


def _exact(value: float | int | None) -> str | None:
    """The text of a value every policy writes the same way (missing, yes/no, whole counts, NaN, ∞)."""
    if value is None:
        return MISSING
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    return _special(value)


def number(value: float | int | None) -> str:
    """A measured value: ``0.121``, ``0.120``, ``2.90``, ``12.3``, ``123``, ``10,913``, ``1,900``."""
    exact = _exact(value)
    if exact is not None:
        return exact
    assert value is not None
    if value == int(value) or abs(value) >= 10**SIGNIFICANT / 10:
        return f"{round(value):,}"
    text = f"{value:#.{SIGNIFICANT}g}"
    if "e" in text:
        return f"{value:.{SIGNIFICANT - 1}e}"
    return text.rstrip(".")  # 99.96 -> "100." -> "100"


def typed(value: float | int | None) -> str:
    """A limit as the user typed it: ``0.001``, ``0.000001``, ``10``, ``1.2``, ``1,000,000``."""
    exact = _exact(value)
    if exact is not None:
        return exact
    assert value is not None
    if value == int(value) and abs(value) < 1e15:
        return f"{int(value):,}"
    if 1e-9 <= abs(value) < 1e15:  # the shortest text that reads back as the value, never 1e-06
        return f"{Decimal(repr(value)):,f}"
    return f"{value:.6g}"


def count(value: int | None) -> str:
    """A count: ``1,900``."""
    return MISSING if value is None else f"{value:,}"


def signed_count(value: int) -> str:
    """A change in a count: ``+950``, ``-5``, ``+0``."""
    return f"{value:+,}"


def _hundredths(value: float, *, keep_away_from: tuple[float, ...]) -> str:
    """``value`` (already × 100) with one decimal, more when one would show it as one of ``keep_away_from``."""
    decimals = 1
    while decimals < 4 and value not in keep_away_from and round(value, decimals) in keep_away_from:
        decimals += 1
    return f"{value:.{decimals}f}"


def percent(fraction: float | None) -> str:
    """A fraction as a percentage: ``83.8%``, ``100.0%``, ``99.96%`` (not 100.0%), ``0.04%``."""
    if fraction is None:
        return MISSING
    special = _special(fraction)
    if special is not None:
        return special
    return _hundredths(fraction * 100, keep_away_from=(0.0, 100.0, -100.0)) + "%"


def points(difference: float | None) -> str:
    """A difference between two fractions, in percentage points: ``2.0 pp``, ``0.04 pp``."""
    if difference is None:
        return MISSING
    return _hundredths(difference * 100, keep_away_from=(0.0,)) + " pp"


def change(fraction: float | None) -> str:
    """A relative change: ``+12.5%``, ``-25.0%``, ``+0.0%``."""
    if fraction is None:
        return MISSING
    text = percent(fraction)
    return text if text.startswith("-") else f"+{text}"


def typed_percent(fraction: float | None) -> str:
    """A fraction the user typed (``0.1``, ``0.975``) as a percentage, not padded: ``10%``, ``97.5%``."""
    return MISSING if fraction is None else f"{fraction * 100:.6g}%"


def typed_points(difference: float | None) -> str:
    """A difference of fractions the user typed (``0.01``) in percentage points, not padded: ``1 pp``."""
    return MISSING if difference is None else f"{difference * 100:.6g} pp"


def p_value(value: float | None) -> str:
    """A test's p-value: ``0.0312``, ``0.500``, ``< 0.0001`` (smaller values say no more, and may underflow to 0)."""
    if value is None:
        return MISSING
    return "< 0.0001" if value < 1e-4 else number(value)


def ratio(value: float | None) -> str:
    """One value over another: ``1.04×``, ``0.50×``, ``0.0050×``, ``2,048×``."""
    if value is None:
        return MISSING
    special = _special(value)
    if special is not None:
        return special + "×"
    if abs(value) >= 10**SIGNIFICANT / 10 or abs(value) < 0.1:
        return number(value) + "×"
    return f"{value:.2f}×"


def ms(value: float | None) -> str:
    return with_unit(number(value), "ms")


def seconds(value: float | None) -> str:
    return with_unit(number(value), "s")


def megabytes(value: float | None) -> str:
    return with_unit(number(value), "MB")


def per_second(value: float | None, what: str = "items") -> str:
    return with_unit(number(value), f"{what}/s")


def with_unit(text: str, unit: str) -> str:
    return text if text == MISSING or not unit else f"{text} {unit}"


@dataclass(frozen=True)
class Unit:
    """How a gate's quantity is written: a measured value, a limit the user typed, how far apart they are."""

    value: Callable[[float], str]
    limit: Callable[[float], str]
    difference: Callable[[float], str]

    @classmethod
    def plain(cls, suffix: str = "") -> Unit:
        """A quantity written as a number and a unit (``ms``, ``MB``, ``parameters``)."""
        return cls(value=lambda v: with_unit(number(v), suffix), limit=lambda v: with_unit(typed(v), suffix),
                   difference=lambda v: with_unit(number(v), suffix))

    def show(self, value: float | int | bool | None, *, limit: bool = False) -> str:
        if value is None:
            return MISSING
        if isinstance(value, bool):
            return "yes" if value else "no"
        return (self.limit if limit else self.value)(value)


MILLISECONDS = Unit.plain("ms")
SECONDS = Unit.plain("s")
MEGABYTES = Unit.plain("MB")
COUNT = Unit.plain()
FRACTION = Unit(value=percent, limit=typed_percent, difference=points)
"""Accuracy and other fractions: ``83.8%`` against ``90%``, missing by ``6.2 pp``."""
RELATIVE = Unit(value=change, limit=typed_percent, difference=points)
"""A change relative to production: ``+12.5%`` against ``10%``, over by ``2.5 pp``."""
POINTS = Unit(value=points, limit=typed_points, difference=points)
"""An absolute change of a fraction (accuracy drop): ``2.0 pp`` against ``1 pp``."""
RATIO = Unit(value=ratio, limit=lambda v: typed(v) + "×", difference=number)
"""A ratio such as the class imbalance: ``2.90×`` against ``1.2×``, over by ``1.70``."""

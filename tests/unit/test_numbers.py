"""The one number policy (mlgate.numbers), checked against values written out by hand."""

from __future__ import annotations

import math

import pytest

from mlgate import numbers
from mlgate.numbers import (
    FRACTION,
    MILLISECONDS,
    RATIO,
    RELATIVE,
    change,
    count,
    megabytes,
    ms,
    number,
    per_second,
    percent,
    points,
    ratio,
    seconds,
    signed_count,
    typed,
    typed_percent,
)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (0.1213, "0.121"),
        (0.12, "0.120"),  # trailing zero kept: it sits beside 0.121
        (2.905, "2.90"),
        (12.34, "12.3"),
        (99.96, "100"),  # rounded up to 100: no dangling decimal point
        (123.4, "123"),
        (10_913.4, "10,913"),
        (1_900, "1,900"),
        (1.0, "1"),  # an exact whole number needs no decimals
        (0.0, "0"),
        (-0.5, "-0.500"),
        (0.000123, "0.000123"),
        (1.5e-9, "1.50e-09"),
        (None, "–"),
        (math.nan, "NaN"),
        (math.inf, "∞"),
        (True, "yes"),
    ],
)
def test_number__three_significant_digits_with_separators(value: float | None, text: str) -> None:
    assert number(value) == text


@pytest.mark.parametrize(
    ("value", "text"),
    [(0.001, "0.001"), (0.000001, "0.000001"), (10.0, "10"), (1.2, "1.2"), (1_000_000, "1,000,000"),
     (1234.5, "1,234.5"), (0.975, "0.975"), (None, "–")],
)
def test_typed__a_limit_reads_as_the_user_wrote_it(value: float | None, text: str) -> None:
    assert typed(value) == text


@pytest.mark.parametrize(
    ("fraction", "text"),
    [
        (0.838, "83.8%"),
        (0.932, "93.2%"),
        (1.0, "100.0%"),
        (0.0, "0.0%"),
        (0.9996, "99.96%"),  # not 100.0%: it is not perfect
        (0.0004, "0.04%"),  # not 0.0%: it is not nothing
        (0.105, "10.5%"),
        (None, "–"),
    ],
)
def test_percent__one_decimal_more_only_near_0_and_100(fraction: float | None, text: str) -> None:
    assert percent(fraction) == text


def test_points_change_and_typed_percent() -> None:
    assert points(0.02) == "2.0 pp"
    assert points(0.0004) == "0.04 pp"
    assert change(0.125) == "+12.5%" and change(-0.25) == "-25.0%"
    assert typed_percent(0.1) == "10%" and typed_percent(0.975) == "97.5%" and typed_percent(0.07) == "7%"


def test_ratio__two_decimals_and_a_times_sign() -> None:
    assert [ratio(v) for v in (1.04, 0.5, 2.905, 1.0, 0.005, 2048.0)] == [
        "1.04×", "0.50×", "2.90×", "1.00×", "0.00500×", "2,048×",
    ]


def test_units__follow_the_number_after_a_space() -> None:
    assert ms(0.2147) == "0.215 ms"
    assert seconds(0.03955) == "0.0396 s"  # 0.03955 is stored as 0.039550000000000002
    assert megabytes(0.09612) == "0.0961 MB"
    assert per_second(10_913.4) == "10,913 items/s"
    assert ms(None) == "–"
    assert count(6_610) == "6,610" and signed_count(950) == "+950" and signed_count(-5) == "-5"


def test_gate_units__value_limit_and_difference() -> None:
    assert (MILLISECONDS.show(12.3), MILLISECONDS.show(10.0, limit=True), MILLISECONDS.difference(2.3)) == (
        "12.3 ms", "10 ms", "2.30 ms")
    assert (FRACTION.show(0.932), FRACTION.show(0.95, limit=True), FRACTION.difference(0.018)) == (
        "93.2%", "95%", "1.8 pp")
    assert (RELATIVE.show(0.125), RELATIVE.show(0.1, limit=True)) == ("+12.5%", "10%")
    assert (RATIO.show(2.905), RATIO.show(1.2, limit=True), RATIO.difference(1.705)) == ("2.90×", "1.2×", "1.71")
    assert numbers.COUNT.show(None) == "–" and numbers.COUNT.show(False) == "no"

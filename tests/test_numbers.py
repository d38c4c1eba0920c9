"""Figures as a reader sees them: what counts as a number, and every formatter at its boundaries."""

from __future__ import annotations

import math

import pytest

from runner.numbers import DASH, fmt, fmt_ms, fmt_ms_range, fmt_steal, is_finite, is_number, ratio, sig3

# What a saved run holds where there is no figure, and what must never be printed as one.
NOT_FIGURES = [None, math.nan, math.inf, -math.inf, True, False, "12", [1]]


def test_the_dash_is_an_en_dash() -> None:
    assert DASH == "\u2013"


# --- what counts as a number -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [0, 1, -1, 0.0, 2.5, -1e-9, 10**20])
def test_finite_numbers_are_finite(value: float) -> None:
    assert is_finite(value)


@pytest.mark.parametrize("value", NOT_FIGURES)
def test_nan_inf_none_bools_and_text_are_not_finite(value: object) -> None:
    assert not is_finite(value)
    assert not is_number(value)


@pytest.mark.parametrize(("value", "expected"), [(1, True), (1e-9, True), (0, False), (0.0, False), (-1, False)])
def test_a_number_to_divide_by_must_be_positive(value: float, expected: bool) -> None:
    assert is_number(value) is expected


# --- fmt -------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "digits", "expected"),
    [
        (12.34, 1, "12.3"),
        (12.36, 1, "12.4"),
        (0, 1, "0.0"),
        (-3.14159, 2, "-3.14"),
        (2, 0, "2"),
        (1234567.0, 1, "1234567.0"),
    ],
)
def test_fmt_gives_a_fixed_number_of_decimals(value: float, digits: int, expected: str) -> None:
    assert fmt(value, digits) == expected


def test_fmt_defaults_to_one_decimal() -> None:
    assert fmt(7) == "7.0"


@pytest.mark.parametrize("value", NOT_FIGURES)
def test_fmt_gives_a_dash_where_there_is_no_figure(value: object) -> None:
    assert fmt(value) == DASH
    assert fmt(value, 3) == DASH


# --- fmt_ms ----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0, "0.0 ms"),
        (12, "12.0 ms"),
        (99.9, "99.9 ms"),  # below 100: one decimal
        (100, "100 ms"),  # from 100: whole milliseconds
        (110.4, "110 ms"),
        (999, "999 ms"),
        (1000, "1.0 s"),  # from a second: seconds, one decimal
        (9600, "9.6 s"),
        (125_000, "125.0 s"),
        (-5, "-5.0 ms"),
    ],
)
def test_fmt_ms_carries_the_unit_a_reader_takes_in_at_a_glance(value: float, expected: str) -> None:
    assert fmt_ms(value) == expected


@pytest.mark.parametrize("value", NOT_FIGURES)
def test_fmt_ms_gives_a_dash_where_there_is_no_figure(value: object) -> None:
    assert fmt_ms(value) == DASH


# --- sig3 and fmt_ms_range -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0, "0.00"),
        (1.234, "1.23"),
        (9.87, "9.87"),
        (10, "10.0"),  # from 10: one decimal
        (12.34, "12.3"),
        (99.94, "99.9"),
        (100, "100"),  # from 100: whole numbers
        (123.4, "123"),
        (12345.6, "12346"),
        (-1.234, "-1.23"),
        (-12.34, "-12.3"),  # the size, not the sign, picks the decimals
        (-150, "-150"),
    ],
)
def test_sig3_keeps_three_significant_figures(value: float, expected: str) -> None:
    assert sig3(value) == expected


@pytest.mark.parametrize(
    ("low", "high", "expected"),
    [
        (90, 110, "90.0\u2013110 ms"),  # both ends in the high end's unit
        (1.5, 2.25, "1.50\u20132.25 ms"),
        (900, 999, "900\u2013999 ms"),
        (900, 1000, "0.90\u20131.00 s"),  # from a second at the high end: seconds at both ends
        (500, 1500, "0.50\u20131.50 s"),
        (12_000, 15_500, "12.0\u201315.5 s"),
    ],
)
def test_fmt_ms_range_reads_as_one_quantity(low: float, high: float, expected: str) -> None:
    assert fmt_ms_range(low, high) == expected


# --- ratio -----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [(10, 4, "2.5x"), (29, 10, "2.9x"), (1, 3, "0.3x"), (0, 5, "0.0x"), (-2, 4, "-0.5x"), (100, 1e-3, "100000.0x")],
)
def test_ratio_is_one_decimal_and_an_x(a: float, b: float, expected: str) -> None:
    assert ratio(a, b) == expected


@pytest.mark.parametrize(
    ("a", "b"),
    [(1, 0), (1, 0.0), (1, -1), (None, 1), (1, None), (math.nan, 1), (1, math.nan), (math.inf, 1), (1, math.inf),
     (True, 1), (1, True), ("2", 1)],
)  # fmt: skip
def test_ratio_gives_a_dash_when_either_side_is_missing_or_b_is_not_positive(a: object, b: object) -> None:
    assert ratio(a, b) == DASH


def test_steal_reads_per_core_and_a_run_without_it_is_a_dash() -> None:
    assert fmt_steal([0.231, 0.0]) == "core 0 0.23 s, core 1 0.00 s"
    for missing in (None, [], [math.nan, 0.1], "0.2", [None]):
        assert fmt_steal(missing) == DASH
    assert fmt_steal([0.231, 0.0], compact=True) == "0.23 / 0.00"
    assert fmt_steal(None, compact=True) == DASH

"""Stored numbers as people read them, for the admin and object names (not the API's rounding)."""

from __future__ import annotations


def readable(value: float | None, unit: str = "") -> str | None:
    """ "400,000,000", not "400000000.0"; at most two decimals; money in dollars and cents.

    None stays None, which the admin shows as its empty-value dash.
    """
    if value is None:
        return None
    if unit == "usd":
        return f"${value:,.2f}"
    value = round(value, 2)
    if value.is_integer():
        return f"{int(value):,}"
    return f"{value:,.2f}".rstrip("0")


def readable_percent(value: float | None) -> str | None:
    return None if value is None else f"{value:,.2f} %"

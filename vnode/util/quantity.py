"""Kubernetes resource quantities (`100m`, `1.5`, `512Mi`, `2G`, `1e3`) as exact fractions.

Used wherever requests, limits, capacity or billed shapes are compared or added; never rounds.
"""

from __future__ import annotations

import re
from fractions import Fraction

_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL = {"n": Fraction(1, 10**9), "u": Fraction(1, 10**6), "m": Fraction(1, 1000), "": Fraction(1),
            "k": Fraction(10**3), "M": Fraction(10**6), "G": Fraction(10**9), "T": Fraction(10**12),
            "P": Fraction(10**15), "E": Fraction(10**18)}
_QUANTITY = re.compile(r"^([+-]?[0-9.]+)(?:([eE][+-]?[0-9]+)|(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E)?)$")


def parse_quantity(text: str | int | float) -> Fraction:
    """Parse a quantity string (or a bare number, as YAML may give); raises ValueError on bad input."""
    if isinstance(text, int | float):
        return Fraction(str(text))
    match = _QUANTITY.match(text.strip())
    if not match:
        raise ValueError(f"quantities must match the regular expression "
                         f"'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$': {text!r}")
    number, exponent, suffix = match.groups()
    value = Fraction(number)
    if exponent:
        return value * Fraction(10) ** int(exponent[1:])
    if suffix in _BINARY:
        return value * _BINARY[suffix]
    return value * _DECIMAL[suffix or ""]


def format_cpu_millis(value: Fraction) -> str:
    millis = value * 1000
    if millis.denominator == 1 and millis % 1000 == 0:
        return str(int(millis // 1000))
    return f"{int(millis)}m"

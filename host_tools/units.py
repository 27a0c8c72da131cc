"""Physical quantities in scenario files, parsed with pint.

Every physical value in a scenario is a string with its unit ("100 Ah",
"25 degC", "30 min"), so a wrong unit is caught instead of silently
misread. A current may also be a C-rate ("0.5 C"), resolved against the
pack capacity.
"""
from __future__ import annotations

import re

import pint

_ureg = pint.UnitRegistry()
_NUM = re.compile(r"^\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*(.*?)\s*$")

# dimension name -> (pint dimensionality, canonical unit, example)
DIMENSIONS = {
    "time": ("[time]", "s", "30 min"),
    "current": ("[current]", "A", "50 A or 0.5 C"),
    "voltage": ("[length] ** 2 * [mass] / [current] / [time] ** 3", "V", "3.55 V"),
    "charge": ("[current] * [time]", "A*h", "100 Ah"),
    "temperature": ("[temperature]", "degC", "25 degC"),
    "temperature_delta": ("[temperature]", "delta_degC", "2 K"),
    "resistance": ("[length] ** 2 * [mass] / [current] ** 2 / [time] ** 3", "ohm", "0.5 mohm"),
    "fraction": ("", "", "30 %"),
    "power": ("[length] ** 2 * [mass] / [time] ** 3", "W", "5 kW"),
    "heat_capacity": ("[length] ** 2 * [mass] / [time] ** 2 / [temperature]", "J/K", "2260 J/K"),
}


class QuantityError(ValueError):
    pass


def _unit_alias(unit: str) -> str:
    u = unit.strip()
    return {"%": "percent", "degC": "degC", "°C": "degC", "Ah": "A*h", "mAh": "mA*h",
            "mohm": "milliohm", "kohm": "kiloohm", "Ohm": "ohm", "": "dimensionless"}.get(u, u)


def _name_of(q) -> str:
    for name, (_, canon, _) in DIMENSIONS.items():
        if canon and name != "temperature_delta" and q.dimensionality == _ureg.Quantity(1, canon).dimensionality:
            return "a " + name
    return "dimensionless" if q.dimensionless else str(q.dimensionality)


def parse(text, dim: str, capacity_ah: float | None = None) -> float:
    """Returns the value of `text` in the canonical unit of `dim`."""
    if isinstance(text, bool) or not isinstance(text, (str, int, float)):
        raise QuantityError(f"expected a quantity like '{DIMENSIONS[dim][2]}', got {text!r}")
    if isinstance(text, (int, float)):
        if dim == "fraction":
            return float(text)
        raise QuantityError(f"expected a quantity with its unit, like '{DIMENSIONS[dim][2]}', got the bare number {text!r}")
    m = _NUM.match(text)
    if not m:
        raise QuantityError(f"expected a number and a unit, like '{DIMENSIONS[dim][2]}', got {text!r}")
    value, unit = float(m.group(1)), m.group(2)
    if dim == "current" and unit in ("C", "C-rate"):
        if capacity_ah is None:
            raise QuantityError(f"a C-rate ({text!r}) needs the pack capacity")
        return value * capacity_ah
    want, canon, example = DIMENSIONS[dim]
    try:
        if dim == "temperature_delta" and unit in ("K", "kelvin", "degC", "delta_degC"):
            q = _ureg.Quantity(value, "kelvin")
            return float(q.to("kelvin").magnitude)
        q = _ureg.Quantity(value, _unit_alias(unit))
    except (pint.errors.UndefinedUnitError, pint.errors.DefinitionSyntaxError, AttributeError, TypeError, ValueError) as e:
        raise QuantityError(f"unknown unit {unit!r} in {text!r} (expected something like '{example}')") from e
    if dim == "fraction":
        if not q.dimensionless:
            raise QuantityError(f"expected a fraction like '{example}', got {text!r} (unit {unit!r} is not dimensionless)")
        return float(q.to("dimensionless").magnitude)
    if q.dimensionality != _ureg.Quantity(1, canon).dimensionality:
        raise QuantityError(f"expected a {dim} like '{example}', got {text!r} (unit {unit!r} is {_name_of(q)})")
    return float(q.to(canon).magnitude)

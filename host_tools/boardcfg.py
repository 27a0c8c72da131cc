"""Board configurations (board_configs/*.json): loading and validation on
the host, against board_configs/schema.json (JSON Schema 2020-12) plus the
cross-field checks a schema cannot express (a pin used twice, one gain per
cell channel, enough multiplexer channels).

`load_board_config(path) -> dict` is the one entry point other tools call
(bmsctl sim, bmsctl flash); every error is a BoardConfigError whose message
names the file and the field, e.g.
``board_configs/x.json: afe.i2c.sda: 'four' is not valid under any of the given schemas``.
"""
from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

from jsonschema import Draft202012Validator

from host_tools.firmware import BOARD_CONFIGS

SCHEMA = BOARD_CONFIGS / "schema.json"
# mpy-cross architecture per microcontroller (viper code is per architecture)
ARCH = {"rp2040": "armv6m", "esp32": "xtensawin", "unix": "x64"}


class BoardConfigError(ValueError):
    pass


@lru_cache(maxsize=1)
def _validator() -> Draft202012Validator:
    schema = json.loads(SCHEMA.read_text())
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def _where(path) -> str:
    out = ""
    for p in path:
        out += f"[{p}]" if isinstance(p, int) else (("." if out else "") + str(p))
    return out or "(top level)"


def _deepest(err):
    # For oneOf/anyOf/if-then failures the most specific sub-error names the
    # field best.
    while err.context:
        err = max(err.context, key=lambda e: (len(e.absolute_path), -len(e.message)))
    return err


def load_board_config(path) -> dict:
    """Reads and validates one board configuration; returns it as a dict."""
    name = str(path)
    try:
        text = Path(path).read_text()
    except OSError as e:
        raise BoardConfigError(f"{name}: cannot read: {e.strerror or e}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise BoardConfigError(f"{name}: line {e.lineno} column {e.colno}: not valid JSON: {e.msg}") from None
    errors = sorted(_validator().iter_errors(data), key=lambda e: (list(map(str, e.absolute_path)), e.message))
    if errors:
        err = _deepest(errors[0])
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        msg = err.message
        if "password" in map(str, err.absolute_path):
            # jsonschema quotes the value: never print a secret
            msg = f"not valid (a {err.validator} check failed; the value is a secret and is not shown)"
        raise BoardConfigError(f"{name}: {_where(err.absolute_path)}: {msg}{more}")
    _cross_checks(name, data)
    return data


def _pins(data):
    """(field, pin) for every pin the board drives or reads."""
    afe = data.get("afe", {})
    t = afe.get("type")
    if t == "bq76952":
        yield "afe.i2c.sda", afe["i2c"]["sda"]
        yield "afe.i2c.scl", afe["i2c"]["scl"]
    elif t in ("ltc6811", "ltc6813"):
        for k in ("sck", "mosi", "miso"):
            yield f"afe.spi.{k}", afe["spi"][k]
        yield "afe.cs", afe["cs"]
    elif t == "direct_adc":
        yield "afe.adc_pin", afe["adc_pin"]
        for i, p in enumerate(afe["select"]):
            yield f"afe.select[{i}]", p
        for i, p in enumerate(afe.get("bleed", [])):
            yield f"afe.bleed[{i}]", p
    for k, v in data.get("analog", {}).items():
        if "pin" in v:
            yield f"analog.{k}.pin", v["pin"]
    for k, v in data.get("contactors", {}).items():
        yield f"contactors.{k}.pin", v["pin"]
    pump = data.get("pump", {})
    for k in ("pwm", "tach"):
        if k in pump:
            yield f"pump.{k}", pump[k]
    if "heater" in data:
        yield "heater.pin", data["heater"]["pin"]
    if "status_led" in data:
        yield "status_led", data["status_led"]
    can = data.get("can")
    if can:
        for k in ("sck", "mosi", "miso"):
            yield f"can.spi.{k}", can["spi"][k]
        yield "can.cs", can["cs"]
        if "int" in can:
            yield "can.int", can["int"]


def _cross_checks(name: str, data: dict):
    seen = {}
    for field, pin in _pins(data):
        if pin in seen:
            raise BoardConfigError(f"{name}: {field}: pin {pin!r} is already used by {seen[pin]}")
        seen[pin] = field
    afe = data.get("afe", {})
    can = data.get("can")
    if can and afe.get("type") in ("ltc6811", "ltc6813") and afe["spi"]["id"] == can["spi"]["id"]:
        raise BoardConfigError(f"{name}: can.spi.id: SPI {can['spi']['id']} is the front end's bus; the MCP2515 needs its own")
    if can and "cvl_cell_mv" in can and "dvl_cell_mv" in can and can["dvl_cell_mv"] >= can["cvl_cell_mv"]:
        raise BoardConfigError(f"{name}: can.dvl_cell_mv: must be below can.cvl_cell_mv ({can['cvl_cell_mv']} mV)")
    if afe.get("type") == "direct_adc":
        n = len(afe["cell_channels"])
        for k in ("gain_uv", "offset_mv", "bleed"):
            if k in afe and afe[k] and len(afe[k]) != n:
                raise BoardConfigError(f"{name}: afe.{k}: {len(afe[k])} entries, expected one per cell channel ({n})")
        nch = 1 << len(afe["select"])
        used = {}
        mux_fields = [(f"afe.cell_channels[{i}]", c) for i, c in enumerate(afe["cell_channels"])]
        mux_fields += [(f"afe.temp_channels[{i}]", c) for i, c in enumerate(afe["temp_channels"])]
        mux_fields += [(f"analog.{k}.mux", v["mux"]) for k, v in data.get("analog", {}).items() if "mux" in v]
        for field, c in mux_fields:
            if c >= nch:
                raise BoardConfigError(f"{name}: {field}: channel {c} but {len(afe['select'])} select pins give {nch} channels")
            if c in used:
                raise BoardConfigError(f"{name}: {field}: mux channel {c} is already used by {used[c]}")
            used[c] = field
    elif any("mux" in v for v in data.get("analog", {}).values()):
        k = next(k for k, v in data["analog"].items() if "mux" in v)
        raise BoardConfigError(f"{name}: analog.{k}.mux: only the direct_adc front end has a multiplexer")
    if afe.get("type") in ("ltc6811", "ltc6813"):
        ch = 12 if afe["type"] == "ltc6811" else 18
        if afe["cells_per_module"] > ch:
            raise BoardConfigError(f"{name}: afe.cells_per_module: {afe['cells_per_module']} > {ch} inputs of the {afe['type']}")
        gmax = 5 if ch == 12 else 9
        for i, (m, g) in enumerate(afe["temps"]):
            if m >= afe["modules"] or g > gmax:
                raise BoardConfigError(f"{name}: afe.temps[{i}]: [module {m}, GPIO{g}] not on a {afe['modules']}-module {afe['type']} chain")
        a = data["analog"]
        for k in ("current", "bus"):
            if k not in a:
                raise BoardConfigError(f"{name}: analog.{k}: required with the {afe['type']} (the chain measures no {k})")
    if afe.get("type") == "direct_adc":
        a = data["analog"]
        need = ["current", "bus"] + (["pack"] if afe.get("mode") == "cells" else [])
        for k in need:
            if k not in a:
                raise BoardConfigError(f"{name}: analog.{k}: required with the direct_adc front end")


def all_configs() -> list[Path]:
    return sorted(p for p in BOARD_CONFIGS.glob("*.json") if p.name != "schema.json")

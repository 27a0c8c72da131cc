# Configuration: one validated set of integer settings with units in their
# names, built from a chemistry preset plus the board's and the user's JSON.
#
# Validation happens once, before anything is applied: a bad value raises
# ConfigError naming the field, and no part of that config is used.
#
# This module is what stays resident: the error class and the settings
# object. The schema, its checks and the chemistry presets
# (bms/config_schema.py, bms/chemistry.py) are the largest code of the
# firmware and are needed only while a configuration is built (at boot and
# on `config set`), so Config loads them, fills itself and drops them from
# the heap again: on a 32-bit board they are ~28 KB the running pack does
# not hold (host_tools/mp/heap_by_module.py measures it).
import sys

# loaded only while a Config is built; dropped after unless someone else
# had them loaded already (a test, a host tool)
_TRANSIENT = ("bms.config_schema", "bms.chemistry")


class ConfigError(ValueError):
    pass


class Config:
    """Validated settings as attributes. Build with Config(dict); raises
    ConfigError."""

    def __init__(self, user):
        mods = sys.modules
        loaded = [m for m in _TRANSIENT if m not in mods]
        try:
            from bms.config_schema import fill
            fill(self, user)
        finally:
            fill = None
            drop(loaded)


def drop(names):
    """Forgets the modules `names` (their sys.modules entry and their
    package's attribute), so the garbage collector can take their code
    back once nothing else refers to it."""
    mods = sys.modules
    for m in names:
        if m in mods:
            del mods[m]
        pkg, _, attr = m.rpartition(".")
        try:
            delattr(mods[pkg], attr)
        except (AttributeError, KeyError, TypeError):  # not set (MicroPython: KeyError)
            pass

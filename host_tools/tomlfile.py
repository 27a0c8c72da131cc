"""Reading the host tools' TOML files (scenarios, fleets, gateway settings,
trace mappings): one place for the Python 3.10 fallback and for the error
that names the file."""
from __future__ import annotations

from pathlib import Path

try:
    import tomllib
except ImportError:  # Python 3.10
    import tomli as tomllib


def read_toml(path, error: type[Exception]) -> dict:
    """The TOML file at `path` as a dict; raises `error`, naming the file,
    when it cannot be read or is not valid TOML."""
    try:
        return tomllib.loads(Path(path).read_text())
    except OSError as e:
        raise error(f"{path}: cannot read: {e.strerror}") from None
    except tomllib.TOMLDecodeError as e:
        raise error(f"{path}: not valid TOML: {e}") from None

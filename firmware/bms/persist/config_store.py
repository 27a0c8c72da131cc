# The configuration file: JSON text, then a line with its CRC-32.
#
# save(): write <name>.tmp, rename <name> -> <name>.bak (the last good copy),
# rename <name>.tmp -> <name>. littlefs renames atomically, so after a power
# cut at any step one of <name>, <name>.tmp, <name>.bak holds a complete
# file with a valid CRC, and load() takes them in that order of preference:
# the configuration is always entirely the old or entirely the new one.
# load() validates too (bms.config.Config); a copy that fails its CRC or its
# validation is skipped with a warning, never replaced by silent defaults.
import json
from bms.persist.crc import crc32

VERSION = 2  # schema version written by this firmware


def migrate(raw):
    """Brings an older stored configuration up to VERSION. Returns (raw, note)."""
    v = raw.get("version", 1)
    if v == VERSION:
        return raw, None
    if v == 1:
        # v1 called the balancing threshold "balance_delta_mv"
        raw = dict(raw)
        if "balance_delta_mv" in raw:
            raw["balance_start_mv"] = raw.pop("balance_delta_mv")
        raw["version"] = VERSION
        return raw, "migrated from version 1"
    raise ValueError("unknown configuration version %r" % v)


def _encode(raw):
    body = json.dumps(raw)
    return body + "\n%08x\n" % crc32(body.encode())


def _decode(text):
    i = text.rfind("\n", 0, len(text) - 1)
    if i < 0:
        raise ValueError("no CRC line")
    body = text[:i]
    want = int(text[i + 1:].strip(), 16)
    if crc32(body.encode()) != want:
        raise ValueError("CRC mismatch")
    return json.loads(body)


class ConfigStore:
    def __init__(self, vfs_path, name="config.json", validate=None):
        self.path = vfs_path.rstrip("/") + "/" + name
        self.validate = validate  # callable(raw) -> object; raises on bad config
        self.warnings = []

    def save(self, raw, validated=False):
        """validated: the caller has just built a configuration from this
        raw (console `config set`), so it is not built a second time."""
        import os
        raw = dict(raw)
        raw["version"] = VERSION
        if self.validate is not None and not validated:
            self.validate(raw)  # nothing invalid ever reaches the flash
        tmp = self.path + ".tmp"
        with open(tmp, "w") as f:
            f.write(_encode(raw))
        try:
            os.rename(self.path, self.path + ".bak")
        except OSError:
            pass  # first save: there is no current file
        os.rename(tmp, self.path)

    def load(self):
        """Returns (raw, source) of the newest valid copy; raises OSError if none."""
        self.warnings = []
        for suffix in ("", ".tmp", ".bak"):
            p = self.path + suffix
            try:
                with open(p) as f:
                    raw = _decode(f.read())
                raw, note = migrate(raw)
                if self.validate is not None:
                    self.validate(raw)
            except OSError:
                continue  # not there
            except Exception as e:  # noqa: CRC, JSON, migration or validation
                self.warnings.append(p + ": " + str(e))
                continue
            if note:
                self.warnings.append(p + ": " + note)
            if suffix == ".bak":
                self.warnings.append("using the last good copy " + p)
            return raw, p
        raise OSError("no valid configuration in " + self.path + "(.tmp/.bak): " + "; ".join(self.warnings))

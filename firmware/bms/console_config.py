# The console's `config` command (get, set): bms/console.py loads this
# module for the command and drops it again after it, like
# bms/console_cmds.py; apart from it because `config set` builds a second
# configuration while the pack runs (the firmware's highest heap).
from array import array
from bms.console import CommandError, _parse


def cmd_config(self, args, now_ms):
    if not args or args[0] not in ("get", "set"):
        raise CommandError("expected 'config get [KEY]' or 'config set KEY VALUE'")
    if args[0] == "get":
        if len(args) > 2:
            raise CommandError("config get takes at most one key")
        cfg = self.app.cfg
        keys = (args[1],) if len(args) == 2 else sorted(k for k in dir(cfg) if not k.startswith("_"))
        for k in keys:
            v = getattr(cfg, k, None)
            if v is None or callable(v):
                raise CommandError("unknown setting " + repr(k))
            self.port.write("%s = %s\n" % (k, _fmt(v)))
        return
    if len(args) != 3:
        raise CommandError("expected 'config set KEY VALUE'")
    key, text = args[1], args[2]
    value = _parse(text)
    new_raw = dict(self.raw)
    new_raw[key] = value
    try:
        cfg = self.build_cfg(new_raw)  # validated first: nothing changes on an error
    except ValueError as e:  # ConfigError is a ValueError
        raise CommandError(str(e))
    except MemoryError:  # the schema and a second configuration did not fit beside the running pack
        raise CommandError("not enough memory to build the new configuration; nothing changed")
    old = self.app.cfg
    later = cfg.cells != old.cells or cfg.temps != old.temps
    if later and self.store is None:
        raise CommandError("changing cells/temps needs a saved configuration and a reboot; no store on this board")
    if self.store is not None:
        try:
            self.store.save(new_raw, True)  # saved before applied, so a reboot keeps it; validated above
        except OSError as e:
            raise CommandError("could not save the configuration: " + str(e))
    if not later:
        try:
            self.app.reconfigure(cfg)
        except MemoryError:
            # the running stages are as they were (App._build swaps them
            # only when all are built)
            if self.store is None:
                raise CommandError("not enough memory to apply the new configuration; nothing changed")
            later = True  # saved above: the next boot applies it
    self.raw = new_raw
    self.port.write("%s = %s%s\n" % (key, _fmt(getattr(cfg, key, value)),
                                      " (saved; takes effect after a reboot)" if later else ""))


def _fmt(v):
    if isinstance(v, (list, tuple, array)):
        return "[" + ", ".join(str(x) for x in v) + "]"
    return str(v)

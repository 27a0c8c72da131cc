# Many boots of the board runner (bms.boot.board_main -> board_start) on the
# chip and pin models (MicroPython; `make boots`, and a short run in the
# tests). Each boot draws, at random: the board (BQ76952 or 2x LTC6813), the
# chip's state (factory-fresh, half-configured, already configured; the
# LTC681x always starts from its reset state), a fault present at power-up
# (none, an open sense wire, a hot cell, a chip that does not answer), the
# reset cause (power-on or watchdog) and the state record (valid, valid
# with a latched fault, corrupt, missing). It checks, on every change of a
# contactor output pin, that
#   - no output is energised before a complete, valid scan, and
#   - every fault the boot brought along is already reported (active)
#     when an output is first energised;
# and, at the end, that each of them was reported at all.
#   micropython boots.py FIRMWARE_DIR CHIPS_DIR BOARD_CONFIGS WORK_DIR BOOTS SEED
import sys
import json
import os
sys.path.insert(0, sys.argv[1])
sys.path.insert(0, sys.argv[2])
BOARDS = sys.argv[3]
WORK = sys.argv[4]
BOOTS = int(sys.argv[5])
SEED = int(sys.argv[6])

import random  # noqa: E402
from bms import faults as F  # noqa: E402
from bms import boot  # noqa: E402
from bms.config import Config  # noqa: E402
import bms.app  # noqa: E402
import bms.hal.board  # noqa: E402
from bms.persist.config_store import ConfigStore  # noqa: E402
from bms.persist.state_record import StateStore, StateRecord  # noqa: E402
from bms.drivers.bq76952_setup import settings  # noqa: E402
from chips.bench import Bench, ntc_counts, ntc_uv  # noqa: E402
from chips.bq76952 import BQ76952Model  # noqa: E402
from chips.ltc681x import LtcChain  # noqa: E402

random.seed(SEED)
TICKS = 60
BOARD_FILES = {"bq": ("pico_bq76952.json", 16, 4), "ltc": ("esp32_2x_ltc6813.json", 36, 8)}
APPS = []
_App = bms.app.App


class SpyApp(_App):
    def __init__(self, *a):
        _App.__init__(self, *a)
        APPS.append(self)


bms.app.App = SpyApp
FEED = []
_read = bms.hal.board.BoardHal.read


def _fed_read(self, st):
    for f in FEED:
        f()
    _read(self, st)


bms.hal.board.BoardHal.read = _fed_read


class QuietPort:
    """The console's port with nobody typing."""

    def read_into(self, buf, n):
        return 0

    def write(self, text):
        pass


def rmtree(p):
    try:
        entries = list(os.ilistdir(p))
    except OSError:
        return
    for e in entries:
        q = p + "/" + e[0]
        if e[1] == 0x4000:
            rmtree(q)
        else:
            os.remove(q)
    os.rmdir(p)


def one(i):
    kind = random.choice(("bq", "ltc"))
    name, n, m = BOARD_FILES[kind]
    with open(BOARDS + "/" + name) as f:
        bd = json.load(f)
    chip_state = random.choice(("fresh", "half", "configured")) if kind == "bq" else "fresh"
    fault = random.choice(("none", "none", "open_wire", "hot_cell", "silent"))
    reset = random.choice(("power", "wdt"))
    record = random.choice(("valid", "latched", "corrupt", "missing"))
    root = WORK + "/b%d" % i
    rmtree(root)
    os.mkdir(root)
    raw = {"cells": n, "temps": m, "capacity_mah": 100000, "chemistry": "LFP"}
    with open(root + "/board.json", "w") as f:
        json.dump(bd, f)
    ConfigStore(root, validate=Config).save(raw)
    cfg = Config(raw)
    expect = []
    if record in ("valid", "latched"):
        r = StateRecord()
        r.soc_cpct = 5000
        r.capacity_mah = 100000
        if record == "latched":
            k = F.index("CELL_OV_CRIT")
            r.latched[k // 8] |= 1 << (k % 8)
            expect.append("CELL_OV_CRIT")
        StateStore(root).save(r)
    elif record == "corrupt":
        with open(root + "/state.a", "wb") as f:
            f.write(bytes(random.getrandbits(8) for _ in range(40)))
    b = Bench()
    b.reset_cause = b.machine.WDT_RESET if reset == "wdt" else b.machine.PWRON_RESET
    if reset == "wdt":
        expect.append("WATCHDOG_RESET")
    a = bd["afe"]
    con = bd["contactors"]
    k = [0]
    if kind == "bq":
        chip = BQ76952Model(8, b.clock, a["shunt_uohm"])
        if chip_state == "configured":
            chip.configure(settings(a, cfg))
        elif chip_state == "half":
            t = settings(a, cfg)
            chip.configure([row for row in t if row[2] == "Comm Type"] + t[:random.randrange(len(t))])
        if fault != "silent":
            b.i2c(a["i2c"]["id"]).attach(8, chip)
        from bms.drivers.bq76952 import TEMP_NAMES

        def feed():
            k[0] += 1
            mv = [3300 + (k[0] + j) % 5 for j in range(16)]
            chip.set_cells_mv(mv)
            s = sum(mv) // 10
            chip.set_stack(s, s, s, 0)
            for j, t in enumerate(a["temps"]):
                chip.set_ts_counts(TEMP_NAMES.index(t), ntc_counts(60 if fault == "hot_cell" and j == 1 else 25))
        if fault == "open_wire":
            chip.open_wire = 7
    else:
        chip = LtcChain(b.clock, a["modules"], 18)
        b.spi(a["spi"]["id"]).chain = chip
        b.pin(a["cs"]).listener = chip.cs
        chip.silent = fault == "silent"
        if fault == "open_wire":
            chip.dev[0].open_pin = 7

        def feed():
            k[0] += 1
            for d in chip.dev:
                d.cell_in = [33000 + (k[0] + j) % 7 * 10 for j in range(18)]
            for j, (mod, g) in enumerate(a["temps"]):
                chip.dev[mod].gpio_in[g - 1] = ntc_counts(60 if fault == "hot_cell" and j == 1 else 25) * 30000 // 4095
            cur = bd["analog"]["current"]
            b.adc(cur["pin"]).uv = (2 * cur["zero_count"] + 1) * 3300000 // (2 * 65536)
            b.adc(bd["analog"]["bus"]["pin"]).uv = 36 * 3300 * 1000 * 3300000 // (65536 * bd["analog"]["bus"]["uv_per_count"])
    FEED[:] = [feed]
    feed()
    for nm in ("coolant_in", "coolant_out"):
        b.adc(bd["analog"][nm]["pin"]).uv = ntc_uv(ntc_counts(25))
    if fault == "open_wire":
        expect.append("VOLTAGE_CHANNEL")
    elif fault == "hot_cell":
        expect.append("OT_CRIT")
    elif fault == "silent":
        expect.append("STALE_MEASUREMENT")
        if kind == "bq":
            expect.append("FE_CONFIG")
    # enable on (active low), auxiliary contacts follow the coils
    b.pin(con["enable"]["pin"]).v = 0
    bad = []
    energised = [None]
    for coil, fb in (("neg", "fb_neg"), ("pre", "fb_pre"), ("pos", "fb_pos")):
        pin = b.pin(con[coil]["pin"])
        fpin = b.pin(con[fb]["pin"])
        fpin.v = 1  # open (active low)

        def listen(v, fpin=fpin, coil=coil):
            fpin.v = 0 if v else 1
            if not v or not APPS:
                return
            st = APPS[-1].state
            if st.valid_scans < 1:
                bad.append("%s energised before a valid scan" % coil)
            if energised[0] is None:
                energised[0] = st.ticks
                for nm in expect:
                    if not st.fault_active[F.index(nm)]:
                        bad.append("%s energised before %s was reported" % (coil, nm))
        pin.listener = listen
    if "can" in bd:
        # the inverter CAN controller fitted on two boots in three, absent on
        # the third (MISO floats high): the start-up goes on either way
        # (from i, so the random draws above stay as they were)
        from chips.mcp2515 import attach
        attach(b, bd["can"], i % 3 != 2)
    del APPS[:]
    boot.board_main(root, b.machine, b.clock, QuietPort(), TICKS)
    st = APPS[-1].state if APPS else None
    if st is None:
        bad.append("no app was built")
    else:
        for nm in expect:
            if not st.fault_active[F.index(nm)] and nm != "WATCHDOG_RESET":
                bad.append("%s never reported" % nm)
    rmtree(root)
    return {"kind": kind, "chip": chip_state, "fault": fault, "reset": reset, "record": record,
            "closed": energised[0], "bad": bad}


results = []
try:
    os.mkdir(WORK)
except OSError:
    pass
for i in range(BOOTS):
    results.append(one(i))
failed = [r for r in results if r["bad"]]
mix = {}
for r in results:
    for key in ("kind", "chip", "fault", "reset", "record"):
        mix[key + ":" + r[key]] = mix.get(key + ":" + r[key], 0) + 1
closed = [r["closed"] for r in results if r["closed"] is not None]
print(json.dumps({"boots": len(results), "failed": len(failed), "failures": failed[:10], "mix": mix,
                  "closed_boots": len(closed), "first_close_tick_max": max(closed) if closed else None,
                  "closed_with_fault": len([r for r in results if r["closed"] is not None and r["fault"] != "none"])}))

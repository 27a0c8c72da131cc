# Runs under MicroPython: the BQ76952 bring-up (bms/drivers/bq76952_setup.py)
# against the chip model from its reset state, and drivers that skip or
# reorder a step, each of which one of the model's rules must catch.
#   micropython mp_bq_bringup_check.py FIRMWARE_DIR CHIPS_DIR BOARD_CONFIGS CASE [ARG]
import sys
import json
sys.path.insert(0, sys.argv[1])
sys.path.insert(0, sys.argv[2])
BOARDS = sys.argv[3]
CASE = sys.argv[4]
ARG = sys.argv[5] if len(sys.argv) > 5 else ""

from bms import kernels  # noqa: E402
from bms.config import Config  # noqa: E402
from bms import faults as F  # noqa: E402
from bms import signals as S  # noqa: E402
from bms.drivers.bq76952 import BQ76952  # noqa: E402
from bms.drivers import bq76952_setup as SU  # noqa: E402
from chips.bench import Bench  # noqa: E402
from chips.bq76952 import BQ76952Model  # noqa: E402

OUT = {}


def board(name):
    with open(BOARDS + "/" + name) as f:
        return json.load(f)


def cfg16():
    return Config({"cells": 16, "temps": 4, "capacity_mah": 100000, "chemistry": "LFP"})


class Rig:
    def __init__(self, addr=8):
        self.b = Bench()
        self.bus = self.b.i2c(0)
        self.afe = board("pico_bq76952.json")["afe"]
        self.chip = BQ76952Model(8, self.b.clock, self.afe["shunt_uohm"])
        self.bus.attach(8, self.chip)
        self.drv = BQ76952(self.bus, kernels, self.b.clock, addr)
        self.table = SU.settings(self.afe, cfg16())
        self.chip.set_cells_mv([3300 + i for i in range(16)])
        self.chip.set_stack(5300, 5300, 5300, -2000)  # 20 A discharge


class NoCfgUpdate(SU.BringUp):
    """Writes the settings without entering CONFIG_UPDATE (and does not wait for it)."""

    def _sub(self, cmd):
        if cmd in (SU.SET_CFGUPDATE, SU.EXIT_CFGUPDATE):
            return 0
        return SU.BringUp._sub(self, cmd)

    def _wait_cfg(self, want):
        return 0


class ExitFirst(SU.BringUp):
    """Reordered: leaves CONFIG_UPDATE before it writes the settings."""

    def run(self):
        self._sub(SU.SET_CFGUPDATE)
        self._sub(SU.EXIT_CFGUPDATE)
        table = self.table
        self.table = []
        SU.BringUp.run(self)  # enter/exit with nothing in between
        self.table = table
        self.failed = None
        for addr, data, name in table:  # now outside CONFIG_UPDATE
            self._dm_write(addr, data)
        return self._readback()

    def _readback(self):
        rows = sorted(self.table)
        for addr, data, name in rows:
            n = self.drv.subcommand_read(addr, self.rd)
            if n < 32:
                return SU.ERR_CHIP
            if bytes(self.rd[:len(data)]) != data:
                self.failed = name
                return SU.ERR_CONFIG
        return 0


class BadChecksum(SU.BringUp):
    def _dm_write(self, addr, data):
        if self.crc:
            return SU.BringUp._dm_write(self, addr, data)
        s = (addr & 0xFF) + (addr >> 8) + sum(data)
        e = self._pwrite(0x3E, bytes((addr & 0xFF, addr >> 8)))
        e = e or self._pwrite(0x40, data)
        return e or self._pwrite(0x60, bytes(((~s + 1) & 0xFF, len(data) + 4)))  # off by one


class BadLength(SU.BringUp):
    def _dm_write(self, addr, data):
        s = (addr & 0xFF) + (addr >> 8) + sum(data)
        e = self._pwrite(0x3E, bytes((addr & 0xFF, addr >> 8)))
        e = e or self._pwrite(0x40, data)
        return e or self._pwrite(0x60, bytes(((~s) & 0xFF, len(data) + 2)))  # forgot the 4


class NoSwap(SU.BringUp):
    """Assumes the new Comm Type applies by itself on EXIT_CFGUPDATE."""

    def _sub(self, cmd):
        if cmd == SU.SWAP_COMM_MODE:
            return 0
        return SU.BringUp._sub(self, cmd)


class AssumesCrc(SU.BringUp):
    """Talks CRC to a factory-fresh chip (skips the mode probe)."""

    def _probe(self):
        return 0


def result(r, bu, extra=None):
    c = r.chip
    o = {"err": bu.run() if extra is None else extra, "failed": bu.failed, "crc": c.crc, "cfgupdate": c.cfgupdate,
         "ignored": c.ignored, "otp": c.otp_writes, "da": c.dm_u1(0x9303)}
    return o


def case_rules():
    r = Rig()
    OUT["good"] = result(r, SU.BringUp(r.drv, r.table))
    e = r.drv.scan()
    OUT["good_scan"] = [e, r.drv.cc2, r.drv.stack_10mv, list(r.drv.cell_mv[:3])]
    for name, cls in (("no_cfgupdate", NoCfgUpdate), ("exit_first", ExitFirst), ("bad_checksum", BadChecksum),
                      ("bad_length", BadLength), ("no_swap", NoSwap), ("assumes_crc", AssumesCrc)):
        r = Rig()
        OUT[name] = result(r, cls(r.drv, r.table))
    # the board expects the chip at another address than the factory one
    r = Rig(addr=0x10)
    OUT["wrong_address"] = result(r, SU.BringUp(r.drv, r.table))
    # a chip that stayed powered through an MCU reset: already in CRC mode
    r = Rig()
    r.chip.configure(r.table)
    swaps = len([1 for n, _ in r.chip.subcommands if n == "SWAP_COMM_MODE"])
    OUT["configured"] = result(r, SU.BringUp(r.drv, r.table))
    OUT["configured_swaps"] = len([1 for n, _ in r.chip.subcommands if n == "SWAP_COMM_MODE"]) - swaps
    # half-configured: CRC on and some of the settings, others at defaults
    r = Rig()
    r.chip.configure([row for row in r.table if row[0] == SU.COMM_TYPE] + r.table[:5])
    OUT["half"] = result(r, SU.BringUp(r.drv, r.table))
    # a chip that drops one setting: the read-back catches it
    r = Rig()
    real = r.chip._dm_put

    def drop(a, data):
        if a != SU.VCELL_MODE:
            real(a, data)
    r.chip._dm_put = drop
    OUT["dropped"] = result(r, SU.BringUp(r.drv, r.table))
    # units: a table without DA Configuration leaves the factory 1 mA units
    r = Rig()
    OUT["no_units"] = result(r, SU.BringUp(r.drv, [row for row in r.table if row[0] != SU.DA_CONFIG]))
    r.drv.scan()
    OUT["no_units_cc2"] = r.drv.cc2


def case_pause():
    """Measurements pause in CONFIG_UPDATE (plain-mode reads of cell 1)."""
    r = Rig()
    buf = bytearray(2)
    r.bus.writeto_mem(8, 0x3E, bytes((0x90, 0x00)))  # SET_CFGUPDATE (no CRC: factory mode)
    r.chip.set_cells_mv([3456] + [3300] * 15)
    r.bus.readfrom_mem_into(8, 0x14, buf)
    during = buf[0] | buf[1] << 8
    r.bus.writeto_mem(8, 0x3E, bytes((0x92, 0x00)))  # EXIT_CFGUPDATE
    r.bus.readfrom_mem_into(8, 0x14, buf)
    OUT["pause"] = [during, buf[0] | buf[1] << 8]


def case_hal():
    """Through the board HAL and the app: a chip that does not answer at
    boot raises FE_CONFIG and nothing closes; one that answers later is
    brought up, scanned and the contactors may close."""
    from bms.board import build_hal
    from bms.app import App
    b = Bench()
    bd = board("pico_bq76952.json")
    chip = BQ76952Model(8, b.clock, 500)
    chip.set_cells_mv([3300] * 16)
    chip.set_stack(5280, 5280, 5280, 0)
    cfg = cfg16()
    # as on a board, where nothing else holds the bring-up's module: the
    # front end drops it once the chip is configured
    from bms.config import drop
    drop(("bms.drivers.bq76952_setup",))
    hal = build_hal(bd, cfg, kernels, b.machine, b.clock)
    OUT["setup_loaded"] = "bms.drivers.bq76952_setup" in sys.modules
    b.pin(18).v = 0
    app = App(cfg, hal, kernels)
    st = app.state
    now = 0
    outs = 0
    for k in range(40):  # 4 s without the chip on the bus
        b.clock.sleep_ms(100)
        app.tick(now)
        now += 100
        outs |= st.outputs
    OUT["silent"] = [st.sig[S.FE_CONFIG], st.fault_active[F.index("FE_CONFIG")], st.valid_scans, outs]
    b.i2c(0).attach(8, chip)
    for k in range(60):
        if k == 5:
            st.clear_req = 1  # the user clears the latched FE_CONFIG once the chip answers
        b.clock.sleep_ms(100)
        app.tick(now)
        now += 100
    OUT["active"] = [F.NAMES[i] for i in range(F.N_FAULTS) if st.fault_active[i]]
    OUT["cstate"] = st.contactor_state
    OUT["setup_dropped"] = "bms.drivers.bq76952_setup" not in sys.modules
    OUT["answered"] = [st.sig[S.FE_CONFIG], st.fault_active[F.index("FE_CONFIG")], st.valid_scans > 0, st.outputs,
                       chip.crc, chip.otp_writes]


globals()["case_" + CASE]()
print(json.dumps(OUT))

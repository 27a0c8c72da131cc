# Runs under MicroPython: the front-end drivers, the board HAL and the
# board start-up against the chip models (host_tools/mp/chips).
#   micropython mp_hw_check.py FIRMWARE_DIR CHIPS_DIR BOARD_CONFIGS CASE [ARG]
# Prints one JSON line of what happened.
import sys
import json
import micropython
sys.path.insert(0, sys.argv[1])
sys.path.insert(0, sys.argv[2])
BOARDS = sys.argv[3]
CASE = sys.argv[4]
ARG = sys.argv[5] if len(sys.argv) > 5 else ""

from bms import kernels  # noqa: E402
from bms.config import Config  # noqa: E402
from bms.app import App  # noqa: E402
from bms.board import build_hal, BoardError  # noqa: E402
from bms import faults as F  # noqa: E402
from bms import signals as S  # noqa: E402
from bms.drivers import ERR_BUS, ERR_CRC  # noqa: E402
from chips.bench import Bench, ntc_counts, ntc_uv  # noqa: E402
from chips.bq76952 import BQ76952Model  # noqa: E402
from chips.ltc681x import LtcChain  # noqa: E402

OUT = {}


def board(name):
    with open(BOARDS + "/" + name) as f:
        return json.load(f)


def cfg_for(cells, temps):
    return Config({"cells": cells, "temps": temps, "capacity_mah": 100000, "chemistry": "LFP"})


class Rig:
    """A board on the bench: chip model, pins, the HAL built from the
    board file exactly as on the board."""

    def __init__(self, name, cells, temps):
        self.b = Bench()
        self.board = board(name)
        self.cfg = cfg_for(cells, temps)
        a = self.board["afe"]
        self.kind = a["type"]
        if self.kind == "bq76952":
            self.chip = BQ76952Model(8, self.b.clock, a.get("shunt_uohm", 1000))
            self.bus = self.b.i2c(a["i2c"]["id"])
            self.bus.attach(8, self.chip)
        elif self.kind.startswith("ltc"):
            self.chip = LtcChain(self.b.clock, a["modules"], 12 if self.kind == "ltc6811" else 18)
            self.b.spi(a["spi"]["id"]).chain = self.chip
            self.b.pin(a["cs"]).listener = self.chip.cs
        else:
            self.chip = None
            self.mux_uv = [0] * (1 << len(a["select"]))
            self.b.adc(a["adc_pin"]).source = self._mux
        self.hal = build_hal(self.board, self.cfg, kernels, self.b.machine, self.b.clock)
        self.set_analog("coolant_in", ntc_uv(ntc_counts(25)))
        self.set_analog("coolant_out", ntc_uv(ntc_counts(26)))
        self.set_input("enable", 1)

    def _mux(self):
        ch = 0
        sel = self.board["afe"]["select"]
        for i in range(len(sel)):
            ch |= self.b.pin(sel[i]).v << i
        return self.mux_uv[ch]

    def set_analog(self, name, uv):
        spec = self.board["analog"].get(name)
        if spec is None:
            return
        if "mux" in spec:
            self.mux_uv[spec["mux"]] = uv
        else:
            self.b.adc(spec["pin"]).uv = uv

    def set_input(self, name, on):
        spec = self.board["contactors"].get(name)
        if spec is not None:
            self.b.pin(spec["pin"]).v = (1 if on else 0) ^ (1 if spec.get("active_low") else 0)

    def cells(self, mv):
        """True cell voltages (mV) into the model."""
        if self.kind == "bq76952":
            full = [0] * 16
            ch = self.board["afe"]["cell_channels"]
            for i in range(len(mv)):
                full[ch[i] - 1] = mv[i]
            self.chip.set_cells_mv(full)
            s = sum(mv) // 10
            self.chip.set_stack(s, s, s, 0)
            for j, name in enumerate(self.board["afe"]["temps"]):
                from bms.drivers.bq76952 import TEMP_NAMES
                self.chip.set_ts_counts(TEMP_NAMES.index(name), ntc_counts(25 + j))
        elif self.chip is not None:
            used = self.board["afe"]["cells_per_module"]
            for i in range(len(mv)):
                self.chip.dev[i // used].cell_in[i % used] = 10 * mv[i]
            for j, (m, g) in enumerate(self.board["afe"]["temps"]):
                self.chip.dev[m].gpio_in[g - 1] = ntc_counts(25 + j) * 30000 // 4095
            cur = self.board["analog"]["current"]
            self.set_analog("current", (2 * cur["zero_count"] + 1) * 3300000 // (2 * 65536))
            self.set_analog("bus", sum(mv) * 1000 * 3300000 // (65536 * self.board["analog"]["bus"]["uv_per_count"]))
        else:
            a = self.board["afe"]
            tap = 0
            for i in range(len(mv)):
                tap += mv[i]
                v = tap if a.get("mode", "taps") == "taps" else mv[i]
                self.mux_uv[a["cell_channels"][i]] = v * 1000 * 3300000 // (65536 * a["gain_uv"][i])
            for j in range(len(a["temp_channels"])):
                self.mux_uv[a["temp_channels"][j]] = ntc_uv(ntc_counts(25 + j))
            cur = self.board["analog"]["current"]
            self.set_analog("current", (2 * cur["zero_count"] + 1) * 3300000 // (2 * 65536))
            self.set_analog("bus", sum(mv) * 1000 * 3300000 // (65536 * self.board["analog"]["bus"]["uv_per_count"]))


def fault(st, name):
    return st.fault_active[F.index(name)]


def run_ticks(app, rig, n, now, on_tick=None):
    for k in range(n):
        if on_tick:
            on_tick(k)
        rig.b.clock.sleep_ms(100)
        app.tick(now)
        now += 100
    return now


# -- cases -----------------------------------------------------------------------
def case_bq():
    from bms.drivers.bq76952 import BQ76952
    from bms.drivers.bq76952_setup import BringUp, settings
    b = Bench()
    bus = b.i2c(0)
    m = BQ76952Model(8, b.clock, 500)
    bus.attach(8, m)
    d = BQ76952(bus, kernels, b.clock)
    afe = {"cell_channels": list(range(1, 17)), "temps": ["TS1"], "shunt_uohm": 500, "i2c": {"freq": 400000}}
    OUT["bringup"] = BringUp(d, settings(afe, cfg_for(16, 1))).run()
    mv = [3300 + 7 * i for i in range(16)]
    m.set_cells_mv(mv)
    m.set_stack(5316, 5310, 5300, -12345)
    m.safety[1] = 0x08  # Safety Status A: an over-voltage the chip saw itself
    m.set_ts_counts(4, ntc_counts(31.5))
    OUT["scan"] = d.scan()
    OUT["cells_ok"] = list(d.cell_mv) == mv
    OUT["stack"] = [d.stack_10mv, d.pack_10mv, d.ld_10mv, d.cc2]
    OUT["ts1_dk"] = d.temp_dk[4]
    OUT["safety"] = list(d.safety)
    OUT["device_number"] = d.device_number()
    OUT["balance"] = d.set_balance(0x8005)
    OUT["cb_mask"] = m.cb_mask
    OUT["fets_off"] = d.fets_off()
    OUT["fets_after_off"] = [m.fets_allowed, d.read_status(), d.fets]
    d.fets_on()
    d.read_status()
    OUT["fets_after_on"] = d.fets
    m.corrupt = 1
    OUT["corrupt"] = d.scan()
    OUT["after_corrupt"] = d.scan()
    bus.fail = 1
    OUT["timeout"] = d.scan()
    bus.devices = {}
    OUT["nack"] = d.scan()
    bus.attach(8, m)
    # a write with a wrong CRC is discarded by the chip model
    before = m.cb_mask
    m.write(0x3E, bytearray([0x83, 0x00, 0x00, 0x00]))
    OUT["bad_crc_write"] = [m.crc_errors, m.cb_mask == before]
    OUT["errors"] = d.errors


def case_hal_stale():
    """ARG: board file. Transient CRC errors are retried; a persistent bus
    failure makes the scans stale until STALE_MEASUREMENT trips."""
    name = ARG
    n, t = {"pico_bq76952.json": (16, 4), "esp32_2x_ltc6813.json": (36, 8)}[name]
    rig = Rig(name, n, t)
    rig.cells([3300 + (i % 5) for i in range(n)])
    app = App(rig.cfg, rig.hal, kernels)
    st = app.state
    now = run_ticks(app, rig, 20, 1000)
    OUT["fresh_before"] = st.fresh
    OUT["stale_before"] = fault(st, "STALE_MEASUREMENT")
    chip = rig.chip

    def transient(k):
        chip.corrupt = 1  # one bad frame per tick: the retry recovers

    now = run_ticks(app, rig, 10, now, transient)
    OUT["transient"] = [st.fresh, rig.hal.bus_errors, rig.hal.stale_scans, fault(st, "STALE_MEASUREMENT")]
    trip = None

    def broken(k):
        if rig.kind == "bq76952":
            rig.bus.fail = 1000000
        else:
            chip.corrupt = 1000000

    for k in range(30):
        broken(k)
        rig.b.clock.sleep_ms(100)
        app.tick(now)
        if trip is None and fault(st, "STALE_MEASUREMENT"):
            trip = k
        now += 100
    OUT["trip_tick"] = trip
    OUT["fresh_after"] = st.fresh
    OUT["outputs_after"] = st.outputs
    OUT["stale_scans"] = rig.hal.stale_scans
    OUT["internal_error"] = st.internal_error


def case_ltc():
    from bms.drivers.ltc681x import LTC681x
    b = Bench()
    ch = LtcChain(b.clock, 2, 18)
    spi = b.spi(1)
    spi.chain = ch
    cs = b.pin(5)
    cs.listener = ch.cs
    cs.value(1)
    for i, dv in enumerate(ch.dev):
        dv.cell_in = [30000 + 100 * k + 10 * i for k in range(18)]
        dv.gpio_in = [10000 + 1000 * g + i for g in range(9)]
    d = LTC681x(spi, cs, kernels, b.clock, 2, 18)
    b.clock.sleep_ms(3000)  # asleep: measure() wakes the chain itself
    OUT["measure"] = d.measure()
    OUT["cells_ok"] = list(d.cells) == ch.dev[0].cell_in + ch.dev[1].cell_in
    OUT["aux"] = list(d.aux)[:12]
    OUT["sc"] = list(d.sc)
    # conversion time: a driver that does not wait reads the old registers
    for dv in ch.dev:
        dv.cell_in = [v + 5 for v in dv.cell_in]
    hasty = LTC681x(spi, cs, kernels, b.clock, 2, 18, conv_cell_us=50, conv_aux_us=50)
    hasty.measure()
    OUT["hasty_stale"] = list(hasty.cells)[:3]
    OUT["patient"] = [d.measure(), list(d.cells)[:3]]
    # PEC error on a read
    ch.corrupt = 1
    OUT["pec"] = d.measure()
    OUT["pec_then"] = d.measure()
    ch.silent = True
    OUT["silent"] = d.measure()
    ch.silent = False
    # a command with a bad PEC is ignored by the chain
    bad = bytearray(d.c_adcvsc)
    bad[3] ^= 1
    d.wake_idle()
    n_before = ch.pec_errors
    cs.value(0)
    spi.write(bad)
    cs.value(1)
    OUT["bad_cmd_ignored"] = ch.pec_errors == n_before + 1
    # balancing: DCC1..18 per module, the farthest device's data first
    d.dcc[0] = 0x20001  # cells 1 and 18 of module 0
    d.dcc[1] = 0x01002  # cells 2 and 13 of module 1
    d.wakeup()
    OUT["cfg"] = d.write_config()
    OUT["dcc"] = ch.balancing()
    b.clock.sleep_ms(2500)  # no command for longer than the chip's watchdog
    OUT["dcc_after_watchdog"] = ch.balancing()
    OUT["balance_off"] = [d.balance_off(), ch.balancing()]
    # open wire: each pin position of module 1
    res = {}
    for p in (0, 1, 9, 17, 18):
        ch.dev[1].open_pin = p
        e = d.open_wire()
        res[str(p)] = [e, d.n_open, [i for i in range(len(d.open_pins)) if d.open_pins[i]]]
    ch.dev[1].open_pin = -1
    OUT["open_wire"] = res
    OUT["healthy"] = [d.open_wire(), d.n_open]


def case_ltc_app_open_wire():
    rig = Rig("esp32_2x_ltc6813.json", 36, 8)
    rig.cells([3300 + (i % 7) for i in range(36)])
    app = App(rig.cfg, rig.hal, kernels)
    st = app.state
    now = run_ticks(app, rig, 20, 1000)
    OUT["before"] = [fault(st, "VOLTAGE_CHANNEL"), st.sig[16]]
    rig.chip.dev[1].open_pin = 7  # C7 of the upper module: cells 25 and 26 of the pack
    fe = rig.hal.fe
    fe.ow_count = 1  # no check due: the plain conversion cannot see the open wire
    now = run_ticks(app, rig, 1, now)
    OUT["plain_scan"] = [st.raw_cells[24], st.raw_cells[25], st.sig[16]]
    fe.ow_count = 0  # the next scan runs the check (normally every open_wire_every_ms)
    now = run_ticks(app, rig, 1, now)
    OUT["raw_after"] = [st.raw_cells[24], st.raw_cells[25]]
    now = run_ticks(app, rig, 10, now)
    OUT["after"] = [fault(st, "VOLTAGE_CHANNEL"), st.sig[16], st.outputs]


def case_adc():
    rig = Rig("pico_adc_4s.json", 4, 2)
    mv = [3301, 3322, 3290, 3345]
    rig.cells(mv)
    st = App(rig.cfg, rig.hal, kernels).state
    rig.hal.read(st)
    OUT["fresh"] = st.fresh
    OUT["raw_cells"] = list(st.raw_cells)
    OUT["raw_temps"] = list(st.raw_temps)
    OUT["want_temps"] = [ntc_counts(25), ntc_counts(26)]
    OUT["raw_pack"] = st.raw_pack
    OUT["raw_bus"] = st.raw_bus
    OUT["raw_current"] = st.raw_current
    OUT["cool"] = list(st.raw_cool)
    # calibration: a channel reading 1 % high is corrected by its gain
    from bms.drivers.direct_adc import DirectCells
    cal = DirectCells(rig.hal.fe.mux, [0, 1, 2, 3], [101, 151, 217, 307], [0, 0, 0, 0])
    rig.mux_uv[0] = rig.mux_uv[0] * 101 // 100  # channel 0's divider reads 1 % high
    from array import array
    out = array("H", [0] * 4)
    cal.read(out)
    uncal = out[0]
    cal2 = DirectCells(rig.hal.fe.mux, [0, 1, 2, 3], [100, 151, 217, 307], [0, 0, 0, 0])
    cal2.read(out)
    OUT["calibration"] = [uncal, out[0]]
    # bleed outputs follow the balance mask
    st.balance_mask[1] = 1
    st.balance_mask[3] = 1
    rig.hal.write(st)
    OUT["bleed"] = [rig.b.pin(p).v for p in rig.board["afe"]["bleed"]]
    rig.hal.safe()
    OUT["bleed_safe"] = [rig.b.pin(p).v for p in rig.board["afe"]["bleed"]]


def case_io():
    from bms.drivers.pump import Pump
    from bms.drivers.contactor_io import ContactorIO
    b = Bench()
    M = b.machine
    pwm = M.PWM(M.Pin(16))
    tach = M.Pin(17, M.Pin.IN)
    p = Pump(pwm, tach, M.Pin.IRQ_FALLING)
    p.set_duty_pm(500)
    OUT["duty"] = pwm.duty
    micropython.heap_lock()
    try:
        tach.pulse(70000)  # wraps at 16 bits
        err = None
    except MemoryError:
        err = "MemoryError"
    micropython.heap_unlock()
    OUT["irq_alloc"] = err
    OUT["pulses"] = p.pulses()
    outs = [(M.Pin(10, M.Pin.OUT), 0), (M.Pin(11, M.Pin.OUT), 1), (M.Pin(12, M.Pin.OUT), 0)]
    ins = [(M.Pin(13, M.Pin.IN), 1), (None, 0), (M.Pin(15, M.Pin.IN), 0), (M.Pin(18, M.Pin.IN), 1), (None, 0)]
    io = ContactorIO(outs, ins)
    OUT["off_levels"] = [b.pin(10).v, b.pin(11).v, b.pin(12).v]
    io.write(1 | 2)
    OUT["pre_levels"] = [b.pin(10).v, b.pin(11).v, b.pin(12).v]
    b.pin(13).v = 0  # active low: NEG feedback closed
    b.pin(15).v = 1
    b.pin(18).v = 1  # enable (active low) off
    OUT["inputs"] = io.read()
    io.off()
    OUT["safe_levels"] = [b.pin(10).v, b.pin(11).v, b.pin(12).v]


class ReplayI2C:
    """Serves the last response the model gave for each register, without
    allocating, so heap_lock sees only the firmware."""

    def __init__(self, real):
        self.real = real
        self.rec = {}
        self.replay = False

    def readfrom_mem_into(self, addr, mem, buf):
        if not self.replay:
            self.real.readfrom_mem_into(addr, mem, buf)
            self.rec[mem] = bytearray(buf)
            return
        src = self.rec[mem]
        for i in range(len(buf)):
            buf[i] = src[i]

    def writeto_mem(self, addr, mem, buf):
        if not self.replay:
            self.real.writeto_mem(addr, mem, buf)


class ReplaySPI:
    def __init__(self, real):
        self.real = real
        self.rec = {}
        self.key = 0
        self.replay = False

    def write(self, buf):
        if len(buf) == 4:
            self.key = (buf[0] << 8) | buf[1]
        if not self.replay:
            self.real.write(buf)

    def readinto(self, buf, w=0):
        if not self.replay:
            self.real.readinto(buf, w)
            self.rec[self.key] = bytearray(buf)
            return
        src = self.rec[self.key]
        for i in range(len(buf)):
            buf[i] = src[i]


def case_lock():
    """The whole tick (board HAL read, stages, HAL write) under heap_lock
    for a front end; ARG: board file."""
    name = ARG
    n, t = {"pico_bq76952.json": (16, 4), "esp32_2x_ltc6813.json": (36, 8), "pico_adc_4s.json": (4, 2)}[name]
    rig = Rig(name, n, t)
    rig.cells([3300 + 3 * (i % 5) for i in range(n)])
    fe = rig.hal.fe
    if rig.kind == "bq76952":
        rp = ReplayI2C(fe.drv.i2c)
        fe.drv.i2c = rp
    elif rig.chip is not None:
        rp = ReplaySPI(fe.drv.spi)
        fe.drv.spi = rp
        fe.ow_every = 3  # open-wire checks inside the locked run too
    else:
        rp = None
    app = App(rig.cfg, rig.hal, kernels)
    st = app.state
    # feedback follows the outputs (contactors that work), bus = pack
    con = rig.board["contactors"]

    def mirror():
        for name, bit in (("fb_neg", 1), ("fb_pre", 2), ("fb_pos", 4)):
            spec = con.get(name)
            if spec is not None:
                rig.b.pin(spec["pin"]).v = (1 if st.outputs & bit else 0) ^ (1 if spec.get("active_low") else 0)

    now = 1000
    for k in range(40):  # warm-up with the live models (records their answers)
        mirror()
        rig.b.clock.sleep_ms(100)
        app.tick(now)
        now += 100
    if rp is not None:
        rp.replay = True
        if rig.kind.startswith("ltc"):
            rig.b.pin(rig.board["afe"]["cs"]).listener = None  # the chain model no longer sees CS
    err = None
    ticks = 0
    micropython.heap_lock()
    try:
        for k in range(300):
            rig.b.clock.sleep_ms(100)
            app.tick(now)
            now += 100
            ticks += 1
    except MemoryError:
        err = "MemoryError"
    micropython.heap_unlock()
    OUT["error"] = err
    OUT["ticks"] = ticks
    OUT["internal_error"] = st.internal_error
    OUT["fresh"] = st.fresh
    OUT["last_error"] = repr(getattr(app, "last_error", None))
    if getattr(app, "last_error", None) is not None:
        sys.print_exception(app.last_error)  # where the allocation happened
    OUT["valid_scans"] = st.valid_scans
    # the same lock catches an allocation (the harness can fail)
    micropython.heap_lock()
    try:
        junk = [now]
        caught = False
    except MemoryError:
        caught = True
    micropython.heap_unlock()
    OUT["lock_catches"] = caught


class QuietPort:
    """The console's port with nobody typing; keeps what it is sent."""

    def __init__(self):
        self.sent = 0

    def read_into(self, buf, n):
        return 0

    def write(self, text):
        self.sent += 1


def case_board_start():
    """The firmware's start-up on a board: board.json ("hal": "board") and
    the stored config.json from the filesystem, the reset cause, the
    watchdog, the runner with the console between ticks."""
    import os
    from bms.persist.config_store import ConfigStore
    from bms import boot
    root = ARG
    ConfigStore(root, validate=Config).save({"cells": 16, "temps": 4, "capacity_mah": 100000, "chemistry": "LFP"})
    b = Bench()
    chip = BQ76952Model(8, b.clock, 500)
    b.i2c(0).attach(8, chip)
    chip.set_cells_mv([3300] * 16)
    chip.set_stack(5280, 5280, 5280, 0)
    b.reset_cause = b.machine.WDT_RESET
    b.pin(18).v = 0  # enable (active low) on
    from chips.mcp2515 import attach
    can_chip, can_bus, peer = attach(b, board("pico_bq76952.json")["can"])
    port = QuietPort()
    # as on a board, where nothing else holds the boot-only modules (the
    # board file's parser, the BQ76952 bring-up, the config schema)
    from bms.config import drop
    boot_only = ("bms.board", "bms.drivers.bq76952_setup", "bms.config_schema", "bms.chemistry")
    drop(boot_only)
    runner = boot.board_main(root, b.machine, b.clock, port, 30)
    OUT["can_ids"] = sorted(set(i for _, i, _ in peer.rx))
    OUT["can_bitrate"] = can_chip.bitrate()
    OUT["boot_only_resident"] = [m for m in boot_only if m in sys.modules]
    st = runner.app.app.state
    OUT["ticks"] = runner.ticks
    OUT["feeds"] = b.wdt.feeds
    OUT["wdt_timeout"] = b.wdt.timeout
    OUT["watchdog_reset_fault"] = fault(st, "WATCHDOG_RESET")
    OUT["fresh"] = st.fresh
    OUT["internal_error"] = st.internal_error
    OUT["console_lines_sent"] = port.sent
    OUT["files"] = sorted(os.listdir(root))


def case_board_errors():
    """Firmware-side validation of a board dict: the field is named."""
    cfg = cfg_for(16, 4)
    msgs = []
    good = board("pico_bq76952.json")
    variants = []
    x = json.loads(json.dumps(good))
    x["afe"]["i2c"]["sda"] = 5
    variants.append(x)
    x = json.loads(json.dumps(good))
    x["afe"]["temps"] = ["TS1", "TS2", "TS3"]
    variants.append(x)
    x = json.loads(json.dumps(good))
    x["afe"]["type"] = "bq9999"
    variants.append(x)
    x = json.loads(json.dumps(good))
    del x["analog"]["coolant_in"]
    variants.append(x)
    x = json.loads(json.dumps(good))
    x["afe"]["cell_channels"][3] = 17
    variants.append(x)
    for v in variants:
        b = Bench()
        try:
            build_hal(v, cfg, kernels, b.machine, b.clock)
            msgs.append(None)
        except BoardError as e:
            msgs.append(str(e))
    OUT["messages"] = msgs


def case_fets():
    """BQ76952 FET mode: the chip's FETs follow the positive contactor
    command, DSG stands in for its feedback, safe() switches them off."""
    bd = board("pico_bq76952.json")
    bd["afe"]["fets"] = True
    b = Bench()
    chip = BQ76952Model(8, b.clock, 500)
    b.i2c(0).attach(8, chip)
    chip.set_cells_mv([3300] * 16)
    hal = build_hal(bd, cfg_for(16, 4), kernels, b.machine, b.clock)
    for p in (13, 14, 15):
        b.pin(p).v = 1  # aux contacts (active low) open: only the FET status can say "closed"
    st = App(cfg_for(16, 4), hal, kernels).state
    hal.read(st)  # the first scan brings the chip up
    st.outputs = 1 | 4
    hal.write(st)
    hal.read(st)
    OUT["on"] = [chip.fet_status, st.inputs & 4]
    st.outputs = 0
    hal.write(st)
    hal.read(st)
    OUT["off"] = [chip.fet_status, st.inputs & 4]
    st.outputs = 5
    hal.write(st)
    hal.safe()
    OUT["safe"] = [chip.fet_status, chip.cb_mask, b.pin(12).v, b.pin(10).v]
    OUT["log"] = [n for n, _ in chip.subcommands]


def case_build_all():
    """Every board file builds its HAL on the bench (its own cell count)."""
    import os
    res = {}
    for name in sorted(os.listdir(BOARDS)):
        if not name.endswith(".json") or name in ("schema.json", "sim.json"):
            continue
        bd = board(name)
        a = bd["afe"]
        if a["type"] == "bq76952":
            n, t = len(a["cell_channels"]), len(a["temps"])
        elif a["type"].startswith("ltc"):
            n, t = a["modules"] * a["cells_per_module"], len(a["temps"])
        else:
            n, t = len(a["cell_channels"]), len(a["temp_channels"])
        b = Bench()
        try:
            hal = build_hal(bd, cfg_for(n, t), kernels, b.machine, b.clock)
            res[name] = [n, t, type(hal.fe).__name__, hal.led is not None]
        except Exception as e:
            res[name] = repr(e)
    OUT["boards"] = res


def case_short_pulse():
    """A short through the load between two scans: gone before the next
    scan, so the firmware's SHORT_CIRCUIT row cannot see it; the BQ76952's
    own SCD comparator (programmed at boot just beyond that row) does, and
    its Safety Status becomes FE_SCD, which opens the contactors."""
    rig = Rig("pico_bq76952.json", 16, 4)
    for n in ("fb_neg", "fb_pre", "fb_pos"):
        rig.set_input(n, 0)  # auxiliary contacts open (the contactors are, at boot)
    app = App(rig.cfg, rig.hal, kernels)
    st = app.state

    def wiggle(k):
        rig.cells([3300 + ((i + k) % 5) for i in range(16)])
    now = run_ticks(app, rig, 40, 1000, wiggle)
    OUT["before"] = [st.outputs, fault(st, "FE_SCD"), rig.chip.fet_status]
    sc_10ma = rig.cfg.fault_trip[F.index("SHORT_CIRCUIT")] // 10
    # too short for the chip's SCD delay (~195 us): nothing
    rig.chip.pulse_current(-3 * sc_10ma, 100)
    now = run_ticks(app, rig, 3, now, wiggle)
    OUT["too_short"] = [st.outputs, fault(st, "FE_SCD"), rig.chip.safety[1]]
    # 2 ms at three times the firmware's short-circuit trip, between two scans
    rig.chip.pulse_current(-3 * sc_10ma, 2000)
    now = run_ticks(app, rig, 3, now, wiggle)
    OUT["after"] = [st.outputs, fault(st, "FE_SCD"), fault(st, "SHORT_CIRCUIT"), rig.chip.safety[1], rig.chip.fet_status & 4,
                    st.sig[S.DISCHARGE_MA]]


def case_ltc6811_sc():
    """LTC6811 (12 channels): sum of cells at 20 x 100 uV; the waits cover
    the datasheet conversion times; DCC paused during a DCP = 0 conversion."""
    from bms.drivers.ltc681x import LTC681x
    b = Bench()
    chain = LtcChain(b.clock, 1, 12)
    b.spi(0).chain = chain
    cs = b.pin(5)
    cs.value(1)  # idle high, as the board HAL drives it
    cs.listener = chain.cs
    chain.dev[0].cell_in = [33000 + 10 * i for i in range(12)]
    d = LTC681x(b.spi(0), cs, kernels, b.clock, 1, 12)
    OUT["waits"] = [d.conv_cell_us, d.conv_aux_us]
    OUT["measure"] = d.measure()
    OUT["sc_mv"] = d.sc[0] * d.sc_scale // 10  # mV
    OUT["true_mv"] = sum(chain.dev[0].cell_in) // 10
    d.dcc[0] = 0x005
    d.wakeup()
    d.write_config()
    before = chain.balancing()[0]
    d._send(d.c_adcvsc)
    during = chain.balancing()[0]
    b.clock.sleep_us(d.conv_cell_us)
    OUT["dcc"] = [before, during, chain.balancing()[0]]


globals()["case_" + CASE]()
print(json.dumps(OUT))

# Builds a board's HAL from its board configuration (board.json: pins,
# buses, front end) and the validated pack configuration. `machine` and the
# clock are passed in, never imported here, so the same code builds a HAL
# on chip models under the unix port. The host validates board files
# against board_configs/schema.json (host_tools/boardcfg.py); this side
# checks again what it needs, because a board's filesystem can hold
# anything: a bad entry raises BoardError naming the field and nothing is
# built.
from bms.hal.board import BoardHal, AnalogIn, NTC, CURRENT, VOLTAGE


class BoardError(ValueError):
    pass


def _err(path, msg):
    raise BoardError("board." + path + ": " + msg)


def _get(d, key, path, kind, default=None, required=True):
    if key not in d:
        if required:
            _err(path + key, "missing")
        return default
    v = d[key]
    if kind == "int" and (type(v) is not int or v is True or v is False):
        _err(path + key, "expected an integer, got " + repr(v))
    if kind == "pin" and not ((type(v) is int and v >= 0 and v is not True and v is not False) or isinstance(v, str)):
        _err(path + key, "expected a pin number or name, got " + repr(v))
    if kind == "dict" and not isinstance(v, dict):
        _err(path + key, "expected an object, got " + repr(v))
    if kind == "list" and not isinstance(v, list):
        _err(path + key, "expected a list, got " + repr(v))
    if kind == "bool" and v is not True and v is not False:
        _err(path + key, "expected true or false, got " + repr(v))
    if kind == "str" and not isinstance(v, str):
        _err(path + key, "expected a string, got " + repr(v))
    return v


class Builder:
    def __init__(self, machine, clock, kernels):
        self.machine = machine
        self.clock = clock
        self.kernels = kernels
        self.pins_used = {}

    def _claim(self, pin, path):
        if pin in self.pins_used:
            _err(path, "pin %r is already used by board.%s" % (pin, self.pins_used[pin]))
        self.pins_used[pin] = path

    def out_pin(self, d, path):
        """{"pin": P, "active_low": bool} -> (Pin, active_low), driven
        inactive from the moment it exists."""
        M = self.machine
        p = _get(d, "pin", path + ".", "pin")
        low = 1 if _get(d, "active_low", path + ".", "bool", False, False) else 0
        self._claim(p, path)
        return M.Pin(p, M.Pin.OUT, value=low), low

    def in_pin(self, d, path):
        M = self.machine
        p = _get(d, "pin", path + ".", "pin")
        low = 1 if _get(d, "active_low", path + ".", "bool", False, False) else 0
        pull = _get(d, "pull", path + ".", "str", None, False)
        if pull not in (None, "up", "down"):
            _err(path + ".pull", "expected \"up\" or \"down\", got " + repr(pull))
        self._claim(p, path)
        pl = None if pull is None else (M.Pin.PULL_UP if pull == "up" else M.Pin.PULL_DOWN)
        return M.Pin(p, M.Pin.IN, pl), low

    def adc(self, pin, path, atten):
        M = self.machine
        self._claim(pin, path)
        if atten:
            return M.ADC(M.Pin(pin), atten=getattr(M.ADC, "ATTN_11DB"))
        return M.ADC(M.Pin(pin))


def build_hal(board, cfg, kernels, machine, clock):
    """board: the board configuration (dict from board.json); cfg: the
    pack's bms.config.Config. Returns a BoardHal."""
    if not isinstance(board, dict):
        raise BoardError("board: expected an object, got " + repr(type(board)))
    b = Builder(machine, clock, kernels)
    mcu = _get(board, "mcu", "", "str")
    if mcu not in ("rp2040", "esp32"):
        _err("mcu", "expected \"rp2040\" or \"esp32\", got " + repr(mcu))
    atten = mcu == "esp32"  # ESP32 ADC: 11 dB attenuation for a ~0-3.1 V range
    afe = _get(board, "afe", "", "dict")
    kind = _get(afe, "type", "afe.", "str")
    mux = None
    if kind == "bq76952":
        fe = _bq76952(b, afe, cfg)
    elif kind in ("ltc6811", "ltc6813"):
        fe = _ltc681x(b, afe, cfg, kind)
    elif kind == "direct_adc":
        fe, mux = _direct_adc(b, afe, cfg, atten)
    else:
        _err("afe.type", "expected bq76952, ltc6811, ltc6813 or direct_adc, got " + repr(kind))
    analog = _get(board, "analog", "", "dict")
    ins = {}
    for name, k, need in (("coolant_in", NTC, True), ("coolant_out", NTC, True),
                          ("current", CURRENT, "current" not in fe.provides),
                          ("pack", VOLTAGE, "pack" not in fe.provides),
                          ("bus", VOLTAGE, "bus" not in fe.provides)):
        spec = _get(analog, name, "analog.", "dict", None, need)
        if spec is None:
            continue
        path = "analog." + name
        if "mux" in spec:
            if mux is None:
                _err(path + ".mux", "this front end has no multiplexer; use \"pin\"")
            src = dict(mux=mux, ch=_get(spec, "mux", path + ".", "int"))
        else:
            src = dict(adc=b.adc(_get(spec, "pin", path + ".", "pin"), path, atten))
        if k == CURRENT:
            zero = _get(spec, "zero_count", path + ".", "int")
            gain = _get(spec, "ma_per_count_q8", path + ".", "int")
            if not 0 < gain < 16384:
                _err(path + ".ma_per_count_q8", "%d outside 1..16383" % gain)
        elif k == VOLTAGE:
            zero = 0
            gain = _get(spec, "uv_per_count", path + ".", "int")
            if not 0 < gain < 16384:
                _err(path + ".uv_per_count", "%d outside 1..16383" % gain)
        else:
            zero = gain = 0
        ins[name] = AnalogIn(k, zero=zero, gain=gain, adc_max=cfg.adc_max,
                             samples=_get(board, "adc_samples", "", "int", 4, False), **src)
    con = _get(board, "contactors", "", "dict")
    from bms.drivers.contactor_io import ContactorIO
    outs = [b.out_pin(_get(con, n, "contactors.", "dict"), "contactors." + n) for n in ("neg", "pre", "pos")]
    inps = []
    for n in ("fb_neg", "fb_pre", "fb_pos", "enable", "charger"):
        spec = _get(con, n, "contactors.", "dict", None, False)
        inps.append(b.in_pin(spec, "contactors." + n) if spec is not None else (None, 0))
    io = ContactorIO(outs, inps)
    pump = None
    ps = _get(board, "pump", "", "dict", None, False)
    if ps is not None:
        from bms.drivers.pump import Pump
        M = machine
        pp = _get(ps, "pwm", "pump.", "pin")
        b._claim(pp, "pump.pwm")
        pwm = M.PWM(M.Pin(pp))
        pwm.freq(_get(ps, "freq_hz", "pump.", "int", 25000, False))
        tach = None
        if "tach" in ps:
            tach, _ = b.in_pin({"pin": ps["tach"], "pull": "up"}, "pump.tach")
        pump = Pump(pwm, tach, M.Pin.IRQ_FALLING)
    heater = None
    hs = _get(board, "heater", "", "dict", None, False)
    if hs is not None:
        heater = b.out_pin(hs, "heater")
    led = None
    if "status_led" in board:
        led, _ = b.out_pin({"pin": _get(board, "status_led", "", "pin")}, "status_led")
    retries = _get(board, "retries", "", "int", 2, False)
    if not 0 <= retries <= 5:
        _err("retries", "%d outside 0..5" % retries)
    return BoardHal(fe, io, ins["coolant_in"], ins["coolant_out"], ins.get("current"), ins.get("pack"),
                    ins.get("bus"), pump, heater, retries, led)


def _count(n, want, path, what):
    if n != want:
        _err(path, "%d %s, but the configuration has %d" % (n, what, want))


def _bq76952(b, afe, cfg):
    from bms.drivers.bq76952 import BQ76952, TEMP_NAMES, ADDR
    from bms.hal.frontends import Bq76952FrontEnd
    M = b.machine
    i2c = _get(afe, "i2c", "afe.", "dict")
    sda = _get(i2c, "sda", "afe.i2c.", "pin")
    scl = _get(i2c, "scl", "afe.i2c.", "pin")
    b._claim(sda, "afe.i2c.sda")
    b._claim(scl, "afe.i2c.scl")
    bus = M.I2C(_get(i2c, "id", "afe.i2c.", "int"), sda=M.Pin(sda), scl=M.Pin(scl),
                freq=_get(i2c, "freq", "afe.i2c.", "int", 100000, False))
    chans = _get(afe, "cell_channels", "afe.", "list")
    _count(len(chans), cfg.cells, "afe.cell_channels", "cell channels")
    for i in range(len(chans)):
        c = chans[i]
        if type(c) is not int or not 1 <= c <= 16:
            _err("afe.cell_channels[%d]" % i, "expected a VC input 1..16, got %r" % (c,))
    temps = _get(afe, "temps", "afe.", "list")
    _count(len(temps), cfg.temps, "afe.temps", "thermistor inputs")
    for i in range(len(temps)):
        if temps[i] not in TEMP_NAMES:
            _err("afe.temps[%d]" % i, "expected one of %s, got %r" % (", ".join(TEMP_NAMES), temps[i]))
    drv = BQ76952(bus, b.kernels, b.clock, ADDR)  # the factory address until the bring-up changes it
    import sys
    # boot-only code: the front end drops it once the chip is configured
    setup = "bms.drivers.bq76952_setup"
    loaded = setup not in sys.modules
    from bms.drivers.bq76952_setup import BringUp, SetupError, settings
    try:
        table = settings(afe, cfg)
    except SetupError as e:
        raise BoardError(str(e))
    addr = _get(afe, "address", "afe.", "int", ADDR, False)
    if addr != ADDR:
        _err("afe.address", "only the factory address 0x08 is supported (a second address needs the bring-up to move it)")
    fe = Bq76952FrontEnd(drv, cfg, chans, temps, _get(afe, "fets", "afe.", "bool", False, False), BringUp(drv, table))
    fe.setup_module = setup if loaded else None
    return fe


def _ltc681x(b, afe, cfg, kind):
    from bms.drivers.ltc681x import LTC681x
    from bms.hal.frontends import Ltc681xFrontEnd
    M = b.machine
    spi = _get(afe, "spi", "afe.", "dict")
    pins = {}
    for n in ("sck", "mosi", "miso"):
        pins[n] = _get(spi, n, "afe.spi.", "pin")
        b._claim(pins[n], "afe.spi." + n)
    cs_pin = _get(afe, "cs", "afe.", "pin")
    b._claim(cs_pin, "afe.cs")
    # SPI mode 3 (CPOL = 1, CPHA = 1), MSB first: datasheet "Timing Diagrams".
    bus = M.SPI(_get(spi, "id", "afe.spi.", "int"), baudrate=_get(spi, "baudrate", "afe.spi.", "int", 1000000, False),
                polarity=1, phase=1, sck=M.Pin(pins["sck"]), mosi=M.Pin(pins["mosi"]), miso=M.Pin(pins["miso"]))
    cs = M.Pin(cs_pin, M.Pin.OUT, value=1)
    modules = _get(afe, "modules", "afe.", "int")
    channels = 12 if kind == "ltc6811" else 18
    used = _get(afe, "cells_per_module", "afe.", "int")
    if not 1 <= modules <= 16:
        _err("afe.modules", "%d outside 1..16" % modules)
    if not 4 <= used <= channels:
        _err("afe.cells_per_module", "%d outside 4..%d for the %s" % (used, channels, kind))
    _count(modules * used, cfg.cells, "afe.cells_per_module", "cells (modules x cells_per_module)")
    temps = _get(afe, "temps", "afe.", "list")
    _count(len(temps), cfg.temps, "afe.temps", "thermistor inputs")
    tl = []
    for i in range(len(temps)):
        t = temps[i]
        if not (isinstance(t, list) and len(t) == 2 and type(t[0]) is int and type(t[1]) is int
                and 0 <= t[0] < modules and 1 <= t[1] <= (5 if channels == 12 else 9)):
            _err("afe.temps[%d]" % i, "expected [module 0..%d, gpio 1..%d], got %r" % (modules - 1, 5 if channels == 12 else 9, t))
        tl.append((t[0], t[1]))
    every_ms = _get(afe, "open_wire_every_ms", "afe.", "int", 10000, False)
    if not cfg.tick_ms <= every_ms <= 3600000:
        _err("afe.open_wire_every_ms", "%d outside %d..3600000" % (every_ms, cfg.tick_ms))
    drv = LTC681x(bus, cs, b.kernels, b.clock, modules, channels, used)
    return Ltc681xFrontEnd(drv, cfg, tl, every_ms // cfg.tick_ms)


def _direct_adc(b, afe, cfg, atten):
    from bms.drivers.direct_adc import AnalogMux, DirectCells
    from bms.hal.frontends import DirectAdcFrontEnd
    M = b.machine
    adc = b.adc(_get(afe, "adc_pin", "afe.", "pin"), "afe.adc_pin", atten)
    sel = _get(afe, "select", "afe.", "list")
    if not 1 <= len(sel) <= 5:
        _err("afe.select", "expected 1..5 select pins, got %d" % len(sel))
    pins = []
    for i in range(len(sel)):
        pins.append(b.out_pin({"pin": sel[i]}, "afe.select[%d]" % i)[0])
    mux = AnalogMux(adc, pins, b.clock, _get(afe, "settle_us", "afe.", "int", 50, False),
                    _get(afe, "samples", "afe.", "int", 4, False))
    nch = 1 << len(sel)
    chans = _get(afe, "cell_channels", "afe.", "list")
    _count(len(chans), cfg.cells, "afe.cell_channels", "cell channels")
    temps = _get(afe, "temp_channels", "afe.", "list")
    _count(len(temps), cfg.temps, "afe.temp_channels", "thermistor channels")
    for name, lst in (("cell_channels", chans), ("temp_channels", temps)):
        for i in range(len(lst)):
            if type(lst[i]) is not int or not 0 <= lst[i] < nch:
                _err("afe.%s[%d]" % (name, i), "expected a mux channel 0..%d, got %r" % (nch - 1, lst[i]))
    gains = _get(afe, "gain_uv", "afe.", "list")
    offs = _get(afe, "offset_mv", "afe.", "list", [0] * len(chans), False)
    try:
        cells = DirectCells(mux, chans, gains, offs, _get(afe, "mode", "afe.", "str", "taps", False))
    except (ValueError, TypeError) as e:
        _err("afe.gain_uv", str(e))
    bleed = []
    bl = _get(afe, "bleed", "afe.", "list", [], False)
    if bl:
        _count(len(bl), cfg.cells, "afe.bleed", "bleed outputs")
    for i in range(len(bl)):
        bleed.append(b.out_pin({"pin": bl[i]}, "afe.bleed[%d]" % i)[0])
    return DirectAdcFrontEnd(cells, mux, temps, cfg, bleed), mux

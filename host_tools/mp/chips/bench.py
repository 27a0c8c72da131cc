# Models of the `machine` objects the board HAL uses, on a virtual clock.
# Bench(...).machine stands in for the `machine` module: bms.board builds
# its HAL on it exactly as on a board.
def ntc_counts(t_c):
    """12-bit ADC counts of the boards' NTC divider (10 k, B 3435, 10 k
    to 3.3 V) at t_c degC."""
    import math
    tk = t_c + 273.15
    r = 10000 * math.exp(3435 * (1 / tk - 1 / 298.15))
    return int(round(4095 * r / (r + 10000)))


def ntc_uv(counts):
    """The ADC pin voltage (uV, 3.3 V full scale) for those counts, at the
    middle of the count's step."""
    return (2 * counts + 1) * 3300000 // 8192


class VirtualClock:
    """time-module stand-in: sleeping advances the clock at once."""

    def __init__(self, start_us=0):
        self.us = start_us

    def ticks_us(self):
        return self.us

    def ticks_ms(self):
        return self.us // 1000

    def sleep_us(self, us):
        self.us += us

    def sleep_ms(self, ms):
        self.us += 1000 * ms

    def ticks_add(self, a, b):
        return a + b

    def ticks_diff(self, a, b):
        return a - b


class PinModel:
    def __init__(self, ident, bench):
        self.id = ident
        self.bench = bench
        self.mode = None
        self.pull = None
        self.v = 0
        self.handler = None
        self.listener = None  # called with the new level (a CS line)
        self.writes = 0

    def init(self, mode=-1, pull=-1, value=None):
        if mode != -1:
            self.mode = mode
        if pull != -1:
            self.pull = pull
        if value is not None:
            self.value(value)

    def value(self, v=None):
        if v is None:
            return self.v
        v = 1 if v else 0
        old = self.v
        self.v = v
        self.writes += 1
        if self.listener is not None and v != old:
            self.listener(v)

    def irq(self, handler=None, trigger=None, hard=False):
        self.handler = handler

    def pulse(self, n=1):
        h = self.handler
        for _ in range(n):
            h(self)


class AdcModel:
    """read_u16 of a pin: `source` returns the pin voltage in uV; 12-bit
    converter scaled to 16 bits as the rp2 port does (raw << 4 | raw >> 8)."""

    def __init__(self, vref_uv=3300000):
        self.vref = vref_uv
        self.uv = 0
        self.source = None
        self.reads = 0

    def read_u16(self):
        self.reads += 1
        uv = self.source() if self.source is not None else self.uv
        raw = uv * 4096 // self.vref
        raw = 0 if raw < 0 else (4095 if raw > 4095 else raw)
        return (raw << 4) | (raw >> 8)


class PwmModel:
    def __init__(self):
        self.duty = 0
        self.f = 0

    def duty_u16(self, d=None):
        if d is None:
            return self.duty
        self.duty = d

    def freq(self, f=None):
        if f is None:
            return self.f
        self.f = f


class I2CModel:
    """Devices answer readfrom_mem_into/writeto_mem. fail: the next n
    transactions raise a bus timeout (OSError ETIMEDOUT, preallocated so
    the error path can run under heap_lock too)."""

    def __init__(self):
        self.devices = {}
        self.fail = 0
        self.timeout = OSError(110)
        self.nack = OSError(19)
        self.transactions = 0
        self.reads = 0  # transactions with a repeated start (register read)
        self.bytes = 0  # data bytes (CRC bytes included), register byte not included

    def attach(self, addr, dev):
        self.devices[addr] = dev

    def _dev(self, addr):
        self.transactions += 1
        if self.fail:
            self.fail -= 1
            raise self.timeout
        d = self.devices.get(addr)
        if d is None:
            raise self.nack
        return d

    def readfrom_mem_into(self, addr, mem, buf):
        self.reads += 1
        self.bytes += len(buf)
        self._dev(addr).read(mem, buf)

    def writeto_mem(self, addr, mem, buf):
        self.bytes += len(buf)
        self._dev(addr).write(mem, buf)

    def bus_us(self, freq, transactions, reads, nbytes):
        """Time on the wire at freq: 9 bit times per byte (ACK included);
        each transaction START + address + register + STOP (~3 bytes), a
        read adds a repeated START and the address again (~1 byte)."""
        bits = 9 * (nbytes + 3 * transactions + reads) + 2 * transactions
        return bits * 1000000 // freq


class SPIModel:
    def __init__(self):
        self.chain = None
        self.bytes = 0

    def write(self, buf):
        self.bytes += len(buf)
        self.chain.mosi(buf)

    def readinto(self, buf, write=0):
        self.bytes += len(buf)
        self.chain.miso(buf)


class WdtModel:
    def __init__(self, timeout=5000):
        self.timeout = timeout
        self.feeds = 0

    def feed(self):
        self.feeds += 1


class _PinFactory:
    IN = 0
    OUT = 1
    OPEN_DRAIN = 2
    PULL_UP = 1
    PULL_DOWN = 2
    IRQ_RISING = 1
    IRQ_FALLING = 2

    def __init__(self, bench):
        self.bench = bench

    def __call__(self, ident, mode=-1, pull=-1, value=None):
        p = self.bench.pin(ident)
        p.init(mode, pull, value)
        return p


class _AdcFactory:
    ATTN_0DB = 0
    ATTN_11DB = 3

    def __init__(self, bench):
        self.bench = bench

    def __call__(self, pin, atten=None):
        return self.bench.adc(pin.id)


class Machine:
    WDT_RESET = 3
    PWRON_RESET = 1

    def __init__(self, bench):
        self.bench = bench
        self.Pin = _PinFactory(bench)
        self.ADC = _AdcFactory(bench)

    def I2C(self, ident, sda=None, scl=None, freq=400000, timeout=None):
        return self.bench.i2c(ident)

    def SPI(self, ident, baudrate=1000000, polarity=0, phase=0, sck=None, mosi=None, miso=None):
        return self.bench.spi(ident)

    def PWM(self, pin):
        return self.bench.pwm(pin.id)

    def WDT(self, timeout=5000):
        self.bench.wdt = WdtModel(timeout)
        return self.bench.wdt

    def reset(self):
        self.bench.resets += 1

    def reset_cause(self):
        return self.bench.reset_cause


class Bench:
    """Everything a board has, by pin/bus id; made on first use."""

    def __init__(self, clock=None):
        self.clock = clock or VirtualClock()
        self.pins = {}
        self.adcs = {}
        self.pwms = {}
        self.i2cs = {}
        self.spis = {}
        self.wdt = None
        self.resets = 0
        self.reset_cause = Machine.PWRON_RESET
        self.machine = Machine(self)

    def pin(self, ident):
        p = self.pins.get(ident)
        if p is None:
            p = self.pins[ident] = PinModel(ident, self)
        return p

    def adc(self, ident):
        a = self.adcs.get(ident)
        if a is None:
            a = self.adcs[ident] = AdcModel()
        return a

    def pwm(self, ident):
        a = self.pwms.get(ident)
        if a is None:
            a = self.pwms[ident] = PwmModel()
        return a

    def i2c(self, ident):
        a = self.i2cs.get(ident)
        if a is None:
            a = self.i2cs[ident] = I2CModel()
        return a

    def spi(self, ident):
        a = self.spis.get(ident)
        if a is None:
            a = self.spis[ident] = SPIModel()
        return a

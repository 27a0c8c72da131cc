# The HAL of a real board: a front end (BQ76952, LTC681x chain or the
# board's ADC), the board's own analog inputs (coolant thermistors, and
# current/pack/bus where the front end has none), the contactor I/O, the
# pump and the heater. Same interface as SimHal: read(st), write(st),
# safe(). Built from a board configuration by bms.board.
#
# A front-end read that fails (bus error, CRC/PEC mismatch) is retried at
# once up to `retries` times; after that the tick has no fresh scan
# (st.fresh = 0) and the measure stage's stale counter runs until
# STALE_MEASUREMENT trips after its delay.
from bms.drivers.direct_adc import sample

NTC = 0
CURRENT = 1
VOLTAGE = 2


class AnalogIn:
    """One board analog input: a machine.ADC or a channel of an
    AnalogMux, converted to the State's raw unit of its kind:
    NTC: counts on the 0..adc_max scale; CURRENT: 10 mA counts from
    (counts - zero) * ma_per_count_q8 >> 8; VOLTAGE: 10 mV counts from
    counts * uv_per_count (battery side, divider included)."""

    def __init__(self, kind, adc=None, mux=None, ch=0, samples=4, zero=0, gain=0, adc_max=4095):
        self.kind = kind
        self.adc = adc
        self.mux = mux
        self.ch = ch
        self.samples = samples
        self.zero = zero
        self.gain = gain
        self.top = adc_max + 1

    def read(self):
        c = self.mux.read_u16(self.ch) if self.mux is not None else sample(self.adc, self.samples)
        k = self.kind
        if k == NTC:
            return c * self.top >> 16
        if k == CURRENT:
            return ((c - self.zero) * self.gain >> 8) // 10
        return c * self.gain // 10000


class BoardHal:
    def __init__(self, frontend, io, cool_in, cool_out, current=None, pack=None, bus=None,
                 pump=None, heater=None, retries=2, led=None):
        self.fe = frontend
        self.io = io
        self.cool_in = cool_in
        self.cool_out = cool_out
        self.current = current
        self.pack = pack
        self.bus = bus
        self.pump = pump
        self.heater = heater  # (pin, active_low) or None
        self.led = led  # heartbeat: toggles every written tick
        self.beat = 0
        self.tries = 1 + retries
        self.bus_errors = 0  # failed front-end scans, retries included
        self.stale_scans = 0  # ticks without a scan after all retries
        self.write_errors = 0

    def read(self, st):
        st.inputs = self.io.read()
        e = 0
        for _ in range(self.tries):
            e = self.fe.scan(st)
            if not e:
                break
            self.bus_errors += 1
        if e:
            st.fresh = 0
            self.stale_scans += 1
            return
        st.inputs |= self.fe.feedback()  # from this scan (BQ76952 FET status)
        st.raw_cool[0] = self.cool_in.read()
        st.raw_cool[1] = self.cool_out.read()
        if self.current is not None:
            st.raw_current = self.current.read()
        if self.pack is not None:
            st.raw_pack = self.pack.read()
        if self.bus is not None:
            st.raw_bus = self.bus.read()
        st.raw_tach = self.pump.pulses() if self.pump is not None else 0
        st.fresh = 1

    def write(self, st):
        self.io.write(st.outputs)  # contactors first
        if self.heater is not None:
            p, low = self.heater
            p.value((1 if st.heater_on else 0) ^ low)
        if self.pump is not None:
            self.pump.set_duty_pm(st.pump_duty_pm)
        if self.fe.apply(st):
            self.write_errors += 1  # sent again next tick
        if self.led is not None:
            self.beat ^= 1
            self.led.value(self.beat)

    def safe(self):
        # GPIO outputs cannot fail: they go first. The front end's
        # balancing/FET command needs the bus, which may be what failed.
        self.io.off()
        if self.heater is not None:
            p, low = self.heater
            p.value(low)
        try:
            self.fe.safe()
        except Exception:  # noqa: the safe state must not raise
            self.write_errors += 1

# Front ends as the board HAL sees them: each turns its driver's readings
# into the State's raw units (cells 0.1 mV, temperatures as NTC counts on
# the configuration's table, current 10 mA, pack/bus 10 mV) and applies the
# balancing mask. scan(st) returns 0 or the driver's ERR_*; nothing here
# allocates per tick.
from bms.drivers.ntc import dc_to_raw, ratio_to_raw
from bms.state import OUT_POS
from bms import signals as S

K_OFFSET_DK = 2732  # 0 degC in 0.1 K (273.15 K, rounded)


# The BQ76952's Safety Status bits as fault signals (driver.safety holds
# alert A, status A, alert B, status B, alert C, status C; bit layout: TRM
# SLUUBY2B "Safety Status A/B/C", cross-checked with LibreSolar's
# bq769x2_registers.h): (byte, mask, signal).
FE_SAFETY = (
    (1, 0x08, S.FE_COV),
    (1, 0x04, S.FE_CUV),
    (1, 0x10, S.FE_OCC),
    (1, 0x60, S.FE_OCD),  # OCD1, OCD2
    (1, 0x80, S.FE_SCD),
    (3, 0x10, S.FE_OTC),
    (3, 0x20, S.FE_OTD),
    (3, 0x01, S.FE_UTC),
    (3, 0x02, S.FE_UTD),
    (3, 0xC4, S.FE_OTHER),  # OTF, OTINT, UTINT
    (5, 0xF6, S.FE_OTHER),  # OCD3, SCDL, OCDL, COVL, PTO, HWDF
)


class Bq76952FrontEnd:
    """cell_channels: the chip's VC inputs used, in cell order (1-based);
    temps: thermistor pin names (bq76952.TEMP_NAMES) in the State's order.
    fets: the chip's CHG/DSG FETs follow the main contactor command.
    bringup: bq76952_setup.BringUp, run on the first scans until the chip
    is configured and read back (until then no scan is fresh, so nothing
    can close, and FE_CONFIG is raised)."""

    def __init__(self, drv, cfg, cell_channels, temps, fets=False, bringup=None):
        from bms.drivers.bq76952 import TEMP_NAMES
        self.bringup = bringup
        self.setup_module = None  # the bring-up's module, dropped once it is done (set by bms/board.py)
        self.ready = bringup is None
        self.drv = drv
        self.map = bytearray(c - 1 for c in cell_channels)
        self.tidx = bytearray(TEMP_NAMES.index(t) for t in temps)
        self.tab_raw = cfg.ntc_raw
        self.tab_dc = cfg.ntc_dc
        self.tab_n = len(cfg.ntc_raw)
        self.adc_max = cfg.adc_max
        self.fets = fets
        self.fets_on = -1
        self.sent = -1
        self.provides = ("current", "pack", "bus")

    def scan(self, st):
        d = self.drv
        sig = st.sig
        if not self.ready:
            e = self.bringup.run()  # boot only: allocates
            if e:
                sig[S.FE_CONFIG] = 1
                return e
            self.ready = True
            self.bringup = None  # its table and code are boot-only: give the RAM back
            if self.setup_module:
                from bms.config import drop
                drop((self.setup_module,))
                self.setup_module = None
            sig[S.FE_CONFIG] = 0
        e = d.scan()
        if e:
            return e
        for i in range(S.FE_COV, S.FE_OTHER + 1):
            sig[i] = 0
        sf = d.safety
        for byte, mask, k in FE_SAFETY:
            if sf[byte] & mask:
                sig[k] = 1
        mv = d.cell_mv
        raw = st.raw_cells
        m = self.map
        for i in range(st.n_cells):
            v = mv[m[i]] * 10
            raw[i] = 0 if v < 0 else (65535 if v > 65535 else v)
        t = d.temp_dk
        ti = self.tidx
        for j in range(st.n_temps):
            st.raw_temps[j] = dc_to_raw(t[ti[j]] - K_OFFSET_DK, self.tab_raw, self.tab_dc, self.tab_n, self.adc_max)
        st.raw_current = d.cc2
        st.raw_pack = d.stack_10mv
        st.raw_bus = d.pack_10mv  # PACK pin: the load side of the FETs/contactors
        return 0

    def feedback(self):
        # In FET mode the DSG FET's state stands in for the positive
        # contactor's auxiliary contact.
        if self.fets and self.drv.fets & 4:
            return OUT_POS
        return 0

    def apply(self, st):
        if not self.ready:
            return 0  # nothing to send to a chip that is not configured yet
        bm = st.balance_mask
        m = self.map
        mask = 0
        for i in range(st.n_cells):
            if bm[i]:
                mask |= 1 << m[i]
        e = 0
        if mask != self.sent:
            e = self.drv.set_balance(mask)
            self.sent = -1 if e else mask
        if self.fets:
            want = 1 if st.outputs & OUT_POS else 0
            if want != self.fets_on:
                e2 = self.drv.fets_on() if want else self.drv.fets_off()
                self.fets_on = -1 if e2 else want
                e = e or e2
        return e

    def safe(self):
        self.sent = -1
        self.fets_on = -1
        e = self.drv.fets_off() if self.fets else 0
        return self.drv.set_balance(0) or e


# LTC681x aux register slots: G1..G5 are 0..4, the 2nd reference 5, G6..G9 6..9.
GPIO_SLOT = (-1, 0, 1, 2, 3, 4, 6, 7, 8, 9)
REF_SLOT = 5


class Ltc681xFrontEnd:
    """temps: (module, gpio) per cell temperature sensor, NTC dividers fed
    from the module's 2nd reference (ratiometric). ow_every: scans between
    open-wire checks (the first scan runs one, before anything may close)."""

    def __init__(self, drv, cfg, temps, ow_every):
        self.drv = drv
        self.tmod = bytearray(m for m, _ in temps)
        self.tslot = bytearray(GPIO_SLOT[g] for _, g in temps)
        self.adc_max = cfg.adc_max
        self.ow_every = ow_every
        self.ow_count = 0
        self.provides = ("pack",)

    def scan(self, st):
        d = self.drv
        e = d.measure()
        if e:
            return e
        if self.ow_count == 0:
            e = d.open_wire()
            if e:
                return e
        self.ow_count += 1
        if self.ow_count >= self.ow_every:
            self.ow_count = 0
        raw = st.raw_cells
        cells = d.cells
        used = d.used
        c = d.c
        i = 0
        for m in range(d.m):
            o = m * c
            for k in range(used):
                raw[i + k] = cells[o + k]
            # An open sense wire at pin C(k) corrupts the cells on both
            # sides of it: they read 0 (out of range -> VOLTAGE_CHANNEL).
            if d.n_open:
                p = m * (c + 1)
                op = d.open_pins
                for k in range(used + 1):
                    if op[p + k]:
                        if k > 0:
                            raw[i + k - 1] = 0
                        if k < used:
                            raw[i + k] = 0
            i += used
        aux = d.aux
        for j in range(st.n_temps):
            o = self.tmod[j] * 12
            st.raw_temps[j] = ratio_to_raw(aux[o + self.tslot[j]], aux[o + REF_SLOT], self.adc_max)
        s = 0
        for m in range(d.m):
            s += d.sc[m]
        st.raw_pack = s * d.sc_scale // 100  # SC counts sc_scale x 100 uV; pack in 10 mV
        return 0

    def feedback(self):
        return 0

    def apply(self, st):
        d = self.drv
        bm = st.balance_mask
        used = d.used
        i = 0
        for m in range(d.m):
            bits = 0
            for k in range(used):
                if bm[i + k]:
                    bits |= 1 << k
            d.dcc[m] = bits
            i += used
        # Written every tick: the chip's watchdog clears the DCC bits after
        # ~2 s without a valid command, so a hung host stops balancing. The
        # tick's computation since the scan may have idled the isoSPI port.
        d.wake_idle()
        return d.write_config()

    def safe(self):
        return self.drv.balance_off()


class DirectAdcFrontEnd:
    """cells: drivers.direct_adc.DirectCells; temps: mux channels of the
    cell thermistors; bleed: one Pin per cell switching its bleed resistor
    (or empty: no balancing hardware)."""

    def __init__(self, cells, mux, temps, cfg, bleed=()):
        self.cells = cells
        self.mux = mux
        self.tch = bytearray(temps)
        self.adc_max = cfg.adc_max
        self.bleed = tuple(bleed)
        self.on = bytearray(len(self.bleed))
        self.provides = ("pack",) if cells.taps else ()

    def scan(self, st):
        e = self.cells.read(st.raw_cells)
        if e:
            return e
        top = self.adc_max + 1
        for j in range(st.n_temps):
            st.raw_temps[j] = self.mux.read_u16(self.tch[j]) * top >> 16
        if self.cells.taps:
            st.raw_pack = self.cells.top_01mv // 100
        return 0

    def feedback(self):
        return 0

    def apply(self, st):
        bm = st.balance_mask
        on = self.on
        for i in range(len(self.bleed)):
            v = 1 if bm[i] else 0
            if v != on[i]:
                self.bleed[i].value(v)
                on[i] = v
        return 0

    def safe(self):
        for i in range(len(self.bleed)):
            self.bleed[i].value(0)
            self.on[i] = 0
        return 0

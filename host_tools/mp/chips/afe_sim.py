# Software in the loop through a chip model: the sim link still brings the
# plant's values each tick, but they go into a model of the board (front-end
# chip, ADC pins, contactor feedback pins, flow-meter pin) and the firmware's
# real board HAL and drivers read them back over the modelled buses. What
# goes back to the plant is what the modelled hardware does: contactor pin
# levels, the PWM duty, the heater pin, the cells the chip is balancing.
#
# Started by firmware/bms/sim_start.py with --afe NAME --board FILE --chips DIR.
import json
from bms.hal.sim import SimHal
from bms.state import State
from chips.bench import Bench, ntc_uv
from chips.bq76952 import BQ76952Model
from chips.ltc681x import LtcChain

ADC_FS_UV = 3300000


def adapt(board, afe, cfg):
    """The board file's wiring, with the front end resized to the
    scenario's pack (the files describe 16S, 36S and 4S packs)."""
    a = board["afe"]
    n, m = cfg.cells, cfg.temps
    if afe == "bq76952":
        if n > 16:
            raise ValueError("bq76952: at most 16 cells, the scenario has %d" % n)
        if len(a["cell_channels"]) != n:
            a["cell_channels"] = list(range(1, n + 1))
        a["temps"] = (a["temps"] + ["DCHG", "DDSG", "CFETOFF", "DFETOFF"])[:m]
    elif afe in ("ltc6811", "ltc6813"):
        ch = 12 if afe == "ltc6811" else 18
        if a["modules"] * a["cells_per_module"] != n:
            mods = (n + ch - 1) // ch
            while n % mods:
                mods += 1
            a["modules"] = mods
            a["cells_per_module"] = n // mods
        mods = a["modules"]
        a["temps"] = [[j % mods, 1 + j // mods] for j in range(m)]
    elif afe == "direct_adc":
        # The 4S demo board's wiring with a 32:1 multiplexer (ADG732 class)
        # so a 16S pack fits: one difference amplifier per cell.
        chans = n + m + 2
        sel = 1
        while (1 << sel) < chans:
            sel += 1
        a["select"] = [2, 3, 4, 5, 21][:sel]
        a["mode"] = "cells"
        a["cell_channels"] = list(range(n))
        a["temp_channels"] = list(range(n, n + m))
        a["gain_uv"] = [101] * n  # 0.5 V/V difference amplifier
        a["offset_mv"] = [0] * n
        a["bleed"] = [100 + i for i in range(n)]  # bleed switches on an I/O expander (modelled pins 100+)
        board["analog"]["coolant_in"] = {"mux": n + m}
        board["analog"]["coolant_out"] = {"mux": n + m + 1}
        # dividers and the current sensor sized for the larger pack
        board["analog"]["pack"] = {"pin": 26 if a["adc_pin"] != 26 else 29, "uv_per_count": 1100}
        board["analog"]["bus"]["uv_per_count"] = 1100
        board["analog"]["current"]["zero_count"] = 32768
        board["analog"]["current"]["ma_per_count_q8"] = 1563
    else:
        raise ValueError("unknown --afe " + repr(afe))
    return board


class AfeSimHal(SimHal):
    def __init__(self, cfg, kernels, stream, afe, board_path):
        SimHal.__init__(self, cfg, kernels, stream)
        with open(board_path) as f:
            board = json.load(f)
        self.afe = afe
        self.cfg = cfg
        self.board = adapt(board, afe, cfg)
        self.tick_ms = cfg.tick_ms
        self.sh = State(cfg.cells, cfg.temps)
        self.bench = b = Bench()
        a = self.board["afe"]
        self.chip = None
        if afe == "bq76952":
            self.chip = BQ76952Model(a.get("address", 8), b.clock, a.get("shunt_uohm", 1000))
            b.i2c(a["i2c"]["id"]).attach(self.chip.addr, self.chip)
        elif afe in ("ltc6811", "ltc6813"):
            self.chip = LtcChain(b.clock, a["modules"], 12 if afe == "ltc6811" else 18)
            b.spi(a["spi"]["id"]).chain = self.chip
            cs = b.pin(a["cs"])
            cs.listener = self.chip.cs
        else:
            b.adc(a["adc_pin"]).source = self._mux_uv
            self.mux_uv = [0] * (1 << len(a["select"]))
        from bms.board import build_hal
        self.hw = build_hal(self.board, cfg, kernels, b.machine, b.clock)
        self.bal = bytearray(cfg.cells)
        self.last_flow = -1
        self.busy = 0

    # -- plant -> models ----------------------------------------------------------
    def _mux_uv(self):
        ch = 0
        sel = self.board["afe"]["select"]
        for i in range(len(sel)):
            ch |= self.bench.pin(sel[i]).v << i
        return self.mux_uv[ch]

    def _analog(self, name, value_uv):
        spec = self.board["analog"].get(name)
        if spec is None:
            return
        if "mux" in spec:
            self.mux_uv[spec["mux"]] = value_uv
        else:
            self.bench.adc(spec["pin"]).uv = value_uv

    def _feed(self, sh, silent):
        a = self.board["afe"]
        n, m = sh.n_cells, sh.n_temps
        if self.afe == "bq76952":
            c = self.chip
            mv = [0] * 16
            ch = a["cell_channels"]
            for i in range(n):
                mv[ch[i] - 1] = (sh.raw_cells[i] + 5) // 10
            c.set_cells_mv(mv)
            c.set_stack(sh.raw_pack, sh.raw_bus, sh.raw_bus, sh.raw_current)
            from bms.drivers.bq76952 import TEMP_NAMES
            for j in range(m):
                c.set_ts_counts(TEMP_NAMES.index(a["temps"][j]), sh.raw_temps[j])
            self.bench.i2c(a["i2c"]["id"]).fail = 1000 if silent else 0
        elif self.chip is not None:
            used = a["cells_per_module"]
            for i in range(n):
                self.chip.dev[i // used].cell_in[i % used] = sh.raw_cells[i]
            for d in self.chip.dev:
                for k in range(used, d.c):
                    d.cell_in[k] = 0  # unused inputs shorted to the top cell's
            for j in range(m):
                mod, g = a["temps"][j]
                self.chip.dev[mod].gpio_in[g - 1] = sh.raw_temps[j] * 30000 // 4095
            self.chip.silent = bool(silent)
        else:
            for i in range(n):
                self.mux_uv[a["cell_channels"][i]] = sh.raw_cells[i] * 100 * ADC_FS_UV // (65536 * a["gain_uv"][i])
            for j in range(m):
                self.mux_uv[a["temp_channels"][j]] = ntc_uv(sh.raw_temps[j])
            self._analog("pack", sh.raw_pack * 10000 * ADC_FS_UV // (65536 * self.board["analog"]["pack"]["uv_per_count"]))
        self._analog("coolant_in", ntc_uv(sh.raw_cool[0]))
        self._analog("coolant_out", ntc_uv(sh.raw_cool[1]))
        cur = self.board["analog"].get("current")
        if cur is not None:
            counts = cur["zero_count"] + sh.raw_current * 10 * 256 // cur["ma_per_count_q8"]
            self._analog("current", (2 * counts + 1) * ADC_FS_UV // (2 * 65536))
        bus = self.board["analog"].get("bus")
        if bus is not None:
            self._analog("bus", sh.raw_bus * 10000 * ADC_FS_UV // (65536 * bus["uv_per_count"]))
        con = self.board["contactors"]
        for name, bit in (("fb_neg", 1), ("fb_pre", 2), ("fb_pos", 4), ("enable", 8), ("charger", 16)):
            spec = con.get(name)
            if spec is not None:
                on = 1 if sh.inputs & bit else 0
                self.bench.pin(spec["pin"]).v = on ^ (1 if spec.get("active_low") else 0)
        pump = self.board.get("pump")
        if pump is not None and "tach" in pump:
            if self.last_flow >= 0:
                self.bench.pin(pump["tach"]).pulse((sh.raw_tach - self.last_flow) & 0xFFFF)
            self.last_flow = sh.raw_tach

    # -- SimHal interface -----------------------------------------------------------
    def receive(self):
        ok = SimHal.receive(self)
        self.bench.clock.sleep_ms(self.tick_ms)  # the hardware's time passes too
        return ok

    def read(self, st):
        sh = self.sh
        SimHal.read(self, sh)  # raises on the exception test hook, as SimHal
        if sh.clear_req:
            st.clear_req = 1
            sh.clear_req = 0
        self._feed(sh, self.rx[3] & 1)
        if self.rx[3] & 8 and self.afe == "bq76952":
            # short_pulse: 2 ms at 3x the firmware's SHORT_CIRCUIT trip,
            # between the last scan and this one
            from bms import faults as F
            self.chip.pulse_current(-3 * self.cfg.fault_trip[F.index("SHORT_CIRCUIT")] // 10, 2000)
        self.hw.read(st)

    def _truth(self):
        """What the modelled hardware does: outputs bits, pump per mille,
        heater, balanced cells (into self.bal)."""
        b = self.board
        outputs = 0
        for name, bit in (("neg", 1), ("pre", 2), ("pos", 4)):
            spec = b["contactors"][name]
            if self.bench.pin(spec["pin"]).v ^ (1 if spec.get("active_low") else 0):
                outputs |= bit
        duty = 0
        if "pump" in b:
            duty = (self.bench.pwm(b["pump"]["pwm"]).duty * 1000 + 32767) // 65535
        heater = 0
        if "heater" in b:
            heater = self.bench.pin(b["heater"]["pin"]).v ^ (1 if b["heater"].get("active_low") else 0)
        a = b["afe"]
        bal = self.bal
        n = len(bal)
        if self.afe == "bq76952":
            mask = self.chip.cb_mask
            for i in range(n):
                bal[i] = (mask >> (a["cell_channels"][i] - 1)) & 1
        elif self.chip is not None:
            used = a["cells_per_module"]
            dcc = self.chip.balancing()
            for i in range(n):
                bal[i] = (dcc[i // used] >> (i % used)) & 1
        else:
            for i in range(n):
                bal[i] = self.bench.pin(a["bleed"][i]).v
        return outputs, duty, heater

    def write(self, st):
        self.hw.write(st)
        outputs, duty, heater = self._truth()
        saved = (st.outputs, st.pump_duty_pm, st.heater_on, st.balance_mask)
        st.outputs, st.pump_duty_pm, st.heater_on, st.balance_mask = outputs, duty, heater, self.bal
        try:
            SimHal.write(self, st)
        finally:
            st.outputs, st.pump_duty_pm, st.heater_on, st.balance_mask = saved

    def safe(self):
        self.hw.safe()

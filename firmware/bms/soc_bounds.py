# What the cell voltages alone say about the state of charge, whatever the
# counted SOC believes: a band [lo, hi] (0.01 %) that the true SOC lies in,
# and the IR-corrected lowest cell the grid stage holds against the OCV of
# the owner's reserve. It is independent of the coulomb count, the saved
# SOC and the capacity estimate, so it stays right when they are wrong.
#
# How a cell's voltage V relates to its OCV table value U(SOC):
#   V - I*R0 = OCV + eta   (I > 0 charging; eta: the RC and diffusion
#                           overpotentials, >= 0 charging, <= 0 discharging,
#                           decaying toward 0 at rest)
#   |OCV - U(SOC)| <= a    (a = hysteresis + front-end accuracy + the OCV's
#                           temperature shift away from 25 degC)
# so while discharging U(SOC) >= V + I*R0 - a (a lower bound that needs no
# model of eta), while charging U(SOC) <= V - I*R0 + a (an upper bound);
# the other side needs the largest overpotential the chemistry shows under
# load (soc_polar_mv) plus the surface-SOC lag (soc.py: the gap by which
# the particles' surface, which the voltage reads, runs ahead of the bulk),
# and after a long rest neither does.
#
# A series pack as the plant and the firmware count it (the charge it can
# deliver before its first cell is empty, D, over that plus the charge it
# can take before its first cell is full, C) lies between its lowest and
# highest cell: with cells of equal capacity SOC = s_lo / (s_lo + 1 - s_hi),
# which rises with both, so the band's ends are that formula at the ends of
# the cells' own bands.
#
# On LFP's plateau the band is wide (a few mV span tens of %): it catches a
# count that is far off only once a cell reaches a knee. See the README.
from array import array
from micropython import const
from bms import signals as S

OCV_MIN_DC = const(100)  # under load, judged from 10 degC up only: the
#                          cold's resistance and polarisation are not modelled
FULL = const(10000)


def pack_cpct(lo, hi):
    """Pack SOC from its lowest and highest cell's SOC (0.01 %)."""
    d = lo + FULL - hi
    if d <= 0:
        return FULL if hi >= FULL else 0
    return lo * FULL // d


class SocBounds:
    def __init__(self, cfg, kernels):
        self.interp = kernels.interp  # the tables' lookup (kernels.py)
        self.band_k = kernels.soc_band
        self.io = array("i", [0] * 12)  # soc_band's inputs and outputs
        self.ocv_x = cfg.ocv_cpct
        self.ocv_y = cfg.ocv_mv
        self.ocv_n = len(cfg.ocv_cpct)
        self.r_uohm = cfg.soc_cell_r_uohm
        self.hyst_mv = cfg.ocv_hyst_mv
        self.acc_mv = cfg.cell_accuracy_mv
        self.base_mv = cfg.ocv_hyst_mv + cfg.cell_accuracy_mv
        self.temp_uv = cfg.ocv_temp_uv_per_k
        self.polar_mv = cfg.soc_polar_mv
        self.rest_ma = cfg.capacity_mah * cfg.soc_rest_cpm // 1000
        self.lo = 0  # the band of the last call to band()
        self.hi = FULL

    def soc_at(self, mv):
        return self.interp(self.ocv_y, self.ocv_x, self.ocv_n, mv)

    def mv_at(self, cpct):
        return self.interp(self.ocv_x, self.ocv_y, self.ocv_n, cpct)

    def temp_mv(self, sig):
        """The OCV's largest shift from its 25 degC table at the pack's
        temperatures (0.1 K x uV/K)."""
        d = sig[S.TEMP_MAX_DC] - 250
        d = d if d >= 0 else -d
        e = 250 - sig[S.TEMP_MIN_DC]
        d = e if e > d else d
        return d * self.temp_uv // 10000

    def floor_mv(self, reserve_mv, sig):
        """The lowest cell (IR-corrected) may not go below this while
        discharging to a reserve whose table OCV is reserve_mv: a cell
        on its discharge branch sits half the hysteresis below the
        table (its mean curve), and the front end's error and the
        temperature shift count against the pack. What the R0 correction
        leaves (RC and diffusion) makes it end early, never late."""
        return reserve_mv - self.hyst_mv // 2 + self.acc_mv + self.temp_mv(sig)

    def ir_mv(self, cur_ma):
        """I x R0 of one cell (mV) for |cur_ma|; both factors kept small
        enough for a 31-bit product (1e4 x 1e5)."""
        a = cur_ma if cur_ma >= 0 else -cur_ma
        return (a // 100) * self.r_uohm // 10000

    def vmin_corrected(self, sig):
        """The lowest cell as it would read without the R0 drop."""
        cur = sig[S.CURRENT_MA]
        ir = self.ir_mv(cur)
        return sig[S.CELL_MIN_MV] + (ir if cur < 0 else -ir)

    def band(self, sig, rested):
        """Sets self.lo, self.hi: the pack SOC the cells allow now."""
        cur = sig[S.CURRENT_MA]
        rest = self.rest_ma
        # how far a cell's OCV may sit from the table without load:
        # hysteresis, front-end accuracy, temperature shift
        a = self.base_mv + self.temp_mv(sig)
        p = 0 if rested else self.polar_mv
        if cur < -rest or cur > rest:
            if sig[S.TEMP_MIN_DC] < OCV_MIN_DC:
                self.lo = 0
                self.hi = FULL
                return
            ir = self.ir_mv(cur)
            if cur < 0:
                dn = a - ir  # corrected = V + IR; lower bound needs no eta
                up = a + ir + self.polar_mv
            else:
                dn = a + ir + self.polar_mv
                up = a - ir
        else:
            dn = a + p
            up = a + p
        vmin = sig[S.CELL_MIN_MV]
        vmax = sig[S.CELL_MAX_MV]
        # The voltage reads the particles' surface, which runs ahead of the
        # bulk by the lag the SOC stage tracks (+ while charging): it widens
        # the side that needs a model of the overpotential (below while
        # charging, above while discharging), never narrows the other.
        lag = sig[S.SOC_LAG_CPCT]
        # the four lookups, clamps and the pack's SOC at both ends in one
        # kernel call (kernels.soc_band): this runs every scan
        io = self.io
        io[0] = vmin - dn
        io[1] = vmax - dn
        io[2] = vmin + up
        io[3] = vmax + up
        io[4] = lag if lag > 0 else 0
        io[5] = -lag if lag < 0 else 0
        self.band_k(self.ocv_y, self.ocv_x, self.ocv_n, io)
        self.lo = io[10]
        self.hi = io[11]

    def point(self, sig):
        """A best guess from the cells alone, inside the band."""
        c = pack_cpct(self.soc_at(sig[S.CELL_MIN_MV]), self.soc_at(sig[S.CELL_MAX_MV]))
        return self.lo if c < self.lo else (self.hi if c > self.hi else c)

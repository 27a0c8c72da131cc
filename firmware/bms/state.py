# The one shared object of the tick: preallocated arrays and small ints.
# Every stage reads and writes it; nothing else is shared between stages.
from array import array
from micropython import const
from bms import signals as S
from bms.faults import N_FAULTS

# Contactor output bits (actuator frame and HAL).
OUT_NEG = const(1)
OUT_PRE = const(2)
OUT_POS = const(4)
IN_ENABLE = const(8)  # enable input (key switch / E-stop chain) is on
IN_CHARGER = const(16)  # a charge source is present (heater may run from it)

# Event log codes (ring in State.events: now_ms, code, arg, value).
EV_FAULT_SET = const(1)
EV_FAULT_CLEAR = const(2)
EV_CONTACTOR = const(3)
EV_INTERNAL = const(4)
EV_BOOT = const(5)
EV_RESTORED = const(6)  # a latched fault restored from the state record at boot
EVENTS = const(64)


class State:
    def __init__(self, n_cells, n_temps):
        self.n_cells = n_cells
        self.n_temps = n_temps
        # HAL -> measure: raw readings.
        self.raw_cells = array("H", [0] * n_cells)
        self.raw_temps = array("H", [0] * n_temps)
        self.raw_cool = array("H", [0, 0])
        self.raw_current = 0
        self.raw_pack = 0
        self.raw_bus = 0
        self.raw_tach = 0
        self.inputs = 0  # contactor feedback bits (OUT_* layout) and IN_ENABLE
        self.fresh = 0  # 1 when the HAL delivered a new, complete scan
        # measure -> everything else.
        self.cell_mv = array("H", [0] * n_cells)
        self.temp_dc = array("h", [0] * n_temps)
        self.cool_dc = array("h", [0, 0])
        self.sig = array("i", [0] * S.N_SIGNALS)
        self.scratch = array("i", [0] * 4)
        self.prev_raw = array("H", [0] * n_cells)  # stuck-reading tracking
        self.stuck_acc = array("i", [0] * n_cells)
        self.boot_wdt = 0  # set at boot when the last reset was the watchdog
        self.valid_scans = 0
        self.now_ms = 0
        self.dt_ms = 0
        self.ticks = 0
        # protect.
        self.fault_active = bytearray(N_FAULTS)
        self.fault_cause_gone = bytearray(N_FAULTS)
        self.fault_acc_ms = array("i", [0] * N_FAULTS)  # 0 idle, else held ms + 1
        self.n_active = 0
        self.warnings = 0
        self.derate_chg = 0
        self.derate_dsg = 0
        self.cooling_fault = 0
        self.block_chg = 0
        self.block_dsg = 0
        self.open_req = 0
        self.internal_error = 0
        self.clear_req = 0  # a `clear` command arrived: protect acts on it
        # limits.
        self.ccl_ma = 0
        self.dcl_ma = 0
        # balance.
        self.balance_mask = bytearray(n_cells)
        self.balance_count = 0
        self.balance_params = array("i", [0] * 5)
        # thermal.
        self.pump_duty_pm = 0
        self.heater_on = 0
        # contactor.
        self.contactor_state = 0
        self.outputs = 0
        self.soc_cpct = -1  # 0.01 %, -1 = unknown (the SOC stage sets it)
        # event ring.
        self.events = array("i", [0] * (4 * EVENTS))
        self.ev_head = 0
        self.ev_count = 0
        self.ev_total = 0  # events ever recorded (telemetry sends the new ones)

    def event(self, now_ms, code, arg, value):
        i = self.ev_head * 4
        ev = self.events
        ev[i] = now_ms
        ev[i + 1] = code
        ev[i + 2] = arg
        ev[i + 3] = value
        self.ev_head = (self.ev_head + 1) % EVENTS
        if self.ev_count < EVENTS:
            self.ev_count += 1
        self.ev_total = (self.ev_total + 1) & 0x3FFFFFFF

    def safe_outputs(self):
        # Contactors open, balancing off, pump and heater off.
        self.outputs = 0
        self.contactor_state = 0
        bm = self.balance_mask
        for i in range(self.n_cells):
            bm[i] = 0
        self.balance_count = 0
        self.heater_on = 0
        self.ccl_ma = 0
        self.dcl_ma = 0

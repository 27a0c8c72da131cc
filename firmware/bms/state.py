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
EV_SOC_SYNC = const(7)  # arg: SYNC_* kind, value: SOC (0.01 %) after it
EV_CAPACITY = const(8)  # arg: 0, value: the new capacity estimate (mAh)
EV_GRID_START = const(9)  # arg: duration (s), value: power (W)
EV_GRID_END = const(10)  # arg: GRID_* reason, value: energy of the event (mWh)
EV_GRID_REJECT = const(11)  # arg: GRID_* reason, value: power asked (W)
EV_SOC_DISTRUST = const(12)  # restored SOC outside the cells' band; arg: 1 above, 2 below; value: that SOC
EV_REMOTE_CMD = const(13)  # a command from the network (MQTT); arg: REMOTE_* command, value: 1 done, 0 refused
EV_AUTH = const(14)  # production lock (bms/auth.py); arg: AUTH_* kind, value: failed attempts in a row
EVENTS = const(64)

# Production-lock event kinds (EV_AUTH arg).
AUTH_FAIL = const(0)  # a wrong response, a refused MQTT command MAC or counter
AUTH_OPEN = const(1)  # a console session opened
AUTH_ROTATED = const(2)  # the key was replaced
AUTH_MAINTENANCE = const(3)  # left the firmware for the REPL (maintenance)

# SOC synchronisation kinds (EV_SOC_SYNC arg, State.soc_sync).
SYNC_FULL = const(1)
SYNC_EMPTY = const(2)
SYNC_OCV = const(3)
SYNC_BOOT_OCV = const(4)  # no SOC known at boot: first guess from the OCV
SYNC_CELLS = const(5)  # the count contradicted the cells: moved into their band (no anchor)

# Grid-event end / rejection reasons (State.grid_reason).
GRID_DEADLINE = const(1)
GRID_RESERVE = const(2)
GRID_CANCELLED = const(3)
GRID_BLOCKED = const(4)  # contactors open, discharge blocked or a fault
GRID_BAD_ARGS = const(5)
GRID_BUSY = const(6)  # an event is already running
GRID_SOC_UNKNOWN = const(7)
GRID_VOLTAGE = const(8)  # the lowest cell (IR-corrected) at the OCV of the reserve

# Host commands (sim sensor frame; the console calls App directly).
CMD_GRID_START = const(1)
CMD_GRID_CANCEL = const(2)


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
        self.grid_ma = 0
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
        # soc: charge counted as whole mAh plus an mA*ms remainder (0..3.6e6)
        # so a 2,000 Ah pack stays inside a 31-bit small int.
        self.capacity_mah = 0  # estimate at 25 degC (0: take the rated one)
        self.capacity_learned = 0  # 1 once estimated (or restored from a record)
        self.soc_q_mah = -1  # -1: not counted yet (derive from soc_cpct)
        self.soc_q_rem = 0
        self.soc_sync = 0  # kind of the last synchronisation (SYNC_*)
        self.soc_sync_cpct = -1  # SOC set by it (-1: none since boot)
        self.usable_mah = 0  # charge that can still be taken out at this temperature
        self.bleed_scan = 0  # 1: the last scan was taken while cells were bled
        self.energy_in_wh = 0
        self.energy_out_wh = 0
        # grid-support events (grid stage; started and cancelled by App)
        self.grid_active = 0
        self.grid_power_w = 0
        self.grid_end_ms = 0
        self.grid_ma = 0  # export current asked of the inverter now
        self.grid_mwh_event = 0  # energy exported in the running / last event
        self.grid_wh_total = 0  # energy exported in all events
        self.grid_reason = 0  # why the last event ended or a start was refused
        self.grid_floor_cpct = 0  # the event ends here: reserve + margin for the SOC's uncertainty
        self.grid_events = 0
        self.grid_vfloor_mv = 0  # the lowest cell may not go below this (IR-corrected) in an event
        self.grid_vlow = 0  # 1: it did; no event until it is back above the floor + grid_vfloor_rearm_mv
        # a command from the host (sim frame): kind, two int arguments
        self.cmd = 0
        self.cmd_a = 0
        self.cmd_b = 0
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
        self.grid_ma = 0

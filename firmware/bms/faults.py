# The fault table (in the spirit of foxBMS's diagnosis table): one row per
# fault, data only. Thresholds and delays come from the configuration
# (chemistry preset + user overrides); what a fault does comes from its
# severity and action bits here.
from micropython import const
from bms import signals as S

# Severities.
WARNING = const(1)  # derate the current limits
FAULT = const(2)  # block charge and/or discharge (see the action bits)
CRITICAL = const(3)  # open the contactors

# Action bits.
BLOCK_CHG = const(1)
BLOCK_DSG = const(2)
OPEN = const(4)
DERATE_CHG = const(8)  # warnings: halve the charge limit
DERATE_DSG = const(16)  # warnings: halve the discharge limit
COOLING = const(32)  # cooling is faulty: limits capped at cooling_fault_limit_pm

ABOVE = const(1)
BELOW = const(0)

# Rows: name, signal, sense, severity, actions, latching, threshold unit,
# measured (1: evaluated only on a fresh, complete scan; the debounce of a
# measured fault holds still while the front end is silent).
M = const(1)
TABLE = (
    ("CELL_OV_WARN", S.CELL_MAX_MV, ABOVE, WARNING, DERATE_CHG, False, "mv", M),
    ("CELL_OV", S.CELL_MAX_MV, ABOVE, FAULT, BLOCK_CHG, False, "mv", M),
    ("CELL_OV_CRIT", S.CELL_MAX_MV, ABOVE, CRITICAL, OPEN | BLOCK_CHG | BLOCK_DSG, True, "mv", M),
    ("CELL_UV_WARN", S.CELL_MIN_MV, BELOW, WARNING, DERATE_DSG, False, "mv", M),
    ("CELL_UV", S.CELL_MIN_MV, BELOW, FAULT, BLOCK_DSG, False, "mv", M),
    ("CELL_UV_CRIT", S.CELL_MIN_MV, BELOW, CRITICAL, OPEN | BLOCK_CHG | BLOCK_DSG, True, "mv", M),
    # (above OT_WARN the limits taper linearly to zero at OT_CHG / OT_DSG)
    ("OT_WARN", S.TEMP_MAX_DC, ABOVE, WARNING, 0, False, "dc", M),
    ("OT_CHG", S.TEMP_MAX_DC, ABOVE, FAULT, BLOCK_CHG, False, "dc", M),
    ("OT_DSG", S.TEMP_MAX_DC, ABOVE, FAULT, BLOCK_DSG, False, "dc", M),
    ("OT_CRIT", S.TEMP_MAX_DC, ABOVE, CRITICAL, OPEN | BLOCK_CHG | BLOCK_DSG, True, "dc", M),
    ("UT_CHG", S.TEMP_MIN_DC, BELOW, FAULT, BLOCK_CHG, False, "dc", M),
    ("UT_DSG", S.TEMP_MIN_DC, BELOW, FAULT, BLOCK_DSG, False, "dc", M),
    ("OC_CHG", S.CHARGE_MA, ABOVE, CRITICAL, OPEN | BLOCK_CHG, False, "ma", M),
    ("OC_DSG", S.DISCHARGE_MA, ABOVE, CRITICAL, OPEN | BLOCK_DSG, False, "ma", M),
    ("SHORT_CIRCUIT", S.DISCHARGE_MA, ABOVE, CRITICAL, OPEN | BLOCK_CHG | BLOCK_DSG, True, "ma", M),
    ("CELL_IMBALANCE", S.SPREAD_PLATEAU_MV, ABOVE, FAULT, BLOCK_CHG, True, "mv", M),
    ("SUM_MISMATCH", S.SUM_MISMATCH_MV, ABOVE, CRITICAL, OPEN | BLOCK_CHG | BLOCK_DSG, False, "mv", M),
    ("VOLTAGE_CHANNEL", S.BAD_CELL_CH, ABOVE, CRITICAL, OPEN | BLOCK_CHG | BLOCK_DSG, True, "n", M),
    ("THERMISTOR", S.BAD_THERM, ABOVE, FAULT, BLOCK_CHG | BLOCK_DSG, True, "n", M),
    ("STUCK_READING", S.STUCK_MS, ABOVE, CRITICAL, OPEN | BLOCK_CHG | BLOCK_DSG, True, "ms", M),
    ("STALE_MEASUREMENT", S.STALE_MS, ABOVE, CRITICAL, OPEN | BLOCK_CHG | BLOCK_DSG, False, "ms", 0),
    ("COOLANT_OT", S.COOLANT_OUT_DC, ABOVE, WARNING, COOLING, False, "dc", M),
    ("PUMP_NO_FLOW", S.FLOW_DEFICIT_PM, ABOVE, WARNING, COOLING, False, "pm", M),
    ("COOLANT_FLOW_LOW", S.FLOW_DEFICIT_PM, ABOVE, WARNING, COOLING, False, "pm", M),
    ("COOLANT_DT", S.COOLANT_DT_DC, ABOVE, WARNING, COOLING, False, "dc", M),
    ("COOLANT_SENSOR", S.BAD_COOL, ABOVE, WARNING, COOLING, False, "n", M),
    ("CONTACTOR_WELDED", S.WELDED, ABOVE, CRITICAL, OPEN | BLOCK_CHG | BLOCK_DSG, True, "n", 0),
    ("PRECHARGE_FAILED", S.PRECHARGE_LOCKED, ABOVE, CRITICAL, OPEN | BLOCK_CHG | BLOCK_DSG, True, "n", 0),
    ("INTERNAL_ERROR", S.INTERNAL, ABOVE, CRITICAL, OPEN | BLOCK_CHG | BLOCK_DSG, True, "n", 0),
    ("WATCHDOG_RESET", S.WDT_BOOT, ABOVE, WARNING, 0, True, "n", 0),
    # the counted SOC contradicts the cells (soc.py moves it into their band)
    ("SOC_IMPLAUSIBLE", S.SOC_DEV_CPCT, ABOVE, WARNING, 0, False, "cpct", M),
    # The front end's own layer (BQ76952 bring-up and Safety Status): the
    # chip trips just beyond the firmware's own rows, so one of these means
    # the firmware's layer missed something (a short between two scans).
    ("FE_CONFIG", S.FE_CONFIG, ABOVE, CRITICAL, OPEN | BLOCK_CHG | BLOCK_DSG, True, "n", 0),
    ("FE_COV", S.FE_COV, ABOVE, CRITICAL, OPEN | BLOCK_CHG, True, "n", M),
    ("FE_CUV", S.FE_CUV, ABOVE, CRITICAL, OPEN | BLOCK_DSG, True, "n", M),
    ("FE_OCC", S.FE_OCC, ABOVE, CRITICAL, OPEN | BLOCK_CHG, True, "n", M),
    ("FE_OCD", S.FE_OCD, ABOVE, CRITICAL, OPEN | BLOCK_DSG, True, "n", M),
    ("FE_SCD", S.FE_SCD, ABOVE, CRITICAL, OPEN | BLOCK_CHG | BLOCK_DSG, True, "n", M),
    ("FE_OTC", S.FE_OTC, ABOVE, FAULT, BLOCK_CHG, False, "n", M),
    ("FE_OTD", S.FE_OTD, ABOVE, FAULT, BLOCK_DSG, False, "n", M),
    ("FE_UTC", S.FE_UTC, ABOVE, FAULT, BLOCK_CHG, False, "n", M),
    ("FE_UTD", S.FE_UTD, ABOVE, FAULT, BLOCK_DSG, False, "n", M),
    ("FE_OTHER", S.FE_OTHER, ABOVE, FAULT, BLOCK_CHG | BLOCK_DSG, False, "n", M),
    # Inverter CAN (bms/can_service.py): warnings only. While the inverter
    # cannot hear the limits, protection works as before (blocks, then the
    # contactors); a Victron or Pylontech-protocol inverter stops on its own
    # when the BMS's frames stop.
    ("INVERTER_SILENT", S.INVERTER_SILENT, ABOVE, WARNING, 0, False, "n", 0),
    ("CAN_BUS", S.CAN_BUS, ABOVE, WARNING, 0, False, "n", 0),
    # a service between ticks is down (broker or WiFi gone): a warning only,
    # protection never depends on the network
    ("MQTT_DOWN", S.MQTT_DOWN, ABOVE, WARNING, 0, False, "n", 0),
)

# Rows judged with a leaky bucket instead of a plain debounce: a loose
# connector (sense wire, thermistor, auxiliary contact) that opens for a few
# hundred ms every few seconds never holds its condition for the whole trip
# delay, so the time it is seen adds up and drains only slowly: every ms
# without the condition takes back LEAK_PM per mille of a ms (2 %: a
# condition present more than 1/50 of the time trips). These rows latch, so
# an intermittent cause trips once and does not chatter.
LEAKY = ("VOLTAGE_CHANNEL", "THERMISTOR", "CONTACTOR_WELDED")
LEAK_PM = const(20)

N_FAULTS = len(TABLE)
NAMES = tuple(row[0] for row in TABLE)


def index(name):
    for i in range(N_FAULTS):
        if TABLE[i][0] == name:
            return i
    raise KeyError(name)

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

ABOVE = const(1)
BELOW = const(0)

# name, signal, sense, severity, actions, latching, threshold unit
TABLE = (
    ("CELL_OV_WARN", S.CELL_MAX_MV, ABOVE, WARNING, DERATE_CHG, False, "mv"),
    ("CELL_OV", S.CELL_MAX_MV, ABOVE, FAULT, BLOCK_CHG, False, "mv"),
    ("CELL_OV_CRIT", S.CELL_MAX_MV, ABOVE, CRITICAL, OPEN | BLOCK_CHG | BLOCK_DSG, True, "mv"),
    ("CELL_UV_WARN", S.CELL_MIN_MV, BELOW, WARNING, DERATE_DSG, False, "mv"),
    ("CELL_UV", S.CELL_MIN_MV, BELOW, FAULT, BLOCK_DSG, False, "mv"),
    ("CELL_UV_CRIT", S.CELL_MIN_MV, BELOW, CRITICAL, OPEN | BLOCK_CHG | BLOCK_DSG, True, "mv"),
    ("OT_WARN", S.TEMP_MAX_DC, ABOVE, WARNING, DERATE_CHG | DERATE_DSG, False, "dc"),
    ("OT_CHG", S.TEMP_MAX_DC, ABOVE, FAULT, BLOCK_CHG, False, "dc"),
    ("OT_DSG", S.TEMP_MAX_DC, ABOVE, FAULT, BLOCK_DSG, False, "dc"),
    ("OT_CRIT", S.TEMP_MAX_DC, ABOVE, CRITICAL, OPEN | BLOCK_CHG | BLOCK_DSG, True, "dc"),
    ("UT_CHG", S.TEMP_MIN_DC, BELOW, FAULT, BLOCK_CHG, False, "dc"),
    ("UT_DSG", S.TEMP_MIN_DC, BELOW, FAULT, BLOCK_DSG, False, "dc"),
    ("OC_CHG", S.CHARGE_MA, ABOVE, CRITICAL, OPEN | BLOCK_CHG, False, "ma"),
    ("OC_DSG", S.DISCHARGE_MA, ABOVE, CRITICAL, OPEN | BLOCK_DSG, False, "ma"),
    ("SHORT_CIRCUIT", S.DISCHARGE_MA, ABOVE, CRITICAL, OPEN | BLOCK_CHG | BLOCK_DSG, True, "ma"),
)

N_FAULTS = len(TABLE)
NAMES = tuple(row[0] for row in TABLE)


def index(name):
    for i in range(N_FAULTS):
        if TABLE[i][0] == name:
            return i
    raise KeyError(name)

# Indices into State.sig: the scalar signals that the measure stage produces
# and the fault table, limits and outputs consume. Units are in the names.
from micropython import const

CELL_MAX_MV = const(0)
CELL_MIN_MV = const(1)
CELL_MAX_IDX = const(2)
CELL_MIN_IDX = const(3)
CELL_SUM_MV = const(4)
CELL_SPREAD_MV = const(5)
TEMP_MAX_DC = const(6)  # 0.1 degC
TEMP_MIN_DC = const(7)
CURRENT_MA = const(8)  # signed, positive = charging the pack
CHARGE_MA = const(9)  # max(current, 0)
DISCHARGE_MA = const(10)  # max(-current, 0)
PACK_MV = const(11)  # pack voltage sensor (battery side of the contactors)
BUS_MV = const(12)  # load side of the contactors
COOLANT_IN_DC = const(13)
COOLANT_OUT_DC = const(14)
PUMP_TACH_HZ = const(15)  # pulses per second from the pump tachometer
N_SIGNALS = const(16)

NAMES = (
    "cell_max_mv", "cell_min_mv", "cell_max_idx", "cell_min_idx",
    "cell_sum_mv", "cell_spread_mv", "temp_max_dc", "temp_min_dc",
    "current_ma", "charge_ma", "discharge_ma", "pack_mv", "bus_mv",
    "coolant_in_dc", "coolant_out_dc", "pump_tach_hz",
)

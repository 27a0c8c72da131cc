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
FLOW_HZ = const(15)  # coolant flow meter pulses per second
# diagnosis (measure and diagnose stages)
BAD_CELL_CH = const(16)  # cell channels out of range (open sense wire, dead ADC)
BAD_THERM = const(17)  # thermistors open or shorted
STUCK_MS = const(18)  # longest time any cell channel has read exactly the same
STALE_MS = const(19)  # time since the last complete scan
SPREAD_PLATEAU_MV = const(20)  # cell spread, only where the OCV curve is flat
SUM_MISMATCH_MV = const(21)  # |sum of cells - pack voltage sensor|
FLOW_DEFICIT_PM = const(22)  # coolant flow missing for the commanded duty, per mille
WELDED = const(23)  # 1: contactor feedback closed although commanded open
PRECHARGE_LOCKED = const(24)  # 1: precharge failed on every try
INTERNAL = const(25)  # 1: an exception was caught in the tick
WDT_BOOT = const(26)  # 1: the last reset was the watchdog
BAD_COOL = const(27)  # coolant sensors open, shorted or implausible
COOLANT_DT_DC = const(28)  # outlet - inlet while the pump runs
SOC_DEV_CPCT = const(29)  # counted SOC outside the band the cells allow, by (0.01 %)
# front end's own state (BQ76952: bring-up and the chip's Safety Status
# bits, bms/hal/frontends.py FE_SAFETY); 0 on front ends without them
FE_CONFIG = const(30)  # 1: the chip is not (yet) configured as written, or failed its read-back
FE_COV = const(31)
FE_CUV = const(32)
FE_OCC = const(33)
FE_OCD = const(34)
FE_SCD = const(35)
FE_OTC = const(36)
FE_OTD = const(37)
FE_UTC = const(38)
FE_UTD = const(39)
FE_OTHER = const(40)  # any other protection the chip raised (internal/FET temperature, latches, watchdog)
# inputs from the inverter CAN service (bms/can_service.py), set between
# ticks like the HAL's raw readings; the tick's fault table judges them
INVERTER_SILENT = const(41)  # 1: no keep-alive frame from the inverter for can silent_ms
CAN_BUS = const(42)  # 1: the CAN controller is bus-off, failed its start or does not answer
# services between ticks (written by them, not by the tick)
MQTT_DOWN = const(43)  # 1: MQTT is configured but the broker is not connected (bms/mqtt_service.py)
SOC_LAG_CPCT = const(44)  # the surface SOC's lag behind the true SOC (soc.py), + charging
N_SIGNALS = const(45)

NAMES = (
    "cell_max_mv", "cell_min_mv", "cell_max_idx", "cell_min_idx",
    "cell_sum_mv", "cell_spread_mv", "temp_max_dc", "temp_min_dc",
    "current_ma", "charge_ma", "discharge_ma", "pack_mv", "bus_mv",
    "coolant_in_dc", "coolant_out_dc", "flow_hz",
    "bad_cell_ch", "bad_therm", "stuck_ms", "stale_ms", "spread_plateau_mv",
    "sum_mismatch_mv", "flow_deficit_pm", "welded", "precharge_locked",
    "internal", "wdt_boot", "bad_cool", "coolant_dt_dc", "soc_dev_cpct",
    "fe_config", "fe_cov", "fe_cuv", "fe_occ", "fe_ocd", "fe_scd", "fe_otc", "fe_otd", "fe_utc", "fe_utd",
    "fe_other", "inverter_silent", "can_bus", "mqtt_down", "soc_lag_cpct",
)

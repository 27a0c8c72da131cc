# Inverter CAN protocol profiles as data: each profile is a tuple of frames
# (id, DLC, fields, fixed bytes); a field is (byte offset, encoding, value
# index into the service's value vector). Adding a profile is adding data;
# the DBC host_tools/can/bms.dbc describes the same frames (tests decode the
# firmware's frames with it). Facts and sources: the project's reference
# notes on inverter CAN (Battery-Emulator PYLON-LV-CAN.cpp, diyBMS v4
# pylon_canbus.cpp / victron_canbus.cpp, juamiso/PYLON_EMU
# pylon_CAN_210124.dbc, TeslaBMSV2).
from micropython import const

# Value indices (units in the names; the service fills them every period).
V_CVL_DV = const(0)  # charge voltage limit, 0.1 V
V_CCL_DA = const(1)  # charge current limit, 0.1 A
V_DCL_DA = const(2)  # discharge current limit, 0.1 A (sent positive)
V_DVL_DV = const(3)  # discharge voltage limit, 0.1 V
V_SOC_PCT = const(4)
V_SOH_PCT = const(5)
V_SOC_CPCT = const(6)  # 0.01 %
V_PACK_CV = const(7)  # pack voltage, 0.01 V
V_CUR_DA = const(8)  # pack current, 0.1 A, + = charging
V_TEMP_DC = const(9)  # 0.1 degC (the hottest cell)
V_PROT = const(10)  # Pylontech 0x359 bytes 0-1
V_ALARM = const(11)  # Pylontech 0x359 bytes 2-3
V_MODULES = const(12)
V_REQ = const(13)  # Pylontech 0x35C byte 0
V_VA_LO = const(14)  # Victron 0x35A alarm pairs, bytes 0-1
V_VA_HI = const(15)  # bytes 2-3
V_VW_LO = const(16)  # warning pairs, bytes 4-5
V_VW_HI = const(17)  # bytes 6-7
V_CELL_MIN_MV = const(18)
V_CELL_MAX_MV = const(19)
V_TMIN_K = const(20)  # kelvin
V_TMAX_K = const(21)
V_MOD_OK = const(22)
V_MOD_BLK_CHG = const(23)
V_MOD_BLK_DSG = const(24)
V_MOD_OFFLINE = const(25)
V_CAP_AH = const(26)  # installed capacity, Ah
V_AVAIL_AH = const(27)  # charge left, Ah
V_MODEL = const(28)
V_FW = const(29)
V_ZERO = const(30)
N_VALUES = const(31)

# Encodings.
LE16 = const(1)  # little-endian 16-bit (signed values as two's complement)
BE16 = const(2)
U8 = const(3)

# Pylontech 0x359 flag bits (bit n of the 16-bit little-endian value: byte
# 0 = bits 0-7, byte 1 = bits 8-15), after the DBC pylon_CAN_210124.dbc.
# The system-error bit disagrees between sources (DBC: byte 1 bit 3;
# Battery-Emulator and ArminJo: byte 1 bit 7): both are set.
PYLON_PROT = (
    (1 << 1, ("CELL_OV", "CELL_OV_CRIT", "FE_COV")),
    (1 << 2, ("CELL_UV", "CELL_UV_CRIT", "FE_CUV")),
    (1 << 3, ("OT_CHG", "OT_DSG", "OT_CRIT", "FE_OTC", "FE_OTD")),
    (1 << 4, ("UT_CHG", "UT_DSG", "FE_UTC", "FE_UTD")),
    (1 << 7, ("OC_DSG", "SHORT_CIRCUIT", "FE_OCD", "FE_SCD")),
    (1 << 8, ("OC_CHG", "FE_OCC")),
    ((1 << 11) | (1 << 15), ("CELL_IMBALANCE", "SUM_MISMATCH", "VOLTAGE_CHANNEL", "THERMISTOR",
                             "STUCK_READING", "STALE_MEASUREMENT", "CONTACTOR_WELDED", "PRECHARGE_FAILED",
                             "INTERNAL_ERROR", "FE_CONFIG", "FE_OTHER")),
)
PYLON_ALARM = (
    (1 << 1, ("CELL_OV_WARN",)),
    (1 << 2, ("CELL_UV_WARN",)),
    (1 << 3, ("OT_WARN", "COOLANT_OT")),
    # byte 3 bit 3 "internal communication error"
    (1 << 11, ("PUMP_NO_FLOW", "COOLANT_FLOW_LOW", "COOLANT_DT", "COOLANT_SENSOR", "WATCHDOG_RESET",
               "SOC_IMPLAUSIBLE", "INVERTER_SILENT", "CAN_BUS")),
)
# Victron 0x35A: 2-bit pairs, 01 = active, 10 = OK (diyBMS
# victron_canbus.cpp; pairs from the low bits of byte 0 up; diyBMS #209
# questions the voltage labels: UNVERIFIED on a GX). Pair n of the alarm
# half (bytes 0-3) and of the warning half (bytes 4-7): alarm rows,
# warning rows.
VICTRON_PAIRS = (
    (0, ("CELL_OV_CRIT", "CELL_UV_CRIT", "OT_CRIT", "SHORT_CIRCUIT", "SUM_MISMATCH", "VOLTAGE_CHANNEL",
         "STUCK_READING", "STALE_MEASUREMENT", "CONTACTOR_WELDED", "PRECHARGE_FAILED", "INTERNAL_ERROR",
         "FE_CONFIG", "FE_COV", "FE_CUV", "FE_OCC", "FE_OCD", "FE_SCD", "FE_OTHER"),
     ("WATCHDOG_RESET", "SOC_IMPLAUSIBLE", "INVERTER_SILENT", "CAN_BUS")),  # general
    (1, ("CELL_OV", "CELL_OV_CRIT", "FE_COV"), ("CELL_OV_WARN",)),  # high voltage
    (2, ("CELL_UV", "CELL_UV_CRIT", "FE_CUV"), ("CELL_UV_WARN",)),  # low voltage
    (3, ("OT_DSG", "OT_CRIT", "FE_OTD"), ("OT_WARN",)),  # high temperature
    (4, ("UT_DSG", "FE_UTD"), ()),  # low temperature
    (5, ("OT_CHG", "FE_OTC"), ("OT_WARN",)),  # high temperature while charging
    (6, ("UT_CHG", "FE_UTC"), ()),  # low temperature while charging
    (7, ("OC_DSG", "FE_OCD"), ()),  # high discharge current
    (8, ("OC_CHG", "FE_OCC"), ()),  # high charge current
    (9, ("CONTACTOR_WELDED", "PRECHARGE_FAILED"), ()),  # contactor
    (10, ("SHORT_CIRCUIT", "FE_SCD"), ()),  # short circuit
    (11, ("INTERNAL_ERROR", "FE_CONFIG", "FE_OTHER", "STALE_MEASUREMENT", "VOLTAGE_CHANNEL", "THERMISTOR"),
     ("COOLANT_OT", "PUMP_NO_FLOW", "COOLANT_FLOW_LOW", "COOLANT_DT", "COOLANT_SENSOR", "WATCHDOG_RESET")),  # BMS internal
    (12, ("CELL_IMBALANCE",), ()),  # cell imbalance
)

# Frames: (id, DLC, ((offset, encoding, value), ...), fixed bytes or None,
# offset of the fixed bytes). Name frames take their text from the settings.
NAME = const(-1)  # fixed bytes: the profile's name setting
_351 = (0x351, 8, ((0, LE16, V_CVL_DV), (2, LE16, V_CCL_DA), (4, LE16, V_DCL_DA), (6, LE16, V_DVL_DV)), None, 0)
_356 = (0x356, 6, ((0, LE16, V_PACK_CV), (2, LE16, V_CUR_DA), (4, LE16, V_TEMP_DC)), None, 0)
_35E = (0x35E, 8, (), NAME, 0)

PROFILES = {
    # Source: the reference table (Battery-Emulator PYLON-LV-CAN.cpp, diyBMS
    # pylon_canbus.cpp, the PYLON_EMU DBC); DCL positive as in the real
    # capture and Battery-Emulator (the DBC's -500..0 A range disagrees).
    "pylontech": (
        _351,
        (0x355, 4, ((0, LE16, V_SOC_PCT), (2, LE16, V_SOH_PCT)), None, 0),
        _356,
        (0x359, 7, ((0, LE16, V_PROT), (2, LE16, V_ALARM), (4, U8, V_MODULES)), b"PN", 5),
        (0x35C, 2, ((0, U8, V_REQ), (1, U8, V_ZERO)), None, 0),
        _35E,
    ),
    # Source: diyBMS victron_canbus.cpp and the reference's Victron notes
    # ("CAN-bus BMS (500 kbit/s)" profile): 0x355 with the 0.01 % SOC, the
    # 0x35A pairs, 0x35F, 0x372, 0x373, 0x379. DLCs of 0x35F (6) and 0x379
    # (2) follow the field lists: UNVERIFIED against a GX.
    "victron": (
        _351,
        (0x355, 6, ((0, LE16, V_SOC_PCT), (2, LE16, V_SOH_PCT), (4, LE16, V_SOC_CPCT)), None, 0),
        _356,
        (0x35A, 8, ((0, LE16, V_VA_LO), (2, LE16, V_VA_HI), (4, LE16, V_VW_LO), (6, LE16, V_VW_HI)), None, 0),
        _35E,
        (0x35F, 6, ((0, LE16, V_MODEL), (2, LE16, V_FW), (4, LE16, V_AVAIL_AH)), None, 0),
        (0x372, 8, ((0, LE16, V_MOD_OK), (2, LE16, V_MOD_BLK_CHG), (4, LE16, V_MOD_BLK_DSG), (6, LE16, V_MOD_OFFLINE)), None, 0),
        (0x373, 8, ((0, LE16, V_CELL_MIN_MV), (2, LE16, V_CELL_MAX_MV), (4, LE16, V_TMIN_K), (6, LE16, V_TMAX_K)), None, 0),
        (0x379, 2, ((0, LE16, V_CAP_AH),), None, 0),
    ),
    # UNVERIFIED: the sources disagree (Battery-Emulator SMA-LV-CAN.cpp packs
    # big-endian CVL, DCL, CCL, DVL; TeslaBMSV2 little-endian CVL, CCL, DCL,
    # DVL, reported working on a Sunny Island 6.0H, TeslaBMSV2 #4). This
    # follows TeslaBMSV2. 0x35A/0x35B are left out: no two sources agree
    # on them.
    "sma_lv": (
        _351,
        (0x355, 4, ((0, LE16, V_SOC_PCT), (2, LE16, V_SOH_PCT)), None, 0),
        _356,
        _35E,
        (0x35F, 6, ((0, LE16, V_MODEL), (2, LE16, V_FW), (4, LE16, V_AVAIL_AH)), None, 0),
    ),
}

# Per-profile defaults of the quirk settings (board config `can` section
# may override them):
#   name: 0x35E text (8 bytes, space-padded). Victron's Venus OS overrides
#     the BMS's limits for "PYLON" / "BYD" names (dbus-systemcalc-py
#     delegates/dvcc.py): never sent on the victron profile.
#   zero_limit_da: what a zero current limit is sent as. Sofar ignores zero
#     limits (diyBMS sends 0.1 A for stop), so 1 (0.1 A) on the Pylontech
#     and SMA profiles; Victron honours 0 (CCL 0 stops charging).
#   dvl_cell_mv: discharge voltage limit per cell, and the floor under the
#     CVL (CVL = 0 makes a Victron discharge hard, diyBMS #175).
DEFAULTS = {
    "pylontech": {"name": "PYLON", "zero_limit_da": 1},
    "victron": {"name": "MPY-BMS", "zero_limit_da": 0},
    "sma_lv": {"name": "MPY-BMS", "zero_limit_da": 1},
}
FORBIDDEN_NAMES = {"victron": ("PYLON", "BYD")}
KEEPALIVE_IDS = (0x305, 0x306, 0x307)  # what inverters send (0x305 most, 0x306 SMA, 0x307 Victron)

# Chemistry presets: protection thresholds and limits per cell chemistry.
#
# Sources (values are the cell makers' limits; warning and fault levels
# inside them are this project's engineering margins, marked "margin").
# Open item: the [EVE] and [SAM] figures below are the commonly published
# ones for these cells and have not yet been re-checked line by line against
# the cited documents; the 2.5 V cut-off is confirmed by [LS].
# [EVE] EVE Energy LF105 (3.2 V 105 Ah prismatic LFP) product specification
#       PBRI-LF105-D06-01 rev. E: charge cut-off 3.65 V, discharge cut-off
#       2.5 V, standard charge 0.5C, charge 0..55 degC, discharge -20..55 degC.
# [LS]  Lishen LP54173207 (202 Ah LFP) specification: discharge cut-off 2.5 V
#       above 0 degC.
# [SAM] Samsung SDI INR18650-35E specification: charge 4.20 V max,
#       discharge cut-off 2.65 V, charge 0..45 degC, discharge -10..60 degC.
# Fault rows: trip, trip delay ms, recover, recover delay ms (units per row:
# mv = millivolt, dc = 0.1 degC; currents are set from the capacity).

LFP = {
    "chemistry": "LFP",
    "faults": {
        "CELL_OV_WARN": [3550, 1000, 3500, 2000],  # margin
        "CELL_OV": [3600, 1000, 3450, 5000],  # margin below [EVE] 3.65 V
        "CELL_OV_CRIT": [3650, 500, 3450, 5000],  # [EVE] charge cut-off
        "CELL_UV_WARN": [2900, 1000, 3000, 2000],  # margin
        # Discharge stays blocked until the pack has been recharged a little.
        "CELL_UV": [2800, 1000, 3150, 10000],  # margin
        "CELL_UV_CRIT": [2500, 1000, 2900, 5000],  # [EVE], [LS] cut-off
        # [EVE] allows 55 degC for charge and discharge. The limits taper
        # from OT_WARN to zero at OT_CHG/OT_DSG; OT_CRIT opens the
        # contactors 2 K before the cell's limit, for loads that ignore the
        # limits (margins).
        "OT_WARN": [450, 2000, 420, 5000],
        "OT_CHG": [500, 2000, 470, 10000],
        "OT_DSG": [500, 2000, 470, 10000],
        "OT_CRIT": [530, 1000, 480, 10000],
        "UT_CHG": [0, 2000, 20, 5000],  # [EVE] no charging below 0 degC
        "UT_DSG": [-200, 2000, -180, 5000],  # [EVE] discharge min -20 degC
        # 80 mV on the flat part of the curve is several % of SOC: a weak
        # or self-discharging cell (margin).
        "CELL_IMBALANCE": [80, 5000, 40, 10000],
    },
    # Spread is only meaningful where LFP's OCV curve is flat (margin):
    # under load the top knee shifts down into a wider window.
    "imbalance_window_mv": [3100, 3350],
    # Current limits as C-rate x 1000 (per mille of the capacity per hour).
    "max_charge_cpm": 500,  # [EVE] standard charge 0.5C
    "max_discharge_cpm": 1000,  # [EVE] continuous 1C
    # Derating windows (margin): full current below/above the first value,
    # zero at the second.
    "ccl_taper_mv": [3450, 3550],
    # Zero 50 mV short of the CELL_UV / CELL_OV trips (config checks it).
    "dcl_taper_mv": [2950, 2850],
    "balance_floor_mv": 3400,  # LFP: balance at the top knee only (margin)
    # SOC: the firmware's own OCV table, (SOC in 0.01 %, mV) at 25 degC,
    # rest-settled. Source: the same PyBaMM "Prada2013" derivation as the
    # simulator's host_tools/ocv.py (22 of its 41 points, denser at the
    # knees); on a real pack replace it with the cell maker's or your own
    # C/20 pseudo-OCV measurement. LFP's plateau (25..95 %) is too flat to
    # read SOC from; only the knees are used (soc_ocv_slope_mv_per_10pct).
    "ocv": [[0, 2500], [250, 2764], [500, 2893], [750, 2967], [1000, 3032], [1250, 3096],
            [1500, 3142], [1750, 3165], [2000, 3176], [2500, 3191], [3000, 3214], [3500, 3239],
            [4000, 3256], [5000, 3267], [6000, 3269], [7000, 3275], [7500, 3295], [8000, 3310],
            [9000, 3314], [9500, 3317], [9750, 3337], [10000, 3600]],
    # LFP's OCV differs by ~10-20 mV between the charge and discharge
    # branches (hysteresis, commonly reported; not in this table): read the
    # SOC only where 10 mV is < 2 % of SOC, i.e. >= 6 mV per 10 % -> 60
    # (here below ~17 % and above ~95 %; margin).
    "soc_ocv_slope_mv_per_10pct": 60,
    # What the cells alone say about the SOC (soc_bounds.py): a rested
    # cell's OCV may sit up to 20 mV from the table (the hysteresis above;
    # ~20 mV is the figure commonly reported for LFP, e.g. Dreyer et al.,
    # Nature Materials 9 (2010) 448; not re-checked here); the entropic
    # coefficient of LFP cells is reported within about +-0.3 mV/K
    # (assumption from published dU/dT measurements, not one cited table);
    # under load at up to 1C, beyond the R0 drop, a 100 Ah LFP cell shows
    # some 30-80 mV of RC and diffusion overpotential (margin: 120 mV).
    # R0 (the instant drop) x capacity: 30 mOhm Ah, i.e. 0.3 mOhm for a
    # 100 Ah cell, at the low end of the DC resistance LFP prismatic cells
    # show (assumption; too high a value would make the corrected voltage
    # read high, so measure your cell's 1 s pulse resistance and set
    # soc_cell_r_uohm).
    "cell_r_uohm_ah": 30000,
    "ocv_hyst_mv": 20,
    "ocv_temp_uv_per_k": 300,
    "soc_polar_mv": 120,
    # Usable share of the capacity vs temperature, (0.1 degC, per mille).
    # Assumption: the order of the discharge-capacity-vs-temperature curves
    # LFP cell makers publish (about 70 % at -20 degC, 85-90 % at 0 degC at
    # 0.2-0.5C); not taken line by line from a cited table (open item).
    "capacity_temp": [[-200, 700], [-100, 780], [0, 870], [100, 940], [250, 1000]],
    # End of charge: highest cell at or above this while the current has
    # tapered (margin: the CCL taper starts here, true SOC ~99 %).
    "soc_full_mv": 3450,
    # Bottom of the usable range: inside the discharge limit's taper (the
    # limit holds the lowest cell just above its zero point; margin).
    "soc_empty_mv": 2900,
    # Under current the particles' surface runs ahead of their bulk and the
    # voltage reads the surface: the empty synchronisation adds the gap, a
    # lag of the C-rate in SOC units (soc.py). Fitted by
    # host_tools/physics_fit.py to PyBaMM SPMe traces of the Prada2013 set
    # (the set the OCV table comes from) at 0.25/0.5/1C, the DFN holdout
    # traces never used: 0.16 % SOC RMS residual. A real cell differs:
    # fit your cell's constant-rate discharges and rests the same way.
    "soc_lag_fast_cpct_per_c": 675,
    "soc_lag_fast_ms": 15000,
    "soc_diffusion_cpct_per_c": 1097,
    "soc_diffusion_tau_ms": 314000,
}

NMC = {
    "chemistry": "NMC",
    "faults": {
        "CELL_OV_WARN": [4150, 1000, 4100, 2000],  # margin
        "CELL_OV": [4180, 1000, 4100, 5000],  # margin
        "CELL_OV_CRIT": [4200, 500, 4100, 5000],  # [SAM] 4.20 V max
        "CELL_UV_WARN": [3100, 1000, 3200, 2000],  # margin
        "CELL_UV": [3000, 1000, 3300, 10000],  # margin
        "CELL_UV_CRIT": [2650, 1000, 3000, 5000],  # [SAM] cut-off 2.65 V
        "OT_WARN": [400, 2000, 370, 5000],  # margin
        "OT_CHG": [450, 2000, 420, 10000],  # [SAM] charge max 45 degC
        "OT_DSG": [550, 2000, 520, 10000],  # margin below [SAM] discharge max 60 degC
        "OT_CRIT": [580, 1000, 520, 10000],  # 2 K below [SAM] 60 degC (margin)
        "UT_CHG": [0, 2000, 20, 5000],  # [SAM] charge min 0 degC
        "UT_DSG": [-100, 2000, -80, 5000],  # [SAM] discharge min -10 degC
        "CELL_IMBALANCE": [150, 5000, 80, 10000],  # margin
    },
    "imbalance_window_mv": [3300, 4100],
    "max_charge_cpm": 500,
    "max_discharge_cpm": 1000,
    # Zero 30 / 50 mV short of the CELL_OV / CELL_UV trips (config checks it).
    "ccl_taper_mv": [4080, 4150],
    "dcl_taper_mv": [3250, 3050],
    "balance_floor_mv": 3900,
    # From the same PyBaMM "Chen2020" derivation as host_tools/ocv.py
    # (every 10 %): NMC's curve is steep enough nearly everywhere.
    "ocv": [[0, 2500], [500, 3109], [1000, 3296], [1500, 3434], [2000, 3485], [3000, 3581],
            [4000, 3667], [5000, 3751], [6000, 3841], [7000, 3948], [8000, 4042], [9000, 4097],
            [9500, 4124], [10000, 4200]],
    # Assumption, as for LFP (open item).
    "capacity_temp": [[-200, 750], [-100, 830], [0, 900], [100, 950], [250, 1000]],
    "soc_full_mv": 4100,
    "soc_empty_mv": 3100,
    # NMC's hysteresis is small (a few mV, commonly reported; margin 10);
    # entropic coefficient within about +-0.4 mV/K and a higher
    # overpotential under load than LFP (assumptions, as for LFP).
    # R0 x capacity: 60 mOhm Ah (17 mOhm for a 3.5 Ah 18650; assumption,
    # the low end for such cells: measure and set soc_cell_r_uohm).
    "cell_r_uohm_ah": 60000,
    "ocv_hyst_mv": 10,
    "ocv_temp_uv_per_k": 400,
    "soc_polar_mv": 150,
    # Surface-SOC lag as for LFP, fitted to the Chen2020 SPMe traces
    # (host_tools/physics_fit.py; 0.15 % SOC RMS residual).
    "soc_lag_fast_cpct_per_c": 473,
    "soc_lag_fast_ms": 7000,
    "soc_diffusion_cpct_per_c": 207,
    "soc_diffusion_tau_ms": 148000,
}

# Chemistry-independent rows (this project's choices; units per row in
# faults.TABLE: n = count or flag, ms, pm = per mille, dc = 0.1 degC).
COMMON_FAULTS = {
    "VOLTAGE_CHANNEL": [1, 500, 1, 5000],
    "THERMISTOR": [1, 1000, 1, 5000],
    # A 0.1 mV ADC with ~1 mV of noise never repeats a reading for 3 s.
    "STUCK_READING": [3000, 0, 1000, 0],
    "STALE_MEASUREMENT": [1000, 0, 100, 2000],
    "COOLANT_OT": [450, 5000, 420, 10000],
    "PUMP_NO_FLOW": [900, 3000, 500, 5000],
    "COOLANT_FLOW_LOW": [400, 10000, 200, 10000],
    # ~0.5 degC across the pack at normal flow; 5 degC means little flow
    "COOLANT_DT": [50, 10000, 30, 10000],
    "COOLANT_SENSOR": [1, 2000, 1, 5000],
    # Contactor and auxiliary contact open within ~50 ms; 500 ms of closed
    # feedback after an open command means welded tips.
    "CONTACTOR_WELDED": [1, 500, 1, 2000],
    "PRECHARGE_FAILED": [1, 0, 1, 0],
    "INTERNAL_ERROR": [1, 0, 1, 0],
    "WATCHDOG_RESET": [1, 0, 1, 0],
    # 5 points of SOC outside what the cells allow, for 5 s (margin: the
    # band already holds every allowance; the delay rides out a load step)
    "SOC_IMPLAUSIBLE": [500, 5000, 100, 10000],
    # The chip's bring-up gets 2 s (a slow power-up is retried every scan);
    # its Safety Status bits already carry the chip's own delays.
    "FE_CONFIG": [1, 2000, 1, 0],
    "FE_COV": [1, 0, 1, 0],
    "FE_CUV": [1, 0, 1, 0],
    "FE_OCC": [1, 0, 1, 0],
    "FE_OCD": [1, 0, 1, 0],
    "FE_SCD": [1, 0, 1, 0],
    "FE_OTC": [1, 0, 1, 1000],
    "FE_OTD": [1, 0, 1, 1000],
    "FE_UTC": [1, 0, 1, 1000],
    "FE_UTD": [1, 0, 1, 1000],
    "FE_OTHER": [1, 0, 1, 1000],
    # the CAN service already waited its silent_ms / saw the bus-off
    "INVERTER_SILENT": [1, 0, 1, 0],
    "CAN_BUS": [1, 0, 1, 0],
    # 10 s without the broker (a restart of it passes unnoticed); clears at once
    "MQTT_DOWN": [1, 10000, 1, 0],
}

PRESETS = {"LFP": LFP, "NMC": NMC}

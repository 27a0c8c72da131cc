# Thermistors. The firmware converts NTC ADC counts to 0.1 degC with the
# configuration's table (config.Config._ntc_table, kernels.ntc_interp in the
# measure stage). Front ends that report a temperature instead (the
# BQ76952 computes its TS pins itself, in 0.1 K) are turned back into the
# counts that table expects, with the same table, so every board feeds the
# one conversion and its open/short thresholds.


def dc_to_raw(t_dc, tab_raw, tab_dc, n, adc_max):
    """0.1 degC -> NTC counts by linear interpolation in the config's table
    (tab_dc descends as tab_raw ascends). Above the table: a shorted
    thermistor (0); below it: an open one (adc_max)."""
    if t_dc > tab_dc[0]:
        return 0
    if t_dc < tab_dc[n - 1]:
        return adc_max
    i = 1
    while i < n - 1 and tab_dc[i] > t_dc:
        i += 1
    t0 = tab_dc[i - 1]
    t1 = tab_dc[i]
    r0 = tab_raw[i - 1]
    r1 = tab_raw[i]
    if t0 == t1:
        return r0
    return r0 + ((t0 - t_dc) * (r1 - r0) + (t0 - t1) // 2) // (t0 - t1)


def ratio_to_raw(v, vref, adc_max):
    """A thermistor divider read as a voltage against its reference
    (ratiometric): counts on the 0..adc_max scale the table expects."""
    if vref <= 0:
        return adc_max
    r = (v * adc_max + vref // 2) // vref
    return adc_max if r > adc_max else (0 if r < 0 else r)

# Coolant pump: off below the start temperature (with hysteresis), then a
# minimum duty rising linearly to full duty with the hottest cell.
from bms import signals as S


class Thermal:
    def __init__(self, cfg):
        self.start = cfg.pump_start_dc
        self.full = cfg.pump_full_dc
        self.hyst = cfg.pump_hyst_dc
        self.min_duty = cfg.pump_min_duty_pm
        self.running = False

    def tick(self, st, now_ms):
        t = st.sig[S.TEMP_MAX_DC]
        if self.running:
            if t < self.start - self.hyst:
                self.running = False
        elif t >= self.start:
            self.running = True
        if not self.running:
            st.pump_duty_pm = 0
            return
        if t >= self.full:
            duty = 1000
        elif t <= self.start:
            duty = self.min_duty
        else:
            duty = self.min_duty + (1000 - self.min_duty) * (t - self.start) // (self.full - self.start)
        st.pump_duty_pm = duty

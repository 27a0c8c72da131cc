# Coolant pump and pack heater.
#
# Pump: off until the hottest cell reaches the start temperature (stops
# again below start - hysteresis). While running: a PI controller on the
# hottest cell towards the setpoint, with conditional integration as
# anti-windup, plus feed-forward from the pack current (heat ~ I^2), never
# below the minimum duty. When the pack is cold and the pump idle, a slow
# prime/flush run circulates the coolant now and then so the loop stays
# primed and the pack evenly tempered.
#
# Heater (optional output): warms the pack while a charge source is present
# and the coldest cell is below the heater-on temperature (LFP must not be
# charged below 0 degC); the pump circulates at minimum duty meanwhile.
#
# Integer units: 0.1 degC, per mille (pm), ms. The integral is kept in
# pm * 1000 so small gains keep their resolution; its clamp keeps it a
# small int.
from bms import signals as S
from bms.state import IN_CHARGER

INT_SCALE = 1000


class Thermal:
    def __init__(self, cfg):
        self.start = cfg.pump_start_dc
        self.hyst = cfg.pump_hyst_dc
        self.setpoint = cfg.pump_setpoint_dc
        self.min_duty = cfg.pump_min_duty_pm
        self.kp = cfg.pump_kp_pm_per_dc
        self.ki = cfg.pump_ki_pm_per_dc_s
        self.ff_full = cfg.pump_ff_pm_at_1c
        self.cap = cfg.capacity_mah
        self.force = cfg.pump_force_pm
        self.prime_every = cfg.pump_prime_every_ms
        self.prime_for = cfg.pump_prime_ms
        self.heater = cfg.heater_enabled
        self.heat_on = cfg.heater_on_dc
        self.heat_off = cfg.heater_off_dc
        self.running = False
        self.integ = 0  # pm * INT_SCALE
        self.idle_ms = 0
        self.prime_ms = 0

    def tick(self, st, now_ms):
        sig = st.sig
        t = sig[S.TEMP_MAX_DC]
        dt = st.dt_ms
        # heater
        if self.heater and st.inputs & IN_CHARGER and not st.open_req:
            tmin = sig[S.TEMP_MIN_DC]
            if st.heater_on:
                if tmin >= self.heat_off:
                    st.heater_on = 0
            elif tmin < self.heat_on:
                st.heater_on = 1
        else:
            st.heater_on = 0
        if self.force >= 0:
            st.pump_duty_pm = self.force  # test and comparison runs
            return
        if self.running:
            if t < self.start - self.hyst:
                self.running = False
                self.integ = 0
        elif t >= self.start:
            self.running = True
        if not self.running:
            duty = 0
            if st.heater_on:
                duty = self.min_duty
            elif self.prime_every:
                self.idle_ms += dt
                if self.idle_ms >= self.prime_every:
                    self.prime_ms += dt
                    duty = self.min_duty
                    if self.prime_ms >= self.prime_for:
                        self.idle_ms = 0
                        self.prime_ms = 0
            st.pump_duty_pm = duty
            return
        self.idle_ms = 0
        err = t - self.setpoint  # 0.1 degC, > 0 when too hot
        cur = sig[S.CURRENT_MA]
        if cur < 0:
            cur = -cur
        c_pm = cur * 1000 // self.cap  # C-rate in per mille
        if c_pm > 10000:
            c_pm = 10000
        ff = self.ff_full * c_pm // 1000 * c_pm // 1000
        p = self.kp * err
        raw = p + ff + self.integ // INT_SCALE
        # anti-windup: integrate only while the output is not pinned in the
        # direction the error pushes it
        e = 200 if err > 200 else (-200 if err < -200 else err)
        step = self.ki * e * dt  # pm * 1000 (ki per s, dt in ms); <= 100 * 200 * 10000
        if (raw < 1000 or step < 0) and (raw > self.min_duty or step > 0):
            self.integ += step
            lim = 1000 * INT_SCALE
            if self.integ > lim:
                self.integ = lim
            elif self.integ < -lim:
                self.integ = -lim
        duty = p + ff + self.integ // INT_SCALE
        if duty > 1000:
            duty = 1000
        elif duty < self.min_duty:
            duty = self.min_duty
        st.pump_duty_pm = duty

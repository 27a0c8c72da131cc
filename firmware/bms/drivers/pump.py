# Coolant pump: PWM duty out, flow-meter (or tachometer) pulses in, counted
# by a pin interrupt. The handler only increments a small int, so it
# allocates nothing (a hard IRQ on the RP2040 must not; MicroPython docs,
# "Writing interrupt handlers"). The count wraps at 16 bits like the sim
# frame's counter; the measure stage takes differences modulo 2**16.
# (On the RP2040 a PIO state machine could count instead; one pulse per
# few ms is well within what a pin IRQ handles.)


class Pump:
    """pwm: machine.PWM (duty_u16); tach: machine.Pin or None; trigger:
    Pin.IRQ_FALLING or similar."""

    def __init__(self, pwm, tach=None, trigger=None, hard=True):
        self.pwm = pwm
        self.count = 0
        self.duty_pm = -1
        self._handler = self._pulse  # the bound method, made once
        if tach is not None:
            try:
                tach.irq(handler=self._handler, trigger=trigger, hard=hard)
            except (TypeError, ValueError):
                tach.irq(handler=self._handler, trigger=trigger)  # ports without hard IRQs
        self.set_duty_pm(0)

    def _pulse(self, pin):
        self.count = (self.count + 1) & 0xFFFF

    def set_duty_pm(self, pm):
        if pm != self.duty_pm:
            if pm < 0:
                pm = 0
            elif pm > 1000:
                pm = 1000
            self.pwm.duty_u16(pm * 65535 // 1000)
            self.duty_pm = pm

    def pulses(self):
        return self.count

    def off(self):
        self.set_duty_pm(0)

# The board's main loop: a fixed period without drift, the watchdog fed only
# after a healthy tick, the serial console served between ticks, garbage
# collection at one fixed point of the cycle, and any escape ending in the
# safe state: Ctrl-C then gives the REPL (outputs already safe), any other
# exception resets the board rather than leave it sitting in a REPL.
#
# Hardware is passed in: `clock` offers ticks_ms/ticks_add/ticks_diff/
# sleep_ms (the `time` module on a board), `wdt` has feed() (machine.WDT),
# `reset` is machine.reset. Tests hand in models of all three.
import gc
from bms import ticks


class BoardRunner:
    def __init__(self, app, period_ms, clock, wdt=None, reset=None, console=None, services=()):
        self.app = app
        self.console = console  # has service(now_ms); never blocks
        self.services = services  # the same contract (MQTT), served after the console
        self.period = period_ms
        self.clock = clock
        self.wdt = wdt
        self.reset = reset
        self.overruns = 0
        self.ticks = 0
        self.stopped_by = None

    def healthy(self):
        # The watchdog is fed only while the tick runs clean: after an
        # internal error the board is left to reset by the watchdog.
        return not self.app.state.internal_error

    def run(self, max_ticks=-1):
        c = self.clock
        app = self.app
        deadline = c.ticks_ms()
        now = ticks.wrap(deadline)
        try:
            while self.ticks != max_ticks:
                now = ticks.wrap(c.ticks_ms())  # the firmware's clock (bms/ticks.py) on every port
                app.tick(now)
                if self.wdt is not None and self.healthy():
                    self.wdt.feed()
                if self.console is not None:
                    self.console.service(now)  # after protection, never before it
                for s in self.services:
                    s.service(now)
                gc.collect()  # here, every cycle, so it never lands mid-tick
                self.ticks += 1
                deadline = c.ticks_add(deadline, self.period)
                wait = c.ticks_diff(deadline, c.ticks_ms())
                if wait > 0:
                    c.sleep_ms(wait)
                else:
                    self.overruns += 1
                    if wait < -self.period:
                        deadline = c.ticks_ms()  # a long stall: start afresh, do not race
        except BaseException as e:  # noqa: Ctrl-C, SystemExit and bugs alike
            app.safe(now)  # outputs first
            app.hal.write(app.state)
            self.stopped_by = e
            if self.reset is not None and not isinstance(e, KeyboardInterrupt):
                self.reset()
            raise

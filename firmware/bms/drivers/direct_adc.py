# The board's own ADC for small packs and demos: one ADC input behind an
# analog multiplexer (CD74HC4051 8:1 / CD74HC4067 16:1, select pins S0..),
# each channel through a resistor divider (or a difference amplifier per
# cell), with a per-channel calibration.
#
# machine.ADC.read_u16() returns 0..65535 whatever the converter's width
# (MicroPython docs, machine.ADC); the RP2040 ADC is 12-bit (RP2040
# datasheet, section 4.9 "ADC and Temperature Sensor"). The multiplexer
# needs a settling time after the select pins change (the RC of the divider
# and the mux on-resistance into the ADC's sample capacitor): settle_us.
from array import array


class AnalogMux:
    """adc: machine.ADC (read_u16); select: Pins S0, S1, ... (value);
    clock: sleep_us. samples: readings averaged per channel."""

    def __init__(self, adc, select, clock, settle_us=50, samples=4):
        self.adc = adc
        self.sel = select
        self.clock = clock
        self.settle_us = settle_us
        self.samples = samples
        self.channel = -1

    def read_u16(self, ch):
        if ch != self.channel:
            sel = self.sel
            for i in range(len(sel)):
                sel[i].value((ch >> i) & 1)
            self.channel = ch
            self.clock.sleep_us(self.settle_us)
        return sample(self.adc, self.samples)


def sample(adc, n):
    s = 0
    for _ in range(n):
        s += adc.read_u16()
    return s // n


class DirectCells:
    """Cell voltages from the mux. mode "taps": channel k reads the tap
    above cell k to pack minus through a divider, cell k = tap k - tap k-1;
    mode "cells": channel k reads cell k through a difference amplifier.
    gain_uv[k]: microvolts per read_u16 count at the battery side (divider
    included); offset_mv[k]: added after the gain. Results in 0.1 mV."""

    def __init__(self, mux, channels, gain_uv, offset_mv, mode="taps"):
        if mode not in ("taps", "cells"):
            raise ValueError("direct_adc: mode must be 'taps' or 'cells', got %r" % mode)
        n = len(channels)
        if len(gain_uv) != n or len(offset_mv) != n:
            raise ValueError("direct_adc: one gain and one offset per channel (%d channels)" % n)
        for g in gain_uv:
            if not 0 < g < 16384:
                raise ValueError("direct_adc: gain_uv %r outside 1..16383 (65535 counts x gain must stay a small int)" % g)
        self.mux = mux
        self.ch = bytearray(channels)
        self.gain = array("i", gain_uv)
        self.off = array("i", [10 * o for o in offset_mv])
        self.taps = mode == "taps"
        self.n = n
        self.v = array("i", [0] * n)  # per channel, 0.1 mV
        self.top_01mv = 0

    def read(self, out):
        """out[k] = cell k in 0.1 mV (clamped to 0..65535)."""
        v = self.v
        mux = self.mux
        for k in range(self.n):
            v[k] = mux.read_u16(self.ch[k]) * self.gain[k] // 100 + self.off[k]
        prev = 0
        for k in range(self.n):
            c = v[k] - prev if self.taps else v[k]
            if self.taps:
                prev = v[k]
            out[k] = 0 if c < 0 else (65535 if c > 65535 else c)
        self.top_01mv = v[self.n - 1] if self.taps else 0
        return 0

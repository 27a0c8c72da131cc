# Runs under MicroPython: a HAL model of a healthy, resting pack for tests
# that need an App without the plant. Cells read about `mv` with a little
# dither (so no channel looks stuck), thermistors about 25 degC, no current,
# contactor feedback following the outputs, the enable input on.
from bms.state import IN_ENABLE


class RestingPackHal:
    def __init__(self, n, m, mv=3300, spread=3):
        self.n, self.m, self.k, self.mv, self.spread = n, m, 0, mv, spread

    def read(self, st):
        self.k += 1
        for i in range(self.n):
            st.raw_cells[i] = self.mv * 10 + (self.k + i) % self.spread
        for i in range(self.m):
            st.raw_temps[i] = 2048 + (self.k + i) % 2
        st.raw_cool[0] = st.raw_cool[1] = 2048
        st.raw_current = 0
        st.raw_pack = sum(st.raw_cells) // 100
        st.raw_bus = st.raw_pack
        st.inputs = IN_ENABLE | (st.outputs & 7)
        st.fresh = 1

    def write(self, st):
        pass

    def safe(self):
        pass

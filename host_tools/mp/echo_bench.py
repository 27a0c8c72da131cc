# The firmware's half of the transport bench (host_tools/bench.py): answers
# each sensor-sized frame with an actuator-sized one, over the same kind of
# link the simulator gives the sim HAL (bms.hal.sim.open_link), no tick.
#   micropython echo_bench.py FIRMWARE_DIR LINK RX_BYTES TX_BYTES
import sys

sys.path.insert(0, sys.argv[1])
from bms.hal.sim import open_link  # noqa: E402

s = open_link(sys.argv[2])
rx = bytearray(int(sys.argv[3]))
tx = bytearray(int(sys.argv[4]))
while s.readinto(rx):
    s.write(tx)

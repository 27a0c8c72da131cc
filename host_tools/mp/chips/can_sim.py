# The inverter CAN in the simulator (MicroPython, inside the firmware
# process next to the sim HAL): the firmware's CAN service drives an
# MCP2515 model on a bus; the plant's inverter is a peer on that bus that
# sends its keep-alive (0x305) every second and hands every frame it
# receives to the host plant through a file (one line per frame:
# "t_us id hexbytes"), where host_tools/inverter.py decodes it with the
# project's DBC. Time is the plant's: the model's clock follows now_ms.
import time
from chips.bench import Bench
from chips.mcp2515 import MCP2515Model, CanBus, Peer
from bms.drivers.mcp2515 import MCP2515
from bms.can_service import CanService, settings


class SimCan:
    def __init__(self, app, profile, out_path, wall=False):
        # wall: stamp the frames with the wall clock (the virtual board, in
        # real time) instead of the plant's time
        self.wall = wall
        self.t0 = time.ticks_us()
        b = Bench()
        self.clock = b.clock
        irq = b.pin("can_int")
        irq.v = 1
        self.chip = MCP2515Model(self.clock, 8000000, irq)
        self.bus = CanBus(500000)
        self.bus.attach(self.chip)
        self.peer = Peer()
        self.peer.rx = None  # a long run: forward, do not keep
        self.bus.attach(self.peer)
        self.out = open(out_path, "w")
        self.peer.on_rx = self._forward
        spi = b.spi("can")
        spi.chain = self.chip
        cs = b.pin("can_cs")
        cs.listener = self.chip.cs
        self.svc = CanService(app, MCP2515(spi, cs, irq, 8000000), settings({"profile": profile}, app.cfg), 0, self.clock)
        self.next_keepalive = 0
        self.written = 0

    def _forward(self, t_us, can_id, data):
        self.written = 1
        if self.wall:
            t_us = time.ticks_diff(time.ticks_us(), self.t0)
        self.out.write("%d %x %s\n" % (t_us, can_id, "".join("%02x" % x for x in data)))

    def service(self, now_ms):
        self.clock.us = now_ms * 1000
        if now_ms >= self.next_keepalive:
            self.peer.queue(self.clock.us, 0x305, bytes(8))
            self.next_keepalive = now_ms + 1000
        self.chip.advance()
        self.svc.service(now_ms)
        self.chip.advance()  # what was queued now leaves now
        if self.written:
            self.out.flush()
            self.written = 0

"""The plant's inverter/charger on the CAN bus (closed loop over the real
protocol, `bmsctl sim --can PROFILE`): it reads the frames the firmware
sent through the MCP2515 model (host_tools/mp/chips/can_sim.py writes
them, one line each), decodes them with the project's DBC
(host_tools/can/bms.dbc) through cantools, and takes its charge voltage and
current limits from 0x351 only, not from the sim frame. Without a 0x351
for `timeout_s` (3 s, as a Victron system: "#67 No BMS") it stops charging
and discharging."""
from __future__ import annotations

from pathlib import Path

import cantools

from host_tools.firmware import ROOT

DBC = ROOT / "host_tools" / "can" / "bms.dbc"
LIMITS_ID = 0x351


class CanInverter:
    def __init__(self, frames_path: Path, timeout_s: float = 3.0, cut_at_s: float | None = None):
        self.db = cantools.database.load_file(str(DBC))
        self.path = Path(frames_path)
        self.f = None
        self.partial = ""
        self.timeout_s = timeout_s
        self.cut_at_s = cut_at_s  # the cable is cut here: no frame reaches the inverter after it
        self.last_limits_s: float | None = None
        self.cvl_v = self.ccl_a = self.dcl_a = 0.0
        self.frames = 0
        self.decode_errors = 0
        self.stopped_at_s: float | None = None  # when the timeout last stopped it

    def _lines(self):
        if self.f is None:
            if not self.path.exists():
                return []
            self.f = open(self.path)
        text = self.partial + self.f.read()
        lines = text.split("\n")
        self.partial = lines.pop()
        return lines

    def poll(self, t_s: float) -> None:
        """Reads the frames that arrived by plant time t_s."""
        for ln in self._lines():
            t_us, cid, data = ln.split()
            if self.cut_at_s is not None and int(t_us) / 1e6 >= self.cut_at_s:
                continue
            self.frames += 1
            if int(cid, 16) != LIMITS_ID:
                continue
            try:
                m = self.db.decode_message(LIMITS_ID, bytes.fromhex(data))
            except Exception:  # noqa: a frame the DBC cannot decode changes nothing
                self.decode_errors += 1
                continue
            self.cvl_v = m["ChargeVoltageLimit"]
            self.ccl_a = max(0.0, m["ChargeCurrentLimit"])
            self.dcl_a = max(0.0, m["DischargeCurrentLimit"])
            self.last_limits_s = int(t_us) / 1e6
        if self.alive(t_s):
            self.stopped_at_s = None
        elif self.stopped_at_s is None and self.last_limits_s is not None:
            self.stopped_at_s = t_s

    def alive(self, t_s: float) -> bool:
        return self.last_limits_s is not None and t_s - self.last_limits_s <= self.timeout_s

    def limits(self, t_s: float) -> tuple[float, float, float | None]:
        """(charge A, discharge A, charge voltage limit V or None)."""
        if not self.alive(t_s):
            return 0.0, 0.0, None
        return self.ccl_a, self.dcl_a, self.cvl_v

"""The host end of the sim HAL: starts the firmware under the MicroPython
unix port, accepts its connection, reads its hello, then exchanges one
sensor frame for one actuator frame per tick (lock-step)."""
from __future__ import annotations

import json
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from host_tools import frames
from host_tools.firmware import FIRMWARE, micropython_binary


class FirmwareError(RuntimeError):
    pass


# `bmsctl sim --afe NAME`: the front end's chip model and the board file
# whose wiring the firmware's board HAL is built from.
AFE_BOARDS = {"bq76952": ("bq76952", "pico_bq76952.json"), "ltc6813": ("ltc6813", "esp32_2x_ltc6813.json"),
              "adc": ("direct_adc", "pico_adc_4s.json")}


def afe_args(name: str) -> tuple:
    from host_tools.boardcfg import load_board_config
    from host_tools.firmware import BOARD_CONFIGS, ROOT
    afe, board = AFE_BOARDS[name]
    path = BOARD_CONFIGS / board
    load_board_config(path)  # the file itself must be valid before it is adapted to the pack
    return ("--afe", afe, "--board", str(path), "--chips", str(ROOT / "host_tools" / "mp"))


@dataclass
class Actuators:
    flags: int
    seq: int
    outputs: int
    contactor_state: int
    pump_duty_pm: int
    heater: int
    balance_count: int
    ccl_ma: int
    dcl_ma: int
    soc_cpct: int
    faults: int  # bit per fault-table row
    events: list  # (firmware ms, code, arg, value), oldest first
    balance: int  # bit per cell
    grid_ma: int = 0  # export current asked of the inverter
    grid_mwh_event: int = 0
    capacity_mah: int = 0
    grid_active: int = 0
    grid_reason: int = 0
    soc_sync: int = 0


class FirmwareLink:
    def __init__(self, config: dict, kernels: str = "viper", firmware_dir: Path | None = None,
                 mp_args=(), reset_cause: str = "power", state_dir: Path | None = None,
                 afe: str | None = None):
        self.config = config
        self.kernels = kernels
        self.firmware_dir = Path(firmware_dir or FIRMWARE)
        self.mp_args = tuple(mp_args)
        self.reset_cause = reset_cause
        self.state_dir = state_dir
        self.afe = afe  # None: the sim HAL; else a front end's chip model (AFE_BOARDS)
        self.hello: dict = {}
        self.log = ""
        self.recorder = None  # a list: (sensor frame, actuator frame) bytes of every tick (host_tools/mp32/replay.py)

    @classmethod
    def attach(cls, conn: socket.socket, hello: dict) -> "FirmwareLink":
        """A link over a connection someone else accepted (the virtual
        board's plant: the firmware process is the board's, not ours)."""
        link = cls({})
        link.conn = conn
        link.hello = hello
        link._log_path = None
        link.recorder = None
        link.sensor = frames.sensor_struct(hello["cells"], hello["temps"])
        link.out_size = frames.actuator_size(hello["cells"])
        return link

    def __enter__(self):
        self._tmp = tempfile.TemporaryDirectory(prefix="bmsfw-")
        tmp = Path(self._tmp.name)
        cfg_path = tmp / "config.json"
        cfg_path.write_text(json.dumps(self.config))
        self._log_path = tmp / "firmware.log"
        self._srv = socket.socket()
        self._srv.bind(("127.0.0.1", 0))
        self._srv.listen(1)
        self._srv.settimeout(20)
        port = self._srv.getsockname()[1]
        self._logf = open(self._log_path, "wb")
        self.proc = subprocess.Popen(
            [micropython_binary(), *self.mp_args, str(self.firmware_dir / "main.py"), "--config", str(cfg_path),
             "--sim", f"127.0.0.1:{port}", "--kernels", self.kernels, "--reset-cause", self.reset_cause,
             *(("--state-dir", str(self.state_dir)) if self.state_dir else ()),
             *(afe_args(self.afe) if self.afe else ())],
            cwd=str(self.firmware_dir), stdout=self._logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        self.conn = None
        try:
            try:
                self.conn, _ = self._srv.accept()
            except socket.timeout:
                raise FirmwareError("firmware did not connect: " + self._read_log()) from None
            self.conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.conn.settimeout(30)
            hello = json.loads(self._recv_line())
            if "error" in hello:
                raise FirmwareError("firmware rejected the configuration: " + hello["error"])
        except BaseException:
            self._close()
            raise
        self.hello = hello
        n, m = hello["cells"], hello["temps"]
        self.sensor = frames.sensor_struct(n, m)
        self.out_size = frames.actuator_size(n)
        return self

    def __exit__(self, exc_type, exc, tb):
        self._close()
        if exc_type is None and self.proc.returncode not in (0, None):
            raise FirmwareError(f"firmware exited with {self.proc.returncode}: {self.log}")
        return False

    def _close(self):
        if self.conn is not None:
            self.conn.close()
        self._srv.close()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._logf.close()
        self.log = self._read_log()
        self._tmp.cleanup()

    def _read_log(self) -> str:
        if self._log_path is None:
            return ""
        try:
            return self._log_path.read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    def _recv_line(self, limit: int = 1 << 20) -> bytes:
        buf = bytearray()
        while not buf.endswith(b"\n"):
            chunk = self.conn.recv(1)
            if not chunk:
                raise FirmwareError("firmware closed the connection: " + self._read_log())
            buf += chunk
            if len(buf) > limit:
                raise FirmwareError("firmware hello too long")
        return bytes(buf)

    def _recv_exact(self, n: int) -> bytes:
        buf = bytearray()
        while len(buf) < n:
            chunk = self.conn.recv(n - len(buf))
            if not chunk:
                raise FirmwareError("firmware closed the connection: " + self._read_log())
            buf += chunk
        return bytes(buf)

    def exchange(self, flags, seq, now_ms, cells_raw, temps_raw, current_raw, pack_raw, bus_raw,
                 cool_in_raw, cool_out_raw, flow_pulses, inputs, command=(0, 0, 0)) -> Actuators:
        sent = self.sensor.pack(
            frames.SENSOR_MAGIC, frames.VERSION, flags, seq % frames.TICKS_PERIOD, now_ms % frames.TICKS_PERIOD,
            *cells_raw, *temps_raw, current_raw, pack_raw, bus_raw, cool_in_raw, cool_out_raw,
            flow_pulses & 0xFFFF, inputs, 0, command[0], 0, 0, command[1], command[2])
        self.conn.sendall(sent)
        data = self._recv_exact(self.out_size)
        if self.recorder is not None:
            self.recorder.append((sent, data))
        (magic, _ver, aflags, aseq, outputs, cstate, duty, heater, bal_count, ccl, dcl, soc, _pad,
         fbytes, n_ev, _p1, _p2) = frames.ACT_HEAD.unpack_from(data)
        if magic != frames.ACT_MAGIC or aseq != seq % frames.TICKS_PERIOD:
            raise FirmwareError(f"bad actuator frame for seq {seq}: magic {magic:#x}, seq {aseq}")
        events = [frames.EVENT.unpack_from(data, frames.EV_OFF + 4 + 12 * j) for j in range(n_ev)]
        gma, gmwh, cap, gact, greason, sync, _p3 = frames.GRID.unpack_from(data, frames.GRID_OFF)
        return Actuators(aflags, aseq, outputs, cstate, duty, heater, bal_count, ccl, dcl, soc,
                         int.from_bytes(fbytes, "little"), events, int.from_bytes(data[frames.ACT_FIXED:], "little"),
                         gma, gmwh, cap, gact, greason, sync)

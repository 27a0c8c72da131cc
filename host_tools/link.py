"""The host end of the sim HAL: starts the firmware under the MicroPython
unix port on one end of an AF_UNIX socket pair, reads its hello, then
exchanges one sensor frame for one actuator frame per tick (lock-step): one
send and one receive, into buffers made once."""
from __future__ import annotations

import json
import socket
import struct
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
                 afe: str | None = None, extra_args=()):
        self.config = config
        self.extra_args = tuple(extra_args)  # more firmware options (the inverter CAN: --can ...)
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
        link._setup(hello)
        return link

    def __enter__(self):
        self._tmp = tempfile.TemporaryDirectory(prefix="bmsfw-")
        tmp = Path(self._tmp.name)
        cfg_path = tmp / "config.json"
        cfg_path.write_text(json.dumps(self.config))
        self._log_path = tmp / "firmware.log"
        # A connected AF_UNIX pair, one end inherited by the firmware as a
        # file descriptor: no listening port, no accept, and a round trip
        # ~1/3 cheaper than TCP loopback (bench.py transport figures).
        self.conn, fw_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        self._logf = open(self._log_path, "wb")
        try:
            self.proc = subprocess.Popen(
                [micropython_binary(), *self.mp_args, str(self.firmware_dir / "main.py"), "--config", str(cfg_path),
                 "--sim", f"fd:{fw_end.fileno()}", "--kernels", self.kernels, "--reset-cause", self.reset_cause,
                 *(("--state-dir", str(self.state_dir)) if self.state_dir else ()),
                 *(afe_args(self.afe) if self.afe else ()), *self.extra_args],
                cwd=str(self.firmware_dir), stdout=self._logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                pass_fds=(fw_end.fileno(),))
        except BaseException:
            self.conn.close()
            self._logf.close()
            self._tmp.cleanup()
            raise
        finally:
            fw_end.close()  # ours: the firmware's end closes when it exits, so a dead firmware reads as EOF
        try:
            _recv_timeout(self.conn, HELLO_TIMEOUT_S)
            hello = json.loads(self._recv_line())
            if "error" in hello:
                raise FirmwareError("firmware rejected the configuration: " + hello["error"])
            _recv_timeout(self.conn, TICK_TIMEOUT_S)
        except BaseException:
            self._close()
            raise
        self._setup(hello)
        return self

    def _setup(self, hello: dict):
        self.hello = hello
        n, m = hello["cells"], hello["temps"]
        self.sensor = frames.sensor_struct(n, m)
        self.out_size = frames.actuator_size(n)
        self.act = frames.actuator_struct(n)
        self._tx = bytearray(self.sensor.size)
        self._rx = bytearray(self.out_size)
        self._rxv = memoryview(self._rx)

    def __exit__(self, exc_type, exc, tb):
        self._close()
        if exc_type is None and self.proc.returncode not in (0, None):
            raise FirmwareError(f"firmware exited with {self.proc.returncode}: {self.log}")
        return False

    def _close(self):
        self.conn.close()
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
            try:
                chunk = self.conn.recv(1)
            except (BlockingIOError, socket.timeout):
                raise FirmwareError(f"no hello from the firmware within {HELLO_TIMEOUT_S} s: " + self._read_log()) from None
            if not chunk:
                raise FirmwareError("firmware closed the connection: " + self._read_log())
            buf += chunk
            if len(buf) > limit:
                raise FirmwareError("firmware hello too long")
        return bytes(buf)

    def _recv_rest(self, got: int) -> None:
        # A first read that was short, timed out (-1) or hit the end (0);
        # a frame split over reads is rare on a local stream socket.
        while True:
            if got < 0:
                raise FirmwareError("firmware did not answer (the receive timed out): " + self._read_log())
            if got == 0:
                raise FirmwareError("firmware closed the connection: " + self._read_log())
            try:
                r = self.conn.recv_into(self._rxv[got:])
            except (BlockingIOError, socket.timeout):
                got = -1
                continue
            if r == 0:
                got = 0
                continue
            got += r
            if got >= self.out_size:
                return

    def exchange(self, flags, seq, now_ms, cells_raw, temps_raw, current_raw, pack_raw, bus_raw,
                 cool_in_raw, cool_out_raw, flow_pulses, inputs, command=(0, 0, 0)) -> Actuators:
        # One send and (almost always) one receive per tick, into buffers
        # made once.
        self.sensor.pack_into(
            self._tx, 0, frames.SENSOR_MAGIC, frames.VERSION, flags, seq % frames.TICKS_PERIOD,
            now_ms % frames.TICKS_PERIOD, *cells_raw, *temps_raw, current_raw, pack_raw, bus_raw, cool_in_raw,
            cool_out_raw, flow_pulses & 0xFFFF, inputs, 0, command[0], 0, 0, command[1], command[2])
        self.conn.sendall(self._tx)
        try:
            got = self.conn.recv_into(self._rx)
        except (BlockingIOError, socket.timeout):
            got = -1
        if got != self.out_size:
            self._recv_rest(got)
        if self.recorder is not None:
            self.recorder.append((bytes(self._tx), bytes(self._rx)))
        return self.parse(seq)

    def parse(self, seq: int) -> Actuators:
        """The actuator frame in the receive buffer, which must answer tick seq."""
        f = self.act.unpack_from(self._rx)
        if f[0] != frames.ACT_MAGIC or f[3] != seq % frames.TICKS_PERIOD:
            raise FirmwareError(f"bad actuator frame for seq {seq}: magic {f[0]:#x}, seq {f[3]}")
        n_ev = f[14]
        events = [f[_EV0 + 4 * j:_EV0 + 4 * j + 4] for j in range(n_ev)] if n_ev else []
        return Actuators(f[2], f[3], f[4], f[5], f[6], f[7], f[8], f[9], f[10], f[11],
                         int.from_bytes(f[13], "little"), events, int.from_bytes(f[-1], "little"),
                         f[_GRID0], f[_GRID0 + 1], f[_GRID0 + 2], f[_GRID0 + 3], f[_GRID0 + 4], f[_GRID0 + 5])


# Field indexes in frames.actuator_struct()'s tuple.
_EV0 = 17  # after ACT_HEAD's 17 fields
_GRID0 = _EV0 + 4 * frames.EV_SLOTS


def _recv_timeout(conn: socket.socket, seconds: float) -> None:
    """A blocking socket whose receive gives up after `seconds` (the kernel's
    SO_RCVTIMEO: no poll() before every recv, as settimeout() would add)."""
    conn.settimeout(None)
    sec = int(seconds)
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, struct.pack("ll", sec, int((seconds - sec) * 1e6)))


HELLO_TIMEOUT_S = 30
TICK_TIMEOUT_S = 30

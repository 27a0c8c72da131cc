"""The host end of the sim HAL: starts the firmware under the MicroPython
unix port with a pair of pipes to it, reads its hello, then exchanges one
sensor frame for one actuator frame per tick (lock-step): one write, one
poll (the firmware's answer has a deadline) and one read, into buffers made
once."""
from __future__ import annotations

import json
import os
import select
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
        self._log_path = None  # the firmware's output, while we run it
        self.conn = None  # a socket when attached to one (the virtual board), else the pipes' descriptors alone

    @classmethod
    def attach(cls, conn: socket.socket, hello: dict) -> "FirmwareLink":
        """A link over a connection someone else accepted (the virtual
        board's plant: the firmware process is the board's, not ours)."""
        link = cls({})
        link.conn = conn
        link._fds(conn.fileno(), conn.fileno())
        link.hello = hello
        link._setup(hello)
        t = conn.gettimeout()  # the acceptor's deadline for an answer, if it set one
        if t:
            link.timeout_ms = int(t * 1000)
        return link

    def _fds(self, rfd: int, wfd: int) -> None:
        # Frames are read from rfd and written to wfd (one socket: both the
        # same); every read waits in poll() for at most its deadline.
        self.rfd, self.wfd = rfd, wfd
        self._poll = select.poll()
        self._poll.register(rfd, select.POLLIN)
        self.timeout_ms = int(HELLO_TIMEOUT_S * 1000)

    def __enter__(self):
        self._tmp = tempfile.TemporaryDirectory(prefix="bmsfw-")
        tmp = Path(self._tmp.name)
        cfg_path = tmp / "config.json"
        cfg_path.write_text(json.dumps(self.config))
        self._log_path = tmp / "firmware.log"
        # Two pipes, the firmware's ends inherited as file descriptors: no
        # listening port, no accept, and a round trip ~60 % of an AF_UNIX
        # socket pair's and ~45 % of TCP loopback's (bench.py transport
        # figures). The firmware's ends are closed here once it has them,
        # so a dead firmware reads as EOF and writes as a broken pipe.
        to_fw_r, to_fw_w = os.pipe()
        from_fw_r, from_fw_w = os.pipe()
        self._fds(from_fw_r, to_fw_w)
        self._logf = open(self._log_path, "wb")
        try:
            self.proc = subprocess.Popen(
                [micropython_binary(), *self.mp_args, str(self.firmware_dir / "main.py"), "--config", str(cfg_path),
                 "--sim", f"fd:{to_fw_r},{from_fw_w}", "--kernels", self.kernels, "--reset-cause", self.reset_cause,
                 *(("--state-dir", str(self.state_dir)) if self.state_dir else ()),
                 *(afe_args(self.afe) if self.afe else ()), *self.extra_args],
                cwd=str(self.firmware_dir), stdout=self._logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                pass_fds=(to_fw_r, from_fw_w))
        except BaseException:
            self._close_fds()
            self._logf.close()
            self._tmp.cleanup()
            raise
        finally:
            os.close(to_fw_r)
            os.close(from_fw_w)
        try:
            hello = json.loads(self._recv_line())
            if "error" in hello:
                raise FirmwareError("firmware rejected the configuration: " + hello["error"])
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
        self.timeout_ms = int(TICK_TIMEOUT_S * 1000)

    def __exit__(self, exc_type, exc, tb):
        self._close()
        if exc_type is None and self.proc.returncode not in (0, None):
            raise FirmwareError(f"firmware exited with {self.proc.returncode}: {self.log}")
        return False

    def _close_fds(self):
        if self.conn is not None:
            self.conn.close()
            return
        for fd in {self.rfd, self.wfd}:
            os.close(fd)

    def _close(self):
        self._close_fds()
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

    def _read(self, view) -> int:
        """One read into view within the deadline: bytes read, 0 at the
        end of the stream, -1 when the deadline passed."""
        if not self._poll.poll(self.timeout_ms):
            return -1
        try:
            return os.readv(self.rfd, (view,))
        except ConnectionResetError:
            return 0

    def _write(self, data) -> None:
        try:
            off = os.write(self.wfd, data)
            while off < len(data):  # rare: a pipe takes a frame whole
                off += os.write(self.wfd, memoryview(data)[off:])
        except (BrokenPipeError, ConnectionResetError):
            raise FirmwareError("firmware closed the connection: " + self._read_log()) from None

    def _recv_line(self, limit: int = 1 << 20) -> bytes:
        buf = bytearray()
        one = bytearray(1)
        while not buf.endswith(b"\n"):
            r = self._read(one)
            if r < 0:
                raise FirmwareError(f"no hello from the firmware within {HELLO_TIMEOUT_S} s: " + self._read_log())
            if not r:
                raise FirmwareError("firmware closed the connection: " + self._read_log())
            buf += one
            if len(buf) > limit:
                raise FirmwareError("firmware hello too long")
        return bytes(buf)

    def _recv_rest(self, got: int) -> None:
        # A first read that was short, timed out (-1) or hit the end (0);
        # a frame split over reads is rare on a pipe or a local socket.
        while True:
            if got < 0:
                raise FirmwareError("firmware did not answer (the receive timed out): " + self._read_log())
            if got == 0:
                raise FirmwareError("firmware closed the connection: " + self._read_log())
            r = self._read(self._rxv[got:])
            if r <= 0:
                got = r
                continue
            got += r
            if got >= self.out_size:
                return

    def exchange(self, flags, seq, now_ms, cells_raw, temps_raw, current_raw, pack_raw, bus_raw,
                 cool_in_raw, cool_out_raw, flow_pulses, inputs, command=(0, 0, 0)) -> Actuators:
        # One write, one poll and (almost always) one read per tick, into
        # buffers made once.
        self.sensor.pack_into(
            self._tx, 0, frames.SENSOR_MAGIC, frames.VERSION, flags, seq % frames.TICKS_PERIOD,
            now_ms % frames.TICKS_PERIOD, *cells_raw, *temps_raw, current_raw, pack_raw, bus_raw, cool_in_raw,
            cool_out_raw, flow_pulses & 0xFFFF, inputs, 0, command[0], 0, 0, command[1], command[2])
        self._write(self._tx)
        got = self._read(self._rx)
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


HELLO_TIMEOUT_S = 30
TICK_TIMEOUT_S = 30

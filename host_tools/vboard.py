"""The virtual board: the firmware under the MicroPython unix port, in real
time against the plant, behind a pseudo-terminal, so that `mpremote`, the
monitor and `bmsctl flash` talk to it exactly as to a board on /dev/ttyACM0.

Three parts run here:
- the board's filesystem: a directory (the board's flash) that becomes the
  working directory of the MicroPython process;
- the board process: `micropython vboard_rom.py` (host_tools/mp), which
  behaves like a port's main loop: main.py, then the friendly or raw REPL.
  A soft reset ends the process with a code saying which REPL to come back
  to, and the supervisor here starts a fresh one, as a board restarts its
  interpreter;
- the serial line: a pseudo-terminal whose slave end (/dev/pts/N) is the
  device path users open. A proxy thread moves bytes between the pty master
  and the process's stdin/stdout pipes. While nobody has the device open the
  board's output is dropped, as a USB CDC port with no host drops it; the
  firmware never blocks on it.
- the plant: a thread stepping the simulated pack in real time, one sensor
  frame per tick to the firmware's sim HAL (TCP); it survives the firmware
  going away (REPL, soft reset) with the contactors physically open.
"""
from __future__ import annotations

import errno
import json
import os
import select
import socket
import subprocess
import threading
import time
import tty
from pathlib import Path

import numpy as np

from host_tools import frames
from host_tools.firmware import micropython_binary
from host_tools.link import FirmwareError, FirmwareLink
from host_tools.plant import Pack
from host_tools.scenario import Scenario
from host_tools.sensing import Sensing

ROM = Path(__file__).resolve().parent / "mp" / "vboard_rom.py"
EXIT_SOFT_FRIENDLY = 3
EXIT_SOFT_RAW = 4
EXIT_HARD_RESET = 5  # machine.reset() (host_tools/mp/vboard_rom.py)


class RealTimePlant(threading.Thread):
    """Steps the pack every tick of wall time and serves one firmware
    connection at a time. `speed` > 1 runs the plant clock faster."""

    def __init__(self, sc: Scenario, speed: float = 1.0):
        super().__init__(daemon=True, name="plant")
        self.sc = sc
        self.dt = sc.tick_s
        self.tick_ms = int(round(sc.tick_s * 1000))
        self.speed = speed
        self.pack = Pack(sc)
        self.sensing = Sensing(sc, np.random.default_rng(sc.seed + 1))
        self.srv = socket.socket()
        self.srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.srv.bind(("127.0.0.1", 0))
        self.srv.listen(2)
        self.srv.setblocking(False)
        self.port = self.srv.getsockname()[1]
        self.link: FirmwareLink | None = None
        self.connections = 0
        self.ticks = 0
        self.errors: list[str] = []
        self.stopping = threading.Event()
        self.lock = threading.Lock()
        self.last = None  # the newest actuator frame
        self._step_i = 0
        self._step_t0 = 0.0
        self._low_s = 0.0

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def stop(self):
        self.stopping.set()
        self.join(timeout=5)
        self._drop()
        self.srv.close()

    def _drop(self):
        if self.link is not None:
            try:
                self.link.conn.close()
            except OSError:
                pass
            self.link = None

    def _accept(self):
        try:
            conn, _ = self.srv.accept()
        except (BlockingIOError, OSError):
            return
        conn.setblocking(True)
        conn.settimeout(5)
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            buf = bytearray()
            while not buf.endswith(b"\n"):
                chunk = conn.recv(4096)  # nothing follows the hello until a frame is sent
                if not chunk:
                    raise OSError("closed during hello")
                buf += chunk
            hello = json.loads(buf)
            if "error" in hello:
                raise OSError("firmware error: " + hello["error"])
            if hello["cells"] != self.pack.n:
                raise OSError(f"firmware has {hello['cells']} cells, the plant {self.pack.n}")
        except (OSError, ValueError, KeyError) as e:
            self.errors.append(str(e))
            conn.close()
            return
        conn.settimeout(2)
        self._drop()
        self.link = FirmwareLink.attach(conn, hello)
        self.connections += 1

    def run(self):
        k = 0
        t0 = time.monotonic()
        period = self.dt / self.speed
        while not self.stopping.is_set():
            wait = t0 + k * period - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            elif wait < -1.0:
                t0 = time.monotonic() - k * period  # a stall: start afresh
            self._accept()
            self._tick(k)
            k += 1
            self.ticks = k

    def _tick(self, k: int):
        pack, sc = self.pack, self.sc
        t = k * self.dt
        r = self.sensing.read(pack)
        act = None
        if self.link is not None:
            profile = sc.profile[self._step_i % len(sc.profile)]
            inputs = (pack.physical & 7) | frames.IN_ENABLE | (frames.IN_CHARGER if profile.kind == "charge" else 0)
            try:
                act = self.link.exchange(0, k, sc.clock_start_ms + k * self.tick_ms, r.cells_raw, r.temps_raw,
                                         r.current_raw, r.pack_raw, r.bus_raw, r.cool_raw[0], r.cool_raw[1],
                                         r.flow_pulses, inputs)
            except (OSError, FirmwareError, ValueError) as e:
                self.errors.append("link: " + str(e)[:200])
                self._drop()
        if act is None:
            # No firmware driving the outputs: coils de-energised.
            pack.command(0)
            pack.bleed[:] = False
            pack.pump_duty = 0.0
            pack.heater_on = False
            ccl_a = dcl_a = grid_a = 0.0
        else:
            pack.command(act.outputs)
            bal = act.balance
            pack.bleed = np.array([(bal >> i) & 1 for i in range(pack.n)], dtype=bool)
            pack.pump_duty = act.pump_duty_pm / 1000
            pack.heater_on = bool(act.heater)
            ccl_a, dcl_a = act.ccl_ma / 1000, act.dcl_ma / 1000
            grid_a = max(act.grid_ma, 0) / 1000
        with self.lock:
            self.last = act
        self._load(t, ccl_a, dcl_a, grid_a)
        pack.step(self.dt, t)

    def _load(self, t: float, ccl_a: float, dcl_a: float, grid_a: float = 0.0):
        """The profile's charger and load, following the firmware's limits;
        the profile repeats. During a grid-support event (started on the
        console) the inverter exports what the firmware asks, within the
        DCL, and the charger waits."""
        pack = self.pack
        prof = self.sc.profile
        step = prof[self._step_i % len(prof)]
        closed = pack.closed()
        done = False
        if step.kind == "rest":
            pack.current_a = 0.0
            done = t - self._step_t0 >= step.duration_s
        elif step.kind == "charge":
            i = max(0.0, min(step.current_a, ccl_a, pack.cv_current(step.cv_v * pack.n))) if closed else 0.0
            pack.current_a = i
            self._low_s = self._low_s + self.dt if (closed and i <= step.termination_a) else 0.0
            done = self._low_s >= 30.0 or t - self._step_t0 >= step.timeout_s
        else:
            i = min(step.current_a, dcl_a) if closed else 0.0
            pack.current_a = -i
            self._low_s = self._low_s + self.dt if (closed and i <= 0.01 * step.current_a) else 0.0
            done = self._low_s >= 5.0 or t - self._step_t0 >= step.timeout_s
        if closed and grid_a > 0:
            pack.current_a = -min(grid_a + max(-pack.current_a, 0.0), max(dcl_a, 0.0))
        if done:
            self._step_i += 1
            self._step_t0 = t
            self._low_s = 0.0


class SerialProxy(threading.Thread):
    """Moves bytes between the pty master and the board process's pipes."""

    def __init__(self, master_fd: int):
        super().__init__(daemon=True, name="serial")
        self.master = master_fd
        self.proc: subprocess.Popen | None = None
        self.stopping = threading.Event()
        self.dropped = 0  # bytes of board output nobody was there to read
        self.proc_lock = threading.Lock()

    def attach(self, proc: subprocess.Popen):
        with self.proc_lock:
            self.proc = proc

    def run(self):
        while not self.stopping.is_set():
            with self.proc_lock:
                proc = self.proc
            fds = [self.master]
            if proc is not None and proc.stdout is not None:
                fds.append(proc.stdout.fileno())
            try:
                ready, _, _ = select.select(fds, [], [], 0.05)
            except (OSError, ValueError):
                time.sleep(0.05)
                continue
            for fd in ready:
                if fd == self.master:
                    self._from_host(proc)
                else:
                    self._from_board(proc, fd)

    def _from_host(self, proc):
        try:
            data = os.read(self.master, 4096)
        except BlockingIOError:
            return
        except OSError as e:
            if e.errno == errno.EIO:  # nobody has the device open
                time.sleep(0.05)
                return
            raise
        if data and proc is not None and proc.poll() is None:
            try:
                proc.stdin.write(data)
                proc.stdin.flush()
            except (BrokenPipeError, OSError, ValueError):
                pass  # the board is restarting; a board drops input then too

    def _from_board(self, proc, fd):
        try:
            data = os.read(fd, 4096)
        except OSError:
            data = b""
        if not data:
            time.sleep(0.01)  # process ending; the supervisor takes over
            return
        view = memoryview(data)
        while view:
            try:
                n = os.write(self.master, view)
                view = view[n:]
            except BlockingIOError:
                self.dropped += len(view)  # host not reading: drop, never block the board
                return
            except OSError:
                self.dropped += len(view)
                return


class VirtualBoard:
    """fs_dir: the board's flash (kept between runs). The board is off until
    start(); `path` is the serial device to open."""

    def __init__(self, fs_dir: Path, sc: Scenario, speed: float = 1.0, link: Path | None = None,
                 can: str | None = None, can_frames: Path | None = None):
        # can: the firmware's inverter CAN on an MCP2515 model, its frames in can_frames (bmsctl can --port)
        self.can = can
        self.can_frames = Path(can_frames) if can_frames else Path(fs_dir) / "can-frames.txt"
        self.link = Path(link) if link else None  # a stable name for the port, like /dev/serial/by-id/...
        self.fs = Path(fs_dir)
        self.fs.mkdir(parents=True, exist_ok=True)
        self.sc = sc
        self.plant = RealTimePlant(sc, speed)
        self.master, slave = os.openpty()
        tty.setraw(slave)
        self.path = os.ttyname(slave)
        os.close(slave)  # users open it by path, like /dev/ttyACM0
        os.set_blocking(self.master, False)
        self.proxy = SerialProxy(self.master)
        self.proc: subprocess.Popen | None = None
        self.resets = 0  # soft resets served
        self.crashes = 0
        self.hard_resets = 0  # machine.reset(): the board starts from power-up
        self.stopping = threading.Event()
        self.supervisor = threading.Thread(target=self._supervise, daemon=True, name="supervisor")

    def start(self):
        self.started = time.monotonic()
        if self.link is not None:
            if self.link.is_symlink():
                self.link.unlink()
            self.link.symlink_to(self.path)
        self.plant.start()
        self.proxy.start()
        self._spawn(raw=False)
        self.supervisor.start()
        return self

    def _spawn(self, raw: bool):
        env = dict(os.environ, BMS_SIM_LINK=self.plant.address)
        if self.can:
            from host_tools.firmware import ROOT
            env.update(BMS_CAN=self.can, BMS_CAN_OUT=str(self.can_frames), BMS_CHIPS=str(ROOT / "host_tools" / "mp"))
        self.proc = subprocess.Popen([micropython_binary(), str(ROM), *(["--raw"] if raw else [])],
                                     cwd=str(self.fs), env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, bufsize=0)
        self.proxy.attach(self.proc)

    def _supervise(self):
        while not self.stopping.is_set():
            proc = self.proc
            try:
                rc = proc.wait(timeout=0.1)
            except subprocess.TimeoutExpired:
                continue
            if self.stopping.is_set():
                return
            # Let the proxy pass on the last words ("MPY: soft reboot").
            time.sleep(0.05)
            if rc == EXIT_SOFT_RAW:
                self.resets += 1
                self._spawn(raw=True)
            elif rc == EXIT_SOFT_FRIENDLY:
                self.resets += 1
                self._spawn(raw=False)
            elif rc == EXIT_HARD_RESET:
                self.hard_resets += 1
                self._spawn(raw=False)
            else:
                # A crash or the interpreter ending: a board would reset.
                self.crashes += 1
                time.sleep(0.5)
                self._spawn(raw=False)

    def stop(self):
        self.stopping.set()
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.supervisor.join(timeout=2)
        self.proxy.stopping.set()
        self.proxy.join(timeout=2)
        self.plant.stop()
        if self.link is not None and self.link.is_symlink():
            self.link.unlink()  # unplugged: the name goes away with the device
        os.close(self.master)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        return False

"""A real MQTT broker for the tests and the bench: the Debian package
`mosquitto` on a loopback port, authentication on (a password file, no
anonymous clients), no persistence. `make setup` installs the package when
it is missing and we are root, otherwise says what to install."""
from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import time
from pathlib import Path

MOSQUITTO = "/usr/sbin/mosquitto"
INSTALL_HINT = "the tests need the Debian package mosquitto: sudo apt-get install -y mosquitto"


def mosquitto_binary() -> str | None:
    return shutil.which("mosquitto") or (MOSQUITTO if Path(MOSQUITTO).exists() else None)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Mosquitto:
    """start() / stop() / kill(); the same port across restarts."""

    def __init__(self, workdir: Path, users: dict[str, str], port: int | None = None):
        self.dir = Path(workdir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.proc: subprocess.Popen | None = None
        exe = mosquitto_binary()
        if exe is None:
            raise FileNotFoundError(INSTALL_HINT)
        self.exe = exe
        pw = self.dir / "passwd"
        pw.write_text("")
        passwd = shutil.which("mosquitto_passwd") or "/usr/bin/mosquitto_passwd"
        for user, password in users.items():
            subprocess.run([passwd, "-b", str(pw), user, password], check=True, capture_output=True)
        pw.chmod(0o600)
        self.conf = self.dir / "mosquitto.conf"
        # Started as root, mosquitto drops to the user `mosquitto`, which
        # cannot read a test's private directory: stay who we are.
        me = "user " + pwd.getpwuid(os.geteuid()).pw_name + "\n"
        self.conf.write_text(f"listener {self.port} 127.0.0.1\nallow_anonymous false\npassword_file {pw}\n"
                             "persistence false\nlog_dest stderr\nlog_type error\nlog_type warning\n" + me)

    def start(self, timeout_s: float = 10.0):
        self.log = open(self.dir / "mosquitto.log", "ab")
        self.proc = subprocess.Popen([self.exe, "-c", str(self.conf)], stdout=self.log, stderr=subprocess.STDOUT)
        t_end = time.monotonic() + timeout_s
        while time.monotonic() < t_end:
            if self.proc.poll() is not None:
                raise RuntimeError("mosquitto exited: " + (self.dir / "mosquitto.log").read_text()[-500:])
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"mosquitto did not listen on {self.port} within {timeout_s} s")

    def kill(self):
        """The broker disappears at once (SIGKILL): no goodbye to any client."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

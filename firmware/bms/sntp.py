# Wall time for boards (command expiry over MQTT): one SNTP request (RFC
# 4330, 48 bytes over UDP) every RESYNC_MS, polled without blocking from the
# MQTT service. The unix port uses the host's clock instead (UnixClock).
import socket
import struct
import time
from micropython import const

NTP_TO_UNIX = const(2208988800)  # seconds from 1900 to 1970
RESYNC_MS = const(3600000)
RETRY_MS = const(10000)
WAIT_MS = const(2000)


class UnixClock:
    def wall(self):
        return int(time.time())

    def service(self, now_ms):
        pass


class Sntp:
    def __init__(self, server_ip, port=123):
        self.addr = (server_ip, port)
        self.sock = None
        self.sent = None  # ticks_ms of the request in flight
        self.next = None  # ticks_ms of the next request
        self.base_s = None  # unix seconds at base_ms
        self.base_ms = 0
        self.buf = bytearray(48)

    def wall(self):
        if self.base_s is None:
            return None
        return self.base_s + time.ticks_diff(time.ticks_ms(), self.base_ms) // 1000

    def service(self, now_ms):
        if self.sent is not None:
            try:
                n = self.sock.readinto(self.buf)
            except OSError:
                n = None
            if n == 48 and (self.buf[0] & 7) == 4 and self.buf[1] != 0:
                s = struct.unpack_from(">I", self.buf, 40)[0]
                if s >= NTP_TO_UNIX:  # era 0 (before 2036)
                    self.base_s = s - NTP_TO_UNIX
                    self.base_ms = now_ms
                self._close()
                self.next = time.ticks_add(now_ms, RESYNC_MS)
            elif time.ticks_diff(now_ms, self.sent) > WAIT_MS:
                self._close()
                self.next = time.ticks_add(now_ms, RETRY_MS)
            return
        if self.next is not None and time.ticks_diff(now_ms, self.next) < 0:
            return
        try:
            self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            self.sock.setblocking(False)
            req = bytearray(48)
            req[0] = 0x23  # LI 0, version 4, mode 3 (client)
            self.sock.sendto(req, socket.getaddrinfo(self.addr[0], self.addr[1])[0][-1])  # an IP literal: no DNS
            self.sent = now_ms
        except OSError:
            self._close()
            self.next = time.ticks_add(now_ms, RETRY_MS)

    def _close(self):
        if self.sock is not None:
            try:
                self.sock.close()
            except OSError:
                pass
        self.sock = None
        self.sent = None

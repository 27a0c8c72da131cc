# Runs under the MicroPython unix port: what the MQTT service costs per call
# between ticks, next to the tick, on a 16-cell app with a resting-pack HAL
# model, against a real broker on loopback. Prints one JSON object.
#   micropython mqtt_bench.py FIRMWARE_DIR LIB_DIR PORT USER PASSWORD DEAD_PORT
# With PORT 0 it only measures the client's heap cost (LIB_DIR: source or .mpy).
import gc
import sys
import time
sys.path.insert(0, sys.argv[1])
sys.path.insert(0, sys.argv[2])
sys.path.insert(0, __file__.rsplit("/", 1)[0] if "/" in __file__ else ".")
gc.collect()
m0 = gc.mem_alloc()
import chumicro_mqtt.client  # noqa: E402,F401
import chumicro_sockets.sockets_factory  # noqa: E402,F401
gc.collect()
client_heap = gc.mem_alloc() - m0
import json  # noqa: E402
if sys.argv[3] == "0":
    print(json.dumps({"client_heap_bytes": client_heap}))
    sys.exit(0)
from bms.config import Config  # noqa: E402
from bms.app import App  # noqa: E402
from bms.console import Console  # noqa: E402
from bms.sntp import UnixClock  # noqa: E402
from bms import mqtt_service as M  # noqa: E402
from resting_hal import RestingPackHal  # noqa: E402

N = 16
REPS = 200
raw = {"cells": N, "temps": 4, "capacity_mah": 100000, "chemistry": "LFP"}
app = App(Config(raw), RestingPackHal(N, 4))
con = Console(app, None, raw, Config, None, None, 0)
for i in range(50):
    app.tick(i * 100)


def service_for(port):
    cfg = M.check_config({"node": "bench", "broker": {"host": "127.0.0.1", "port": port, "user": sys.argv[4],
                                                      "password": sys.argv[5]}, "state_ms": 1000, "keepalive_s": 30})
    return M.MqttService(app, con, cfg, "bench", UnixClock())


gc.collect()
m0 = gc.mem_alloc()
svc = service_for(int(sys.argv[3]))
t_end = time.ticks_add(time.ticks_ms(), 5000)
while not (svc.up and svc.disc_i < 0) and time.ticks_diff(t_end, time.ticks_ms()) > 0:
    svc.service(time.ticks_ms())
    time.sleep_ms(2)
if not svc.up:
    print(json.dumps({"error": "no connection to the broker: " + str(svc.client.last_error)}))
    sys.exit(1)
for _ in range(50):  # let the discovery burst drain
    svc.service(time.ticks_ms())
    time.sleep_ms(2)
gc.collect()
service_heap = gc.mem_alloc() - m0


def timed(prep):
    t = []
    for _ in range(REPS):
        now = time.ticks_ms()
        prep(now)
        t0 = time.ticks_us()
        svc.service(now)
        t.append(time.ticks_diff(time.ticks_us(), t0))
        time.sleep_ms(1)
        svc.service(time.ticks_ms())  # drain what this call queued, untimed
        gc.collect()
    t.sort()
    return t[REPS // 2], t[-1]


def idle(now):
    svc.last_state = now


def state_due(now):
    svc.last_state = None
    svc.cells_due = False


def cells_due(now):
    svc.last_state = now
    svc.cells_due = True


k = [0]


def command(payload_fn):
    def prep(now):
        svc.last_state = now
        svc.rate_n = 0
        k[0] += 1
        svc.inbox.append(("bms/bench/cmd/reserve", payload_fn(k[0])))
    return prep


def tick():
    t = []
    for i in range(REPS):
        t0 = time.ticks_us()
        app.tick(10000 + i * 100)
        t.append(time.ticks_diff(time.ticks_us(), t0))
    t.sort()
    return t[REPS // 2]


out = {"tick_us": tick(), "client_heap_bytes": client_heap, "service_heap_bytes": service_heap}
out["idle_us"], out["idle_max_us"] = timed(idle)
out["state_us"], out["state_max_us"] = timed(state_due)
out["cells_us"], out["cells_max_us"] = timed(cells_due)
out["cmd_reserve_us"], _ = timed(command(lambda i: ('{"v": %d, "ts": %d, "id": "b%d"}' % (20 + i % 2, time.time(), i)).encode()))
out["cmd_bad_json_us"], _ = timed(command(lambda i: b"{not json"))
out["published"] = svc.published
out["dropped"] = svc.dropped
# a broker that is not there (connection refused), 3 s of calls every 5 ms
dead = service_for(int(sys.argv[6]))
t = []
t_end = time.ticks_add(time.ticks_ms(), 3000)
while time.ticks_diff(t_end, time.ticks_ms()) > 0:
    t0 = time.ticks_us()
    dead.service(time.ticks_ms())
    t.append(time.ticks_diff(time.ticks_us(), t0))
    time.sleep_ms(5)
t.sort()
out["down_median_us"] = t[len(t) // 2]
out["down_max_us"] = t[-1]
out["down_calls"] = len(t)
print(json.dumps(out))

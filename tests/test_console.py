"""The firmware console under hostile input: >= 100,000 fuzzed lines (random
bytes, NULs, 10,000-character lines, mangled commands, bad arguments) never
crash the loop, never produce an internal error and never change anything
unless the line was a valid command; one service() call takes a bounded
number of bytes, so a flood cannot hold up the tick."""
import json
import random
import subprocess

from hypothesis import given, settings, strategies as st

from host_tools.firmware import FIRMWARE, micropython_binary
from tests.conftest import ROOT

CHECK = ROOT / "tests" / "mp_console_check.py"
WORDS = ["help", "version", "status", "cells", "faults", "clear", "config", "get", "set", "log", "telemetry",
         "grid", "start", "cancel", "off", "balance_start_mv", "cells", "ov", "tick_ms", "chemistry", "LFP", "NMC",
         "faults", "true", "false", "0", "-1", "100", "3600000", "9" * 40, "1.5", "1e9", "0x10", "''", '"', "{}",
         "[1,2]", "é", "\u202e", "\t"]
VALID = ["status", "help", "cells", "faults", "version", "config get tick_ms", "config get", "log 3", "clear",
         "telemetry off", "config set balance_start_mv 20", "grid status"]


def fuzz_lines(n: int, seed: int = 1) -> bytes:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        kind = rng.random()
        if kind < 0.25:  # random bytes (no LF/CR, which end lines, no Ctrl-C, which interrupts)
            line = bytes(b for b in rng.randbytes(rng.randint(0, 120)) if b not in (3, 10, 13))
        elif kind < 0.30:  # NULs and control bytes
            line = bytes(rng.choice((0, 0, 1, 2, 4, 27, 127, 255)) for _ in range(rng.randint(1, 40)))
        elif kind < 0.31:  # very long lines
            line = bytes(rng.choice(b"abc xyz0123456789") for _ in range(10000))
        elif kind < 0.75:  # token soup: real words in wrong places, bad numbers
            line = " ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 6))).encode()
        else:  # mangled valid commands
            b = bytearray(rng.choice(VALID).encode())
            for _ in range(rng.randint(1, 3)):
                op = rng.random()
                i = rng.randrange(len(b) + 1)
                if op < 0.4 and b:
                    del b[min(i, len(b) - 1)]
                elif op < 0.8:
                    b.insert(i, rng.choice(b"azAZ09 _-.\x00\xff"))
                else:
                    b = b.upper()
            line = bytes(x for x in b if x not in (3, 10, 13))
        out.append(line)
    return b"\n".join(out)


def test_100k_hostile_lines(tmp_path):
    lines = tmp_path / "lines.bin"
    lines.write_bytes(fuzz_lines(100_000))
    store = tmp_path / "store"
    store.mkdir()
    r = subprocess.run([micropython_binary(), str(CHECK), str(FIRMWARE), str(store), "batch",
                        str(lines)], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    out = json.loads(r.stdout.strip().splitlines()[-1])
    print(out)
    assert out["lines"] == 100_000
    assert out["internal"] == 0, out["example"]
    assert out["changed"] == 0, out["example"]
    assert out["app_errors"] == 0 and out["internal_error"] == 0
    # the fuzz reached both sides: most lines rejected, some commands valid
    assert out["err"] > 50_000 and out["ok"] > 1_000, out


def test_flood_is_taken_in_bounded_bites(tmp_path):
    r = subprocess.run([micropython_binary(), str(CHECK), str(FIRMWARE), str(tmp_path), "budget"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert 0 < out["taken"] <= 512 and out["ticks_ok"], out


def test_config_set_on_a_heap_too_small_for_it(tmp_path):
    # building the second configuration fails: nothing changes, a clear
    # error; rebuilding the stages fails: they run on as they were, the
    # saved configuration applies at the next boot, and the reply says so
    r = subprocess.run([micropython_binary(), str(CHECK), str(FIRMWARE), str(tmp_path), "oom"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["build"] == ["ERR config: not enough memory to build the new configuration; nothing changed"], out
    assert out["build_kept"], out
    assert out["apply"] == ["balance_start_mv = 25 (saved; takes effect after a reboot)", "OK config"], out
    assert out["apply_kept_running"] and out["apply_saved"], out


class Worker:
    def __init__(self, store):
        self.p = subprocess.Popen([micropython_binary(), str(CHECK), str(FIRMWARE), str(store), "serve"],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)

    def feed(self, data: bytes, sabotage: bool = False):
        self.p.stdin.write(json.dumps({"hex": data.hex(), "sabotage": sabotage}) + "\n")
        self.p.stdin.flush()
        line = self.p.stdout.readline()
        assert line, "console worker died"
        return json.loads(line)


def test_commands_reply_and_validate(tmp_path):
    w = Worker(tmp_path)
    r = w.feed(b"config set balance_start_mv 9999")
    assert r["replies"][-1].startswith("ERR config: config.balance_start_mv: 9999 out of range"), r
    assert not r["changed"]
    r = w.feed(b"config set no_such_key 1")
    assert r["replies"] == ["ERR config: config.no_such_key: unknown setting"], r
    r = w.feed(b"config set balance_start_mv 25")
    assert r["replies"] == ["balance_start_mv = 25", "OK config"], r
    r = w.feed(b"config get balance_start_mv")
    assert r["replies"] == ["balance_start_mv = 25", "OK config"], r
    r = w.feed(b"frobnicate")
    assert r["replies"] == ["ERR frobnicate: unknown command (try help)"]
    r = w.feed(b"status extra")
    assert r["replies"][0].startswith("ERR status: takes no arguments")
    r = w.feed(b"cells")
    assert len(r["replies"]) == 9 and r["replies"][-1] == "OK cells"
    r = w.feed(b"telemetry 50")
    assert r["replies"][0].startswith("ERR telemetry: period must be")
    # the change check can fail: a change behind the console's back is seen
    assert w.feed(b"frobnicate", sabotage=True)["changed"]
    r = w.feed(b"log")
    assert r["replies"][0] == "seq,t_ms,code,arg,value" and r["replies"][-1] == "OK log", r
    w.p.stdin.close()
    w.p.wait(timeout=10)


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=300).filter(lambda b: 3 not in b and 10 not in b and 13 not in b))
def test_any_bytes_change_nothing_unless_valid(data, tmp_path_factory):
    w = getattr(test_any_bytes_change_nothing_unless_valid, "worker", None)
    if w is None or w.p.poll() is not None:
        w = Worker(tmp_path_factory.mktemp("store"))
        test_any_bytes_change_nothing_unless_valid.worker = w
    r = w.feed(data)
    assert not r["changed"], (data, r)
    assert not any("internal error" in x for x in r["replies"]), r

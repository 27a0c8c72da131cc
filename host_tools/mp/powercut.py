# Runs under the MicroPython unix port: littlefs (vfs.VfsLfs2) on a block
# device that behaves like NOR flash (erase to 0xFF before program; a
# program can only clear bits; 4 KiB erase blocks like the RP2040's and the
# ESP32's flash) and loses power at a chosen program or erase operation,
# leaving that operation torn. Each round arms a cut, runs a config save, a
# state save or a log append, then remounts and checks:
#   - the filesystem mounts;
#   - the configuration is entirely the old or entirely the new one;
#   - the state record is the old or the new one, never a corrupted one;
#   - every log record read back is intact; only the record in flight may
#     be missing.
# Then a full filesystem: logging goes on by dropping its oldest records.
#
#   micropython powercut.py FIRMWARE_DIR CUTS SEED
# Prints one JSON object with the counts.
import sys
import json
import micropython
import random
import vfs

sys.path.insert(0, sys.argv[1])
sys.path.insert(0, __file__.rsplit("/", 1)[0] if "/" in __file__ else ".")
from bms.persist.config_store import ConfigStore  # noqa: E402
from bms.persist.state_record import StateStore, StateRecord  # noqa: E402
from bms.persist.event_log import EventLog  # noqa: E402

CUTS = int(sys.argv[2])
random.seed(int(sys.argv[3]))


from flashsim import Flash, BLOCK, BLOCKS  # noqa: E402


def validate(raw):
    if not isinstance(raw.get("rev"), int) or raw.get("pad") != "x" * 200:
        raise ValueError("not a test configuration")


def state_payload(seq):
    return (seq * 7) % 10001, 100000 - seq % 500, seq // 3, seq // 5


def rec_payload(seq):
    return (seq * 100) & 0x3FFFFFFF, 1 + seq % 5, seq % 40, seq * 3


flash = Flash()
vfs.VfsLfs2.mkfs(flash)
MNT = "/pc"


def mount():
    try:
        vfs.umount(MNT)
    except OSError:
        pass
    fs = vfs.VfsLfs2(flash)
    vfs.mount(fs, MNT)


mount()
store = ConfigStore(MNT, validate=validate)
states = StateStore(MNT)
store.save({"rev": 0, "pad": "x" * 200})
srec = StateRecord()
srec.soc_cpct, srec.capacity_mah, srec.energy_in_wh, srec.energy_out_wh = state_payload(1)
states.save(srec)
log = EventLog(MNT, max_segments=6)
for _ in range(10):
    s = log.next_seq
    log.append(*rec_payload(s))

res = {"cuts": 0, "rounds": 0, "unmountable": 0, "config_mixed": 0, "config_missing": 0,
       "state_corrupt_accepted": 0, "state_wrong": 0, "log_corrupt_accepted": 0,
       "log_lost_beyond_newest": 0, "ops": {"config": 0, "state": 0, "log": 0}}
cfg_rev = 0
state_seq = srec.seq
log_max = log.next_seq - 1

ops_seen = {"config": 0, "state": 0, "log": 0}
while flash.cuts < CUTS:
    res["rounds"] += 1
    kind = ("config", "state", "log", "log")[random.randrange(4)]
    res["ops"][kind] += 1
    flash.ops = 0
    # a config save takes ~12 flash operations, a state save or a log
    # append ~4-8 (measured): cut anywhere in them, sometimes after
    flash.cut_at = 1 + random.randrange({"config": 14, "state": 8, "log": 8}[kind])
    try:
        if kind == "config":
            store.save({"rev": cfg_rev + 1, "pad": "x" * 200})
        elif kind == "state":
            r = StateRecord()
            r.seq = state_seq
            r.soc_cpct, r.capacity_mah, r.energy_in_wh, r.energy_out_wh = state_payload(state_seq + 1)
            states.save(r)
        else:
            s = log.next_seq
            log.append(*rec_payload(s))
    except Exception:  # noqa: a dead device may confuse the code still running
        if not flash.dead:
            raise
    cut = flash.dead
    if not cut:
        ops_seen[kind] = max(ops_seen[kind], flash.ops)
    flash.dead = False
    flash.cut_at = -1
    # power comes back: remount and check everything
    try:
        mount()
    except Exception:  # noqa
        res["unmountable"] += 1
        vfs.VfsLfs2.mkfs(flash)
        mount()
        store.save({"rev": cfg_rev, "pad": "x" * 200})
        continue
    try:
        raw, _src = store.load()
        rev = raw["rev"]
        if kind == "config":
            if rev not in (cfg_rev, cfg_rev + 1):
                res["config_mixed"] += 1
        elif rev != cfg_rev:
            res["config_mixed"] += 1
        cfg_rev = rev
    except OSError:
        res["config_missing"] += 1
    r = states.load()
    if r is None:
        res["state_wrong"] += 1
    else:
        if (r.soc_cpct, r.capacity_mah, r.energy_in_wh, r.energy_out_wh) != state_payload(r.seq):
            res["state_corrupt_accepted"] += 1
        want = (state_seq, state_seq + 1) if kind == "state" else (state_seq,)
        if r.seq not in want:
            res["state_wrong"] += 1
        state_seq = r.seq
    log = EventLog(MNT, max_segments=6)
    recs = log.records()
    for seq, t, code, arg, value in recs:
        if (t, code, arg, value) != rec_payload(seq):
            res["log_corrupt_accepted"] += 1
    seqs = [x[0] for x in recs]
    top = seqs[-1] if seqs else -1
    # the newest record may be the one in flight; everything before it stays
    if top < log_max or (kind == "log" and not cut and top != log_max + 1):
        res["log_lost_beyond_newest"] += 1
    if seqs and seqs != list(range(seqs[0], top + 1)):
        res["log_lost_beyond_newest"] += 1
    log_max = max(log_max, top)
    if not recs:
        log.next_seq = log_max + 1
res["cuts"] = flash.cuts
res["ops_seen"] = ops_seen

# A full filesystem: fill it, then keep logging.
fill_err = None
try:
    with open(MNT + "/filler", "wb") as f:
        chunk = b"\0" * 1024
        while True:
            f.write(chunk)
except OSError as e:
    fill_err = e.args[0]
log = EventLog(MNT, max_segments=1000)  # no segment limit: only space limits it
before = log.records()
ok = 0
for _ in range(3000):
    s = log.next_seq
    if log.append(*rec_payload(s)):
        ok += 1
after = log.records()
res["full"] = {"fill_errno": fill_err, "appended": ok, "dropped": log.dropped, "tried": 3000,
               "oldest_before": before[0][0] if before else None, "oldest_after": after[0][0] if after else None,
               "newest_after": after[-1][0] if after else None, "records_after": len(after)}
print(json.dumps(res))

"""Differential tests: each viper kernel (run by a long-lived MicroPython
worker) must give exactly what its plain-Python twin gives."""
from hypothesis import HealthCheck, given, settings, strategies as st

MAX_CELLS = 256
EXAMPLES = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

u16 = st.integers(0, 65535)
cells = st.integers(0, MAX_CELLS)


def same(worker, name, args):
    viper, twin = worker.call({"k": name, "a": args})
    assert "err" not in viper and "err" not in twin, (viper, twin)
    assert viper == twin, (name, args, viper, twin)
    return viper


def arr(t, v):
    return {"t": t, "v": list(v)}


@st.composite
def cell_volts(draw, lo=0, hi=65535):
    n = draw(st.one_of(st.sampled_from([0, 1, MAX_CELLS]), cells))
    if draw(st.booleans()) and n:
        v = draw(st.one_of(st.sampled_from([lo, hi]), st.integers(lo, hi)))
        return [v] * n  # all cells equal, often at the ends of the range
    return draw(st.lists(st.integers(lo, hi), min_size=n, max_size=n))


@EXAMPLES
@given(data=st.data())
def test_scale_cells(kernel_worker, data):
    raw = data.draw(cell_volts())
    n = len(raw)
    # calibration keeps raw * gain below 2**30: gain < 2**30 / 65536
    gain = data.draw(st.lists(st.integers(1, 16383), min_size=n, max_size=n))
    off = data.draw(st.lists(st.integers(-1000, 1000), min_size=n, max_size=n))
    same(kernel_worker, "scale_cells", [arr("H", raw), arr("i", gain), arr("h", off), arr("H", [0] * n), n])


@EXAMPLES
@given(mv=cell_volts())
def test_minmax_sum(kernel_worker, mv):
    same(kernel_worker, "minmax_sum", [arr("H", mv), len(mv), arr("i", [7, 7, 7, 7])])


@EXAMPLES
@given(mv=cell_volts(2000, 4500), thresh=st.integers(0, 100), floor=st.integers(0, 4500),
       k=st.integers(0, 16), nn=st.integers(0, 1))
def test_balance_select(kernel_worker, mv, thresh, floor, k, nn):
    n = len(mv)
    ref = min(mv) if mv else 0
    same(kernel_worker, "balance_select", [arr("H", mv), n, arr("i", [ref, thresh, floor, k, nn]), {"t": "b", "v": [1] * n}])


@st.composite
def ntc_table(draw):
    m = draw(st.integers(2, 40))
    raws = sorted(draw(st.sets(st.integers(0, 65535), min_size=m, max_size=m)))
    temps = draw(st.lists(st.integers(-400, 1250), min_size=m, max_size=m))
    if draw(st.booleans()):
        temps = sorted(temps, reverse=True)
    return raws, temps


@EXAMPLES
@given(tab=ntc_table(), raw=cell_volts())
def test_ntc_interp(kernel_worker, tab, raw):
    raws, temps = tab
    same(kernel_worker, "ntc_interp", [arr("H", raw), len(raw), arr("H", raws), arr("h", temps), len(raws), arr("h", [0] * len(raw))])


@EXAMPLES
@given(data=st.data())
def test_unpack_u16(kernel_worker, data):
    n = data.draw(cells)
    off = data.draw(st.integers(0, 8))
    buf = data.draw(st.binary(min_size=off + 2 * n, max_size=off + 2 * n + 4))
    same(kernel_worker, "unpack_u16", [{"t": "b", "v": list(buf)}, off, arr("H", [0] * n), n])


@EXAMPLES
@given(mask=st.lists(st.integers(0, 255), max_size=MAX_CELLS), off=st.integers(0, 4))
def test_pack_bits(kernel_worker, mask, off):
    n = len(mask)
    same(kernel_worker, "pack_bits", [{"t": "b", "v": mask}, n, {"t": "b", "v": [0xAA] * (off + (n + 7) // 8 + 2)}, off])


@EXAMPLES
@given(vals=cell_volts(2000, 4500), trip=st.integers(2000, 4500), hyst=st.integers(1, 200),
       tms=st.integers(0, 3000), rms=st.integers(0, 3000), dt=st.integers(1, 1000), above=st.integers(0, 1),
       data=st.data())
def test_debounce(kernel_worker, vals, trip, hyst, tms, rms, dt, above, data):
    n = len(vals)
    rec = trip - hyst if above else trip + hyst
    acc = data.draw(st.lists(st.integers(0, 4000), min_size=n, max_size=n))
    flags = data.draw(st.lists(st.integers(0, 1), min_size=n, max_size=n))
    same(kernel_worker, "debounce", [arr("H", vals), n, arr("i", [trip, rec, tms, rms, dt, above]), arr("i", acc), {"t": "b", "v": flags}])


def test_debounce_sequence_trips_after_delay_and_recovers(kernel_worker):
    # 4 cells, 100 ms ticks, trip above 3650 after 500 ms, recover below 3450 after 1000 ms
    state = {"acc": [0] * 4, "flags": [0] * 4}
    tripped_at = recovered_at = None
    for k in range(40):
        v = 3700 if 5 <= k < 20 else 3400
        out = same(kernel_worker, "debounce", [arr("H", [3300, v, 3300, 3300]), 4, arr("i", [3650, 3450, 500, 1000, 100, 1]),
                                               arr("i", state["acc"]), {"t": "b", "v": state["flags"]}])
        state["acc"], state["flags"] = out["args"][3], out["args"][4]
        if out["ret"] and tripped_at is None:
            tripped_at = k
        if tripped_at is not None and not out["ret"] and recovered_at is None:
            recovered_at = k
    assert tripped_at == 5 + 5  # held from tick 5; 500 ms later
    assert recovered_at == 20 + 10


@EXAMPLES
@given(buf=st.binary(max_size=300), data=st.data())
def test_crc8_and_pec15(kernel_worker, buf, data):
    off = data.draw(st.integers(0, len(buf)))
    n = data.draw(st.integers(0, len(buf) - off))
    for name in ("crc8_smbus", "pec15"):
        same(kernel_worker, name, [{"t": "b", "v": list(buf)}, off, n])


def test_crc_known_vectors(kernel_worker):
    # CRC-8/SMBus check value over "123456789" is 0xF4; LTC6811 datasheet:
    # PEC of command 0x0001 (WRCFGA) is 0x3D6E, of 0x0002 (RDCFGA) 0x2B0A.
    assert same(kernel_worker, "crc8_smbus", [{"t": "b", "v": list(b"123456789")}, 0, 9])["ret"] == 0xF4
    assert same(kernel_worker, "pec15", [{"t": "b", "v": [0, 1]}, 0, 2])["ret"] == 0x3D6E
    assert same(kernel_worker, "pec15", [{"t": "b", "v": [0, 2]}, 0, 2])["ret"] == 0x2B0A


@EXAMPLES
@given(raw=cell_volts(), data=st.data(), dt=st.integers(0, 1000))
def test_stuck_track(kernel_worker, raw, data, dt):
    n = len(raw)
    prev = data.draw(st.lists(st.sampled_from(raw or [0]) | st.integers(0, 65535), min_size=n, max_size=n))
    acc = data.draw(st.lists(st.integers(0, 1048576), min_size=n, max_size=n))
    same(kernel_worker, "stuck_track", [arr("H", raw), arr("H", prev), arr("i", acc), n, dt])


@EXAMPLES
@given(vals=cell_volts(), lo=st.integers(0, 65535), hi=st.integers(0, 65535))
def test_count_outside(kernel_worker, vals, lo, hi):
    same(kernel_worker, "count_outside", [arr("H", vals), len(vals), lo, hi])


@EXAMPLES
@given(data=st.data())
def test_therm_minmax(kernel_worker, data):
    raw = data.draw(cell_volts())
    n = len(raw)
    temps = data.draw(st.lists(st.integers(-32768, 32767) | st.integers(-400, 1250), min_size=n, max_size=n))
    short = data.draw(st.integers(0, 65535) | st.sampled_from([0, 20]))
    opn = data.draw(st.integers(0, 65535) | st.sampled_from([4075, 65535]))
    same(kernel_worker, "therm_minmax", [arr("H", raw), arr("h", temps), n, arr("i", [short, opn, 0, 0])])


@st.composite
def lookup_table(draw):
    # the config's tables and their ranges (config_schema.TABLE_KEYS): the
    # OCV both ways (0..10000 cpct, 0..5000 mV 'H'), capacity against
    # temperature (-400..1000 dC, per mille 'h', falling in places)
    kind = draw(st.sampled_from(["soc", "mv", "cap"]))
    n = draw(st.integers(2, 40))
    lo, hi = {"soc": (0, 5000), "mv": (0, 10000), "cap": (-400, 1000)}[kind]
    xs = sorted(draw(st.lists(st.integers(lo, hi), min_size=n, max_size=n)))
    if xs[-1] == xs[0]:
        xs[-1] = xs[0] + 1
    ylo, yhi = {"soc": (0, 10000), "mv": (0, 5000), "cap": (1, 1000)}[kind]
    ys = draw(st.lists(st.integers(ylo, yhi), min_size=n, max_size=n))
    if kind != "cap":
        ys = sorted(ys)
    tx, ty = {"soc": ("H", "h"), "mv": ("h", "H"), "cap": ("h", "h")}[kind]
    return arr(tx, xs), arr(ty, ys), n


@EXAMPLES
@given(tab=lookup_table(), x=st.integers(-32768, 32767) | st.integers(-400, 10000))
def test_interp(kernel_worker, tab, x):
    xs, ys, n = tab
    same(kernel_worker, "interp", [xs, ys, n, x])


@st.composite
def ocv_table(draw):
    # an OCV table as the config takes it: rising mV ('H', 0..5000) over
    # 0..10000 cpct ('h'), from 0 to 10000
    n = draw(st.integers(2, 30))
    mv = sorted(draw(st.sets(st.integers(0, 5000), min_size=n, max_size=n)))
    cpct = sorted(draw(st.sets(st.integers(1, 9999), min_size=n - 2, max_size=n - 2)))
    return arr("H", mv), arr("h", [0] + cpct + [10000]), n


@EXAMPLES
@given(tab=ocv_table(), volts=st.lists(st.integers(-70000, 70000) | st.integers(2000, 4000), min_size=4, max_size=4),
       lags=st.lists(st.integers(0, 3000) | st.just(0), min_size=2, max_size=2))
def test_soc_band(kernel_worker, tab, volts, lags):
    mv, cpct, n = tab
    out = same(kernel_worker, "soc_band", [mv, cpct, n, arr("i", volts + lags + [0] * 6)])
    io = out["args"][3]
    if volts[0] <= volts[2] and volts[1] <= volts[3]:
        assert io[10] <= io[11], io  # higher voltages never narrow the band below its low end
    assert 0 <= io[10] <= 10000 and 0 <= io[11] <= 10000, io


@EXAMPLES
@given(k=st.lists(st.integers(0, 5000) | st.sampled_from([0, 5000]), min_size=2, max_size=2),
       tau=st.lists(st.integers(1, 3600000) | st.sampled_from([1, 10000, 300000]), min_size=2, max_size=2),
       u=st.lists(st.integers(-500000, 500000), min_size=2, max_size=2),
       rem=st.lists(st.integers(0, 3600999), min_size=2, max_size=2),
       c_pm=st.integers(-10000, 10000) | st.sampled_from([0, -10000, 10000]),
       dt=st.integers(0, 10000) | st.sampled_from([0, 10, 100, 1000, 1001]))
def test_soc_lags(kernel_worker, k, tau, u, rem, c_pm, dt):
    rem = [r % (t + 1000) for r, t in zip(rem, tau)]  # a remainder of its own division
    same(kernel_worker, "soc_lags", [arr("i", k), arr("i", tau), arr("i", u), arr("i", rem), c_pm, dt])


@st.composite
def fault_table(draw):
    nsig = draw(st.integers(1, 32))
    n = draw(st.integers(0, 40))
    sig = draw(st.lists(st.integers(-2_000_000, 2_000_000) | st.sampled_from([0, -1, 1, -200, 3650]), min_size=nsig, max_size=nsig))
    rows = []
    for _ in range(n):
        trip = draw(st.integers(-1_000_000, 1_000_000) | st.sampled_from([0, -200, 3650, 1]))
        rec = trip + draw(st.integers(-1000, 1000))
        rows += [draw(st.integers(0, nsig - 1)), draw(st.integers(0, 1)), trip, rec,
                 # trip delay: ms, or us as leaky rows carry it (up to 600 s)
                 draw(st.integers(0, 5000) | st.integers(0, 600_000_000)), draw(st.integers(0, 5000)), draw(st.integers(0, 1)),
                 draw(st.integers(0, 1)), draw(st.integers(0, 1)), draw(st.integers(0, 63)),
                 draw(st.integers(0, 0) | st.integers(1, 1000))]  # leak: plain debounce or a leaky bucket
    acc = draw(st.lists(st.integers(0, 6000) | st.integers(0, 600_000_000), min_size=n, max_size=n))
    active = draw(st.lists(st.integers(0, 1), min_size=n, max_size=n))
    gone = draw(st.lists(st.integers(0, 1), min_size=n, max_size=n))
    io = [n, draw(st.integers(0, 2000)), draw(st.integers(0, 1)), 0, 0, 0]
    return sig, rows, acc, active, gone, io


@EXAMPLES
@given(t=fault_table())
def test_fault_rows(kernel_worker, t):
    sig, rows, acc, active, gone, io = t
    n = io[0]
    same(kernel_worker, "fault_rows", [arr("i", sig), arr("i", rows), arr("i", acc), {"t": "b", "v": active},
                                       {"t": "b", "v": gone}, {"t": "b", "v": [9] * n}, arr("i", io)])

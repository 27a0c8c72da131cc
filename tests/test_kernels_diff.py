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
        v = draw(st.integers(lo, hi))
        return [v] * n  # all cells equal
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

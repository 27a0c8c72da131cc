"""A whole steady-state tick (HAL read, measure ... contactor, HAL write)
runs inside micropython.heap_lock(): it allocates nothing. The locked run
covers balancing, faults raised and recovered, and a contactor open/close
cycle; afterwards every int the state holds fits a 31-bit small int."""
import json
import subprocess

import pytest

from host_tools.firmware import FIRMWARE, ROOT, micropython_binary

HARNESS = ROOT / "host_tools" / "mp" / "tick_bench.py"


def run(cells, mode, kernels="viper", firmware=FIRMWARE):
    r = subprocess.run([micropython_binary(), str(HARNESS), str(firmware), str(cells), mode, kernels],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    return json.loads(r.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("cells", [16, 192])
def test_tick_allocates_nothing(cells):
    out = run(cells, "lock")
    assert out["error"] is None, out
    assert out["internal_error"] == 0, out
    assert out["locked_ticks"] == 1200
    # the locked ticks went through the interesting paths, not just idle
    assert out["balancing_ticks"] > 0 and out["open_ticks"] > 0 and out["fault_ticks"] > 0, out
    assert out["events"] > 0
    # the loose sense wire's scans (the leaky bucket filling and draining) ran locked too
    assert out["bad_channel_ticks"] >= 4, out
    assert out["ranges_bad"] == [], out


def test_heap_lock_catches_an_allocation(tmp_path):
    # The same harness on a firmware copy that allocates one list per tick
    # must fail: the test above can fail.
    import shutil
    fw = tmp_path / "firmware"
    shutil.copytree(FIRMWARE, fw)
    lim = fw / "bms" / "limits.py"
    src = lim.read_text()
    assert "        st.ccl_ma = ccl\n" in src
    lim.write_text(src.replace("        st.ccl_ma = ccl\n", "        st.ccl_ma = ccl\n        st.junk = [ccl]\n"))
    out = run(16, "lock", firmware=fw)
    assert out["error"] == "MemoryError" or out["internal_error"] == 1, out

"""The OCV tables are reproducible from the published electrode fits."""
import re
import subprocess
import sys
from pathlib import Path

import numpy as np

from host_tools.ocv import LFP_OCV, NMC_OCV, OcvCurve

ROOT = Path(__file__).resolve().parent.parent


def test_tables_reproduce_from_derivation_script():
    out = subprocess.run([sys.executable, str(ROOT / "host_tools" / "ocv_derive.py")], capture_output=True, text=True, timeout=120).stdout
    derived = {(float(a), float(b)) for a, b in re.findall(r"\((0\.\d+|1\.000), (\d\.\d{4})\)", out)}
    missing = [p for p in LFP_OCV + NMC_OCV if (round(p[0], 3), round(p[1], 4)) not in derived]
    assert not missing, missing


def test_tables_are_monotonic_and_plausible():
    for table, lo, hi in ((LFP_OCV, 2.4, 3.7), (NMC_OCV, 2.4, 4.3)):
        soc = np.array([p[0] for p in table])
        v = np.array([p[1] for p in table])
        assert soc[0] == 0 and soc[-1] == 1
        assert (np.diff(soc) > 0).all() and (np.diff(v) > 0).all()
        assert lo < v[0] and v[-1] < hi
    lfp = OcvCurve("LFP")
    # LFP's flat plateau: under 60 mV between 40 % and 90 %
    assert lfp(0.9) - lfp(0.4) < 0.06
    # beyond the table (abuse) the voltage keeps rising/falling
    assert lfp(1.02) > lfp(1.0) > lfp(0.99) and lfp(-0.02) < lfp(0.0)

# Runs under MicroPython: for each request line, calls a kernel from
# bms.kernels (viper) and its twin from bms.kernels_ref on separate copies of
# the same inputs and prints both results as one JSON line.
import sys
import json
from array import array

sys.path.insert(0, sys.argv[1])
from bms import kernels, kernels_ref  # noqa: E402


def build(spec):
    out = []
    for a in spec:
        if isinstance(a, dict):
            if a["t"] == "b":
                out.append(bytearray(a["v"]))
            else:
                out.append(array(a["t"], a["v"]))
        else:
            out.append(a)
    return out


def dump(args):
    return [list(a) if not isinstance(a, int) else a for a in args]


for line in sys.stdin:
    req = json.loads(line)
    name = req["k"]
    res = []
    for mod in (kernels, kernels_ref):
        args = build(req["a"])
        try:
            r = getattr(mod, name)(*args)
            res.append({"ret": r, "args": dump(args)})
        except Exception as e:
            res.append({"err": type(e).__name__ + ": " + str(e)})
    print(json.dumps(res))

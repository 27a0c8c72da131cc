# make setup32's check that the port is the 32-bit build the proofs need.
import sys
if sys.maxsize != 2147483647:
    raise SystemExit("not a 32-bit MicroPython: sys.maxsize = %d" % sys.maxsize)
print("MicroPython %d.%d.%d, 32-bit (WebAssembly port): sys.maxsize %d" % (sys.implementation.version[:3] + (sys.maxsize,)))

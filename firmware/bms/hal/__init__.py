# Hardware abstraction: the only layer that touches `machine` (boards) or
# the socket to the plant (sim). A HAL fills State.raw_* in read(), applies
# State outputs in write(), and can force the safe state in safe().

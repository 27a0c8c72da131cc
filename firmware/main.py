# Entry point. On the unix port (simulation) the host starts it as
#   micropython main.py --config CONFIG.json --sim fd:R,W (or fd:N, HOST:PORT)
import sys

locked = False
if not sys.argv[1:]:
    # A board: one provisioned for production (its key file is there) takes
    # Ctrl-C as a byte from its first line, before anything can fail
    # (bms/standby.py); bms.boot turns it back on for a bench board.
    try:
        import os
        os.stat("key.bin")
        import micropython
        micropython.kbd_intr(-1)
        locked = True
    except OSError:
        pass
sys.path.insert(0, __file__.rsplit("/", 1)[0] if "/" in __file__ else ".")
try:
    from bms import boot
except Exception as e:  # noqa: the firmware's own files are damaged
    if not locked:
        raise
    # not even the stand-by can be loaded: say so, never return to the REPL
    # (outputs: untouched since the reset, the pins are inputs)
    print('{"standby": "firmware: cannot load bms.boot: %s"}' % repr(e).replace('"', "'"))
    import time
    while True:
        time.sleep(1)

boot.main(sys.argv[1:])

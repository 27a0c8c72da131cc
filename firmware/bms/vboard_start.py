# Start-up of the virtual board ("hal": "sim" in board.json): the board's
# start-up (bms/board_start.py) with the host plant as its front end,
# paced by the plant's frames (bms/hal/sim.py). Called by bms/boot.py; a
# real board never loads it.
import sys
from bms import board_start as B


def run_virtual(board, cfg, raw, store, source, root):
    """The virtual board: the plant's address is its wiring, given by the
    process that runs it (BMS_SIM_LINK), as is the reset cause."""
    import os
    from bms import VERSION
    link = os.getenv("BMS_SIM_LINK") or board.get("sim_link")
    if not link:
        what = "sim HAL: no plant address (BMS_SIM_LINK)"
        B.boot_line({"version": VERSION, "board": board.get("board"), "error": what})
        return B._standby(board, root, "board: " + what, None, None, None, None, None, -1)
    stream = None
    try:
        from bms import kernels
        from bms.hal.sim import SimHal, connect, hello, sim_loop
        host, port = link.rsplit(":", 1)
        stream = connect(host, int(port))
        reset = os.getenv("BMS_RESET_CAUSE") or "power"
        hal = SimHal(cfg, kernels, stream)
        app, keeper, console, services = B._assemble(board, cfg, raw, store, source, root, hal, kernels,
                                                   reset == "wdt", reset, None)
        if os.getenv("BMS_CAN"):
            # the inverter CAN on an MCP2515 model (bmsctl board --can):
            # frames to the file BMS_CAN_OUT, stamped with the wall clock
            sys.path.append(os.getenv("BMS_CHIPS"))
            from chips.can_sim import SimCan
            services = (SimCan(app, os.getenv("BMS_CAN"), os.getenv("BMS_CAN_OUT"), True),) + services
        hal.hello(hello(cfg))
    except BaseException as e:  # noqa: any failure of the start-up
        if stream is not None:
            stream.close()  # the plant drops the coils of a board that no longer drives them
        return B._start_failed(board, root, e, None, None, None, None, None, -1)
    try:
        B.looping = True  # from here on an escape is the loop's (bms/boot.py)
        if console.root is None:
            sim_loop(app, hal, keeper, console, services)
            return
        import micropython
        micropython.kbd_intr(-1)
        try:
            sim_loop(app, hal, keeper, console, services)
        finally:
            if not console.maintenance:
                # production: whatever ended the loop (an exception, the
                # plant gone), outputs are safe (sim_loop) and the board
                # resets: never an open REPL
                stream.close()
                import machine
                machine.reset()
            micropython.kbd_intr(3)
    finally:
        stream.close()

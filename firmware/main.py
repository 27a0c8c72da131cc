# Entry point. On the unix port (simulation) the host starts it as
#   micropython main.py --config CONFIG.json --sim 127.0.0.1:PORT
# On a board (no arguments) it reads board.json and config.json from the
# board's filesystem and runs the board loop (bms/board_start.py).
import sys

sys.path.insert(0, __file__.rsplit("/", 1)[0] if "/" in __file__ else ".")

if len(sys.argv) > 1:
    from bms import boot  # noqa: E402

    boot.main(sys.argv[1:])
else:
    from bms import board_start  # noqa: E402

    board_start.main()

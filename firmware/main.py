# Entry point. On the unix port (simulation) the host starts it as
#   micropython main.py --config CONFIG.json --sim fd:N (or HOST:PORT)
import sys

sys.path.insert(0, __file__.rsplit("/", 1)[0] if "/" in __file__ else ".")
from bms import boot  # noqa: E402

boot.main(sys.argv[1:])

# Freezes the firmware into a MicroPython board image (module code in
# flash, not RAM). From a MicroPython source tree, see the README:
#   make -C ports/rp2 BOARD=RPI_PICO FROZEN_MANIFEST=/path/to/firmware/manifest.py
#   make -C ports/esp32 BOARD=ESP32_GENERIC FROZEN_MANIFEST=/path/to/firmware/manifest.py
# The port's own modules stay in the image; the board's configuration
# (board.json, config.json) stays on its filesystem (`bmsctl flash`).
include("$(PORT_DIR)/boards/manifest.py")
package("bms")
module("main.py")

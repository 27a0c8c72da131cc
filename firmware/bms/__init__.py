# MicroPython battery management system firmware.
VERSION = "0.1.0"

# Front-end and I/O drivers. Each takes its bus and pin objects in the
# constructor (machine.I2C/SPI/ADC/PWM/Pin on a board, chip models in the
# tests), preallocates its buffers there, and allocates nothing per read.
# Errors on the measurement path are returned as small ints (0 = good), so
# a CRC/PEC failure costs no exception object.
ERR_BUS = 1  # the bus raised OSError (NACK, timeout)
ERR_CRC = 2  # CRC-8 / PEC-15 mismatch
ERR_CHIP = 3  # the chip answered, but not what was asked (subcommand echo, checksum)
ERR_CONFIG = 4  # a setting read back from the chip differs from what was written (boot only)

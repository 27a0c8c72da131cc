# Chip and board models for tests and the simulator (MicroPython; they run
# inside the unix-port process next to the firmware): a BQ76952, an
# LTC681x daisy chain, an analog multiplexer front end, and models of the
# `machine` objects (Pin, I2C, SPI, ADC, PWM, WDT) with a virtual clock.

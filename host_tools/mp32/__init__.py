"""The firmware on the official 32-bit MicroPython (the WebAssembly port
under Node.js): differential replay, heap-lock run, memory table, soak."""

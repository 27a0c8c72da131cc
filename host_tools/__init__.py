"""Host tools for the MicroPython BMS: simulator (plant), scenarios, CLI."""

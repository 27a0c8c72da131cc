# MicroPython side of the differential replay (host_tools/mp32/replay.py):
# the firmware on its sim HAL, fed the sensor frames recorded on the unix
# port from a file instead of the plant's socket; the actuator frames it
# answers go to another file, for the host to compare byte by byte.
#   replay_fw.py CONFIG.json SENSOR_FRAMES OUT_FRAMES KERNELS [STATE_DIR]
import sys


class FrameFiles:
    """The socket's two calls, on files: readinto() the next sensor frame,
    write() an actuator frame."""

    def __init__(self, rx_path, tx_path):
        self.rx = open(rx_path, "rb")
        self.tx = open(tx_path, "wb")

    def readinto(self, buf, n=-1):
        return self.rx.readinto(buf)

    def write(self, data):
        self.tx.write(data)

    def close(self):
        self.rx.close()
        self.tx.close()


def main(argv):
    cfg_path, rx_path, tx_path, kernels_name = argv[:4]
    state_dir = argv[4] if len(argv) > 4 else None
    if kernels_name == "ref":
        from bms import kernels_ref as kernels
    else:
        from bms import kernels
    from bms.sim_start import load_config
    from bms.hal.sim import sim_loop
    from bms.hal.sim import SimHal
    from bms.app import App
    cfg = load_config(cfg_path)
    stream = FrameFiles(rx_path, tx_path)
    hal = SimHal(cfg, kernels, stream)
    app = App(cfg, hal, kernels)
    app.boot(False)
    keeper = None
    if state_dir:
        from bms.persist.keeper import Keeper
        from bms.persist.state_record import StateStore
        from bms.persist.event_log import EventLog
        keeper = Keeper(StateStore(state_dir), EventLog(state_dir))
        keeper.restore(app)
    sim_loop(app, hal, keeper)
    stream.close()


main(sys.argv[1:])

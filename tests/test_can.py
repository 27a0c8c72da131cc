"""Inverter CAN: the MCP2515 driver against its register-level chip model
(host_tools/mp/chips/mcp2515.py), all under the MicroPython unix port."""
import json
import subprocess

from host_tools.firmware import FIRMWARE, ROOT, micropython_binary

CHECK = ROOT / "tests" / "mp_can_check.py"
CHIPS = ROOT / "host_tools" / "mp"


def run(case, arg=""):
    r = subprocess.run([micropython_binary(), str(CHECK), str(FIRMWARE), str(CHIPS), case, *([arg] if arg else [])],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    return json.loads(r.stdout.strip().splitlines()[-1])


def test_mcp2515_bringup_from_reset_for_both_crystals():
    out = run("bringup")
    for xtal, cnf in (("8000000", [0x00, 0x90, 0x82]), ("16000000", [0x00, 0xF0, 0x86])):
        x = out[xtal]
        assert x["reset_canstat"] == 0x80 and x["reset_canctrl"] == 0x87  # configuration mode after reset
        assert x["start"] == 0 and x["mode"] == 0x00  # normal mode, confirmed in CANSTAT
        assert x["cnf"] == cnf and x["bitrate"] == 500000
        assert x["cnf1_after_normal_write"] == 0 and x["refused"] == 1  # CNF1 is configuration-mode only
    # the wrong crystal setting: 250 kbit/s on a 500 kbit/s bus; nothing arrives, the chip goes bus-off
    assert out["wrong_xtal_start"] == 0 and out["wrong_xtal_bitrate"] == 250000
    assert out["wrong_xtal_peer_rx"] == 0 and out["wrong_xtal_state"] == 3
    assert out["late_mode"] == 0  # a mode that shows after 3 reads is polled for
    assert out["never_mode"] == 3 and out["never_mode_reads"] < 40  # ERR_CHIP after a bounded number of reads
    assert out["skip_config_refused"] == 2  # bit timing written outside configuration mode is refused


def test_mcp2515_transmit_receive_and_overflow():
    out = run("traffic")
    assert out["start"] == 0 and out["send"] == [0, 0, 0, 0]
    ids = sorted(i for i, _ in out["peer_rx"])
    assert ids == [0x351, 0x355, 0x356, 0x35E]
    assert [b for i, b in out["peer_rx"] if i == 0x351] == [[0x14, 0x02, 0x74, 0x0E, 0x74, 0x0E, 0xCC, 0x01]]
    assert [len(b) for i, b in out["peer_rx"] if i == 0x355] == [4]
    assert out["tec_after_ok"] == [0, 0] and out["pending_empty"] == 0
    assert out["int_low"]  # INT follows RX0IF | RX1IF
    assert out["recv"] == [[0x305, 8, [0] * 8], [0x307, 8, [0x12, 0x34, 0x56, 0x78, 0x56, 0x49, 0x43, 0]]]
    assert out["recv_empty"] == -1
    # five frames without a read: two kept (RXB0, rollover RXB1), three lost and flagged
    assert out["lost"] == 3 and out["rx_overflows"] == 1 and out["eflg_cleared"] == 0 and out["kept"] == 2


def test_mcp2515_error_states():
    out = run("errors")
    # alone on the bus: each missing ACK adds 8 until error passive; then ISO 11898-1's
    # exception holds TEC at 128 (no bus-off); the fourth frame finds all three buffers busy
    assert out["noack_sends"] == [0, 0, 0, 1]
    assert out["noack"][1:] == [[2, 128]] * 4 and out["noack_1s"] == [2, 128, True]
    state, tec, n = out["peer_back"]
    assert n == 3 and tec == 125 and state == 1  # sent once a node ACKs; TEC falls by 1 per frame
    # stuck bus: bit errors, bus-off past 255, sends refused, recovery after 128 x 11 recessive bits
    assert out["stuck"][-1] == [3, 255] and out["busoff_send"][-1] == 2 and out["still_off"] == 3
    assert out["before_recovery"] == 3 and out["recovered"] == [0, 0] and out["sent_after"] == 3

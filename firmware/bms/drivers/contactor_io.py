# Contactor and precharge outputs (relay/contactor drivers on GPIOs) with
# their auxiliary-contact feedback inputs, the enable input (key switch or
# E-stop chain) and the charger-present input. Bit layout as in
# bms.state: outputs NEG 1, PRE 2, POS 4; inputs add ENABLE 8, CHARGER 16.
# Each pin may be active low (an input with a pull-up and a contact to
# ground usually is).
from bms.state import OUT_NEG, OUT_PRE, OUT_POS, IN_ENABLE, IN_CHARGER

OUT_BITS = (OUT_NEG, OUT_PRE, OUT_POS)
IN_BITS = (OUT_NEG, OUT_PRE, OUT_POS, IN_ENABLE, IN_CHARGER)


class ContactorIO:
    """outputs: (pin, active_low) for NEG, PRE, POS; inputs: (pin or None,
    active_low) for the NEG, PRE, POS feedback, ENABLE and CHARGER.
    A missing input reads as off (feedback open, enable off: a board
    without an enable input sets the configuration's enable_input false)."""

    def __init__(self, outputs, inputs):
        if len(outputs) != 3 or len(inputs) != 5:
            raise ValueError("contactor_io: 3 outputs (neg, pre, pos) and 5 inputs expected")
        self.out_pins = tuple(p for p, _ in outputs)
        self.out_low = bytearray(1 if low else 0 for _, low in outputs)
        self.in_pins = tuple(p for p, _ in inputs)
        self.in_low = bytearray(1 if low else 0 for _, low in inputs)
        self.state = -1
        self.off()

    def write(self, outputs):
        if outputs == self.state:
            return
        # Open before close: a contactor opening this tick drops before
        # another one picks up.
        for closing in (0, 1):
            for i in range(3):
                on = 1 if outputs & OUT_BITS[i] else 0
                if on == closing:
                    self.out_pins[i].value(on ^ self.out_low[i])
        self.state = outputs

    def off(self):
        # Positive side first, then precharge, then negative.
        for i in (2, 1, 0):
            self.out_pins[i].value(self.out_low[i])
        self.state = 0

    def read(self):
        bits = 0
        for i in range(5):
            p = self.in_pins[i]
            if p is None:
                continue
            if p.value() ^ self.in_low[i]:
                bits |= IN_BITS[i]
        return bits

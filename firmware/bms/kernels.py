# Per-cell inner loops of the tick, compiled by the viper emitter.
#
# Every routine here has a plain-Python twin with the same name and contract
# in kernels_ref.py; tests/test_kernels_diff.py checks that both give equal
# results. Contracts (shared by both modules):
#
# * arrays are preallocated by the caller; nothing is allocated here;
# * 'H' arrays hold unsigned 16-bit values, 'h' signed 16-bit, 'i' signed
#   32-bit (only non-negative values are read through ptr32: viper loads
#   ptr32 zero-extended on 64-bit hosts);
# * all products stay below 2**30 when inputs respect the documented ranges
#   (so 32-bit boards never promote to big ints).
import micropython


@micropython.viper
def scale_cells(raw, gain_q16, offset_mv, out_mv, n: int):
    # mv = (raw * gain_q16 >> 16) + offset_mv, clamped to 0..65535.
    # Range: raw * gain_q16 < 2**30 (checked when the config is built).
    pr = ptr16(raw)
    pg = ptr32(gain_q16)
    po = ptr16(offset_mv)
    pout = ptr16(out_mv)
    i = 0
    while i < n:
        o = po[i]
        if o > 32767:
            o -= 65536
        v = ((pr[i] * pg[i]) >> 16) + o
        if v < 0:
            v = 0
        elif v > 65535:
            v = 65535
        pout[i] = v
        i += 1


@micropython.viper
def minmax_sum(mv, n: int, res) -> int:
    # res[0..3] = min, max, index of min, index of max (first occurrence);
    # returns the sum. n == 0 gives min = max = 0 and indices -1.
    p = ptr16(mv)
    r = ptr32(res)
    if n <= 0:
        r[0] = 0
        r[1] = 0
        r[2] = -1
        r[3] = -1
        return 0
    lo = p[0]
    hi = lo
    ilo = 0
    ihi = 0
    s = lo
    i = 1
    while i < n:
        v = p[i]
        s += v
        if v < lo:
            lo = v
            ilo = i
        if v > hi:
            hi = v
            ihi = i
        i += 1
    r[0] = lo
    r[1] = hi
    r[2] = ilo
    r[3] = ihi
    return s


@micropython.viper
def balance_select(mv, n: int, params, mask) -> int:
    # Chooses the cells to bleed, highest first. params (array 'i'):
    #   [0] min_mv      the lowest cell (the reference)
    #   [1] thresh_mv   bleed only cells at least this far above min_mv
    #   [2] floor_mv    never bleed a cell below this voltage
    #   [3] max_count   at most this many cells at once
    #   [4] no_neighbours  1: never bleed two adjacent cells together
    # mask (bytearray, n bytes) gets 1 for a selected cell, else 0.
    # Returns the number selected.
    p = ptr16(mv)
    m = ptr8(mask)
    q = ptr32(params)
    ref = q[0]
    lim = ref + q[1]
    floor = q[2]
    if floor > lim:
        lim = floor
    k = q[3]
    nn = q[4]
    i = 0
    while i < n:
        m[i] = 0
        i += 1
    count = 0
    while count < k:
        best = -1
        bv = 0
        i = 0
        while i < n:
            v = p[i]
            if m[i] == 0 and v >= lim and v > bv:
                ok = 1
                if nn:
                    if i > 0 and m[i - 1]:
                        ok = 0
                    if i + 1 < n and m[i + 1]:
                        ok = 0
                if ok:
                    best = i
                    bv = v
            i += 1
        if best < 0:
            break
        m[best] = 1
        count += 1
    return count


@micropython.viper
def ntc_interp(raw, n: int, tab_raw, tab_t, m: int, out):
    # Piecewise-linear lookup: tab_raw ('H', strictly ascending, m >= 2
    # points) to tab_t ('h', 0.1 degC). Readings outside the table clamp to
    # its ends (the diagnosis flags them as open or shorted separately).
    pr = ptr16(raw)
    tr = ptr16(tab_raw)
    tt = ptr16(tab_t)
    po = ptr16(out)
    lo_r = tr[0]
    hi_r = tr[m - 1]
    i = 0
    while i < n:
        x = pr[i]
        if x <= lo_r:
            t = tt[0]
            if t > 32767:
                t -= 65536
        elif x >= hi_r:
            t = tt[m - 1]
            if t > 32767:
                t -= 65536
        else:
            j = 0
            while tr[j + 1] <= x:
                j += 1
            r0 = tr[j]
            r1 = tr[j + 1]
            t0 = tt[j]
            if t0 > 32767:
                t0 -= 65536
            t1 = tt[j + 1]
            if t1 > 32767:
                t1 -= 65536
            if t1 >= t0:
                t = t0 + ((x - r0) * (t1 - t0)) // (r1 - r0)
            else:
                t = t0 - ((x - r0) * (t0 - t1)) // (r1 - r0)
        po[i] = t
        i += 1


@micropython.viper
def therm_minmax(raw, t, n: int, io) -> int:
    # The lowest and highest of n temperatures t ('h', 0.1 degC) whose
    # thermistors read inside their valid range, raw ('H') strictly
    # between io[0] (at or below: shorted) and io[1] (at or above: open):
    # an open or shorted one reads as an extreme and stays out. io ('i'):
    # in [0], [1] (raw counts, >= 0); out [2] lowest, [3] highest (32767
    # and -32768 when none is valid). Returns how many were left out.
    pr = ptr16(raw)
    pt = ptr16(t)
    q = ptr32(io)
    short = int(q[0])
    open_ = int(q[1])
    lo = 32767
    hi = -32768
    bad = 0
    i = 0
    while i < n:
        r = int(pr[i])
        if r <= short or r >= open_:
            bad += 1
        else:
            v = int(pt[i])
            if v > 32767:
                v -= 65536
            if v < lo:
                lo = v
            if v > hi:
                hi = v
        i += 1
    q[2] = lo
    q[3] = hi
    return bad


@micropython.viper
def unpack_u16(buf, off: int, out, n: int):
    # n little-endian uint16 from buf[off:] into the 'H' array out.
    b = ptr8(buf)
    po = ptr16(out)
    i = 0
    while i < n:
        po[i] = b[off] | (b[off + 1] << 8)
        off += 2
        i += 1


@micropython.viper
def pack_bits(mask, n: int, buf, off: int):
    # mask (n bytes, 0 or non-zero) to bits, LSB first, into buf[off:].
    m = ptr8(mask)
    b = ptr8(buf)
    nbytes = (n + 7) >> 3
    i = 0
    while i < nbytes:
        b[off + i] = 0
        i += 1
    i = 0
    while i < n:
        if m[i]:
            b[off + (i >> 3)] |= 1 << (i & 7)
        i += 1


@micropython.viper
def debounce(vals, n: int, params, acc, flags) -> int:
    # Trip and recovery debounce counters over a cell array.
    # params ('i'): [0] trip, [1] recover, [2] trip_ms, [3] recover_ms,
    #               [4] dt_ms, [5] 1 = trip above, 0 = trip below.
    # acc ('i', per cell): 0 = condition not holding, else held ms + 1
    # (no negative sentinel: ptr32 reads zero-extended on 64-bit hosts).
    # flags (bytearray): 1 = tripped. Returns the number of tripped cells.
    pv = ptr16(vals)
    q = ptr32(params)
    pa = ptr32(acc)
    pf = ptr8(flags)
    trip = q[0]
    rec = q[1]
    tms = q[2]
    rms = q[3]
    dt = q[4]
    above = q[5]
    count = 0
    i = 0
    while i < n:
        v = pv[i]
        if pf[i] == 0:
            if above:
                hit = v >= trip
            else:
                hit = v <= trip
            if hit:
                a = pa[i]
                if a == 0:
                    a = 1
                else:
                    a += dt
                if a > tms:
                    pf[i] = 1
                    a = 0
                pa[i] = a
            else:
                pa[i] = 0
        else:
            if above:
                ok = v < rec
            else:
                ok = v > rec
            if ok:
                a = pa[i]
                if a == 0:
                    a = 1
                else:
                    a += dt
                if a > rms:
                    pf[i] = 0
                    a = 0
                pa[i] = a
            else:
                pa[i] = 0
        if pf[i]:
            count += 1
        i += 1
    return count


@micropython.viper
def crc8_smbus(buf, off: int, n: int) -> int:
    # CRC-8, polynomial x^8 + x^2 + x + 1 (0x07), initial 0, MSB first: the
    # SMBus PEC that TI front ends (BQ769x2) append to I2C transfers.
    b = ptr8(buf)
    crc = 0
    i = 0
    while i < n:
        crc ^= b[off + i]
        j = 0
        while j < 8:
            if crc & 0x80:
                crc = ((crc << 1) ^ 0x07) & 0xFF
            else:
                crc = (crc << 1) & 0xFF
            j += 1
        i += 1
    return crc


@micropython.viper
def pec15(buf, off: int, n: int) -> int:
    # ADI LTC681x packet error code: CRC-15, polynomial 0x4599, seed 16,
    # MSB first, returned shifted left by one (bit 0 = 0) as sent on the wire.
    b = ptr8(buf)
    rem = 16
    i = 0
    while i < n:
        rem ^= b[off + i] << 7
        j = 0
        while j < 8:
            rem <<= 1
            if rem & 0x8000:
                rem ^= 0x4599
            j += 1
        rem &= 0x7FFF
        i += 1
    return (rem << 1) & 0xFFFF


@micropython.viper
def stuck_track(raw, prev, acc, n: int, dt: int) -> int:
    # For each channel: acc[i] = ms the raw reading has stayed exactly the
    # same (capped at 2**20), prev[i] = the reading. Returns the largest acc.
    pr = ptr16(raw)
    pp = ptr16(prev)
    pa = ptr32(acc)
    top = 0
    i = 0
    while i < n:
        v = pr[i]
        if v == pp[i]:
            a = pa[i] + dt
            if a > 1048576:
                a = 1048576
        else:
            a = 0
            pp[i] = v
        pa[i] = a
        if a > top:
            top = a
        i += 1
    return top


@micropython.viper
def count_outside(vals, n: int, lo: int, hi: int) -> int:
    # Number of values below lo or above hi.
    p = ptr16(vals)
    c = 0
    i = 0
    while i < n:
        v = p[i]
        if v < lo or v > hi:
            c += 1
        i += 1
    return c


ROW = 11  # stride of the packed fault table (see fault_rows)


@micropython.viper
def fault_rows(sig, rows, acc, active, gone, changed, io) -> int:
    # Evaluates the fault table over the signals: trip and recovery
    # debounce with hysteresis and latching.
    # rows ('i', ROW per fault): signal index, above (1) / below (0), trip,
    #   recover, trip delay ms, recover delay ms, latching, measured,
    #   is-warning, action bits, leak (0: plain debounce; else a leaky
    #   bucket: the trip delay is in us, each scan with the condition adds
    #   dt ms x 1000, each scan without takes back dt x leak us).
    # acc ('i'): 0 = condition not holding, else held ms (us: leaky rows
    #   while inactive) + 1.
    # active, gone (bytearray): the fault is active / its latched cause is gone.
    # changed (bytearray, out): 1 raised, 2 cleared this call, else 0.
    # io ('i'): [0] n, [1] dt ms, [2] judge measured rows (0/1);
    #   out: [3] OR of the active rows' action bits, [4] active count,
    #   [5] active warnings. Returns the number of changed rows.
    # Signed 32-bit values (signals, thresholds) are read as two 16-bit
    # halves: ptr32 loads zero-extended on 64-bit hosts, and a literal above
    # 0x3fffffff would become an object (little-endian ports only).
    s16 = ptr16(sig)
    r16 = ptr16(rows)
    pa = ptr32(acc)
    pact = ptr8(active)
    pg = ptr8(gone)
    pc = ptr8(changed)
    q = ptr32(io)
    pr = ptr32(rows)
    n = q[0]
    dt = q[1]
    judge = q[2]
    acts = 0
    count = 0
    warn = 0
    nchg = 0
    i = 0
    while i < n:
        b = i * 11
        pc[i] = 0
        if pr[b + 7] and not judge:
            pass
        else:
            k = pr[b] * 2
            hi = s16[k + 1]
            if hi > 32767:
                hi -= 65536
            v = (hi << 16) | s16[k]
            above = pr[b + 1]
            h = pa[i]
            if pact[i] == 0:
                hi = r16[2 * b + 5]
                if hi > 32767:
                    hi -= 65536
                trip = (hi << 16) | r16[2 * b + 4]
                if above:
                    hit = v >= trip
                else:
                    hit = v <= trip
                leak = pr[b + 10]
                if hit:
                    held = 0
                    if leak:
                        if h:
                            held = h - 1
                        held += dt * 1000
                    elif h:
                        held = h - 1 + dt
                    if held >= pr[b + 4]:
                        pact[i] = 1
                        pg[i] = 0
                        pc[i] = 1
                        nchg += 1
                        pa[i] = 0
                    else:
                        pa[i] = held + 1
                elif leak and h:
                    r = h - 1 - dt * leak
                    if r > 0:
                        pa[i] = r + 1
                    else:
                        pa[i] = 0
                else:
                    pa[i] = 0
            else:
                hi = r16[2 * b + 7]
                if hi > 32767:
                    hi -= 65536
                rec = (hi << 16) | r16[2 * b + 6]
                if above:
                    ok = v < rec
                else:
                    ok = v > rec
                if ok:
                    held = 0
                    if h:
                        held = h - 1 + dt
                    rms = pr[b + 5]
                    if held >= rms:
                        held = rms
                        if pr[b + 6]:
                            pg[i] = 1  # latched: stays active until `clear`
                            pa[i] = held + 1
                        else:
                            pact[i] = 0
                            pc[i] = 2
                            nchg += 1
                            pa[i] = 0
                    else:
                        pa[i] = held + 1
                else:
                    pa[i] = 0
                    pg[i] = 0
        if pact[i]:
            count += 1
            if pr[b + 8]:
                warn += 1
            acts |= pr[b + 9]
        i += 1
    q[3] = acts
    q[4] = count
    q[5] = warn
    return nchg


@micropython.viper
def interp(xs, ys, n: int, x: int) -> int:
    # Piecewise-linear y(x) over n >= 2 rising xs (repeats allowed), clamped
    # at the ends, rounded down: the OCV table both ways and the capacity's
    # temperature table, 4-6 lookups a tick. xs, ys: 16-bit arrays of
    # -32768..32767 ('h', or 'H' below 32768). Range: |dx * dy| between
    # two points < 2**30 (the config's tables: 10000 cpct x 5000 mV).
    px = ptr16(xs)
    py = ptr16(ys)
    a = int(px[0])
    if a > 32767:
        a -= 65536
    if x <= a:
        y = int(py[0])
        return y - 65536 if y > 32767 else y
    b = int(px[n - 1])
    if b > 32767:
        b -= 65536
    if x >= b:
        y = int(py[n - 1])
        return y - 65536 if y > 32767 else y
    # bisection for the last j with xs[j] < x (xs[0] < x < xs[n - 1])
    j = 0
    hi = n - 1
    while hi - j > 1:
        mid = (j + hi) >> 1
        v = int(px[mid])
        if v > 32767:
            v -= 65536
        if v < x:
            j = mid
        else:
            hi = mid
    x0 = int(px[j])
    x1 = int(px[j + 1])
    y0 = int(py[j])
    y1 = int(py[j + 1])
    if x0 > 32767:
        x0 -= 65536
    if x1 > 32767:
        x1 -= 65536
    if y0 > 32767:
        y0 -= 65536
    if y1 > 32767:
        y1 -= 65536
    d = x1 - x0
    if y1 >= y0:
        return y0 + (x - x0) * (y1 - y0) // d
    # falling: floor of a negative quotient, from non-negative operands
    return y0 - ((x - x0) * (y0 - y1) + d - 1) // d


@micropython.viper
def soc_band(xs, ys, n: int, io):
    # The band of pack SOC the cells allow (soc_bounds.SocBounds.band): the
    # OCV table xs (mV, 'H') -> ys (0.01 %, 'h'), both 0..32767 (the
    # config's OCV: 0..5000 mV, 0..10000 cpct), looked up as interp() does
    # at four voltages, each moved by a lag and clamped to 0..10000, then
    # the pack's SOC from its lowest and highest cell's, lo * 10000 // (lo
    # + 10000 - hi) (10000 if that is <= 0 and hi >= 10000, else 0), for
    # each end. One call for what took ten.
    # io ('i'): in [0] lowest cell's voltage for the low end, [1] highest
    # cell's for the low end, [2] lowest's for the high end, [3] highest's
    # for the high end (mV, signed: read as two 16-bit halves), [4] lag
    # taken off the low end's, [5] lag added to the high end's (0.01 %,
    # >= 0); out [6..9] the four clamped cell SOCs, [10] band low, [11]
    # band high. interp()'s lookup is repeated here, not called: a call
    # from viper to viper is a Python-level call (~2,000 instructions on
    # the unix port), what the kernel is there to save.
    s16 = ptr16(io)
    q = ptr32(io)
    px = ptr16(xs)
    py = ptr16(ys)
    a = int(px[0])
    b = int(px[n - 1])
    k = 0
    while k < 4:
        hi16 = int(s16[2 * k + 1])
        if hi16 > 32767:
            hi16 -= 65536
        x = (hi16 << 16) | int(s16[2 * k])
        if x <= a:
            y = int(py[0])
        elif x >= b:
            y = int(py[n - 1])
        else:
            # bisection for the last j with xs[j] < x
            j = 0
            hi = n - 1
            while hi - j > 1:
                mid = (j + hi) >> 1
                if int(px[mid]) < x:
                    j = mid
                else:
                    hi = mid
            x0 = int(px[j])
            y0 = int(py[j])
            y1 = int(py[j + 1])
            d = int(px[j + 1]) - x0
            if y1 >= y0:
                y = y0 + (x - x0) * (y1 - y0) // d
            else:
                y = y0 - ((x - x0) * (y0 - y1) + d - 1) // d
        if k < 2:
            y -= int(q[4])
        else:
            y += int(q[5])
        if y < 0:
            y = 0
        elif y > 10000:
            y = 10000
        q[6 + k] = y
        k += 1
    k = 0
    while k < 2:
        lo = int(q[6 + 2 * k])
        hi = int(q[7 + 2 * k])
        d = lo + 10000 - hi
        if d <= 0:
            r = 10000 if hi >= 10000 else 0
        else:
            r = lo * 10000 // d
        q[10 + k] = r
        k += 1


@micropython.viper
def soc_lags(k, tau, u, rem, c_pm: int, dt: int) -> int:
    # The surface SOC's two first-order lags of the C-rate (soc.Soc._lag)
    # advanced by dt ms: backward Euler in steps of at most 1 s, with the
    # division's remainder kept, so a 10 ms tick and a 5 min time
    # constant still converge exactly. k, tau ('i', >= 0): each lag's
    # gain (0.01 % per C, <= 5000) and time constant (ms, 1..3600000);
    # u, rem ('i', signed: read as two 16-bit halves): each lag's value
    # (0.0001 %, kept to +-500000) and remainder. c_pm: the C-rate per
    # mille, |c_pm| <= 10000. Returns u[0] + u[1]. Range: (target - u) x
    # 1000 + rem < 2**30.
    pk = ptr32(k)
    pt = ptr32(tau)
    pu = ptr32(u)
    pr = ptr32(rem)
    hu = ptr16(u)
    hr = ptr16(rem)
    tot = 0
    j = 0
    while j < 2:
        t = c_pm * int(pk[j]) // 10
        if t > 500000:
            t = 500000
        elif t < -500000:
            t = -500000
        h = int(hu[2 * j + 1])
        if h > 32767:
            h -= 65536
        uj = (h << 16) | int(hu[2 * j])
        h = int(hr[2 * j + 1])
        if h > 32767:
            h -= 65536
        rj = (h << 16) | int(hr[2 * j])
        d0 = int(pt[j])
        left = dt
        while left > 0:
            s = left if left < 1000 else 1000
            left -= s
            d = d0 + s
            num = (t - uj) * s + rj
            step = num // d
            rj = num - step * d
            uj += step
        pu[j] = uj
        pr[j] = rj
        tot += uj
        j += 1
    return tot

# Plain-Python twins of the viper kernels in kernels.py: same names, same
# contracts, written for clarity. They are the reference in the differential
# tests and can be swapped into the app (App(kernels=kernels_ref)) to
# measure what viper buys.


def scale_cells(raw, gain_q16, offset_mv, out_mv, n):
    for i in range(n):
        v = ((raw[i] * gain_q16[i]) >> 16) + offset_mv[i]
        out_mv[i] = 0 if v < 0 else (65535 if v > 65535 else v)


def minmax_sum(mv, n, res):
    if n <= 0:
        res[0] = res[1] = 0
        res[2] = res[3] = -1
        return 0
    lo = hi = mv[0]
    ilo = ihi = 0
    s = 0
    for i in range(n):
        v = mv[i]
        s += v
        if v < lo:
            lo = v
            ilo = i
        if v > hi:
            hi = v
            ihi = i
    res[0] = lo
    res[1] = hi
    res[2] = ilo
    res[3] = ihi
    return s


def balance_select(mv, n, params, mask):
    lim = max(params[0] + params[1], params[2])
    k, nn = params[3], params[4]
    for i in range(n):
        mask[i] = 0
    count = 0
    while count < k:
        best, bv = -1, 0
        for i in range(n):
            v = mv[i]
            if mask[i] or v < lim or v <= bv:
                continue
            if nn and ((i > 0 and mask[i - 1]) or (i + 1 < n and mask[i + 1])):
                continue
            best, bv = i, v
        if best < 0:
            break
        mask[best] = 1
        count += 1
    return count


def ntc_interp(raw, n, tab_raw, tab_t, m, out):
    for i in range(n):
        x = raw[i]
        if x <= tab_raw[0]:
            out[i] = tab_t[0]
        elif x >= tab_raw[m - 1]:
            out[i] = tab_t[m - 1]
        else:
            j = 0
            while tab_raw[j + 1] <= x:
                j += 1
            r0 = tab_raw[j]
            r1 = tab_raw[j + 1]
            t0 = tab_t[j]
            t1 = tab_t[j + 1]
            if t1 >= t0:
                out[i] = t0 + ((x - r0) * (t1 - t0)) // (r1 - r0)
            else:
                out[i] = t0 - ((x - r0) * (t0 - t1)) // (r1 - r0)


def therm_minmax(raw, t, n, io):
    lo = 32767
    hi = -32768
    bad = 0
    for i in range(n):
        if raw[i] <= io[0] or raw[i] >= io[1]:
            bad += 1
            continue
        lo = min(lo, t[i])
        hi = max(hi, t[i])
    io[2] = lo
    io[3] = hi
    return bad


def unpack_u16(buf, off, out, n):
    for i in range(n):
        out[i] = buf[off + 2 * i] | (buf[off + 2 * i + 1] << 8)


def pack_bits(mask, n, buf, off):
    for i in range((n + 7) >> 3):
        buf[off + i] = 0
    for i in range(n):
        if mask[i]:
            buf[off + (i >> 3)] |= 1 << (i & 7)


def debounce(vals, n, params, acc, flags):
    trip = params[0]
    rec = params[1]
    tms = params[2]
    rms = params[3]
    dt = params[4]
    above = params[5]
    count = 0
    for i in range(n):
        v = vals[i]
        if not flags[i]:
            cond = v >= trip if above else v <= trip
            limit = tms
        else:
            cond = v < rec if above else v > rec
            limit = rms
        if cond:
            a = 1 if acc[i] == 0 else acc[i] + dt
            if a > limit:
                flags[i] = 0 if flags[i] else 1
                a = 0
            acc[i] = a
        else:
            acc[i] = 0
        if flags[i]:
            count += 1
    return count


def crc8_smbus(buf, off, n):
    crc = 0
    for i in range(off, off + n):
        crc ^= buf[i]
        for _ in range(8):
            crc = ((crc << 1) ^ 0x07) & 0xFF if crc & 0x80 else (crc << 1) & 0xFF
    return crc


def pec15(buf, off, n):
    rem = 16
    for i in range(off, off + n):
        rem ^= buf[i] << 7
        for _ in range(8):
            rem <<= 1
            if rem & 0x8000:
                rem ^= 0x4599
        rem &= 0x7FFF
    return (rem << 1) & 0xFFFF


def stuck_track(raw, prev, acc, n, dt):
    top = 0
    for i in range(n):
        v = raw[i]
        if v == prev[i]:
            a = min(acc[i] + dt, 1048576)
        else:
            a = 0
            prev[i] = v
        acc[i] = a
        if a > top:
            top = a
    return top


def count_outside(vals, n, lo, hi):
    c = 0
    for i in range(n):
        if vals[i] < lo or vals[i] > hi:
            c += 1
    return c


def fault_rows(sig, rows, acc, active, gone, changed, io):
    n, dt, judge = io[0], io[1], io[2]
    acts = count = warn = nchg = 0
    for i in range(n):
        b = i * 11
        changed[i] = 0
        if not (rows[b + 7] and not judge):
            v = sig[rows[b]]
            above = rows[b + 1]
            h = acc[i]
            held = h - 1 + dt if h else 0
            if not active[i]:
                trip = rows[b + 2]
                leak = rows[b + 10]
                if (v >= trip) if above else (v <= trip):
                    if leak:
                        # leaky bucket in us: every scan with the condition adds its dt
                        held = (h - 1 if h else 0) + dt * 1000
                    if held >= rows[b + 4]:
                        active[i] = 1
                        gone[i] = 0
                        changed[i] = 1
                        nchg += 1
                        acc[i] = 0
                    else:
                        acc[i] = held + 1
                elif leak and h:
                    r = h - 1 - dt * leak
                    acc[i] = r + 1 if r > 0 else 0
                else:
                    acc[i] = 0
            else:
                rec = rows[b + 3]
                if (v < rec) if above else (v > rec):
                    rms = rows[b + 5]
                    if held >= rms:
                        held = rms
                        if rows[b + 6]:
                            gone[i] = 1
                            acc[i] = held + 1
                        else:
                            active[i] = 0
                            changed[i] = 2
                            nchg += 1
                            acc[i] = 0
                    else:
                        acc[i] = held + 1
                else:
                    acc[i] = 0
                    gone[i] = 0
        if active[i]:
            count += 1
            if rows[b + 8]:
                warn += 1
            acts |= rows[b + 9]
    io[3] = acts
    io[4] = count
    io[5] = warn
    return nchg


def interp(xs, ys, n, x):
    """Piecewise-linear y(x) over rising xs, clamped at the ends."""
    if x <= xs[0]:
        return ys[0]
    if x >= xs[n - 1]:
        return ys[n - 1]
    # bisection for the last j with xs[j] < x (xs[0] < x < xs[n - 1] here)
    j = 0
    hi = n - 1
    while hi - j > 1:
        mid = (j + hi) >> 1
        if xs[mid] < x:
            j = mid
        else:
            hi = mid
    x0 = xs[j]
    y0 = ys[j]
    return y0 + (x - x0) * (ys[j + 1] - y0) // (xs[j + 1] - x0)


def soc_band(xs, ys, n, io):
    """The band of pack SOC the cells allow: see kernels.soc_band."""
    for k in range(4):
        y = interp(xs, ys, n, io[k])
        y = y - io[4] if k < 2 else y + io[5]
        io[6 + k] = 0 if y < 0 else (10000 if y > 10000 else y)
    for k in range(2):
        lo = io[6 + 2 * k]
        hi = io[7 + 2 * k]
        d = lo + 10000 - hi
        io[10 + k] = (10000 if hi >= 10000 else 0) if d <= 0 else lo * 10000 // d


def soc_lags(k, tau, u, rem, c_pm, dt):
    tot = 0
    for j in range(2):
        # target in 0.0001 %: c_pm / 1000 * k (0.01 %) * 100
        t = max(-500000, min(500000, c_pm * k[j] // 10))
        left = dt
        while left > 0:
            s = min(left, 1000)
            left -= s
            d = tau[j] + s
            num = (t - u[j]) * s + rem[j]
            step = num // d
            rem[j] = num - step * d
            u[j] += step
        tot += u[j]
    return tot

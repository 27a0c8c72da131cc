/* The lock-step loop of host_tools/loop.py for the ECM pack plant
 * (host_tools/pack_plant.py, plant.py, sensing.py), compiled: per tick the
 * sensor frame, one write and one read on the firmware's socket, the record,
 * the profile step's current and the pack's step, the scenario's fault
 * injections included, without returning to Python. Python keeps every tick
 * that is not routine (PK_PRE, PK_POST) and every rule that changes rarely;
 * host_tools/fused.py is the glue.
 *
 * It is a twin of the Python code, not a new model: each expression keeps
 * the Python one's operations in the same order (and numpy's pairwise sum),
 * so a run gives the same record to the last bit either way
 * (tests/test_fused_loop.py compares whole runs). Build with
 * -ffp-contract=off: a fused multiply-add would round differently. */
#include <errno.h>
#include <math.h>
#include <poll.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

/* host_tools/plant.py */
#define COOLANT_CP 3300.0
#define COOLANT_RHO 1070.0
#define COOLANT_J_PER_K (4.0e-3 * 1070 * 3300)
#define PUMP_MAX_FLOW_M3_S (15.0 / 60000)
#define PUMP_MAX_W 13.0
#define PUMP_MIN_DUTY 0.1
#define FLOW_HZ_PER_LPM 7.5
#define G_PLATE_FLOW_W_K 4.0
#define G_PLATE_STILL_W_K 0.4
#define G_AMBIENT_W_K 0.15
#define G_NEIGHBOUR_W_K 1.0
#define G_RADIATOR_W_K 150.0
#define G_RADIATOR_STILL_W_K 5.0
#define HEATER_W 1000.0
#define BUS_CAP_F 4.7e-3
#define PRECHARGE_OHM 47.0
#define BUS_BLEED_TAU_S 5.0
#define OUT_NEG 1
#define OUT_PRE 2
#define OUT_POS 4
/* host_tools/frames.py */
#define SENSOR_MAGIC 0xB5A1
#define ACT_MAGIC 0xB5A2
#define FRAME_VERSION 2
#define TICKS_PERIOD (1LL << 30)
#define IN_ENABLE 8
#define IN_CHARGER 16
#define ACT_FIXED 150
#define NTC_R25 10000.0
#define NTC_BETA 3435.0
#define NTC_PULLUP 10000.0
#define NTC_FULL 4095

static void put16(unsigned char *p, unsigned v) { p[0] = v & 0xff; p[1] = (v >> 8) & 0xff; }
static void put32(unsigned char *p, uint32_t v) { put16(p, v & 0xffff); put16(p + 2, v >> 16); }
static unsigned get16(const unsigned char *p) { return p[0] | (p[1] << 8); }
static int32_t get32(const unsigned char *p) { return (int32_t)((uint32_t)get16(p) | ((uint32_t)get16(p + 2) << 16)); }

/* numpy's pairwise summation (np.add.reduce of a float64 vector). */
static double pw_sum(const double *a, long n)
{
    if (n < 8) {
        double res = 0.;
        for (long i = 0; i < n; i++)
            res += a[i];
        return res;
    }
    if (n <= 128) {
        double r[8], res;
        long i;
        for (int j = 0; j < 8; j++)
            r[j] = a[j];
        for (i = 8; i < n - (n % 8); i += 8)
            for (int j = 0; j < 8; j++)
                r[j] += a[i + j];
        res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        for (; i < n; i++)
            res += a[i];
        return res;
    }
    long n2 = n / 2;
    n2 -= n2 % 8;
    return pw_sum(a, n2) + pw_sum(a + n2, n - n2);
}

static double vmin(const double *a, int n) { double x = a[0]; for (int i = 1; i < n; i++) if (a[i] < x) x = a[i]; return x; }
static double vmax(const double *a, int n) { double x = a[0]; for (int i = 1; i < n; i++) if (a[i] > x) x = a[i]; return x; }
static int any_bleed(const pk_ctx *c) { for (int i = 0; i < c->n; i++) if (c->bleed[i]) return 1; return 0; }

/* Python's float // and % for these operands (CPython's float_divmod). */
static double py_floordiv(double vx, double wx)
{
    double mod = fmod(vx, wx), div = (vx - mod) / wx, fl;
    if (mod && ((wx < 0) != (mod < 0)))
        div -= 1.0;
    if (div) {
        fl = floor(div);
        if (div - fl > 0.5)
            fl += 1.0;
    } else
        fl = copysign(0.0, vx / wx);
    return fl;
}
static double py_mod(double vx, double wx)
{
    double mod = fmod(vx, wx);
    if (mod) {
        if ((wx < 0) != (mod < 0))
            mod += wx;
    } else
        mod = copysign(0.0, wx);
    return mod;
}
static double py_min(double a, double b) { return b < a ? b : a; }
static double py_max(double a, double b) { return b > a ? b : a; }

/* injectors.present(): whether injection j acts at time t (its pattern). */
static int present(const pk_ctx *c, int j, double t)
{
    double x = t - c->inj_at_s[j];
    if (x < -1e-9)
        return 0;
    if (c->inj_duration_s[j] && x >= c->inj_duration_s[j] - 1e-9)
        return 0;
    if (!c->inj_period_s[j])
        return 1;
    double k = py_floordiv(x + 1e-9, c->inj_period_s[j]);
    if (c->inj_count[j] && k >= c->inj_count[j])
        return 0;
    return x - k * c->inj_period_s[j] < c->inj_on_s[j] - 1e-9;
}

/* OcvCurve.__call__ for one element (np.interp, its linear extensions). */
static double ocv_at(const pk_ctx *c, double s)
{
    const double *x = c->ocv_x, *y = c->ocv_y;
    int last = c->ocv_len - 1;
    double v;
    if (s > 1.0)
        v = y[last] + (s - 1.0) * c->ocv_hi_slope;
    else if (s < 0.0)
        v = y[0] + s * c->ocv_lo_slope;
    else {
        if (s < x[0])
            return y[0];
        if (s >= x[last])
            return y[last];
        int lo = 0, hi = last;  /* x[lo] <= s < x[hi] */
        while (hi - lo > 1) {
            int mid = (lo + hi) / 2;
            if (x[mid] <= s)
                lo = mid;
            else
                hi = mid;
        }
        if (x[lo] == s)
            return y[lo];
        double slope = (y[lo + 1] - y[lo]) / (x[lo + 1] - x[lo]);
        return slope * (s - x[lo]) + y[lo];
    }
    return v < 0.0 ? 0.0 : (v > 5.0 ? 5.0 : v);
}

static double ambient_at(const pk_ctx *c, double t_s)
{
    if (!c->ambient_swing_c)
        return c->ambient_c;
    double h = py_mod(t_s / 3600.0, 24.0);
    return c->ambient_c + c->ambient_swing_c / 2 * cos(2 * M_PI * (h - c->ambient_peak_h) / 24.0);
}

static double ntc_counts(double t_c)
{
    double tk = t_c + 273.15;
    double r = NTC_R25 * exp(NTC_BETA * (1 / tk - 1 / 298.15));
    return NTC_FULL * r / (r + NTC_PULLUP);
}

/* Pack.cell_currents() into i. */
static void cell_currents(const pk_ctx *c, double *i)
{
    double rb = c->balance_ohm + 2 * c->sense_ohm;
    for (int j = 0; j < c->n; j++)
        i[j] = (c->current_a - c->sd_a[j]) - (c->bleed[j] ? c->ocv_now[j] / rb : 0.0);
}

/* Pack.cv_current(target_v) */
static double cv_current(const pk_ctx *c, double target_v)
{
    double *tmp = c->scratch + 7 * c->n;
    for (int j = 0; j < c->n; j++)
        tmp[j] = c->ocv_now[j] + c->v1[j] - c->sd_a[j] * c->r0[j];
    double base = pw_sum(tmp, c->n);
    return (target_v - base) / pw_sum(c->r0, c->n);
}

/* Pack.step(dt, t) */
static void pack_step(pk_ctx *c, double dt, double t_s)
{
    int n = c->n;
    double *i = c->scratch, *v_ocv = c->scratch + n, *q = c->scratch + 2 * n, *heat = c->scratch + 3 * n;
    double *q_plate = c->scratch + 4 * n, *q_nb = c->scratch + 5 * n;
    c->ambient_now = ambient_at(c, t_s);
    c->shorted = 0;
    for (int j = 0; j < n; j++)
        if (c->short_r[j] > 0)
            c->shorted = 1;
    if (c->shorted)  /* an internal short's self-discharge, at the OCV */
        for (int j = 0; j < n; j++)
            c->sd_a[j] = c->short_r[j] > 0 ? c->ocv_now[j] / c->short_r[j] : 0.0;
    cell_currents(c, i);
    memcpy(v_ocv, c->ocv_now, n * sizeof(double));
    for (int j = 0; j < n; j++) {
        double stored = i[j] > 0 ? i[j] * c->coulombic_eff : i[j];
        double s = c->soc[j] + stored * dt / c->cap_as[j];
        if (s < -0.2) s = -0.2;
        if (s > 1.2) s = 1.2;
        c->soc[j] = s;
    }
    if (c->lag_k0 || c->lag_k1) {
        double a0 = exp(-dt / c->lag_tau0), a1 = exp(-dt / c->lag_tau1);
        for (int j = 0; j < n; j++) {
            double cr = i[j] * 3600 / c->cap_as[j];
            c->lag0[j] = c->lag0[j] * a0 + cr * (1 - a0);
            c->lag1[j] = c->lag1[j] * a1 + cr * (1 - a1);
            c->ocv_now[j] = ocv_at(c, c->soc[j] + c->lag_k0 * c->lag0[j] + c->lag_k1 * c->lag1[j]);
        }
    } else
        for (int j = 0; j < n; j++)
            c->ocv_now[j] = ocv_at(c, c->soc[j]);
    double a = exp(-dt / c->tau);
    for (int j = 0; j < n; j++)
        c->v1[j] = c->v1[j] * a + i[j] * c->r1[j] * (1 - a);
    if (any_bleed(c)) {
        double rb = c->balance_ohm + 2 * c->sense_ohm;
        for (int j = 0; j < n; j++)
            q[j] = (c->bleed[j] ? v_ocv[j] * v_ocv[j] : 0.0) / rb;
        c->balance_energy_j += pw_sum(q, n) * dt;
    }
    for (int j = 0; j < n; j++)
        q[j] = v_ocv[j] + i[j] * c->r0[j] + c->v1[j];
    double vp = pw_sum(q, n);
    if ((c->physical & (OUT_NEG | OUT_POS)) == (OUT_NEG | OUT_POS))
        c->bus_v = vp;
    else if (c->physical & OUT_NEG && c->physical & OUT_PRE && !c->precharge_open)
        c->bus_v += (vp - c->bus_v) * (1 - exp(-dt / (PRECHARGE_OHM * BUS_CAP_F)));
    else
        c->bus_v *= exp(-dt / BUS_BLEED_TAU_S);
    /* Pack._thermal */
    for (int j = 0; j < n; j++)
        heat[j] = i[j] * i[j] * c->r0[j] + i[j] * c->v1[j];
    if (c->shorted)  /* an internal short heats its cell */
        for (int j = 0; j < n; j++)
            heat[j] = heat[j] + c->sd_a[j] * c->sd_a[j] * c->short_r[j];
    double duty = c->pump_duty >= PUMP_MIN_DUTY ? c->pump_duty : 0.0;
    double frac = duty * c->flow_factor;
    double flow = frac * PUMP_MAX_FLOW_M3_S;
    c->flow_lpm = flow * 60000;
    c->flow_pulses += c->flow_lpm * FLOW_HZ_PER_LPM * dt;
    double g_plate = G_PLATE_STILL_W_K + (G_PLATE_FLOW_W_K - G_PLATE_STILL_W_K) * pow(frac, 0.8);
    double mdot_cp = flow * COOLANT_RHO * COOLANT_CP, rise;
    if (mdot_cp > 1e-9) {
        for (int j = 0; j < n; j++)
            q[j] = g_plate * (c->temp[j] - c->coolant_c);
        rise = py_max(py_min(pw_sum(q, n) / mdot_cp, 30.0), -30.0);
    } else
        rise = 0.0;
    c->coolant_in_c = c->coolant_c - rise / 2;
    c->coolant_out_c = c->coolant_c + rise / 2;
    double amb = c->ambient_now;
    for (int j = 0; j < n; j++)
        q_plate[j] = g_plate * (c->temp[j] - (c->coolant_in_c + c->path[j] * rise));
    for (int j = 0; j < n; j++)
        q_nb[j] = 0.0;
    for (int j = 0; j + 1 < n; j++)
        q_nb[j] += G_NEIGHBOUR_W_K * (c->temp[j + 1] - c->temp[j]);
    for (int j = 1; j < n; j++)
        q_nb[j] -= G_NEIGHBOUR_W_K * (c->temp[j] - c->temp[j - 1]);
    for (int j = 0; j < n; j++)
        c->temp[j] = c->temp[j] + (heat[j] - q_plate[j] - G_AMBIENT_W_K * (c->temp[j] - amb) + q_nb[j]) * dt / c->heat_cap;
    double g_rad = G_RADIATOR_STILL_W_K + (c->heater_on ? 0.0 : (G_RADIATOR_W_K - G_RADIATOR_STILL_W_K) * frac);
    double q_rad = g_rad * (c->coolant_c - amb);
    double q_heat = c->heater_on ? HEATER_W : 0.0;
    c->heater_energy_j += q_heat * dt;
    c->coolant_c += (pw_sum(q_plate, n) - q_rad + q_heat) * dt / COOLANT_J_PER_K;
    c->pump_energy_j += PUMP_MAX_W * pow(c->pump_duty, 3) * dt;
}

static int send_all(pk_ctx *c)
{
    int off = 0;
    while (off < c->tx_size) {
        ssize_t w = write(c->wfd, c->tx + off, c->tx_size - off);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            c->err = errno;
            return (errno == EPIPE || errno == ECONNRESET) ? PK_ERR_EOF : PK_ERR_SEND;
        }
        off += (int)w;
    }
    return 0;
}

static int recv_all(pk_ctx *c)
{
    int got = 0;
    struct pollfd p = {c->rfd, POLLIN, 0};
    while (got < c->rx_size) {
        /* the answer's deadline: a firmware that hangs is reported, not waited for */
        int k = poll(&p, 1, c->timeout_ms);
        if (k < 0) {
            if (errno == EINTR)
                continue;
            c->err = errno;
            return PK_ERR_SEND;
        }
        if (k == 0) {
            c->err = ETIMEDOUT;
            return PK_ERR_TIMEOUT;
        }
        ssize_t r = read(c->rfd, c->rx + got, c->rx_size - got);
        if (r < 0) {
            if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)
                continue;
            c->err = errno;
            return errno == ECONNRESET ? PK_ERR_EOF : PK_ERR_SEND;
        }
        if (r == 0)
            return PK_ERR_EOF;
        got += (int)r;
    }
    return 0;
}

static long long pmod(long long x, long long p) { return ((x % p) + p) % p; }

int pk_run(pk_ctx *c)
{
    int n = c->n, m = c->m;
    double dt = c->dt;
    double *v = c->v_true, *vs = c->scratch + 6 * c->n;
    unsigned char *tx = c->tx, *rx = c->rx;
    int o = 12 + 2 * n + 2 * m;  /* the sensor frame's fields after the temperatures */
    for (;;) {
        if (c->count >= c->cap || c->count_d >= c->cap_d)
            return PK_FULL;
        double t = c->k * dt;
        if (t >= c->stop_at)
            return PK_STOP;
        if (c->next_due <= t + 1e-9 || c->noise_pos >= c->noise_rows)
            return PK_PRE;
        /* -- PackPlant.read: the profile's solar and load ------------------ */
        double solar = 0.0, load = 0.0;
        if (c->kind == 1) {
            double h = py_mod(c->start_h + (t - c->step_t0) / 3600.0, 24.0);
            if (c->solar_start_h < h && h < c->solar_end_h) {
                double day = py_floordiv(t - c->step_t0 + c->start_h * 3600, 86400);
                if (day < 0 || day >= c->day_factors || isnan(c->day_factor[(int)day]))
                    return PK_PRE;  /* Python draws the day's weather */
                solar = c->solar_peak_a * c->day_factor[(int)day]
                        * sin(M_PI * (h - c->solar_start_h) / (c->solar_end_h - c->solar_start_h));
                load = c->load_day_a;
            } else
                load = c->load_night_a;
        }
        /* -- Sensing.read ---------------------------------------------------- */
        double *z = c->noise + c->noise_pos * (n + m + 1);
        double *ic = c->scratch;
        cell_currents(c, ic);
        for (int j = 0; j < n; j++)
            v[j] = c->ocv_now[j] + ic[j] * c->r0[j] + c->v1[j];
        const double *vsen = v;
        if (c->sense_ohm && any_bleed(c)) {
            double rb = c->balance_ohm + 2 * c->sense_ohm;
            double *ib = c->scratch + c->n;
            for (int j = 0; j < n; j++)
                ib[j] = c->bleed[j] ? c->ocv_now[j] / rb : 0.0;
            for (int j = 0; j < n; j++) {
                double d = 2 * ib[j];
                if (j > 0) d -= ib[j - 1];
                if (j + 1 < n) d -= ib[j + 1];
                vs[j] = v[j] - c->sense_ohm * d;
            }
            vsen = vs;
        }
        double i_meas = c->current_a * c->gain_i + c->offset_i + c->noise_i * z[n + m];
        double cur_raw = rint(i_meas * 100), pack_raw = rint(pw_sum(v, n) * 100), bus_raw = rint(c->bus_v * 100);
        if (!(cur_raw >= -2147483648.0 && cur_raw <= 2147483647.0 && pack_raw >= 0 && pack_raw <= 4294967295.0
              && bus_raw >= 0 && bus_raw <= 4294967295.0))
            return PK_PRE;  /* outside the frame's fields: Python's struct says so */
        /* from here on the tick is C's: the state may change */
        if (c->leak && c->flow_factor > 0)  /* Injectors.physics() */
            c->flow_factor = py_max(0.25, 1.0 - 0.75 * (t - c->leak_t0) / c->leak_s);
        long long *craw = c->iscratch, *traw = c->iscratch + n;
        for (int j = 0; j < n; j++) {
            double x = rint((vsen[j] + c->noise_v * z[j]) * 10000);
            craw[j] = x < 0 ? 0 : (x > 65535 ? 65535 : (long long)x);
        }
        for (int j = 0; j < m + 2; j++) {
            double tc = j < m ? c->temp[c->sensor_idx[j]] + c->noise_t * z[n + j] : (j == m ? c->coolant_in_c : c->coolant_out_c);
            double x = rint(ntc_counts(tc));
            traw[j] = x < 0 ? 0 : (x > 4095 ? 4095 : (long long)x);
        }
        int inputs = c->physical & 7, flags = 0;
        double flow_sent = c->flow_pulses;
        if (c->inj_n) {  /* Injectors.cells(), .temps(), .flow(), .aux(), .flags() */
            int on[INJ_MAX] = {0};
            for (int a = 0; a < c->inj_n; a++)
                on[a] = present(c, a, t);
            for (int a = 0; a < c->inj_n; a++) {
                int cell = c->inj_cell[a];
                if (!on[a]) {
                    if (c->inj_kind[a] == INJ_STUCK_ADC)
                        c->inj_frozen[a] = -1;
                    continue;
                }
                if (c->inj_kind[a] == INJ_OPEN_SENSE_WIRE) {
                    int other = cell + 1 < n ? cell + 1 : cell - 1;
                    long long sum = craw[cell] + craw[other];
                    craw[other] = sum < 65535 ? sum : 65535;
                    craw[cell] = 0;
                } else if (c->inj_kind[a] == INJ_STUCK_ADC) {
                    if (c->inj_frozen[a] < 0)
                        c->inj_frozen[a] = craw[cell];
                    craw[cell] = c->inj_frozen[a];
                }
            }
            if (c->inj_cool_open >= 0 && on[c->inj_cool_open])
                traw[m + 1] = 4095;
            for (int a = 0; a < c->inj_n; a++) {
                if (!on[a])
                    continue;
                if (c->inj_kind[a] == INJ_THERMISTOR_OPEN)
                    traw[c->inj_sensor[a]] = 4095;
                else if (c->inj_kind[a] == INJ_THERMISTOR_SHORT)
                    traw[c->inj_sensor[a]] = 0;
                else if (c->inj_kind[a] == INJ_CONTACTOR_AUX_CHATTER)
                    inputs |= OUT_POS;
            }
            if (c->flow_last_valid)
                for (int a = 0; a < c->inj_n; a++)
                    if (c->inj_kind[a] == INJ_FLOW_METER_MISSING && on[a])
                        c->flow_lost += (c->flow_pulses - c->flow_last) * c->inj_value[a];
            flow_sent = c->flow_pulses - c->flow_lost;
            if (c->inj_no_data >= 0 && on[c->inj_no_data])
                flags = 1;  /* FLAG_NO_DATA */
        }
        c->flow_last = c->flow_pulses;
        c->flow_last_valid = 1;
        long long mv_max = 0, mv_min = 0;
        for (int j = 0; j < n; j++) {
            put16(tx + 12 + 2 * j, (unsigned)craw[j]);
            long long mv = ((craw[j] * c->gain_q16[j]) >> 16) + c->offset_mv[j];
            if (j == 0 || mv > mv_max) mv_max = mv;
            if (j == 0 || mv < mv_min) mv_min = mv;
        }
        for (int j = 0; j < m + 2; j++)
            put16(j < m ? tx + 12 + 2 * n + 2 * j : tx + o + 12 + 2 * (j - m), (unsigned)traw[j]);
        long long seq = pmod(c->k, TICKS_PERIOD);
        put16(tx, SENSOR_MAGIC);
        tx[2] = FRAME_VERSION;
        tx[3] = flags;
        put32(tx + 4, (uint32_t)seq);
        put32(tx + 8, (uint32_t)pmod(c->clock0_ms + c->k * c->tick_ms, TICKS_PERIOD));
        put32(tx + o, (uint32_t)(int32_t)cur_raw);
        put32(tx + o + 4, (uint32_t)pack_raw);
        put32(tx + o + 8, (uint32_t)bus_raw);
        put16(tx + o + 16, (unsigned)((long long)flow_sent & 0xFFFF));
        tx[o + 18] = inputs | (c->enable ? IN_ENABLE : 0) | ((c->kind == 2 || solar > 0) ? IN_CHARGER : 0);
        tx[o + 19] = tx[o + 20] = tx[o + 21] = 0;
        put16(tx + o + 22, 0);
        put32(tx + o + 24, 0);
        put32(tx + o + 28, 0);
        c->noise_pos++;
        c->solar = solar;
        c->load = load;
        c->vmax_meas = mv_max / 1000.0;
        c->vmin_meas = mv_min / 1000.0;
        /* -- FirmwareLink.exchange ------------------------------------------- */
        int e = send_all(c);
        if (!e)
            e = recv_all(c);
        if (e)
            return e;
        if (get16(rx) != ACT_MAGIC || (long long)(uint32_t)get32(rx + 4) != seq) {
            c->err = get16(rx) != ACT_MAGIC ? 0 : 4;
            return PK_ERR_FRAME;
        }
        int contactor = rx[9];
        if (rx[34] || ((rx[3] & 1) && !c->internal_error) || memcmp(rx + 26, c->prev_faults, 8) || contactor != c->prev_state)
            return PK_POST;
        /* -- the record (run_loop, PackPlant.record) ------------------------ */
        int outputs = rx[8], duty_pm = get16(rx + 10);
        int32_t ccl_ma = get32(rx + 14), dcl_ma = get32(rx + 18), grid_ma = get32(rx + 134);
        int soc_cpct = (int16_t)get16(rx + 22);
        int r = c->count;
        c->r_t[r] = t;
        c->r_duty[r] = duty_pm / 1000.0;
        c->r_outputs[r] = outputs;
        c->r_ccl[r] = ccl_ma / 1000.0;
        c->r_dcl[r] = dcl_ma / 1000.0;
        c->r_balancing[r] = rx[13];
        c->r_soc_fw[r] = soc_cpct >= 0 ? soc_cpct / 10000.0 : NAN;
        c->r_vmax_meas[r] = c->vmax_meas;
        c->r_vmin_meas[r] = c->vmin_meas;
        c->capacity_mah = get32(rx + 142);
        c->heater_on = rx[12] != 0;
        double tmax = vmax(c->temp, n), tmin = vmin(c->temp, n);
        c->r_vmax[r] = vmax(v, n);
        c->r_vmin[r] = vmin(v, n);
        c->r_tmax[r] = tmax;
        c->r_tmin[r] = tmin;
        c->r_heater[r] = (unsigned char)c->heater_on;
        c->r_tspread[r] = tmax - tmin;
        c->r_cur[r] = c->current_a;
        c->r_soc_min[r] = vmin(c->soc, n);
        c->r_soc_max[r] = vmax(c->soc, n);
        c->r_flow_lpm[r] = c->flow_lpm;
        {   /* Pack.pack_soc() */
            double out = 0, room = 0;
            for (int j = 0; j < n; j++) {
                double qj = c->soc[j] * c->cap_as[j], rj = c->cap_as[j] - qj;
                if (j == 0 || qj < out) out = qj;
                if (j == 0 || rj < room) room = rj;
            }
            c->r_soc_true[r] = out + room > 0 ? out / (out + room) : 0.0;
        }
        c->r_flow_pulses[r] = (long long)c->flow_pulses;
        if (c->k % c->decim == 0) {
            int d = c->count_d++;
            c->d_t[d] = t;
            memcpy(c->d_cell_v + (long)d * n, v, n * sizeof(double));
            memcpy(c->d_cell_temp + (long)d * n, c->temp, n * sizeof(double));
            c->d_ambient[d] = ambient_at(c, t);
            c->d_cool_in[d] = c->coolant_in_c;
            c->d_cool_out[d] = c->coolant_out_c;
        }
        /* -- PackPlant.apply ------------------------------------------------ */
        double vp = pw_sum(v, n);
        c->outputs = outputs;  /* Pack.command(): welded tips stay closed */
        c->physical = c->welded ? (c->physical & (OUT_NEG | OUT_POS)) | outputs : outputs;
        for (int j = 0; j < n; j++)
            c->bleed[j] = (rx[ACT_FIXED + (j >> 3)] >> (j & 7)) & 1;
        c->pump_duty = duty_pm / 1000.0;
        double ccl_a = ccl_ma / 1000.0, dcl_a = dcl_ma / 1000.0;
        int closed = (c->physical & (OUT_NEG | OUT_POS)) == (OUT_NEG | OUT_POS);
        double grid_x = closed && grid_ma > 0 ? py_min(grid_ma / 1000.0, dcl_a) : 0.0;
        int ended = 0;
        if (c->kind == 0) {
            c->current_a = -grid_x;
            if (t - c->step_t0 >= c->duration_s)
                ended = 1;
        } else if (c->kind == 1) {
            if (!closed)
                c->current_a = 0.0;
            else {
                double net = solar - load - grid_x;
                if (net >= 0)
                    c->current_a = py_max(0.0, py_min(py_min(net, ccl_a), cv_current(c, c->cv_v * n)));
                else
                    c->current_a = -py_min(-net, dcl_a);
            }
            if (t - c->step_t0 >= c->duration_s)
                ended = 1;
        } else if (c->kind == 2) {
            double i_set = !closed ? 0.0 : c->charger_no_stop ? c->step_current_a  /* it ignores limits and CV */
                           : py_max(0.0, py_min(py_min(c->step_current_a, ccl_a), cv_current(c, c->cv_v * n)));
            c->current_a = i_set;
            if (closed && i_set > c->termination_a)
                c->step_ran = 1;
            if (c->step_ran && !c->charger_no_stop) {
                c->step_low_s = i_set <= c->termination_a ? c->step_low_s + dt : 0.0;
                if (c->step_low_s >= 30.0)
                    ended = ccl_a <= 0 ? 2 : 3;
            }
            if (c->step_ran && !closed)
                ended = 2;
        } else {
            double i_set = !closed ? 0.0 : c->load_ignores_limits ? c->step_current_a : py_min(c->step_current_a, dcl_a);
            c->current_a = -py_min(i_set + grid_x, py_max(dcl_a, i_set));
            if (closed && i_set > 0)
                c->step_ran = 1;
            if (c->step_ran) {
                c->step_low_s = i_set <= 0.01 * c->step_current_a ? c->step_low_s + dt : 0.0;
                if (c->step_low_s >= 5.0 || !closed)
                    ended = 2;
            }
        }
        if (!ended && c->kind >= 2 && t - c->step_t0 >= c->timeout_s)
            ended = 4;
        double delivered = py_min(grid_x, py_max(0.0, -c->current_a));
        c->r_grid_a[r] = delivered;
        double wh = delivered * vp * dt / 3600;
        if (wh && c->meter_bins) {
            long b = (long)py_floordiv(t, c->meter_interval_s);
            c->meter_bins[b < c->meter_len - 1 ? b : c->meter_len - 1] += wh;
        }
        c->grid_wh += wh;
        c->grid_energy_wh += wh;
        /* -- PackPlant.step ----------------------------------------------------- */
        if (c->short_ohm && (c->physical & (OUT_NEG | OUT_POS)) == (OUT_NEG | OUT_POS)) {
            /* Pack.short_current(): the short takes over the bus */
            double *tmp = c->scratch + 7 * n;
            for (int j = 0; j < n; j++)
                tmp[j] = c->ocv_now[j] + c->v1[j];
            double r = (pw_sum(c->r0, n) + pw_sum(c->r1, n)) + c->short_ohm;
            c->current_a = -pw_sum(tmp, n) / r;
        }
        pack_step(c, dt, t);
        c->count++;
        c->k++;
        if (ended) {
            c->ended = ended;
            return PK_STEP_END;
        }
    }
}

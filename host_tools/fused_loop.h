/* The compiled lock-step loop (host_tools/fused_loop.c): the declarations
 * cffi reads (host_tools/fused_build.py). One pk_ctx per run; Python fills
 * it from the plant's objects before each pk_run() and reads it back after
 * (host_tools/fused.py). Units as in host_tools/plant.py (SI). */

typedef struct {
    /* -- sizes, link --------------------------------------------------- */
    int n, m;                 /* cells, cell thermistors */
    int rfd, wfd;             /* frames from the firmware, to it (pipes; one socket: the same) */
    int timeout_ms;           /* the firmware's deadline for each answer */
    unsigned char *tx;        /* sensor frame buffer (tx_size bytes) */
    int tx_size;
    unsigned char *rx;        /* actuator frame buffer (rx_size bytes) */
    int rx_size;
    /* -- pack state: the Pack's own numpy arrays, updated in place ------ */
    double *soc, *cap_as, *r0, *r1, *lag0, *lag1, *ocv_now, *v1, *temp, *sd_a, *path;
    unsigned char *bleed;     /* numpy bool */
    double *ocv_x, *ocv_y;    /* the OCV table */
    int ocv_len;
    double ocv_lo_slope, ocv_hi_slope;
    double *scratch;          /* 8 * n doubles */
    long long *iscratch;      /* n + m + 2 */
    double current_a, pump_duty, coolant_c, coolant_in_c, coolant_out_c, flow_pulses, flow_lpm, flow_factor;
    double pump_energy_j, heater_energy_j, balance_energy_j, bus_v, ambient_now;
    double ambient_c, ambient_swing_c, ambient_peak_h;
    double coulombic_eff, lag_k0, lag_k1, lag_tau0, lag_tau1, tau, heat_cap, balance_ohm, sense_ohm;
    int heater_on, outputs, physical;
    /* -- sensing ---------------------------------------------------------- */
    long long *sensor_idx;    /* m thermistor positions */
    long long *gain_q16, *offset_mv;  /* the firmware's cell calibration (hello) */
    double *noise;            /* rows of n + m + 1 standard normals */
    long long noise_rows, noise_pos;
    double noise_v, noise_t, noise_i, offset_i, gain_i;
    double flow_last;         /* the last flow counter read (Injectors.flow_last) */
    /* -- the profile step ------------------------------------------------ */
    int kind;                 /* 0 rest, 1 household, 2 charge, 3 discharge */
    int step_ran, enable;
    double duration_s, timeout_s, step_current_a, cv_v, termination_a;
    double start_h, solar_start_h, solar_end_h, solar_peak_a, load_day_a, load_night_a;
    double step_t0, step_low_s, solar, load;
    double *day_factor;       /* per day, NaN: not drawn yet */
    int day_factors;
    int ended;                /* set with PK_STEP_END: 1 duration, 2 firmware, 3 charger, 4 timeout */
    /* -- fault injections (host_tools/injectors.py): Python's Injectors and
     *    the Pack's fault state in and out ----------------------------------- */
    int inj_n;                /* active injections, in Injectors.active's order */
    int inj_kind[16];         /* INJ_* below */
    int inj_cell[16], inj_sensor[16], inj_count[16];
    long long inj_frozen[16]; /* stuck_adc: the frozen reading, -1: none */
    double inj_at_s[16], inj_duration_s[16], inj_on_s[16], inj_period_s[16], inj_value[16];
    int inj_no_data, inj_cool_open;  /* index of Injectors.no_data / .coolant_sensor_open, -1: none */
    int charger_no_stop, load_ignores_limits, welded, precharge_open, leak, flow_last_valid;
    double short_ohm, leak_t0, leak_s, flow_lost;
    double *short_r;          /* Pack.internal_short_ohm (n) */
    int shorted;              /* Pack._shorted */
    /* -- the loop --------------------------------------------------------- */
    long long k, clock0_ms, tick_ms;
    double dt, stop_at, next_due;  /* next scheduled fault or action (inf: none) */
    int decim;
    unsigned char prev_faults[8];
    int prev_state;
    int internal_error;       /* the record has the firmware's internal-error flag already */
    double grid_wh, grid_energy_wh;
    long long capacity_mah;
    double *meter_bins;       /* the fleet's energy per interval (NULL: none) */
    int meter_len;
    double meter_interval_s;
    double vmax_meas, vmin_meas;  /* this tick's, for a tick Python finishes */
    int err;                  /* errno of a failed send/receive, or the bad field */
    /* -- the record: per-tick columns, cap rows ------------------------------ */
    int cap, count;
    double *r_t, *r_vmax, *r_vmin, *r_tmax, *r_tmin, *r_cur, *r_soc_min, *r_soc_max, *r_duty, *r_ccl, *r_dcl;
    double *r_flow_lpm, *r_vmax_meas, *r_vmin_meas, *r_tspread, *r_soc_fw, *r_soc_true, *r_grid_a;
    long long *r_outputs, *r_balancing, *r_flow_pulses;
    unsigned char *r_heater;
    int cap_d, count_d;       /* decimated rows */
    double *d_t, *d_cell_v, *d_cell_temp, *d_ambient, *d_cool_in, *d_cool_out;
    double *v_true;           /* n: this tick's true terminal voltages */
} pk_ctx;

/* injection kinds with a per-tick effect on the readings (0: none, or
 * one in the pack's state: shorts, pump, leak, welding, precharge) */
#define INJ_NONE 0
#define INJ_OPEN_SENSE_WIRE 1
#define INJ_STUCK_ADC 2
#define INJ_THERMISTOR_OPEN 3
#define INJ_THERMISTOR_SHORT 4
#define INJ_COOLANT_SENSOR_OPEN 5
#define INJ_FRONTEND_COMM_LOST 6
#define INJ_FLOW_METER_MISSING 7
#define INJ_CONTACTOR_AUX_CHATTER 8
#define INJ_MAX 16

/* pk_run's answers */
#define PK_FULL 1       /* the record's columns are full: flush and call again */
#define PK_PRE 2        /* Python runs tick k whole (a fault, an action, a new day, new noise, an odd value) */
#define PK_POST 3       /* tick k's frames are exchanged; Python finishes it (events, faults, contactors) */
#define PK_STEP_END 4   /* tick k-1 ended the profile step (ended says why) */
#define PK_STOP 5       /* stop_at reached */
#define PK_ERR_SEND 10
#define PK_ERR_TIMEOUT 11
#define PK_ERR_EOF 12
#define PK_ERR_FRAME 13

int pk_run(pk_ctx *c);

/* loadgen: drives one benchmark scenario against one server and prints one
 * summary (and optionally JSON). Scenarios (docs/performance.md):
 *
 *   capacity  N idle clients in rooms, kept alive; server RSS per connection
 *   fanout    rooms of K members chatting at stepped offered loads
 *   relay     pairs exchanging offer / answer / ice-candidate
 *   storm     N clients joining within a few seconds; connect-to-ready latency
 *
 * Open loop by default: send times are scheduled at the offered rate and the
 * latency of each delivery is measured from its scheduled send time (carried
 * in the message), so a stalled server cannot hide its stall (coordinated
 * omission). --closed sends the next message when the previous one arrived. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* memmem, getopt_long */
#endif
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "loadgen.h"

enum phase { PH_CONNECT, PH_WARMUP, PH_STEP, PH_DRAIN, PH_SETTLE, PH_HOLD, PH_DONE, PH_IDLE };
enum wmsg_type { WM_CONNECTED, WM_STEP, WM_SETTLED, WM_DONE };
enum wcmd_type { WC_WARMUP, WC_HOLD, WC_STEP, WC_SETTLE, WC_FINISH };

static struct lg G;
static uint8_t scratch[1 << 20]; /* a rendered frame, written before the next one */

/* ---- /proc ---- */

/* utime + stime of pid in clock ticks, or 0. */
static uint64_t proc_ticks(int pid) {
  char path[64], buf[1024];
  snprintf(path, sizeof(path), "/proc/%d/stat", pid);
  FILE *f = fopen(path, "r");
  if (f == NULL) return 0;
  size_t n = fread(buf, 1, sizeof(buf) - 1, f);
  fclose(f);
  buf[n] = '\0';
  char *p = strrchr(buf, ')');
  if (p == NULL) return 0;
  unsigned long long ut = 0, st = 0;
  /* After ")": state(3) ... utime is field 14, stime 15. */
  if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
    return 0;
  return ut + st;
}

static uint64_t proc_rss_kib(int pid) {
  char path[64], line[256];
  snprintf(path, sizeof(path), "/proc/%d/status", pid);
  FILE *f = fopen(path, "r");
  if (f == NULL) return 0;
  unsigned long long kib = 0;
  while (fgets(line, sizeof(line), f))
    if (sscanf(line, "VmRSS: %llu kB", &kib) == 1) break;
  fclose(f);
  return kib;
}

/* user + nice + system ticks of all CPUs (irq, softirq and steal excluded,
 * so that it compares with the per-process times). */
static uint64_t sys_busy_ticks(void) {
  FILE *f = fopen("/proc/stat", "r");
  if (f == NULL) return 0;
  unsigned long long u = 0, n = 0, sy = 0;
  int ok = fscanf(f, "cpu %llu %llu %llu", &u, &n, &sy) == 3;
  fclose(f);
  return ok ? u + n + sy : 0;
}

static uint64_t self_cpu_ns(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return (uint64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000000ull +
         (uint64_t)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1000ull;
}

/* ---- errors ---- */

void lg_note_code(struct lg *g, const char *code) {
  for (int i = 0; i < MAX_CODES; i++) {
    if (g->codes[i][0] == '\0') {
      snprintf(g->codes[i], sizeof(g->codes[i]), "%s", code);
      g->code_n[i] = 1;
      return;
    }
    if (strcmp(g->codes[i], code) == 0) {
      g->code_n[i]++;
      return;
    }
  }
  g->code_n[MAX_CODES - 1]++; /* the last slot collects the overflow */
}

static void step_error(struct lg *g) {
  if (g->cur >= 0 && (g->phase == PH_STEP || g->phase == PH_DRAIN)) g->steps[g->cur].errors++;
}

/* ---- sending ---- */

static int is_relay(const struct lg *g) {
  return g->o.scenario == SC_RELAY;
}

static void send_tmpl(struct conn *c, int which, uint64_t t_sched) {
  const struct tmpl *t = &c->tm[which];
  if (t->frame == NULL || t->len > sizeof(scratch)) return;
  tmpl_render(t, scratch, t_sched, c->idx);
  c->g->sent_total++;
  conn_write(c, scratch, t->len);
}

static struct step *cur_step(struct lg *g) {
  return g->phase == PH_STEP && g->cur >= 0 ? &g->steps[g->cur] : NULL;
}

/* Sends the next relay message of c's pair from c to its partner. */
static void relay_send_from(struct lg *g, struct conn *c, uint64_t t_sched) {
  static const int kind[6] = {0, 1, 2, 2, 2, 2};
  struct conn *to = &g->conns[c->idx ^ 1u];
  uint32_t pos = g->pair_pos[c->group]++;
  struct step *s = cur_step(g);
  if (c->state != CS_READY || c->closing) {
    if (s) s->skipped++;
    return;
  }
  send_tmpl(c, g->o.relay_only >= 0 ? g->o.relay_only : kind[pos % 6], t_sched);
  if (s) {
    s->sent++;
    if (to->state == CS_READY) s->expected++;
  }
}

static void fanout_send_from(struct lg *g, struct conn *c, uint64_t t_sched) {
  struct step *s = cur_step(g);
  if (c->state != CS_READY || c->closing) {
    if (s) s->skipped++;
    return;
  }
  send_tmpl(c, 0, t_sched);
  if (s) {
    s->sent++;
    s->expected += g->room_live[c->group];
  }
}

/* Open loop: message k of the phase, scheduled at t_sched. */
static void send_scheduled(struct lg *g, uint64_t k, uint64_t t_sched) {
  if (is_relay(g)) {
    uint32_t npairs = g->g_hi - g->g_lo;
    uint32_t pair = g->g_lo + (uint32_t)(k % npairs);
    uint32_t pos = g->pair_pos[pair];
    relay_send_from(g, &g->conns[2 * pair + (pos & 1u)], t_sched);
  } else {
    uint32_t nrooms = g->g_hi - g->g_lo;
    uint32_t room = g->g_lo + (uint32_t)(k % nrooms);
    uint32_t size = (uint32_t)g->o.room_size;
    uint32_t member = (uint32_t)((k / nrooms) % size);
    uint32_t idx = room * size + member;
    if (idx >= (uint32_t)g->o.conns) idx = room * size;
    fanout_send_from(g, &g->conns[idx], t_sched);
  }
}

/* Closed loop: start window messages per room or pair. */
static void closed_kick(struct lg *g) {
  uint64_t now = uv_hrtime();
  for (uint32_t grp = g->g_lo; grp < g->g_hi; grp++) {
    for (int w = 0; w < g->o.window; w++) {
      if (is_relay(g)) {
        relay_send_from(g, &g->conns[2 * grp], now);
      } else {
        uint32_t idx = grp * (uint32_t)g->o.room_size + (uint32_t)w % (uint32_t)g->o.room_size;
        if (idx < (uint32_t)g->o.conns) fanout_send_from(g, &g->conns[idx], now);
      }
    }
  }
}

/* ---- receiving ---- */

static void attribute(struct lg *g, uint64_t t_ns, uint64_t now) {
  if (g->tl) {
    uint64_t lat = now > t_ns ? now - t_ns : 0;
    g->tl_n++;
    g->tl_sum += lat;
    if (lat > g->tl_max) g->tl_max = lat;
  }
  for (int i = g->cur; i >= 0; i--) {
    struct step *s = &g->steps[i];
    if (t_ns >= s->t_start && t_ns < s->t_end) {
      s->received++;
      hist_record(&s->lat, now > t_ns ? now - t_ns : 0);
      if (i < g->cur || g->phase == PH_DONE) s->late++;
      return;
    }
    if (t_ns >= s->t_end) return;
  }
}

void lg_on_message(struct conn *c, const uint8_t *m, size_t len) {
  struct lg *g = c->g;
  /* nchan: whatever arrives is a message of the channel (the marker tells). */
  enum lg_mtype t = g->o.proto == PROTO_NCHAN ? MT_CHAT : msg_type(m, len);
  if (t == MT_READY) {
    if (c->state == CS_JOINING) lg_on_ready(c);
    return;
  }
  if (t == MT_ERROR) {
    char code[40];
    msg_error_code(m, len, code, sizeof(code));
    g->err_server++;
    step_error(g);
    lg_note_code(g, code);
    if (g->o.verbose) fprintf(stderr, "loadgen: conn %u: error %.*s\n", c->idx, (int)(len > 300 ? 300 : len), m);
    if (c->state == CS_JOINING) {
      lg_on_failed(c, code);
      conn_close(c);
    }
    return;
  }
  if (t != MT_CHAT && t != MT_RELAY) return;
  uint64_t now = uv_hrtime();
  uint64_t t_ns;
  uint32_t src;
  g->msgs_total++;
  if (g->phase == PH_STEP && g->cur >= 0) g->steps[g->cur].arrived++;
  if (!msg_mark(m, len, &t_ns, &src)) return;
  attribute(g, t_ns, now);
  if (!g->o.closed || (g->phase != PH_STEP && g->phase != PH_WARMUP)) return;
  if (is_relay(g)) relay_send_from(g, c, now);
  else if (src == c->idx) fanout_send_from(g, c, now);
}

/* ---- connecting ---- */

static void phase_start(struct lg *g, int ph);
static void connect_pump(struct lg *g);

static void worker_report(struct lg *g, int type);

/* Everyone is in (or failed): on to the warmup or the hold; a worker
 * reports to the parent and waits for its word instead. */
static void connect_finished(struct lg *g) {
  if (g->worker >= 0) {
    uv_timer_stop(&g->phase_timer);
    g->phase = PH_IDLE;
    worker_report(g, WM_CONNECTED);
    return;
  }
  phase_start(g, g->o.scenario == SC_FANOUT || g->o.scenario == SC_RELAY ? PH_WARMUP : PH_HOLD);
}

static void connect_done_check(struct lg *g) {
  if (g->phase == PH_CONNECT && g->ready + g->failed >= g->c_hi - g->c_lo) connect_finished(g);
}

void lg_on_ready(struct conn *c) {
  struct lg *g = c->g;
  uint64_t now = uv_hrtime();
  c->state = CS_READY;
  g->ready++;
  g->room_live[c->group]++;
  g->t_last_ready = now;
  hist_record(&g->join_lat, now - c->t_start);
  if (g->in_flight) g->in_flight--;
  /* Build what this client will send. */
  if (g->o.scenario == SC_FANOUT) {
    char *p = msg_chat(g->o.proto, (size_t)g->o.msg_bytes);
    if (p) tmpl_build(&c->tm[0], p, strlen(p));
    free(p);
  } else if (is_relay(g)) {
    char to[48];
    conn_user_id(g, c->idx ^ 1u, to, sizeof(to));
    for (int k = 0; k < 3; k++) {
      char *p = msg_relay(g->o.proto, k, to, (size_t)(k == 1 ? g->o.sdp_answer : g->o.sdp_offer),
                          c->idx);
      tmpl_build(&c->tm[k], p, strlen(p));
      free(p);
    }
  }
  connect_pump(g);
  connect_done_check(g);
}

void lg_on_failed(struct conn *c, const char *why) {
  struct lg *g = c->g;
  if (c->done || c->state == CS_READY) return;
  c->done = 1;
  if (g->o.verbose) fprintf(stderr, "loadgen: conn %u failed: %s\n", c->idx, why);
  if (c->state <= CS_CONNECTING) g->err_connect++; /* TCP never came up */
  else g->err_handshake++;                         /* upgrade or join refused */
  lg_note_code(g, why);
  g->failed++;
  if (g->in_flight) g->in_flight--;
  connect_pump(g);
  connect_done_check(g);
}

void lg_on_closed(struct conn *c) {
  struct lg *g = c->g;
  if (c->done || c->closing) return;
  if (c->state != CS_READY) {
    lg_on_failed(c, "closed_before_ready");
    return;
  }
  c->done = 1;
  g->err_closed++;
  g->closed_after_ready++;
  if (g->room_live[c->group]) g->room_live[c->group]--;
  step_error(g);
}

/* Starts connections up to the concurrency limit (not in storm mode, which
 * starts them on schedule from the tick). */
static void connect_pump(struct lg *g) {
  if (g->phase != PH_CONNECT || g->o.scenario == SC_STORM) return;
  while (g->next_conn < g->c_hi && g->in_flight < (uint32_t)g->o.concurrency) {
    struct conn *c = &g->conns[g->next_conn++];
    g->in_flight++;
    c->t_start = uv_hrtime();
    conn_start(c);
  }
}

/* ---- phases ---- */

static void step_begin(struct lg *g, uint64_t now) {
  struct step *s = &g->steps[g->cur];
  s->attempts++;
  s->t_start = now;
  s->t_end = UINT64_MAX;
  s->offered = g->o.closed ? 0 : g->next_rate * g->share; /* a worker: its share */
  s->probe = g->next_probe;
  g->rate = s->offered;
  g->t_phase = now;
  g->sched_sent = 0;
  g->srv_ticks0 = g->o.server_pid ? proc_ticks(g->o.server_pid) : 0;
  g->cli_ns0 = self_cpu_ns();
  g->sys_busy0 = sys_busy_ticks();
}

static void step_end_window(struct lg *g, uint64_t now) {
  struct step *s = &g->steps[g->cur];
  s->t_end = now;
  double secs = (double)(now - s->t_start) / 1e9;
  long hz = sysconf(_SC_CLK_TCK);
  if (g->o.server_pid) {
    uint64_t t = proc_ticks(g->o.server_pid);
    s->server_cpu = 100.0 * (double)(t - g->srv_ticks0) / (double)hz / secs;
    s->server_rss_kib = proc_rss_kib(g->o.server_pid);
  }
  s->client_cpu = 100.0 * (double)(self_cpu_ns() - g->cli_ns0) / 1e9 / secs;
  s->client_cpu_max = s->client_cpu;
  /* Whatever else ran on the machine (other users' builds and tests). */
  double all = 100.0 * (double)(sys_busy_ticks() - g->sys_busy0) / (double)hz / secs;
  s->others_cpu = all - s->client_cpu - (g->o.server_pid ? s->server_cpu : 0);
  if (s->others_cpu < 0) s->others_cpu = 0;
}

static double us(uint64_t ns) {
  return (double)ns / 1000.0;
}

static void print_step(const struct lg *g, int i) {
  const struct step *s = &g->steps[i];
  double secs = (double)(s->t_end - s->t_start) / 1e9;
  double fan = s->sent ? (double)s->expected / (double)s->sent : 0;
  printf("  step %d: offered %s%.0f msg/s (%.0f deliveries/s)  sent %.0f msg/s  "
         "delivered %.0f/s (%.1f%%)  in-window %.0f/s\n",
         i + 1, g->o.closed ? "closed-loop " : "", s->offered, s->offered * fan,
         (double)s->sent / secs, (double)s->received / secs,
         s->expected ? 100.0 * (double)s->received / (double)s->expected : 0.0,
         (double)s->arrived / secs);
  printf("          latency ms p50 %.3f p90 %.3f p99 %.3f p99.9 %.3f max %.3f  "
         "errors %" PRIu64 "  server cpu %.0f%% rss %.1f MiB  client cpu %.0f%%  others %.0f%%%s%s%s\n",
         us(hist_percentile(&s->lat, 50)) / 1e3, us(hist_percentile(&s->lat, 90)) / 1e3,
         us(hist_percentile(&s->lat, 99)) / 1e3, us(hist_percentile(&s->lat, 99.9)) / 1e3,
         us(s->lat.max) / 1e3, s->errors, s->server_cpu, (double)s->server_rss_kib / 1024.0,
         s->client_cpu, s->others_cpu, s->saturated ? "  SATURATED" : "",
         s->client_bound ? "  (LOADGEN-BOUND: the load generator was the limit)" : "",
         s->probe ? "  [latency probe]" : "");
  fflush(stdout);
}

/* Decides after the drain whether the step kept up. */
static void step_judge(struct lg *g) {
  struct step *s = &g->steps[g->cur];
  double frac = s->expected ? (double)s->received / (double)s->expected : 1.0;
  uint64_t p99 = hist_percentile(&s->lat, 99);
  /* The load generator could not keep its own schedule: it was the limit. */
  int short_sent = !g->o.closed && s->sent + s->skipped < (uint64_t)(0.95 * s->offered *
                                                  (double)(s->t_end - s->t_start) / 1e9);
  s->saturated = frac < 0.99 || (double)p99 > g->o.slo_ms * 1e6 || short_sent || s->errors > 0;
  /* Each worker is one thread: the busiest one near its core is the limit,
   * and so are all of them together near the cores they may use. */
  s->client_bound = short_sent || s->client_cpu_max >= g->o.client_limit_pct ||
                    s->client_cpu >= g->o.client_limit_pct * g->ncpus;
}

/* The step a probe at the end of the search runs at, or 0. */
static double probe_next(struct lg *g) {
  if (g->probe_done) return 0;
  g->probe_done = 1;
  double r = g->o.probe_rate > 0 ? g->o.probe_rate : g->o.probe_half && g->lo > 0 ? g->lo / 2 : 0;
  if (r > 0) g->next_probe = 1;
  return r;
}

/* The offered load of the step after the one just judged, or 0 when done.
 * --search grows the load by --growth until a step saturates (or the first
 * one did: then it shrinks by the same factor until one keeps up), then
 * bisects between the best sustained and the least saturated rate --refine
 * times, then runs the probe. Fixed ladders take --rates in order. */
static double plan_next(struct lg *g) {
  struct step *s = &g->steps[g->cur];
  if (!g->o.search) {
    if (g->cur + 1 >= g->o.nrates || (s->saturated && g->o.stop_on_saturation)) return 0;
    return g->o.rates[g->cur + 1];
  }
  if (s->probe) return 0;
  double r = s->offered;
  if (s->saturated && (g->hi == 0 || r < g->hi)) {
    g->hi = r;
    g->sat_step = g->cur;
  } else if (!s->saturated && r > g->lo) {
    g->lo = r;
    g->good_step = g->cur;
  }
  if (g->hi == 0) {
    if (r >= g->o.max_rate) return probe_next(g); /* never saturated up to the cap */
    double n = r * g->o.growth;
    return n > g->o.max_rate ? g->o.max_rate : n;
  }
  if (g->lo == 0) return g->hi / g->o.growth >= 1 ? g->hi / g->o.growth : probe_next(g);
  if (g->refined < g->o.refine && g->hi - g->lo > 0.03 * g->hi) {
    g->refined++;
    return (g->lo + g->hi) / 2;
  }
  return probe_next(g);
}

static void finish(struct lg *g);

enum act { ACT_RETRY, ACT_NEXT, ACT_SETTLE_NEXT, ACT_FINISH };

/* After the drain of step g->cur (merged, with --workers): judges and prints
 * it, then says what comes next; g->cur and g->next_rate are set for it. */
static enum act step_decide(struct lg *g) {
  step_judge(g);
  print_step(g, g->cur);
  struct step *s = &g->steps[g->cur];
  /* Of the attempts of a repeated step, the best counts: other processes
   * can only make a server look slower, never faster. Best is unsaturated
   * first, then the least disturbed. */
  if (g->has_best && (s->saturated > g->best.saturated ||
                      (s->saturated == g->best.saturated && s->others_cpu > g->best.others_cpu))) {
    int attempts = s->attempts;
    *s = g->best;
    s->attempts = attempts;
  }
  if (s->others_cpu > g->o.noise_pct && s->attempts <= g->o.retry_noisy) {
    /* Other processes took CPU the servers needed: run the step again.
     * Late deliveries of this attempt fall outside the new window. */
    printf("          other processes used %.0f%% of a core: repeating step %d\n", s->others_cpu,
           g->cur + 1);
    g->best = *s;
    g->has_best = 1;
    int attempts = s->attempts;
    memset(s, 0, sizeof(*s));
    s->attempts = attempts;
    return ACT_RETRY;
  }
  if (g->has_best) {
    printf("          step %d counts as its best attempt: %s, others %.0f%%\n", g->cur + 1,
           s->saturated ? "saturated" : "kept up", s->others_cpu);
    g->has_best = 0;
  }
  double next = g->cur + 1 < MAX_STEPS ? plan_next(g) : 0;
  if (next <= 0) return ACT_FINISH;
  g->cur++;
  g->next_rate = next;
  /* A saturated step leaves a backlog in the server and the sockets: let it
   * drain first, or the next step would inherit it. */
  return s->saturated ? ACT_SETTLE_NEXT : ACT_NEXT;
}

static void on_phase_timer(uv_timer_t *t) {
  struct lg *g = t->data;
  uint64_t now = uv_hrtime();
  switch (g->phase) {
  case PH_CONNECT:
    /* Connect timeout: whatever is not ready by now has failed. */
    fprintf(stderr, "loadgen: connect timeout: %u ready, %u failed of %u\n", g->ready, g->failed,
            g->c_hi - g->c_lo);
    g->failed = g->c_hi - g->c_lo - g->ready;
    g->err_handshake += g->failed;
    lg_note_code(g, "connect_timeout");
    connect_finished(g);
    break;
  case PH_WARMUP:
    g->cur = 0;
    phase_start(g, PH_STEP);
    break;
  case PH_STEP:
    step_end_window(g, now);
    phase_start(g, PH_DRAIN);
    break;
  case PH_DRAIN:
    if (g->worker >= 0) { /* the parent judges the merged step */
      g->phase = PH_IDLE;
      g->rate = 0;
      worker_report(g, WM_STEP);
      break;
    }
    switch (step_decide(g)) {
    case ACT_RETRY: phase_start(g, PH_STEP); break;
    case ACT_NEXT: phase_start(g, PH_STEP); break;
    case ACT_SETTLE_NEXT: phase_start(g, PH_SETTLE); break;
    case ACT_FINISH: finish(g); break;
    }
    break;
  case PH_SETTLE:
    /* Every 250 ms: go on once nothing arrived since the last look. */
    if (g->rx_frames == g->settle_seen || (double)(now - g->t_phase) / 1e9 >= g->o.settle_s) {
      if (g->worker >= 0) {
        g->phase = PH_IDLE;
        worker_report(g, WM_SETTLED);
      } else {
        phase_start(g, PH_STEP);
      }
    } else {
      g->settle_seen = g->rx_frames;
      uv_timer_start(&g->phase_timer, on_phase_timer, 250, 0);
    }
    break;
  case PH_HOLD:
    finish(g);
    break;
  default:
    break;
  }
}

static void run_hook(const char *cmd, const char *what) {
  if (cmd == NULL || *cmd == '\0') return;
  int rc = system(cmd);
  if (rc != 0) fprintf(stderr, "loadgen: %s hook exited with %d\n", what, rc);
}

static void print_connected(const struct lg *g) {
  double secs = (double)(g->t_last_ready - g->t_connect0) / 1e9;
  printf("  connected %u/%d in %.2f s (%.0f joins/s), failed %u; join latency ms p50 %.2f "
         "p99 %.2f max %.2f\n",
         g->ready, g->o.conns, secs, secs > 0 ? g->ready / secs : 0, g->failed,
         us(hist_percentile(&g->join_lat, 50)) / 1e3,
         us(hist_percentile(&g->join_lat, 99)) / 1e3, us(g->join_lat.max) / 1e3);
  fflush(stdout);
}

static void phase_start(struct lg *g, int ph) {
  uint64_t now = uv_hrtime();
  int prev = g->phase;
  g->phase = ph;
  g->t_phase = now;
  g->sched_sent = 0;
  uv_timer_stop(&g->phase_timer);
  switch (ph) {
  case PH_CONNECT:
    g->t_connect0 = now;
    uv_timer_start(&g->phase_timer, on_phase_timer, (uint64_t)(g->o.connect_timeout_s * 1000), 0);
    connect_pump(g);
    break;
  case PH_WARMUP:
  case PH_HOLD: {
    if (prev == PH_CONNECT) {
      print_connected(g);
      run_hook(g->o.hook_start, "start");
      now = uv_hrtime();
      g->t_phase = now;
      g->srv_ticks0 = g->o.server_pid ? proc_ticks(g->o.server_pid) : 0;
      g->cli_ns0 = self_cpu_ns();
    }
    double secs = ph == PH_HOLD ? g->o.hold_s : g->o.warmup_s;
    if (ph == PH_WARMUP) {
      g->rate = g->o.closed ? 0 : g->next_rate * g->share;
      if (g->o.closed) closed_kick(g);
    }
    if (g->worker < 0) uv_timer_start(&g->phase_timer, on_phase_timer, (uint64_t)(secs * 1000) + 1, 0);
    break;
  }
  case PH_STEP:
    step_begin(g, now);
    if (g->o.closed && prev == PH_DRAIN) closed_kick(g); /* the warmup's chain died in the drain */
    uv_timer_start(&g->phase_timer, on_phase_timer, (uint64_t)(g->o.duration_s * 1000), 0);
    break;
  case PH_DRAIN:
    uv_timer_start(&g->phase_timer, on_phase_timer, (uint64_t)(g->o.drain_s * 1000), 0);
    break;
  case PH_SETTLE:
    g->rate = 0;
    g->settle_seen = g->rx_frames;
    uv_timer_start(&g->phase_timer, on_phase_timer, 250, 0);
    break;
  default:
    break;
  }
}

/* --burst B: at the offered rate, but in bursts: each burst is B messages
 * back to back from every member of every room but the first, sent in one
 * tick, so that the server finds them all readable at once. */
static void send_bursts(struct lg *g, struct step *s, uint64_t now, double per_ns) {
  uint32_t size = (uint32_t)g->o.room_size;
  uint64_t per_burst = (uint64_t)(g->g_hi - g->g_lo) * (size - 1) * (uint64_t)g->o.burst;
  if (per_burst == 0) return;
  uint64_t due = (uint64_t)((double)(now - g->t_phase) * per_ns / (double)per_burst) + 1;
  while (g->sched_sent / per_burst < due) {
    uint64_t t_sched = g->t_phase + (uint64_t)((double)g->sched_sent / per_ns);
    if (s && now - t_sched > s->max_send_lag) s->max_send_lag = now - t_sched;
    if (s) hist_record(&s->send_lag, now - t_sched);
    for (uint32_t room = g->g_lo; room < g->g_hi; room++)
      for (uint32_t m = 1; m < size; m++) {
        uint32_t idx = room * size + m;
        if (idx >= (uint32_t)g->o.conns) break;
        for (int k = 0; k < g->o.burst; k++) fanout_send_from(g, &g->conns[idx], t_sched);
      }
    g->sched_sent += per_burst;
  }
}

static void on_tick(uv_timer_t *t) {
  struct lg *g = t->data;
  uint64_t now = uv_hrtime();
  if (g->phase == PH_CONNECT && g->o.scenario == SC_STORM) {
    uint32_t mine = g->c_hi - g->c_lo;
    double per_ns = (double)mine / (g->o.storm_s * 1e9);
    uint64_t due = (uint64_t)((double)(now - g->t_phase) * per_ns) + 1;
    if (due > mine) due = mine;
    while (g->next_conn - g->c_lo < due) {
      struct conn *c = &g->conns[g->next_conn];
      c->t_start = g->t_phase + (uint64_t)((double)(g->next_conn - g->c_lo) / per_ns); /* scheduled */
      g->next_conn++;
      g->in_flight++;
      conn_start(c);
    }
    return;
  }
  if (g->phase == PH_DRAIN) {
    struct step *s = &g->steps[g->cur];
    if (s->received >= s->expected) on_phase_timer(&g->phase_timer);
    return;
  }
  if ((g->phase != PH_STEP && g->phase != PH_WARMUP) || g->o.closed || g->rate <= 0) return;
  double per_ns = g->rate / 1e9;
  struct step *s = cur_step(g);
  if (g->o.burst > 0 && !is_relay(g)) {
    send_bursts(g, s, now, per_ns);
    return;
  }
  /* Message k is due at t_phase + k / rate: k = 0 goes at once. */
  uint64_t due = (uint64_t)((double)(now - g->t_phase) * per_ns) + 1;
  while (g->sched_sent < due) {
    uint64_t t_sched = g->t_phase + (uint64_t)((double)g->sched_sent / per_ns);
    if (s && now - t_sched > s->max_send_lag) s->max_send_lag = now - t_sched;
    if (s) hist_record(&s->send_lag, now > t_sched ? now - t_sched : 0);
    send_scheduled(g, g->sched_sent, t_sched);
    g->sched_sent++;
  }
}

static void on_keepalive(uv_timer_t *t) {
  struct lg *g = t->data;
  uint32_t n = g->c_hi - g->c_lo;
  uint32_t per = (uint32_t)ceil((double)n * 0.1 / g->o.keepalive_s);
  for (uint32_t i = 0; i < per && n; i++) {
    conn_keepalive(&g->conns[g->c_lo + g->ka_next]);
    g->ka_next = (g->ka_next + 1) % n;
  }
}

static void on_timeline(uv_timer_t *t) {
  struct lg *g = t->data;
  double ms_now = (double)(uv_hrtime() - g->t_connect0) / 1e6;
  fprintf(g->tl, "%.0f\t%d\t%" PRIu64 "\t%" PRIu64 "\t%.3f\t%.3f\n", ms_now, g->cur + 1,
          g->sent_total - g->tl_sent0, g->tl_n, g->tl_n ? (double)g->tl_sum / (double)g->tl_n / 1e6 : 0.0,
          (double)g->tl_max / 1e6);
  g->tl_n = g->tl_max = g->tl_sum = 0;
  g->tl_sent0 = g->sent_total;
}

/* ---- output ---- */

static const char *proto_name(enum lg_proto p) {
  static const char *names[] = {"huddle", "peerjs", "wsroom", "nchan"};
  return names[p];
}

static const char *scenario_name(enum lg_scenario s) {
  static const char *names[] = {"capacity", "fanout", "relay", "storm"};
  return names[s];
}

static void json_lat(FILE *f, const struct hist *h) {
  fprintf(f, "{\"n\":%" PRIu64 ",\"p50\":%.1f,\"p90\":%.1f,\"p99\":%.1f,\"p999\":%.1f,\"max\":%.1f,\"mean\":%.1f}",
          h->n, us(hist_percentile(h, 50)), us(hist_percentile(h, 90)), us(hist_percentile(h, 99)),
          us(hist_percentile(h, 99.9)), us(h->max), h->n ? h->sum / (double)h->n / 1000.0 : 0.0);
}

/* What bounded the search: "server" (a step saturated with the load
 * generator under its limit), "server, machine busy" (the same, but other
 * processes used over --noise-pct of a core in it), "loadgen" (the least
 * saturated step was client-bound), "max-rate" (nothing saturated up to
 * --max-rate), or "-". */
static const char *search_limit(const struct lg *g) {
  if (!g->o.search) return "-";
  if (g->sat_step < 0) return "max-rate";
  const struct step *s = &g->steps[g->sat_step];
  if (s->client_bound) return "loadgen";
  /* Even its best attempt ran beside other busy processes. */
  return s->others_cpu > g->o.noise_pct ? "server, machine busy" : "server";
}

static void print_search(const struct lg *g) {
  if (!g->o.search) return;
  printf("  search: ");
  if (g->good_step >= 0) {
    const struct step *s = &g->steps[g->good_step];
    double secs = (double)(s->t_end - s->t_start) / 1e9;
    double dps = (double)s->received / secs;
    printf("sustained %.0f msg/s offered (%.0f deliveries/s, server cpu %.0f%%, %.2f us of server "
           "cpu per delivery, client cpu %.0f%%)",
           s->offered, dps, s->server_cpu, dps > 0 ? s->server_cpu * 1e4 / dps : 0.0, s->client_cpu);
  } else {
    printf("no step kept up");
  }
  if (g->sat_step >= 0) printf("; saturated at %.0f msg/s", g->steps[g->sat_step].offered);
  printf("; limit: %s\n", search_limit(g));
}

static void write_json(const struct lg *g) {
  FILE *f = fopen(g->o.json_path, "w");
  if (f == NULL) {
    perror(g->o.json_path);
    return;
  }
  const struct lg_opts *o = &g->o;
  double csecs = (double)(g->t_last_ready - g->t_connect0) / 1e9;
  fprintf(f, "{\"tool\":\"huddle-loadgen\",\"version\":1,\"proto\":\"%s\",\"scenario\":\"%s\","
             "\"label\":\"%s\",\"persist\":%s,\"mode\":\"%s\",\"workers\":%d,\"client_cpus\":%d,\n",
          proto_name(o->proto), scenario_name(o->scenario), o->label ? o->label : "",
          o->persist ? "true" : "false", o->closed ? "closed" : "open", g->nworkers, g->ncpus);
  fprintf(f, " \"config\":{\"conns\":%d,\"room_size\":%d,\"duration_s\":%g,\"warmup_s\":%g,"
             "\"drain_s\":%g,\"hold_s\":%g,\"keepalive_s\":%g,\"storm_s\":%g,\"window\":%d,"
             "\"msg_bytes\":%d,\"sdp_offer\":%d,\"sdp_answer\":%d,\"slo_ms\":%g,\"wslay_recv\":%s},\n",
          o->conns, o->room_size, o->duration_s, o->warmup_s, o->drain_s, o->hold_s,
          o->keepalive_s, o->storm_s, o->window, o->msg_bytes, o->sdp_offer, o->sdp_answer,
          o->slo_ms, o->wslay_recv ? "true" : "false");
  fprintf(f, " \"connect\":{\"attempted\":%d,\"ready\":%u,\"failed\":%u,\"seconds\":%.3f,"
             "\"joins_per_s\":%.1f,\"lat_us\":",
          o->conns, g->ready, g->failed, csecs, csecs > 0 ? g->ready / csecs : 0.0);
  json_lat(f, &g->join_lat);
  fprintf(f, "},\n");
  uint64_t live = g->ready - g->closed_after_ready;
  double per_conn = live && g->rss_kib > g->rss_empty_kib
                      ? (double)(g->rss_kib - g->rss_empty_kib) * 1024.0 / (double)live : 0.0;
  fprintf(f, " \"server\":{\"pid\":%d,\"rss_empty_kib\":%" PRIu64 ",\"rss_kib\":%" PRIu64
             ",\"live_conns\":%" PRIu64 ",\"bytes_per_conn\":%.0f,\"hold_cpu_pct\":%.1f},\n",
          o->server_pid, g->rss_empty_kib, g->rss_kib, live, per_conn,
          g->nsteps ? 0.0 : g->steps[0].server_cpu);
  fprintf(f, " \"totals\":{\"sent\":%" PRIu64 ",\"deliveries\":%" PRIu64 ",\"frames_in\":%" PRIu64 "},\n",
          g->sent_total, g->msgs_total, g->rx_frames);
  fprintf(f, " \"errors\":{\"connect\":%" PRIu64 ",\"handshake\":%" PRIu64 ",\"closed\":%" PRIu64
             ",\"server\":%" PRIu64 ",\"write\":%" PRIu64 ",\"codes\":{",
          g->err_connect, g->err_handshake, g->err_closed, g->err_server, g->err_write);
  for (int i = 0, first = 1; i < MAX_CODES && g->codes[i][0]; i++, first = 0)
    fprintf(f, "%s\"%s\":%" PRIu64, first ? "" : ",", g->codes[i], g->code_n[i]);
  fprintf(f, "}},\n \"search\":{\"on\":%s,\"sustained_step\":%d,\"saturated_step\":%d,"
             "\"sustained_msgs_s\":%.1f,\"saturated_msgs_s\":%.1f,\"limit\":\"%s\"},\n",
          o->search ? "true" : "false", g->good_step, g->sat_step, g->lo, g->hi, search_limit(g));
  fprintf(f, " \"steps\":[");
  for (int i = 0; i <= g->cur && i < g->nsteps; i++) {
    const struct step *s = &g->steps[i];
    if (s->t_end == 0 || s->t_end == UINT64_MAX) break;
    double secs = (double)(s->t_end - s->t_start) / 1e9;
    double fan = s->sent ? (double)s->expected / (double)s->sent : 0;
    fprintf(f, "%s\n  {\"offered_msgs_s\":%.1f,\"offered_deliveries_s\":%.1f,\"seconds\":%.3f,"
               "\"sent\":%" PRIu64 ",\"skipped\":%" PRIu64 ",\"expected\":%" PRIu64
               ",\"received\":%" PRIu64 ",\"arrived_in_window\":%" PRIu64 ",\"late\":%" PRIu64
               ",\"sent_msgs_s\":%.1f,\"deliveries_s\":%.1f,\"window_deliveries_s\":%.1f,"
               "\"errors\":%" PRIu64 ",\"server_cpu_pct\":%.1f,\"server_rss_kib\":%" PRIu64
               ",\"client_cpu_pct\":%.1f,\"client_cpu_max_pct\":%.1f,\"others_cpu_pct\":%.1f,\"attempts\":%d,"
               "\"max_send_lag_us\":%.1f,\"saturated\":%s,\"client_bound\":%s,\"probe\":%s,"
               "\"lat_us\":",
            i ? "," : "", s->offered, s->offered * fan, secs, s->sent, s->skipped, s->expected,
            s->received, s->arrived, s->late, (double)s->sent / secs, (double)s->received / secs,
            (double)s->arrived / secs, s->errors, s->server_cpu, s->server_rss_kib, s->client_cpu,
            s->client_cpu_max, s->others_cpu, s->attempts, us(s->max_send_lag), s->saturated ? "true" : "false",
            s->client_bound ? "true" : "false", s->probe ? "true" : "false");
    json_lat(f, &s->lat);
    fprintf(f, ",\"send_lag_us\":");
    json_lat(f, &s->send_lag);
    fprintf(f, "}");
  }
  fprintf(f, "]}\n");
  fclose(f);
}

static void close_all_walk(uv_handle_t *h, void *arg) {
  (void)arg;
  if (!uv_is_closing(h) && h->type == UV_TIMER) uv_close(h, NULL);
}

/* The end hook, and the server's RSS and CPU over a hold. */
static void finish_measure(struct lg *g, int prev, uint64_t now) {
  run_hook(g->o.hook_end, "end");
  if (prev == PH_HOLD && g->o.server_pid) {
    g->rss_kib = proc_rss_kib(g->o.server_pid);
    /* One pseudo step holds the hold's CPU for the JSON. */
    long hz = sysconf(_SC_CLK_TCK);
    double secs = (double)(now - g->t_phase) / 1e9;
    g->steps[0].server_cpu = 100.0 * (double)(proc_ticks(g->o.server_pid) - g->srv_ticks0) /
                             (double)hz / secs;
  }
}

/* The closing lines and the JSON. */
static void report(struct lg *g) {
  if (g->o.scenario == SC_CAPACITY || g->o.scenario == SC_STORM) {
    uint64_t live = g->ready - g->closed_after_ready;
    printf("  held %" PRIu64 " live connections for %.0f s", live, g->o.hold_s);
    if (g->o.server_pid) {
      double per = live && g->rss_kib > g->rss_empty_kib
                     ? (double)(g->rss_kib - g->rss_empty_kib) * 1024.0 / (double)live : 0;
      printf(": server rss %.1f MiB (empty %.1f MiB), %.0f bytes per connection, idle cpu %.1f%%",
             (double)g->rss_kib / 1024.0, (double)g->rss_empty_kib / 1024.0, per,
             g->steps[0].server_cpu);
    }
    printf("\n");
  }
  printf("  errors: connect %" PRIu64 ", handshake %" PRIu64 ", closed %" PRIu64
         ", server %" PRIu64 ", write %" PRIu64,
         g->err_connect, g->err_handshake, g->err_closed, g->err_server, g->err_write);
  for (int i = 0; i < MAX_CODES && g->codes[i][0]; i++)
    printf("%s%s=%" PRIu64, i ? " " : "  [", g->codes[i], g->code_n[i]);
  printf("%s\n", g->codes[0][0] ? "]" : "");
  print_search(g);
  fflush(stdout);
  if (g->o.json_path) write_json(g);
}

static void finish(struct lg *g) {
  uint64_t now = uv_hrtime();
  int prev = g->phase;
  g->phase = PH_DONE;
  if (g->worker >= 0) {
    worker_report(g, WM_DONE);
    uv_close((uv_handle_t *)&g->ctl_poll, NULL);
  } else {
    finish_measure(g, prev, now);
    report(g);
  }
  for (int i = 0; i < g->o.conns; i++) conn_close(&g->conns[i]);
  uv_walk(g->loop, close_all_walk, NULL);
}

/* ---- workers ----
 *
 * --workers N forks N processes after the parent has read its options. Each
 * drives whole rooms (or pairs), so that everything a message causes stays
 * in one process, at its share of the offered load, and runs the phases the
 * parent commands over a SOCK_SEQPACKET socket: warm up, run step i at rate
 * r, settle, hold, finish. After each phase it sends back its counts and
 * histograms; the parent merges them, measures the server and the machine
 * over the window, judges the merged step and plans the next one exactly as
 * a lone process does. The parent sleeps in between: it costs nothing. */

#define MAX_WORKERS 64

struct wmsg {
  int type;                     /* enum wmsg_type */
  uint32_t ready, failed;
  uint64_t t_connect0, t_last_ready;
  uint64_t msgs_total, sent_total, rx_frames, closed_after_ready;
  uint64_t err[5];              /* connect, handshake, closed, server, write */
  char codes[MAX_CODES][40];
  uint64_t code_n[MAX_CODES];
  struct hist join;
  struct step step;
};

struct wcmd {
  int type;                     /* enum wcmd_type */
  int idx;                      /* WC_STEP: the step */
  int probe;
  double rate;                  /* WC_WARMUP, WC_STEP: the whole offered load */
};

static struct {
  int n;
  int fd[MAX_WORKERS];
  pid_t pid[MAX_WORKERS];
} W;

static struct wmsg wbuf; /* one message at a time, in either process */

static void ctl_send(int fd, const void *m, size_t len) {
  while (send(fd, m, len, MSG_NOSIGNAL) < 0) {
    if (errno != EAGAIN && errno != EINTR) {
      perror("loadgen: control socket");
      exit(1);
    }
    struct pollfd p = {fd, POLLOUT, 0};
    poll(&p, 1, 1000);
  }
}

static void worker_report(struct lg *g, int type) {
  struct wmsg *m = &wbuf;
  memset(m, 0, sizeof(*m));
  m->type = type;
  m->ready = g->ready;
  m->failed = g->failed;
  m->t_connect0 = g->t_connect0;
  m->t_last_ready = g->t_last_ready;
  m->msgs_total = g->msgs_total;
  m->sent_total = g->sent_total;
  m->rx_frames = g->rx_frames;
  m->closed_after_ready = g->closed_after_ready;
  uint64_t err[5] = {g->err_connect, g->err_handshake, g->err_closed, g->err_server, g->err_write};
  memcpy(m->err, err, sizeof(err));
  memcpy(m->codes, g->codes, sizeof(m->codes));
  memcpy(m->code_n, g->code_n, sizeof(m->code_n));
  m->join = g->join_lat;
  if (type == WM_STEP) m->step = g->steps[g->cur];
  ctl_send(g->ctl_fd, m, sizeof(*m));
}

static void on_ctl(uv_poll_t *h, int status, int events) {
  struct lg *g = h->data;
  struct wcmd c;
  (void)events;
  ssize_t n = status < 0 ? -1 : recv(g->ctl_fd, &c, sizeof(c), 0);
  if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
  if (n != (ssize_t)sizeof(c)) { /* the parent is gone */
    uv_poll_stop(h);
    if (g->phase != PH_DONE) finish(g);
    return;
  }
  switch (c.type) {
  case WC_WARMUP:
    g->next_rate = c.rate;
    phase_start(g, PH_WARMUP);
    break;
  case WC_HOLD:
    phase_start(g, PH_HOLD);
    break;
  case WC_STEP:
    if (c.idx < 0 || c.idx >= MAX_STEPS) break;
    memset(&g->steps[c.idx], 0, sizeof(g->steps[c.idx]));
    g->cur = c.idx;
    g->next_rate = c.rate;
    g->next_probe = c.probe;
    phase_start(g, PH_STEP);
    break;
  case WC_SETTLE:
    phase_start(g, PH_SETTLE);
    break;
  case WC_FINISH:
    if (g->phase != PH_DONE) finish(g);
    break;
  default:
    break;
  }
}

/* Forks the workers. Returns 1 in the parent, 0 in a worker (which then
 * goes on as a lone process would, over its own rooms). */
static int workers_spawn(struct lg *g) {
  uint32_t size = (uint32_t)g->o.room_size;
  W.n = g->nworkers;
  fflush(stdout);
  fflush(stderr);
  for (int w = 0; w < W.n; w++) {
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv) != 0) {
      perror("loadgen: socketpair");
      exit(1);
    }
    pid_t pid = fork();
    if (pid < 0) {
      perror("loadgen: fork");
      exit(1);
    }
    if (pid == 0) {
      close(sv[0]);
      for (int k = 0; k < w; k++) close(W.fd[k]);
      g->worker = w;
      g->ctl_fd = sv[1];
      g->g_lo = (uint32_t)((uint64_t)g->ngroups * (uint64_t)w / (uint64_t)W.n);
      g->g_hi = (uint32_t)((uint64_t)g->ngroups * (uint64_t)(w + 1) / (uint64_t)W.n);
      g->c_lo = g->g_lo * size;
      g->c_hi = g->g_hi * size < (uint32_t)g->o.conns ? g->g_hi * size : (uint32_t)g->o.conns;
      g->share = (double)(g->g_hi - g->g_lo) / (double)g->ngroups;
      g->next_conn = g->c_lo;
      g->o.server_pid = 0; /* the parent watches the server */
      g->o.hook_start = g->o.hook_end = g->o.json_path = g->o.timeline_path = NULL;
      fcntl(sv[1], F_SETFL, fcntl(sv[1], F_GETFL) | O_NONBLOCK);
      return 0;
    }
    close(sv[1]);
    W.fd[w] = sv[0];
    W.pid[w] = pid;
  }
  return 1;
}

static void workers_cmd(int type, int idx, double rate, int probe) {
  struct wcmd c = {type, idx, probe, rate};
  for (int w = 0; w < W.n; w++) ctl_send(W.fd[w], &c, sizeof(c));
}

static void merge_codes(struct lg *g, const struct wmsg *m) {
  for (int i = 0; i < MAX_CODES && m->codes[i][0]; i++) {
    int k = 0;
    while (k < MAX_CODES && g->codes[k][0] && strcmp(g->codes[k], m->codes[i]) != 0) k++;
    if (k == MAX_CODES) k = MAX_CODES - 1; /* the overflow slot */
    else if (g->codes[k][0] == '\0') snprintf(g->codes[k], sizeof(g->codes[k]), "%s", m->codes[i]);
    g->code_n[k] += m->code_n[i];
  }
}

/* Waits for message type from every worker and folds it into g. */
static void workers_gather(struct lg *g, int type) {
  for (int w = 0; w < W.n; w++) {
    struct wmsg *m = &wbuf;
    ssize_t n;
    do n = recv(W.fd[w], m, sizeof(*m), 0);
    while (n < 0 && errno == EINTR);
    if (n != (ssize_t)sizeof(*m) || m->type != type) {
      fprintf(stderr, "loadgen: worker %d sent no answer (%zd bytes): giving up\n", w, n);
      exit(1);
    }
    if (type == WM_CONNECTED) {
      g->ready += m->ready;
      g->failed += m->failed;
      if (g->t_connect0 == 0 || m->t_connect0 < g->t_connect0) g->t_connect0 = m->t_connect0;
      if (m->t_last_ready > g->t_last_ready) g->t_last_ready = m->t_last_ready;
      hist_merge(&g->join_lat, &m->join);
    } else if (type == WM_STEP) {
      struct step *s = &g->steps[g->cur];
      const struct step *x = &m->step;
      if (s->t_start == 0 || x->t_start < s->t_start) s->t_start = x->t_start;
      if (x->t_end > s->t_end) s->t_end = x->t_end;
      s->sent += x->sent;
      s->expected += x->expected;
      s->received += x->received;
      s->arrived += x->arrived;
      s->late += x->late;
      s->errors += x->errors;
      s->skipped += x->skipped;
      if (x->max_send_lag > s->max_send_lag) s->max_send_lag = x->max_send_lag;
      s->client_cpu += x->client_cpu;
      if (x->client_cpu > s->client_cpu_max) s->client_cpu_max = x->client_cpu;
      hist_merge(&s->lat, &x->lat);
      hist_merge(&s->send_lag, &x->send_lag);
    } else if (type == WM_DONE) {
      g->msgs_total += m->msgs_total;
      g->sent_total += m->sent_total;
      g->rx_frames += m->rx_frames;
      g->closed_after_ready += m->closed_after_ready;
      g->err_connect += m->err[0];
      g->err_handshake += m->err[1];
      g->err_closed += m->err[2];
      g->err_server += m->err[3];
      g->err_write += m->err[4];
      merge_codes(g, m);
    }
  }
}

static void sleep_s(double secs) {
  struct timespec ts = {(time_t)secs, (long)((secs - (double)(time_t)secs) * 1e9)};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {}
}

/* The parent: steers the workers through the run and prints what a lone
 * process would. Returns the exit status. */
static int workers_run(struct lg *g) {
  long hz = sysconf(_SC_CLK_TCK);
  int pid = g->o.server_pid;
  workers_gather(g, WM_CONNECTED);
  print_connected(g);
  run_hook(g->o.hook_start, "start");
  int prev = PH_HOLD;
  if (g->o.scenario == SC_CAPACITY || g->o.scenario == SC_STORM) {
    g->t_phase = uv_hrtime();
    g->srv_ticks0 = pid ? proc_ticks(pid) : 0;
    workers_cmd(WC_HOLD, 0, 0, 0);
    sleep_s(g->o.hold_s);
  } else {
    prev = PH_DRAIN;
    workers_cmd(WC_WARMUP, 0, g->next_rate, 0);
    sleep_s(g->o.warmup_s);
    g->cur = 0;
    for (;;) {
      struct step *s = &g->steps[g->cur];
      int attempts = s->attempts;
      memset(s, 0, sizeof(*s));
      s->attempts = attempts + 1;
      uint64_t t0 = uv_hrtime(), srv0 = pid ? proc_ticks(pid) : 0, sys0 = sys_busy_ticks();
      workers_cmd(WC_STEP, g->cur, g->next_rate, g->next_probe);
      sleep_s(g->o.duration_s);
      double secs = (double)(uv_hrtime() - t0) / 1e9;
      double all = 100.0 * (double)(sys_busy_ticks() - sys0) / (double)hz / secs;
      if (pid) {
        s->server_cpu = 100.0 * (double)(proc_ticks(pid) - srv0) / (double)hz / secs;
        s->server_rss_kib = proc_rss_kib(pid);
      }
      workers_gather(g, WM_STEP);
      s->offered = g->next_rate;
      s->probe = g->next_probe;
      s->others_cpu = all - s->client_cpu - s->server_cpu;
      if (s->others_cpu < 0) s->others_cpu = 0;
      enum act a = step_decide(g);
      if (a == ACT_FINISH) break;
      if (a == ACT_SETTLE_NEXT) {
        workers_cmd(WC_SETTLE, 0, 0, 0);
        workers_gather(g, WM_SETTLED);
      }
    }
  }
  g->phase = PH_DONE;
  finish_measure(g, prev, uv_hrtime());
  workers_cmd(WC_FINISH, 0, 0, 0);
  workers_gather(g, WM_DONE);
  report(g);
  for (int w = 0; w < W.n; w++) {
    close(W.fd[w]);
    waitpid(W.pid[w], NULL, 0);
  }
  return g->ready == 0 ? 1 : 0;
}

/* ---- options ---- */

static void usage(FILE *f) {
  fprintf(f,
    "Usage: loadgen --scenario capacity|fanout|relay|storm [options]\n"
    "  --proto huddle|peerjs|wsroom|nchan   protocol of the server (huddle)\n"
    "  --host H --port P              server address (127.0.0.1:8080)\n"
    "  --ports P1,P2,...              several instances: client i connects to P[i %% n]\n"
    "  --secret S                     HS256 secret for tokens (huddle, wsroom)\n"
    "  --conns N                      clients (capacity 20000, fanout 500, storm 5000)\n"
    "  --pairs P                      relay: pairs of clients (1000)\n"
    "  --room-size K                  members per room (capacity/storm 20, fanout 50)\n"
    "  --rates R1,R2,...              offered messages/s per step (open loop)\n"
    "  --closed [--window W]          closed loop, W messages in flight per room or pair (1)\n"
    "  --duration S --warmup S --drain S   per step (10, 2, 3)\n"
    "  --hold S                       capacity: hold the idle connections (10)\n"
    "  --keepalive S                  ping (PeerJS: HEARTBEAT) each client every S s (15; 0 off)\n"
    "  --storm-s S                    storm: spread the joins over S s (5)\n"
    "  --concurrency C                handshakes in flight while connecting (256)\n"
    "  --per-addr N                   clients per source address 127.0.0.x (20000)\n"
    "  --connect-timeout S            (120)\n"
    "  --msg-bytes B                  chat text bytes (200)\n"
    "  --sdp-offer B --sdp-answer B   SDP bytes (6144, 4608)\n"
    "  --slo-ms MS                    p99 above this marks a step saturated (100)\n"
    "  --no-stop                      run every step even past saturation\n"
    "  --search                       find saturation: start at the first --rates value, multiply by\n"
    "                                 --growth (2) until a step saturates (delivered < 99%%, p99 over\n"
    "                                 --slo-ms, errors, or sends behind schedule), then bisect between\n"
    "                                 the best sustained and least saturated rate --refine times (3)\n"
    "  --max-rate R                   --search: never offer more (1000000)\n"
    "  --probe R | --probe-half       after the search, one latency step at R msg/s or at half the\n"
    "                                 sustained rate\n"
    "  --settle-s S                   after a saturated step, wait up to S s for the backlog (10)\n"
    "  --client-limit-pct P           own CPU above P%% of a core marks a step loadgen-bound (85)\n"
    "  --burst B                      fanout: every member but one of each room sends B messages\n"
    "                                 back to back, in bursts at the offered rate\n"
    "  --relay-only offer|answer|candidate   relay: send only this kind\n"
    "  --workers N|auto               drive the load from N processes (auto: one per CPU this\n"
    "                                 may run on, see taskset), each with whole rooms or pairs (1)\n"
    "  --server-pid PID               sample server CPU and RSS from /proc\n"
    "  --json FILE --label L          write the results as JSON\n"
    "  --hook-start CMD --hook-end CMD   run CMD (sh -c) once connected / when done\n"
    "  --persist                      label the run as 'chat persisted' (scenario 5)\n"
    "  --wslay-recv                   parse input with wslay_event_recv (slower)\n"
    "  --timeline FILE                every 100 ms: ms, step, sent, delivered, mean and max latency (ms)\n"
    "  --retry-noisy N --noise-pct P  repeat a step up to N times (2) when other processes\n"
    "                                 used more than P%% of a core during it (15)\n"
    "  -v, --verbose\n");
}

static int parse_rates(struct lg_opts *o, const char *s) {
  o->nrates = 0;
  while (*s && o->nrates < MAX_STEPS) {
    char *end;
    double r = strtod(s, &end);
    if (end == s || r <= 0) return -1;
    o->rates[o->nrates++] = r;
    s = *end == ',' ? end + 1 : end;
    if (*end && *end != ',') return -1;
  }
  return o->nrates > 0 ? 0 : -1;
}

static int parse_opts(struct lg_opts *o, int argc, char **argv) {
  enum {
    O_PROTO = 256, O_SCEN, O_HOST, O_PORT, O_PORTS, O_SECRET, O_CONNS, O_PAIRS, O_ROOM, O_RATES, O_CLOSED,
    O_WINDOW, O_DUR, O_WARM, O_DRAIN, O_HOLD, O_KA, O_STORM, O_CONC, O_PERADDR, O_CTO, O_MSGB,
    O_OFFER, O_ANSWER, O_SLO, O_NOSTOP, O_PID, O_JSON, O_LABEL, O_HSTART, O_HEND, O_PERSIST,
    O_WSLAY, O_RETRY, O_NOISE, O_TIMELINE, O_SEARCH, O_GROWTH, O_REFINE, O_MAXRATE, O_PROBE,
    O_PROBEHALF, O_SETTLE, O_CLIMIT, O_BURST, O_RONLY, O_WORKERS,
  };
  static const struct option lo[] = {
    {"proto", 1, 0, O_PROTO}, {"scenario", 1, 0, O_SCEN}, {"host", 1, 0, O_HOST},
    {"port", 1, 0, O_PORT}, {"ports", 1, 0, O_PORTS}, {"secret", 1, 0, O_SECRET}, {"conns", 1, 0, O_CONNS},
    {"pairs", 1, 0, O_PAIRS}, {"room-size", 1, 0, O_ROOM}, {"rates", 1, 0, O_RATES},
    {"closed", 0, 0, O_CLOSED}, {"window", 1, 0, O_WINDOW}, {"duration", 1, 0, O_DUR},
    {"warmup", 1, 0, O_WARM}, {"drain", 1, 0, O_DRAIN}, {"hold", 1, 0, O_HOLD},
    {"keepalive", 1, 0, O_KA}, {"storm-s", 1, 0, O_STORM}, {"concurrency", 1, 0, O_CONC},
    {"per-addr", 1, 0, O_PERADDR}, {"connect-timeout", 1, 0, O_CTO},
    {"msg-bytes", 1, 0, O_MSGB}, {"sdp-offer", 1, 0, O_OFFER}, {"sdp-answer", 1, 0, O_ANSWER},
    {"slo-ms", 1, 0, O_SLO}, {"no-stop", 0, 0, O_NOSTOP}, {"server-pid", 1, 0, O_PID},
    {"json", 1, 0, O_JSON}, {"label", 1, 0, O_LABEL}, {"hook-start", 1, 0, O_HSTART},
    {"hook-end", 1, 0, O_HEND}, {"persist", 0, 0, O_PERSIST}, {"wslay-recv", 0, 0, O_WSLAY},
    {"retry-noisy", 1, 0, O_RETRY}, {"noise-pct", 1, 0, O_NOISE}, {"timeline", 1, 0, O_TIMELINE},
    {"search", 0, 0, O_SEARCH}, {"growth", 1, 0, O_GROWTH}, {"refine", 1, 0, O_REFINE},
    {"max-rate", 1, 0, O_MAXRATE}, {"probe", 1, 0, O_PROBE}, {"probe-half", 0, 0, O_PROBEHALF},
    {"settle-s", 1, 0, O_SETTLE}, {"client-limit-pct", 1, 0, O_CLIMIT}, {"burst", 1, 0, O_BURST},
    {"relay-only", 1, 0, O_RONLY}, {"workers", 1, 0, O_WORKERS},
    {"verbose", 0, 0, 'v'}, {"help", 0, 0, 'h'}, {0, 0, 0, 0},
  };
  int pairs = 1000, conns = -1, room = -1, opt, have_scenario = 0;
  o->host = "127.0.0.1";
  o->port = 8080;
  o->secret = "bench-secret-bench-secret-bench-secret";
  o->concurrency = 256;
  o->window = 1;
  o->duration_s = 10;
  o->warmup_s = 2;
  o->drain_s = 3;
  o->hold_s = 10;
  o->keepalive_s = 15;
  o->storm_s = 5;
  o->connect_timeout_s = 120;
  o->msg_bytes = 200;
  o->sdp_offer = 6144;
  o->sdp_answer = 4608;
  o->slo_ms = 100;
  o->stop_on_saturation = 1;
  o->per_addr = 20000;
  o->retry_noisy = 2;
  o->noise_pct = 15;
  o->growth = 2;
  o->refine = 3;
  o->max_rate = 1000000;
  o->settle_s = 10;
  o->client_limit_pct = 85;
  o->relay_only = -1;
  o->workers = 1;
  while ((opt = getopt_long(argc, argv, "vh", lo, NULL)) != -1) {
    switch (opt) {
    case O_PROTO:
      if (strcmp(optarg, "huddle") == 0) o->proto = PROTO_HUDDLE;
      else if (strcmp(optarg, "peerjs") == 0) o->proto = PROTO_PEERJS;
      else if (strcmp(optarg, "wsroom") == 0) o->proto = PROTO_WSROOM;
      else if (strcmp(optarg, "nchan") == 0) o->proto = PROTO_NCHAN;
      else return -1;
      break;
    case O_SCEN:
      have_scenario = 1;
      if (strcmp(optarg, "capacity") == 0) o->scenario = SC_CAPACITY;
      else if (strcmp(optarg, "fanout") == 0) o->scenario = SC_FANOUT;
      else if (strcmp(optarg, "relay") == 0) o->scenario = SC_RELAY;
      else if (strcmp(optarg, "storm") == 0) o->scenario = SC_STORM;
      else return -1;
      break;
    case O_HOST: o->host = optarg; break;
    case O_PORT: o->port = atoi(optarg); break;
    case O_PORTS: {
      char *save = NULL, *dup = strdup(optarg);
      for (char *t = strtok_r(dup, ",", &save); t && o->nports < 16; t = strtok_r(NULL, ",", &save))
        o->ports[o->nports++] = atoi(t);
      if (o->nports) o->port = o->ports[0];
      free(dup);
      break;
    }
    case O_SECRET: o->secret = optarg; break;
    case O_CONNS: conns = atoi(optarg); break;
    case O_PAIRS: pairs = atoi(optarg); break;
    case O_ROOM: room = atoi(optarg); break;
    case O_RATES: if (parse_rates(o, optarg) != 0) return -1; break;
    case O_CLOSED: o->closed = 1; break;
    case O_WINDOW: o->window = atoi(optarg); break;
    case O_DUR: o->duration_s = atof(optarg); break;
    case O_WARM: o->warmup_s = atof(optarg); break;
    case O_DRAIN: o->drain_s = atof(optarg); break;
    case O_HOLD: o->hold_s = atof(optarg); break;
    case O_KA: o->keepalive_s = atof(optarg); break;
    case O_STORM: o->storm_s = atof(optarg); break;
    case O_CONC: o->concurrency = atoi(optarg); break;
    case O_PERADDR: o->per_addr = atoi(optarg); break;
    case O_CTO: o->connect_timeout_s = atof(optarg); break;
    case O_MSGB: o->msg_bytes = atoi(optarg); break;
    case O_OFFER: o->sdp_offer = atoi(optarg); break;
    case O_ANSWER: o->sdp_answer = atoi(optarg); break;
    case O_SLO: o->slo_ms = atof(optarg); break;
    case O_NOSTOP: o->stop_on_saturation = 0; break;
    case O_PID: o->server_pid = atoi(optarg); break;
    case O_JSON: o->json_path = optarg; break;
    case O_LABEL: o->label = optarg; break;
    case O_HSTART: o->hook_start = optarg; break;
    case O_HEND: o->hook_end = optarg; break;
    case O_PERSIST: o->persist = 1; break;
    case O_WSLAY: o->wslay_recv = 1; break;
    case O_RETRY: o->retry_noisy = atoi(optarg); break;
    case O_NOISE: o->noise_pct = atof(optarg); break;
    case O_TIMELINE: o->timeline_path = optarg; break;
    case O_SEARCH: o->search = 1; break;
    case O_GROWTH: o->growth = atof(optarg); break;
    case O_REFINE: o->refine = atoi(optarg); break;
    case O_MAXRATE: o->max_rate = atof(optarg); break;
    case O_PROBE: o->probe_rate = atof(optarg); break;
    case O_PROBEHALF: o->probe_half = 1; break;
    case O_SETTLE: o->settle_s = atof(optarg); break;
    case O_CLIMIT: o->client_limit_pct = atof(optarg); break;
    case O_BURST: o->burst = atoi(optarg); break;
    case O_WORKERS: o->workers = strcmp(optarg, "auto") == 0 ? 0 : atoi(optarg); break;
    case O_RONLY:
      if (strcmp(optarg, "offer") == 0) o->relay_only = 0;
      else if (strcmp(optarg, "answer") == 0) o->relay_only = 1;
      else if (strcmp(optarg, "candidate") == 0) o->relay_only = 2;
      else return -1;
      break;
    case 'v': o->verbose = 1; break;
    case 'h': usage(stdout); exit(0);
    default: return -1;
    }
  }
  if (!have_scenario || optind != argc) return -1;
  switch (o->scenario) {
  case SC_CAPACITY: o->conns = conns > 0 ? conns : 20000; o->room_size = room > 0 ? room : 20; break;
  case SC_STORM: o->conns = conns > 0 ? conns : 5000; o->room_size = room > 0 ? room : 20; break;
  case SC_FANOUT: o->conns = conns > 0 ? conns : 500; o->room_size = room > 0 ? room : 50; break;
  case SC_RELAY: o->conns = 2 * (conns > 0 ? (conns + 1) / 2 : pairs); o->room_size = 2; break;
  }
  if (o->nrates == 0) {
    o->rates[0] = o->scenario == SC_RELAY ? 1000 : 200;
    o->nrates = 1;
  }
  if (o->window < 1) o->window = 1;
  if (o->concurrency < 1) o->concurrency = 1;
  if (o->proto == PROTO_PEERJS && o->scenario == SC_FANOUT) {
    fprintf(stderr, "loadgen: the PeerJS server has no rooms: no fanout scenario\n");
    return -2;
  }
  if (o->proto == PROTO_NCHAN && o->scenario == SC_RELAY) {
    fprintf(stderr, "loadgen: nchan is pub/sub only: no relay scenario\n");
    return -2;
  }
  if (o->growth <= 1) o->growth = 2;
  if (o->search && o->closed) {
    fprintf(stderr, "loadgen: --search needs the open loop\n");
    return -2;
  }
  return 0;
}

int main(int argc, char **argv) {
  struct lg *g = &G;
  int rc = parse_opts(&g->o, argc, argv);
  if (rc != 0) {
    if (rc == -1) usage(stderr);
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);
  g->cur = -1;
  g->nsteps = g->o.scenario == SC_FANOUT || g->o.scenario == SC_RELAY
                ? (g->o.search ? MAX_STEPS : g->o.nrates) : 0;
  g->good_step = g->sat_step = -1;
  if (uv_ip4_addr(g->o.host, g->o.port, &g->dst) != 0) {
    fprintf(stderr, "loadgen: bad host %s\n", g->o.host);
    return 2;
  }
  snprintf(g->prefix, sizeof(g->prefix), "b%d-", (int)(getpid() % 100000));
  uint32_t n = (uint32_t)g->o.conns;
  g->ngroups = (n + (uint32_t)g->o.room_size - 1) / (uint32_t)g->o.room_size;
  g->worker = -1;
  g->g_lo = 0;
  g->g_hi = g->ngroups;
  g->c_lo = 0;
  g->c_hi = n;
  g->share = 1.0;
  g->next_rate = g->o.rates[0];
  cpu_set_t cpus;
  g->ncpus = sched_getaffinity(0, sizeof(cpus), &cpus) == 0 ? CPU_COUNT(&cpus) : 1;
  if (g->ncpus < 1) g->ncpus = 1;
  g->nworkers = g->o.workers > 0 ? g->o.workers : g->ncpus;
  if (g->nworkers > MAX_WORKERS) g->nworkers = MAX_WORKERS;
  if ((uint32_t)g->nworkers > g->ngroups) g->nworkers = (int)g->ngroups;
  if (g->nworkers < 1) g->nworkers = 1;
  g->conns = calloc(n, sizeof(*g->conns));
  g->room_live = calloc(g->ngroups, sizeof(*g->room_live));
  g->pair_pos = calloc(g->ngroups, sizeof(*g->pair_pos));
  if (g->conns == NULL || g->room_live == NULL || g->pair_pos == NULL) return 1;
  /* Pairs start at different points of the exchange, so that the mix of
   * offers, answers and candidates is the same at every moment (in lockstep
   * all pairs would send their 6 KiB offers in the same fifth of a second). */
  for (uint32_t p = 0; p < g->ngroups; p++) g->pair_pos[p] = p % 6;
  for (uint32_t i = 0; i < n; i++) {
    g->conns[i].g = g;
    g->conns[i].idx = i;
    g->conns[i].group = i / (uint32_t)g->o.room_size;
  }
  hist_reset(&g->join_lat);
  for (int i = 0; i < MAX_STEPS; i++) hist_reset(&g->steps[i].lat);

  printf("loadgen %s %s: %d clients, rooms of %d, %s loop%s%s\n", proto_name(g->o.proto),
         scenario_name(g->o.scenario), g->o.conns, g->o.room_size,
         g->o.closed ? "closed" : "open", g->o.wslay_recv ? ", wslay parser" : "",
         g->o.search ? ", searching for saturation" : "");
  if (g->o.persist)
    printf("  --persist: every chat is to be stored; the server must have been started so "
           "(huddle: --chat-durability durable; docs/performance.md, scenario 5)\n");
  if (g->o.server_pid) g->rss_empty_kib = proc_rss_kib(g->o.server_pid);
  if (g->nworkers > 1) printf("  %d worker processes on %d CPU(s)\n", g->nworkers, g->ncpus);
  fflush(stdout);
  if (g->nworkers > 1 && workers_spawn(g)) {
    signal(SIGPIPE, SIG_IGN);
    int status = workers_run(g);
    free(g->conns);
    free(g->room_live);
    free(g->pair_pos);
    return status;
  }
  g->loop = uv_default_loop(); /* after the fork: a loop is not shared */

  uv_timer_init(g->loop, &g->tick);
  uv_timer_init(g->loop, &g->phase_timer);
  uv_timer_init(g->loop, &g->ka_timer);
  g->tick.data = g->phase_timer.data = g->ka_timer.data = g;
  uv_timer_start(&g->tick, on_tick, 1, 1);
  if (g->o.keepalive_s > 0) uv_timer_start(&g->ka_timer, on_keepalive, 100, 100);
  uv_timer_init(g->loop, &g->tl_timer);
  g->tl_timer.data = g;
  if (g->o.timeline_path) {
    g->tl = fopen(g->o.timeline_path, "w");
    if (g->tl == NULL) perror(g->o.timeline_path);
    else uv_timer_start(&g->tl_timer, on_timeline, 100, 100);
  }
  if (g->worker >= 0) {
    uv_poll_init(g->loop, &g->ctl_poll, g->ctl_fd);
    g->ctl_poll.data = g;
    uv_poll_start(&g->ctl_poll, UV_READABLE, on_ctl);
  }
  phase_start(g, PH_CONNECT);
  uv_run(g->loop, UV_RUN_DEFAULT);
  int closed = uv_loop_close(g->loop);
  if (g->tl) fclose(g->tl);
  free(g->conns);
  free(g->room_live);
  free(g->pair_pos);
  if (closed != 0) fprintf(stderr, "loadgen: loop not closed cleanly\n");
  return g->ready == 0 ? 1 : 0;
}

/* loadgen: the load generator of huddle's benchmark suite (bench/README in
 * docs/performance.md). One libuv loop drives thousands of WebSocket clients
 * against huddle, the PeerJS server or the Node room server (bench/peers).
 * It is not a client library: it looks at as few bytes of each message as it
 * can (the type and an embedded timestamp) so that the server is what bounds
 * the numbers it prints. */
#ifndef HUDDLE_BENCH_LOADGEN_H
#define HUDDLE_BENCH_LOADGEN_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>
#include <wslay/wslay.h>

/* ---- histogram (lg_hist.c) ---- */

/* Log-linear buckets over nanoseconds: exact below 2^HIST_SUB_BITS ns, then
 * 2^(HIST_SUB_BITS-1) buckets per power of two (0.8% precision), up to
 * HIST_MAX_NS. Values are clamped to [HIST_MIN_NS, HIST_MAX_NS]. */
#define HIST_SUB_BITS 8
#define HIST_MIN_NS 1000ull                 /* 1 us */
#define HIST_MAX_NS 60000000000ull          /* 60 s */
#define HIST_BUCKETS 3840                  /* 256 exact + 28 octaves x 128, past 2^36 ns */

struct hist {
  uint64_t n;                   /* values recorded */
  uint64_t min, max;            /* ns, exact */
  double sum;                   /* ns, for the mean */
  uint64_t counts[HIST_BUCKETS];
};

void hist_reset(struct hist *h);
void hist_record(struct hist *h, uint64_t ns);
/* Value (ns, bucket midpoint, at most max) at or below which p percent of
 * the values lie; 0 when empty. */
uint64_t hist_percentile(const struct hist *h, double p);
/* Adds the values of from to into. */
void hist_merge(struct hist *into, const struct hist *from);

/* ---- messages (lg_msg.c) ---- */

/* PROTO_NCHAN: nginx's nchan module, one pub/sub channel per room at
 * /sub/<room> (nchan_pubsub websocket): no envelope, a message is the text
 * itself, every subscriber of the channel (the sender too) gets it, and a
 * client is ready once the upgrade is answered. */
enum lg_proto { PROTO_HUDDLE, PROTO_PEERJS, PROTO_WSROOM, PROTO_NCHAN };

/* What a received message is, as far as the load generator cares. */
enum lg_mtype {
  MT_OTHER,    /* user-joined, user-left, anything else: counted, ignored */
  MT_READY,    /* room-state (huddle, wsroom) or OPEN (peerjs) */
  MT_CHAT,     /* chat-message */
  MT_RELAY,    /* offer, answer, ice-candidate / OFFER, ANSWER, CANDIDATE */
  MT_ERROR,    /* error / ERROR / ID-TAKEN */
};

/* The marker embedded in every timed message: "~T" + 20 digits of
 * CLOCK_MONOTONIC ns (the scheduled send time) + ":" + 8 digits of the
 * sending client's index + "~". Fixed width, so a premasked frame is
 * patched in place. */
#define MARK_LEN 32
#define MARK_T_OFF 2      /* digits of the time start here */
#define MARK_SRC_OFF 23   /* digits of the sender start here */

/* A premasked client frame with a marker to patch before each send. */
struct tmpl {
  uint8_t *frame;       /* owned: header, mask key, masked payload */
  size_t len;           /* bytes of frame */
  size_t hdr;           /* bytes before the payload (header + mask) */
  size_t mark;          /* payload offset of the marker, or SIZE_MAX */
  uint8_t mask[4];
};

/* Builds t from payload (copied) with a fresh mask key from RAND_bytes.
 * Returns 0 or -1. */
int tmpl_build(struct tmpl *t, const char *payload, size_t len);
void tmpl_free(struct tmpl *t);
/* Copies t into out (t->len bytes) with the marker set to (t_ns, src). */
void tmpl_render(const struct tmpl *t, uint8_t *out, uint64_t t_ns, uint32_t src);

/* Mints an HS256 JWT {"sub","exp","room"?,"role":"participant"} into out.
 * Returns its length, or 0 when out is too small. */
size_t jwt_mint(char *out, size_t cap, const char *secret, const char *sub,
                const char *room, int64_t exp);

/* Classifies a text message by its first "type" member. */
enum lg_mtype msg_type(const uint8_t *m, size_t len);
/* Finds the marker; returns 1 and its fields, or 0. */
int msg_mark(const uint8_t *m, size_t len, uint64_t *t_ns, uint32_t *src);
/* Copies the value of "code" (huddle errors) or "msg" (PeerJS) into out. */
void msg_error_code(const uint8_t *m, size_t len, char *out, size_t cap);

/* Payload text builders; each returns a malloc'd NUL-terminated string that
 * holds one marker placeholder. */
char *msg_chat(enum lg_proto p, size_t text_bytes);
/* kind: 0 offer, 1 answer, 2 ice-candidate. to: the recipient's id. */
char *msg_relay(enum lg_proto p, int kind, const char *to, size_t sdp_bytes, uint32_t salt);

/* ---- connections (lg_conn.c) ---- */

enum conn_state {
  CS_IDLE,        /* not started */
  CS_CONNECTING,  /* TCP connect in flight */
  CS_HANDSHAKE,   /* upgrade sent, waiting for 101 */
  CS_JOINING,     /* WebSocket open, waiting for room-state / OPEN */
  CS_READY,
  CS_CLOSED,
};

struct lg;

struct conn {
  uv_tcp_t tcp;                 /* .data = this */
  uv_connect_t creq;
  struct lg *g;                 /* borrowed */
  wslay_event_context_ptr ws;   /* owned: control frames (ping, pong, close) */
  uint32_t idx;                 /* index in g->conns */
  uint32_t group;               /* room (fanout, capacity, storm) or pair (relay) */
  uint8_t state;                /* enum conn_state */
  uint8_t src;                  /* source address index: 127.0.0.(src+1) */
  uint8_t retries;              /* connects retried from another source address */
  uint8_t closing;
  uint8_t done;                 /* counted as failed or lost */
  uint64_t t_start;             /* ns: scheduled (storm) or actual connect start */
  char *in;                     /* owned: partial frame or handshake bytes */
  size_t in_len, in_cap;
  const uint8_t *rp;            /* --wslay-recv: the read wslay is consuming */
  size_t rn;                    /* bytes left at rp */
  struct tmpl tm[3];            /* owned: premasked frames (chat, or offer/answer/candidate) */
  uint32_t relay_pos;           /* relay: position of this pair in the exchange */
  char accept[32];              /* the Sec-WebSocket-Accept we expect */
};

/* Starts connecting c; on success the conn moves to CS_READY and
 * lg_on_ready() runs; on failure lg_on_failed(). */
void conn_start(struct conn *c);
/* Writes bytes to c (copied when the socket cannot take them now).
 * Returns 0 or a libuv error (the connection is then closed). */
int conn_write(struct conn *c, const void *data, size_t len);
/* Sends a ping (huddle, wsroom) or a HEARTBEAT (peerjs). */
void conn_keepalive(struct conn *c);
/* Closes c; idempotent. */
void conn_close(struct conn *c);
/* User id of connection idx, e.g. "b1234-17". */
void conn_user_id(const struct lg *g, uint32_t idx, char *out, size_t cap);
void conn_room_id(const struct lg *g, uint32_t group, char *out, size_t cap);

/* ---- the driver (loadgen.c) ---- */

enum lg_scenario { SC_CAPACITY, SC_FANOUT, SC_RELAY, SC_STORM };

#define MAX_STEPS 32
#define MAX_CODES 8

struct step {
  double offered;               /* messages/s sent (0: closed loop) */
  uint64_t t_start, t_end;      /* ns: the send window */
  uint64_t sent;                /* messages sent in the window */
  uint64_t expected;            /* deliveries those messages should cause */
  uint64_t received;            /* deliveries of those messages (by send time) */
  uint64_t arrived;             /* deliveries that arrived inside the window */
  uint64_t late;                /* deliveries after the drain ended */
  uint64_t errors;              /* error messages and closes during the window */
  double server_cpu;            /* percent of one core over the window */
  double client_cpu;            /* percent of one core over the window (all workers) */
  double client_cpu_max;        /* the busiest worker's (--workers), else client_cpu */
  double others_cpu;            /* percent of one core used by other processes */
  int attempts;                 /* runs of this step (noisy ones are repeated) */
  uint64_t server_rss_kib;
  uint64_t skipped;             /* scheduled sends whose sender was down */
  uint64_t max_send_lag;        /* ns: worst lateness of a scheduled send */
  int saturated;
  int client_bound;             /* the load generator, not the server, was the limit */
  int probe;                    /* --search: the latency step after the search */
  struct hist lat;
  struct hist send_lag;         /* ns: each scheduled send's lateness (the generator's own share of lat) */
};

struct lg_opts {
  const char *host;
  int port;
  int ports[16];          /* --ports: client i connects to ports[i % nports] (several instances) */
  int nports;
  enum lg_proto proto;
  enum lg_scenario scenario;
  const char *secret;
  const char *label;
  const char *json_path;
  const char *hook_start, *hook_end;
  const char *timeline_path;     /* per-100 ms deliveries and latency, or NULL */
  int conns;                    /* clients (relay: 2 x pairs) */
  int room_size;
  int concurrency;              /* handshakes in flight while connecting */
  double storm_s;               /* storm: spread the joins over this many seconds */
  double rates[MAX_STEPS];      /* offered messages/s per step */
  int nrates;
  int closed;                   /* closed loop instead of fixed offered load */
  int window;                   /* closed loop: messages in flight per room or pair */
  double duration_s;            /* per step */
  double warmup_s;
  double drain_s;
  double hold_s;                /* capacity: hold the idle connections this long */
  double keepalive_s;           /* 0: never */
  double connect_timeout_s;
  double slo_ms;                /* p99 above this marks a step saturated */
  int stop_on_saturation;
  int search;                   /* grow from rates[0] until saturated, then bisect */
  double growth;                /* --search: factor between steps while growing (2) */
  int refine;                   /* --search: bisection steps (3) */
  double max_rate;              /* --search: never offer more than this */
  double probe_rate;            /* after the search: one step at this rate (0: none) */
  int probe_half;               /* after the search: one step at half the sustained rate */
  double settle_s;              /* after a saturated step: wait for the backlog, at most S s */
  double client_limit_pct;      /* own CPU above this marks a step client-bound (85) */
  int burst;                    /* fanout: members 1..K-1 of a room each send this many at once */
  int relay_only;               /* relay: -1 the usual mix, or only kind 0 offer, 1 answer, 2 candidate */
  int workers;                  /* processes driving the load (0: one per CPU this may run on) */
  int msg_bytes;                /* chat text bytes */
  int sdp_offer, sdp_answer;    /* SDP bytes */
  int per_addr;                 /* connections per source address */
  int server_pid;
  int persist;
  int wslay_recv;               /* parse input with wslay_event_recv (slower) */
  int retry_noisy;              /* repeat a step this often when others were busy */
  double noise_pct;             /* others' CPU above which a step is noisy */
  int verbose;
};

struct lg {
  struct lg_opts o;
  uv_loop_t *loop;
  struct conn *conns;           /* owned: o.conns entries */
  uint32_t ngroups;
  /* --workers: each process drives whole groups [g_lo, g_hi) and their
   * connections [c_lo, c_hi) at its share of the offered load; the parent
   * (worker -1) only steers and merges (loadgen.c, "workers"). Alone, one
   * process drives everything. */
  int nworkers;
  int worker;                   /* this child's index, or -1 */
  int ctl_fd;                   /* worker: its end of the control socket */
  uv_poll_t ctl_poll;
  uint32_t g_lo, g_hi, c_lo, c_hi;
  double share;                 /* (g_hi - g_lo) / ngroups */
  int ncpus;                    /* CPUs this process may run on */
  char prefix[16];              /* user and room id prefix, unique per run */
  struct sockaddr_in dst;

  /* connect phase */
  uint32_t next_conn;           /* next conn to start */
  uint32_t in_flight;           /* connects and handshakes in flight */
  uint32_t ready, failed;
  uint64_t t_connect0, t_last_ready;
  struct hist join_lat;         /* connect start (storm: scheduled) to ready */
  uint8_t src_next;             /* next source address to move to on EADDRNOTAVAIL */

  /* errors */
  uint64_t err_connect, err_handshake, err_closed, err_server, err_write;
  char codes[MAX_CODES][40];
  uint64_t code_n[MAX_CODES];

  /* steps */
  struct step steps[MAX_STEPS];
  struct step best;             /* the best attempt so far of a step being repeated */
  int has_best;
  int nsteps;
  int cur;                      /* step being sent or drained, -1 before */
  int phase;                    /* see loadgen.c */
  uint64_t t_phase;             /* ns: when the phase started */
  uint64_t sched_sent;          /* open loop: messages sent since t_phase */
  double rate;                  /* open loop: current rate */
  double next_rate;             /* offered load of the next step */
  int next_probe;               /* the next step is the --search probe */
  int probe_done;
  double lo, hi;                /* --search: best sustained, least saturated offered rate */
  int good_step, sat_step;      /* --search: their steps, or -1 */
  int refined;                  /* --search: bisection steps run */
  uint64_t settle_seen;         /* frames received at the last settle check */
  uint64_t msgs_total;          /* deliveries received over the whole run */
  uint64_t sent_total;          /* timed messages sent over the whole run */
  uint64_t rx_frames;           /* frames received over the whole run */

  uv_timer_t tick;              /* 1 ms: sends, connects */
  uv_timer_t phase_timer;
  uv_timer_t ka_timer;          /* keepalive sweep */
  uv_timer_t tl_timer;          /* --timeline: one line per 100 ms */
  FILE *tl;
  uint64_t tl_n, tl_max, tl_sum, tl_sent0; /* this 100 ms: deliveries, worst and summed latency (ns) */
  uint32_t ka_next;

  uint32_t *pair_pos;           /* owned: relay exchange position per pair */
  uint16_t *room_live;          /* owned: ready members per group */
  uint64_t closed_after_ready;  /* ready connections lost since */
  uint64_t rss_empty_kib;       /* server RSS before any connection */
  uint64_t rss_kib;             /* server RSS at the end of hold */
  uint64_t srv_ticks0, cli_ns0;
  uint64_t sys_busy0;           /* /proc/stat user+nice+system ticks, all CPUs */
  uint64_t t_ticks0;
};

/* Called by lg_conn.c. */
void lg_on_ready(struct conn *c);
void lg_on_failed(struct conn *c, const char *why);
void lg_on_closed(struct conn *c);
void lg_on_message(struct conn *c, const uint8_t *m, size_t len);
void lg_note_code(struct lg *g, const char *code);

#endif

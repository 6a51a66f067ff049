/* store_bench: how many chat messages per second the store makes durable,
 * and how long a message waits for its commit, without the network.
 *
 *   build/store_bench [--url postgres://...] [--n 200000] [--rates 5000,20000] [--sync full|normal]
 *                     [--events 1]   (each chat record followed by an analytics event)
 *
 * Phase 1 (saturation): submits n chat records as fast as the backlog bound
 * (10,000) allows and reports committed records/s, batches and the mean
 * batch size. Phase 2 (paced): for each rate, submits records on a timer
 * for 3 s and reports the submit-to-completion delay (p50/p99/max): the
 * delay durable chat adds before delivery. SQLite runs in a fresh temporary
 * directory; PostgreSQL in the database --url names (its tables are used). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "store/store.h"

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

struct run {
  uv_loop_t *loop;
  struct store *st;
  uint64_t done, failed, seq;
  uint64_t *lat;           /* ns, paced phase */
  size_t nlat, cap;
  int paced;
  int events;               /* --events: an analytics event row with each chat */
  char room[32];
};

static void on_done(struct store_rec *r, void *arg) {
  struct run *run = arg;
  run->done++;
  if (r->status != STORE_OK) run->failed++;
  if (run->paced && run->nlat < run->cap) run->lat[run->nlat++] = now_ns() - r->value;
}

static int submit_one(struct run *run) {
  struct store_rec *r = store_rec_new(STORE_CHAT, run->room);
  if (r == NULL) return -1;
  r->seq = ++run->seq;
  r->ts = (uint64_t)time(NULL) * 1000;
  r->value = (int64_t)now_ns();
  snprintf(r->id, sizeof(r->id), "m%" PRIu64, r->seq);
  snprintf(r->user_id, sizeof(r->user_id), "bench-user");
  snprintf(r->name, sizeof(r->name), "Bench User");
  r->text = strdup("a 200-byte chat message, more or less the size the fan-out benchmark sends to "
                   "its rooms of fifty: padding padding padding padding padding padding padding pad.");
  r->done = on_done;
  r->arg = run;
  if (store_submit(run->st, r, 1) != 0) {
    run->seq--;
    return -1;
  }
  if (run->events) {
    /* What huddle wrote besides a chat message before schema 6: its
     * analytics event (ADR 0020: the chat row is that event since). */
    struct store_rec *e = store_rec_new(STORE_EVENT, run->room);
    if (e) {
      e->ts = (uint64_t)time(NULL) * 1000;
      snprintf(e->name, sizeof(e->name), "chat");
      snprintf(e->user_id, sizeof(e->user_id), "bench-user");
      snprintf(e->aux, sizeof(e->aux), "room");
      store_submit(run->st, e, 0);
    }
  }
  return 0;
}

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

struct pacer {
  struct run *run;
  double rate;
  uint64_t t0, sent, until;
  uv_timer_t timer;
};

static void on_tick(uv_timer_t *t) {
  struct pacer *p = t->data;
  uint64_t now = now_ns();
  uint64_t due = (uint64_t)((double)(now - p->t0) / 1e9 * p->rate);
  while (p->sent < due) {
    if (submit_one(p->run) != 0) break;
    p->sent++;
  }
  if (now >= p->until) uv_timer_stop(t);
}

int main(int argc, char **argv) {
  const char *url = NULL, *rates = "1000,5000,20000";
  long n = 200000;
  int sync_normal = 0, events = 0;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (strcmp(argv[i], "--url") == 0) url = argv[i + 1];
    else if (strcmp(argv[i], "--n") == 0) n = strtol(argv[i + 1], NULL, 10);
    else if (strcmp(argv[i], "--rates") == 0) rates = argv[i + 1];
    else if (strcmp(argv[i], "--sync") == 0) sync_normal = strcmp(argv[i + 1], "normal") == 0;
    else if (strcmp(argv[i], "--events") == 0) events = atoi(argv[i + 1]);
  }
  char dir[] = "/tmp/huddle-store-bench-XXXXXX";
  if (mkdtemp(dir) == NULL) return 1;
  uv_loop_t loop;
  uv_loop_init(&loop);
  struct run run;
  memset(&run, 0, sizeof(run));
  run.loop = &loop;
  run.events = events;
  snprintf(run.room, sizeof(run.room), "bench-%ld", (long)time(NULL));
  char err[512];
  if (store_open(&run.st, &loop, dir, url, 10000, sync_normal, err, sizeof(err)) != 0) {
    fprintf(stderr, "store_bench: %s\n", err);
    return 1;
  }
  printf("backend: %s, sync %s\n", store_backend(run.st), sync_normal ? "normal" : "full");

  /* Phase 1: saturation. */
  uint64_t t0 = now_ns();
  long submitted = 0;
  while (submitted < n) {
    if (submit_one(&run) == 0) submitted++;
    else uv_run(&loop, UV_RUN_ONCE); /* backlog full: take completions */
  }
  while (run.done < (uint64_t)submitted) uv_run(&loop, UV_RUN_ONCE);
  double s = (double)(now_ns() - t0) / 1e9;
  printf("saturation: %ld records in %.2f s = %.0f durable chat records/s; %" PRIu64 " batches, mean %.0f "
         "records a batch, largest %" PRIu64 ", failed %" PRIu64 "\n",
         submitted, s, (double)submitted / s, run.st->stats.batches,
         (double)run.st->stats.committed / (double)(run.st->stats.batches ? run.st->stats.batches : 1),
         run.st->stats.max_batch, run.failed);

  /* Phase 2: paced. */
  run.paced = 1;
  run.cap = 2000000;
  run.lat = malloc(run.cap * sizeof(uint64_t));
  for (const char *p = rates; p && *p;) {
    double rate = strtod(p, NULL);
    struct pacer pc = {&run, rate, now_ns(), 0, 0, {0}};
    pc.until = pc.t0 + 3000000000ull;
    run.nlat = 0;
    uint64_t b0 = run.st->stats.batches, c0 = run.st->stats.committed;
    uint64_t done0 = run.done;
    uv_timer_init(&loop, &pc.timer);
    pc.timer.data = &pc;
    uv_timer_start(&pc.timer, on_tick, 1, 1);
    while (uv_is_active((uv_handle_t *)&pc.timer)) uv_run(&loop, UV_RUN_ONCE); /* until the timer stops ... */
    while (run.done - done0 < pc.sent) uv_run(&loop, UV_RUN_ONCE); /* ... and all completed */
    uv_close((uv_handle_t *)&pc.timer, NULL);
    uv_run(&loop, UV_RUN_NOWAIT);
    qsort(run.lat, run.nlat, sizeof(uint64_t), cmp_u64);
    uint64_t batches = run.st->stats.batches - b0, committed = run.st->stats.committed - c0;
    printf("paced %6.0f/s: %" PRIu64 " records, commit delay p50 %.2f ms, p99 %.2f ms, max %.2f ms; "
           "mean batch %.1f\n",
           rate, (uint64_t)pc.sent, run.nlat ? run.lat[run.nlat / 2] / 1e6 : 0,
           run.nlat ? run.lat[run.nlat * 99 / 100] / 1e6 : 0, run.nlat ? run.lat[run.nlat - 1] / 1e6 : 0,
           batches ? (double)committed / (double)batches : 0);
    p = strchr(p, ',');
    if (p) p++;
  }
  free(run.lat);
  store_stop(run.st);
  uv_run(&loop, UV_RUN_DEFAULT);
  store_close(run.st);
  uv_loop_close(&loop);
  char cmd[128];
  snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
  return system(cmd) == 0 ? 0 : 1;
}

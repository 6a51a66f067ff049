/* An HDR-style latency histogram: log-linear buckets over nanoseconds,
 * about 0.8% wide, fixed size, no allocation. Recording is a few shifts;
 * percentiles walk the buckets once. Not thread-safe (one loop). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* memmem, getopt_long */
#endif
#include <string.h>

#include "loadgen.h"

#define LINEAR (1u << HIST_SUB_BITS)          /* exact values below this */
#define HALF (1u << (HIST_SUB_BITS - 1))      /* buckets per octave above */

static unsigned bucket_of(uint64_t v) {
  if (v < LINEAR) return (unsigned)v;
  unsigned e = 63u - (unsigned)__builtin_clzll(v);       /* >= HIST_SUB_BITS */
  unsigned shift = e - (HIST_SUB_BITS - 1);
  unsigned sub = (unsigned)(v >> shift);                 /* in [HALF, LINEAR) */
  unsigned idx = LINEAR + (e - HIST_SUB_BITS) * HALF + (sub - HALF);
  return idx < HIST_BUCKETS ? idx : HIST_BUCKETS - 1;
}

/* Midpoint of bucket idx. */
static uint64_t value_of(unsigned idx) {
  if (idx < LINEAR) return idx;
  unsigned oct = (idx - LINEAR) / HALF, sub = (idx - LINEAR) % HALF + HALF;
  unsigned shift = oct + 1;
  uint64_t lo = (uint64_t)sub << shift;
  return lo + ((1ull << shift) >> 1);
}

void hist_reset(struct hist *h) {
  memset(h, 0, sizeof(*h));
}

void hist_record(struct hist *h, uint64_t ns) {
  if (ns < HIST_MIN_NS) ns = HIST_MIN_NS;
  if (ns > HIST_MAX_NS) ns = HIST_MAX_NS;
  if (h->n == 0 || ns < h->min) h->min = ns;
  if (ns > h->max) h->max = ns;
  h->n++;
  h->sum += (double)ns;
  h->counts[bucket_of(ns)]++;
}

void hist_merge(struct hist *into, const struct hist *from) {
  if (from->n == 0) return;
  if (into->n == 0 || from->min < into->min) into->min = from->min;
  if (from->max > into->max) into->max = from->max;
  into->n += from->n;
  into->sum += from->sum;
  for (unsigned i = 0; i < HIST_BUCKETS; i++) into->counts[i] += from->counts[i];
}

uint64_t hist_percentile(const struct hist *h, double p) {
  if (h->n == 0) return 0;
  if (p >= 100.0) return h->max;
  uint64_t want = (uint64_t)((double)h->n * p / 100.0 + 0.5);
  if (want == 0) want = 1;
  uint64_t seen = 0;
  for (unsigned i = 0; i < HIST_BUCKETS; i++) {
    seen += h->counts[i];
    if (seen >= want) {
      uint64_t v = value_of(i);
      if (v > h->max) v = h->max;
      if (v < h->min) v = h->min;
      return v;
    }
  }
  return h->max;
}

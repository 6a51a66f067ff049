/* What the load generator says and how it reads answers: HS256 tokens,
 * the message texts of each protocol (chat, SDP offers and answers, ICE
 * candidates), premasked frames with a patchable timestamp marker, and the
 * two lookups done on every received message (its type and the marker).
 * No JSON parser: the servers' output is found with memmem. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* memmem, getopt_long */
#endif
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "loadgen.h"

#define MARK_PLACEHOLDER "~T00000000000000000000:00000000~"

/* ---- tokens ---- */

static size_t b64url(char *out, const unsigned char *in, size_t len) {
  static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  size_t o = 0, i = 0;
  for (; i + 2 < len; i += 3) {
    uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
    out[o++] = tab[v >> 18];
    out[o++] = tab[(v >> 12) & 63];
    out[o++] = tab[(v >> 6) & 63];
    out[o++] = tab[v & 63];
  }
  if (len - i == 1) {
    uint32_t v = (uint32_t)in[i] << 16;
    out[o++] = tab[v >> 18];
    out[o++] = tab[(v >> 12) & 63];
  } else if (len - i == 2) {
    uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
    out[o++] = tab[v >> 18];
    out[o++] = tab[(v >> 12) & 63];
    out[o++] = tab[(v >> 6) & 63];
  }
  return o;
}

size_t jwt_mint(char *out, size_t cap, const char *secret, const char *sub,
                const char *room, int64_t exp) {
  static const char hdr[] = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";
  char claims[256];
  int n = room ? snprintf(claims, sizeof(claims),
                          "{\"sub\":\"%s\",\"exp\":%lld,\"room\":\"%s\",\"role\":\"participant\"}",
                          sub, (long long)exp, room)
               : snprintf(claims, sizeof(claims), "{\"sub\":\"%s\",\"exp\":%lld}", sub,
                          (long long)exp);
  if (n < 0 || (size_t)n >= sizeof(claims)) return 0;
  size_t need = (sizeof(hdr) + (size_t)n + 32) * 4 / 3 + 8;
  if (cap < need) return 0;
  size_t o = b64url(out, (const unsigned char *)hdr, sizeof(hdr) - 1);
  out[o++] = '.';
  o += b64url(out + o, (const unsigned char *)claims, (size_t)n);
  unsigned char mac[32];
  unsigned int maclen = 0;
  if (HMAC(EVP_sha256(), secret, (int)strlen(secret), (const unsigned char *)out, o, mac,
           &maclen) == NULL)
    return 0;
  out[o++] = '.';
  o += b64url(out + o, mac, maclen);
  out[o] = '\0';
  return o;
}

/* ---- premasked frames ---- */

int tmpl_build(struct tmpl *t, const char *payload, size_t len) {
  uint8_t hdr[14];
  size_t h = 0;
  hdr[h++] = 0x81; /* FIN, text */
  if (len < 126) {
    hdr[h++] = 0x80 | (uint8_t)len;
  } else if (len < 65536) {
    hdr[h++] = 0x80 | 126;
    hdr[h++] = (uint8_t)(len >> 8);
    hdr[h++] = (uint8_t)len;
  } else {
    hdr[h++] = 0x80 | 127;
    for (int i = 7; i >= 0; i--) hdr[h++] = (uint8_t)((uint64_t)len >> (8 * i));
  }
  if (RAND_bytes(t->mask, 4) != 1) return -1;
  memcpy(hdr + h, t->mask, 4);
  h += 4;
  t->frame = malloc(h + len);
  if (t->frame == NULL) return -1;
  memcpy(t->frame, hdr, h);
  for (size_t i = 0; i < len; i++) t->frame[h + i] = (uint8_t)payload[i] ^ t->mask[i & 3];
  t->hdr = h;
  t->len = h + len;
  const char *m = memmem(payload, len, "~T", 2);
  t->mark = m ? (size_t)(m - payload) : SIZE_MAX;
  return 0;
}

void tmpl_free(struct tmpl *t) {
  free(t->frame);
  memset(t, 0, sizeof(*t));
}

void tmpl_render(const struct tmpl *t, uint8_t *out, uint64_t t_ns, uint32_t src) {
  memcpy(out, t->frame, t->len);
  if (t->mark == SIZE_MAX) return;
  char digits[MARK_LEN + 1];
  snprintf(digits, sizeof(digits), "~T%020llu:%08u~", (unsigned long long)t_ns, src % 100000000u);
  uint8_t *p = out + t->hdr;
  for (size_t k = MARK_T_OFF; k < MARK_LEN - 1; k++) {
    size_t off = t->mark + k;
    p[off] = (uint8_t)digits[k] ^ t->mask[off & 3];
  }
}

/* ---- reading answers ---- */

struct type_name {
  const char *name;
  size_t len;
  enum lg_mtype type;
};

#define TN(s, t) {s, sizeof(s) - 1, t}
static const struct type_name type_names[] = {
  TN("chat-message", MT_CHAT), TN("offer", MT_RELAY), TN("answer", MT_RELAY),
  TN("ice-candidate", MT_RELAY), TN("OFFER", MT_RELAY), TN("ANSWER", MT_RELAY),
  TN("CANDIDATE", MT_RELAY), TN("room-state", MT_READY), TN("OPEN", MT_READY),
  TN("error", MT_ERROR), TN("ERROR", MT_ERROR), TN("ID-TAKEN", MT_ERROR),
};

enum lg_mtype msg_type(const uint8_t *m, size_t len) {
  const uint8_t *p = memmem(m, len, "\"type\":", 7);
  if (p == NULL) return MT_OTHER;
  p += 7;
  const uint8_t *end = m + len;
  while (p < end && *p == ' ') p++;
  if (p >= end || *p != '"') return MT_OTHER;
  p++;
  const uint8_t *q = memchr(p, '"', (size_t)(end - p));
  if (q == NULL) return MT_OTHER;
  size_t n = (size_t)(q - p);
  for (size_t i = 0; i < sizeof(type_names) / sizeof(type_names[0]); i++)
    if (type_names[i].len == n && memcmp(type_names[i].name, p, n) == 0) return type_names[i].type;
  return MT_OTHER;
}

int msg_mark(const uint8_t *m, size_t len, uint64_t *t_ns, uint32_t *src) {
  const uint8_t *p = memmem(m, len, "~T", 2);
  if (p == NULL || (size_t)(m + len - p) < MARK_LEN) return 0;
  uint64_t t = 0;
  for (int k = MARK_T_OFF; k < MARK_T_OFF + 20; k++) {
    if (p[k] < '0' || p[k] > '9') return 0;
    t = t * 10 + (uint64_t)(p[k] - '0');
  }
  uint32_t s = 0;
  for (int k = MARK_SRC_OFF; k < MARK_SRC_OFF + 8; k++) {
    if (p[k] < '0' || p[k] > '9') return 0;
    s = s * 10 + (uint32_t)(p[k] - '0');
  }
  *t_ns = t;
  *src = s;
  return 1;
}

void msg_error_code(const uint8_t *m, size_t len, char *out, size_t cap) {
  static const char *keys[] = {"\"code\":\"", "\"msg\":\"", "\"type\":\""};
  snprintf(out, cap, "unknown");
  for (size_t i = 0; i < 3; i++) {
    const uint8_t *p = memmem(m, len, keys[i], strlen(keys[i]));
    if (p == NULL) continue;
    p += strlen(keys[i]);
    const uint8_t *q = memchr(p, '"', (size_t)(m + len - p));
    if (q == NULL) continue;
    size_t n = (size_t)(q - p) < cap - 1 ? (size_t)(q - p) : cap - 1;
    memcpy(out, p, n);
    out[n] = '\0';
    return;
  }
}

/* ---- what the clients send ---- */

struct sbuf {
  char *p;
  size_t len, cap;
};

static void sb_add(struct sbuf *b, const char *s, size_t n) {
  if (b->len + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap * 2 : 1024;
    while (cap < b->len + n + 1) cap *= 2;
    char *q = realloc(b->p, cap);
    if (q == NULL) abort();
    b->p = q;
    b->cap = cap;
  }
  memcpy(b->p + b->len, s, n);
  b->len += n;
  b->p[b->len] = '\0';
}

static void sb_str(struct sbuf *b, const char *s) {
  sb_add(b, s, strlen(s));
}

static void sb_fmt(struct sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_fmt(struct sbuf *b, const char *fmt, ...) {
  char tmp[512];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
  va_end(ap);
  if (n > 0) sb_add(b, tmp, (size_t)n < sizeof(tmp) ? (size_t)n : sizeof(tmp) - 1);
}

static const char lorem[] =
  "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor "
  "incididunt ut labore et dolore magna aliqua. Ut enim ad minim veniam, quis nostrud "
  "exercitation ullamco laboris nisi ut aliquip ex ea commodo consequat. ";

char *msg_chat(enum lg_proto p, size_t text_bytes) {
  if (p == PROTO_PEERJS) return NULL; /* PeerJS has no rooms, hence no chat */
  struct sbuf b = {0};
  if (p == PROTO_NCHAN) sb_str(&b, MARK_PLACEHOLDER " "); /* nchan: the text is the message */
  else sb_str(&b, "{\"type\":\"chat-message\",\"payload\":{\"text\":\"" MARK_PLACEHOLDER " ");
  size_t have = MARK_LEN + 1;
  while (have < text_bytes) {
    size_t n = text_bytes - have < sizeof(lorem) - 1 ? text_bytes - have : sizeof(lorem) - 1;
    sb_add(&b, lorem, n);
    have += n;
  }
  if (p != PROTO_NCHAN) sb_str(&b, "\"}}");
  return b.p;
}

/* Video codecs cycled through to grow an SDP to its size, as a browser
 * lists them: one rtpmap, the feedback lines, an fmtp, then the RTX pair. */
static const char *const codecs[] = {
  "VP8/90000", "VP9/90000|profile-id=0", "VP9/90000|profile-id=2",
  "H264/90000|level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42001f",
  "H264/90000|level-asymmetry-allowed=1;packetization-mode=0;profile-level-id=42001f",
  "H264/90000|level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f",
  "H264/90000|level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=4d001f",
  "AV1/90000|level-idx=5;profile=0;tier=0", "H264/90000|level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=64001f",
};

/* A Chrome-like session description of about bytes bytes (CRLF counted as
 * two), with CRLF escaped for JSON, holding the marker on an a= line. */
static void sdp_build(struct sbuf *b, size_t bytes, int answer, uint32_t salt) {
  struct sbuf s = {0};
  sb_fmt(&s, "v=0\r\no=- %u%09u 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n", salt, salt * 7919u % 1000000000u);
  sb_str(&s, "a=x-bench:" MARK_PLACEHOLDER "\r\n");
  sb_str(&s, "a=group:BUNDLE 0 1 2\r\na=extmap-allow-mixed\r\na=msid-semantic: WMS bench\r\n");
  static const char ice[] =
    "c=IN IP4 0.0.0.0\r\na=rtcp:9 IN IP4 0.0.0.0\r\na=ice-ufrag:EsAw\r\n"
    "a=ice-pwd:bP+XJMM09aR8AiX1jdukzR6Y\r\na=ice-options:trickle\r\n"
    "a=fingerprint:sha-256 DA:39:A3:EE:5E:6B:4B:0D:32:55:BF:EF:95:60:18:90:AF:D8:07:09:"
    "DA:39:A3:EE:5E:6B:4B:0D:32:55:BF:EF\r\n";
  sb_str(&s, "m=audio 9 UDP/TLS/RTP/SAVPF 111 63 9 0 8 13 110 126\r\n");
  sb_str(&s, ice);
  sb_fmt(&s, "a=setup:%s\r\na=mid:0\r\n", answer ? "active" : "actpass");
  sb_str(&s,
         "a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level\r\n"
         "a=extmap:2 http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time\r\n"
         "a=extmap:3 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01\r\n"
         "a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid\r\n"
         "a=sendrecv\r\na=msid:bench audio0\r\na=rtcp-mux\r\n"
         "a=rtpmap:111 opus/48000/2\r\na=rtcp-fb:111 transport-cc\r\n"
         "a=fmtp:111 minptime=10;useinbandfec=1\r\na=rtpmap:63 red/48000/2\r\n"
         "a=fmtp:63 111/111\r\na=rtpmap:9 G722/8000\r\na=rtpmap:0 PCMU/8000\r\n"
         "a=rtpmap:8 PCMA/8000\r\na=rtpmap:13 CN/8000\r\n"
         "a=rtpmap:110 telephone-event/48000\r\na=rtpmap:126 telephone-event/8000\r\n");
  sb_fmt(&s, "a=ssrc:%u cname:benchcname%u\r\na=ssrc:%u msid:bench audio0\r\n", 1000 + salt,
         salt, 1000 + salt);
  /* The tail: the data channel section, about 330 bytes. */
  struct sbuf tail = {0};
  sb_fmt(&tail, "a=ssrc-group:FID %u %u\r\na=ssrc:%u cname:benchcname%u\r\na=ssrc:%u cname:benchcname%u\r\n",
         2000 + salt, 3000 + salt, 2000 + salt, salt, 3000 + salt, salt);
  sb_str(&tail, "m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n");
  sb_str(&tail, ice);
  sb_fmt(&tail, "a=setup:%s\r\na=mid:2\r\na=sctp-port:5000\r\na=max-message-size:262144\r\n",
         answer ? "active" : "actpass");
  struct sbuf video = {0};
  int pt = 96;
  size_t i = 0;
  size_t head = s.len + 600; /* the m=video line and its session lines */
  while (head + video.len + tail.len < bytes && pt < 128) {
    const char *c = codecs[i++ % (sizeof(codecs) / sizeof(codecs[0]))];
    const char *bar = strchr(c, '|');
    int n = bar ? (int)(bar - c) : (int)strlen(c);
    sb_fmt(&video, "a=rtpmap:%d %.*s\r\na=rtcp-fb:%d goog-remb\r\na=rtcp-fb:%d transport-cc\r\n"
                   "a=rtcp-fb:%d ccm fir\r\na=rtcp-fb:%d nack\r\na=rtcp-fb:%d nack pli\r\n",
           pt, n, c, pt, pt, pt, pt, pt);
    if (bar) sb_fmt(&video, "a=fmtp:%d %s\r\n", pt, bar + 1);
    sb_fmt(&video, "a=rtpmap:%d rtx/90000\r\na=fmtp:%d apt=%d\r\n", pt + 1, pt + 1, pt);
    pt += 2;
  }
  sb_str(&s, "m=video 9 UDP/TLS/RTP/SAVPF");
  for (int k = 96; k < pt; k++) sb_fmt(&s, " %d", k);
  sb_str(&s, "\r\n");
  sb_str(&s, ice);
  sb_fmt(&s, "a=setup:%s\r\na=mid:1\r\n", answer ? "active" : "actpass");
  sb_str(&s,
         "a=extmap:14 urn:ietf:params:rtp-hdrext:toffset\r\n"
         "a=extmap:2 http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time\r\n"
         "a=extmap:13 urn:3gpp:video-orientation\r\n"
         "a=extmap:3 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01\r\n"
         "a=extmap:5 http://www.webrtc.org/experiments/rtp-hdrext/playout-delay\r\n"
         "a=extmap:6 http://www.webrtc.org/experiments/rtp-hdrext/video-content-type\r\n"
         "a=extmap:7 http://www.webrtc.org/experiments/rtp-hdrext/video-timing\r\n"
         "a=extmap:8 http://www.webrtc.org/experiments/rtp-hdrext/color-space\r\n"
         "a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid\r\n"
         "a=sendrecv\r\na=msid:bench video0\r\na=rtcp-mux\r\na=rtcp-rsize\r\n");
  if (video.p) sb_add(&s, video.p, video.len);
  sb_add(&s, tail.p, tail.len);
  /* Escape CRLF for JSON. */
  for (size_t k = 0; k < s.len; k++) {
    if (s.p[k] == '\r') sb_str(b, "\\r");
    else if (s.p[k] == '\n') sb_str(b, "\\n");
    else sb_add(b, s.p + k, 1);
  }
  free(s.p);
  free(tail.p);
  free(video.p);
}

static const char candidate[] =
  "candidate:842163049 1 udp 1677729535 203.0.113.7 46154 typ srflx raddr 10.0.0.5 "
  "rport 46154 generation 0 ufrag EsAw network-id 1 network-cost 10";

char *msg_relay(enum lg_proto p, int kind, const char *to, size_t sdp_bytes, uint32_t salt) {
  static const char *huddle_types[] = {"offer", "answer", "ice-candidate"};
  static const char *peerjs_types[] = {"OFFER", "ANSWER", "CANDIDATE"};
  struct sbuf b = {0};
  if (p == PROTO_PEERJS) {
    sb_fmt(&b, "{\"type\":\"%s\",\"dst\":\"%s\",\"payload\":{", peerjs_types[kind], to);
    if (kind < 2) {
      sb_fmt(&b, "\"sdp\":{\"type\":\"%s\",\"sdp\":\"", kind == 0 ? "offer" : "answer");
      sdp_build(&b, sdp_bytes, kind == 1, salt);
      sb_str(&b, "\"},");
    } else {
      sb_fmt(&b, "\"candidate\":{\"candidate\":\"%s\",\"sdpMid\":\"0\",\"sdpMLineIndex\":0,"
                 "\"usernameFragment\":\"EsAw" MARK_PLACEHOLDER "\"},", candidate);
    }
    sb_fmt(&b, "\"type\":\"media\",\"connectionId\":\"mc_bench%u\",\"browser\":\"chrome\"}}", salt);
    return b.p;
  }
  sb_fmt(&b, "{\"type\":\"%s\",\"to\":\"%s\",\"payload\":{", huddle_types[kind], to);
  if (kind < 2) {
    sb_fmt(&b, "\"type\":\"%s\",\"sdp\":\"", kind == 0 ? "offer" : "answer");
    sdp_build(&b, sdp_bytes, kind == 1, salt);
    sb_str(&b, "\"}}");
  } else {
    sb_fmt(&b, "\"candidate\":\"%s\",\"sdpMid\":\"0\",\"sdpMLineIndex\":0,"
               "\"usernameFragment\":\"EsAw" MARK_PLACEHOLDER "\"}}", candidate);
  }
  return b.p;
}

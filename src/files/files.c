/* Shared files (see files.h and docs/adr/0007-file-storage-and-streaming.md).
 *
 * Memory per upload is bounded: a PATCH body goes to `pending` as it
 * arrives; one thread-pool job at a time writes a batch to disk and hashes
 * it (`writing`); when `pending` reaches CHUNK_MAX while a write is in
 * flight, reading from the socket stops until the write completes. So an
 * upload holds at most about 2 * CHUNK_MAX plus one socket read. */
#define LOG_MODULE "files"
#include "log.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "api/api.h"
#include "auth/perm.h"
#include "files/clamd.h"
#include "files/files.h"
#include "guard/filecheck.h"
#include "guard/sanitize.h"
#include "net/http.h"
#include "net/server.h"
#include "room/hub.h"
#include "room/room.h"

#define CHUNK_MAX (128 * 1024)  /* reads stop when this much waits behind a write */
#define BATCH_CAP (CHUNK_MAX + 128 * 1024) /* room for one more socket read past it */
#define READ_CHUNK (256 * 1024) /* bytes of one download read */
#define SNIFF_BYTES 65536       /* bytes libmagic looks at */
#define FILES_BASE "/webrtc/rooms/"

enum file_state { FILE_UPLOADING, FILE_CHECKING, FILE_READY };

struct upload;

struct hfile {
  struct files *fs;                 /* borrowed */
  char id[33];                      /* the offer's transfer id */
  char room[ID_MAX + 1];
  char sender[ID_MAX + 1];
  char to[ID_MAX + 1];              /* "" for the whole room */
  char name[256];                   /* sanitized; only ever shown, never a path */
  char mime[128];                   /* declared base type, lowercase */
  char sha256[65];                  /* declared, "" if none */
  uint64_t size, offset;            /* declared length; bytes stored and hashed */
  uint64_t expires_ms;              /* unfinished uploads are deleted after */
  uint64_t progress_sent;           /* offset last reported */
  enum file_state state;
  int fd;                           /* owned until ready, else -1 */
  EVP_MD_CTX *sha;                  /* owned: hash of bytes [0, offset) */
  struct upload *up;                /* the PATCH being received, or NULL */
  int busy;                         /* thread-pool jobs in flight */
  int gone;                         /* deleted: freed once busy == 0 and up == NULL */
  int scanned;                      /* clamd saw it */
  /* the check job */
  uv_work_t work;
  char got_sha[65];
  char sniffed[128];
  int sniff_rc;
  enum clamd_result scan_rc;
  char scan_msg[128];
};

struct upload {
  struct hfile *f;                  /* borrowed: kept alive by f->up */
  struct conn *conn;                /* borrowed; NULL once the connection went away */
  uint64_t start;                   /* f->offset when the PATCH began */
  uint64_t max;                     /* bytes this PATCH may carry */
  uint64_t received;
  int has_sum;                      /* Upload-Checksum given */
  unsigned char want[32];
  EVP_MD_CTX *sum;                  /* owned: hash of this PATCH's bytes */
  EVP_MD_CTX *saved;                /* owned: f->sha at start, to roll back */
  char *pending;                    /* owned, pending_cap: received, not yet written */
  char *writing;                    /* owned, pending_cap: in the write job */
  size_t pending_len, writing_len, pending_cap;
  int writing_busy, paused, ended, aborted, failed, overflow;
  uint64_t write_off;
  uv_work_t work;
};

struct files {
  struct hub *hub;                  /* borrowed: rooms, history, cfg, loop */
  char dir[4096];
  struct map byid;                  /* id -> struct hfile * (owned) */
  uv_timer_t timer;
  int timer_open;
  int scan_state;                   /* -1 unknown, 0 unreachable, 1 answered */
  int pinging;
  uv_work_t ping;
};

/* ---- small helpers ---- */

static void file_path(const struct hfile *f, char *out, size_t len) {
  snprintf(out, len, "%s/%s", f->fs->dir, f->id);
}

static void hex32(const unsigned char *md, char out[65]) {
  static const char x[] = "0123456789abcdef";
  for (int i = 0; i < 32; i++) {
    out[2 * i] = x[md[i] >> 4];
    out[2 * i + 1] = x[md[i] & 15];
  }
  out[64] = '\0';
}

static int b64val(int c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+' || c == '-') return 62;
  if (c == '/' || c == '_') return 63;
  return -1;
}

/* Decodes standard or URL-safe base64 (padding optional). Returns the
 * length, or -1 if malformed or longer than out_len. */
static int b64_decode(const char *in, size_t len, unsigned char *out, size_t out_len) {
  while (len && in[len - 1] == '=') len--;
  size_t n = 0;
  uint32_t acc = 0;
  int bits = 0;
  for (size_t i = 0; i < len; i++) {
    int v = b64val((unsigned char)in[i]);
    if (v < 0) return -1;
    acc = (acc << 6) | (uint32_t)v;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      if (n >= out_len) return -1;
      out[n++] = (unsigned char)(acc >> bits);
    }
  }
  return (int)n;
}

/* Lowercase media type without parameters (what the offer validated). */
static void mime_plain(const char *in, char *out, size_t len) {
  size_t n = 0;
  while (*in == ' ' || *in == '\t') in++;
  for (; *in && *in != ';' && *in != ' ' && *in != '\t' && n + 1 < len; in++)
    out[n++] = (char)(*in >= 'A' && *in <= 'Z' ? *in + 32 : *in);
  out[n] = '\0';
}

static void http_date(uint64_t ms, char *out, size_t len) {
  time_t t = (time_t)(ms / 1000);
  struct tm tm;
  gmtime_r(&t, &tm);
  strftime(out, len, "%a, %d %b %Y %H:%M:%S GMT", &tm);
}

struct usage { const char *room, *user; uint64_t room_bytes, user_bytes; };

static void sum_usage(const char *k, void *v, void *arg) {
  const struct hfile *f = v;
  struct usage *u = arg;
  if (strcmp(f->room, u->room) == 0) u->room_bytes += f->size;
  if (strcmp(f->sender, u->user) == 0) u->user_bytes += f->size;
}

/* ---- messages to the room ---- */

/* Sends type from `from` to the file's audience: the room, or for a
 * private share its recipient and the sender. */
static void notify(struct files *fs, const struct hfile *f, const char *type, json_t *payload) {
  struct hub *h = fs->hub;
  struct room *r = hub_room_find(h, f->room);
  if (r && h->bus && payload) {
    const char *to = f->to[0] ? f->to : NULL;
    struct room_event e = {type, "server", to, NULL, to ? f->sender : NULL, 0, payload, NULL, NULL, 0};
    hub_send(h, r, &e);
  }
  json_decref(payload);
}

static void notify_progress(struct files *fs, struct hfile *f) {
  if (f->offset == f->progress_sent) return;
  f->progress_sent = f->offset;
  notify(fs, f, "file-share-progress",
         json_pack("{s:s,s:I,s:I,s:f}", "transfer_id", f->id, "bytes_transferred",
                   (json_int_t)f->offset, "size", (json_int_t)f->size, "percent",
                   f->size ? 100.0 * (double)f->offset / (double)f->size : 100.0));
}

static void notify_reject(struct files *fs, struct hfile *f, enum api_err e, const char *detail) {
  json_t *p = json_pack("{s:s,s:s,s:s}", "transfer_id", f->id, "reason", api_err_code(e), "message",
                        api_err_info(e)->message);
  if (p && detail && *detail) json_object_set_new(p, "detail", json_string(detail));
  notify(fs, f, "file-share-reject", p);
}

/* ---- registry ---- */

static void file_free(struct hfile *f) {
  if (f->fd >= 0) close(f->fd);
  EVP_MD_CTX_free(f->sha);
  free(f);
}

static void maybe_free(struct hfile *f) {
  if (f->gone && f->busy == 0 && f->up == NULL) file_free(f);
}

/* Deletes f's bytes and forgets it; the memory goes when no job uses it. */
static void file_delete(struct hfile *f) {
  if (f->gone) return;
  char path[4200];
  file_path(f, path, sizeof(path));
  unlink(path);
  map_del(&f->fs->byid, f->id);
  f->gone = 1;
  maybe_free(f);
}

static void reject_and_delete(struct hfile *f, enum api_err e, const char *detail) {
  char path[4200];
  file_path(f, path, sizeof(path));
  unlink(path); /* gone before anyone hears of the refusal */
  log_info("file_rejected id=%s room=%s user=%s code=%s detail=\"%s\"", f->id, f->room, f->sender,
           api_err_code(e), detail ? detail : "");
  notify_reject(f->fs, f, e, detail);
  file_delete(f);
}

struct collect { const char *room; uint64_t now; struct hfile **v; size_t n, cap; };

static void collect_one(const char *k, void *v, void *arg) {
  struct collect *c = arg;
  struct hfile *f = v;
  if (c->room && strcmp(f->room, c->room) != 0) return;
  if (!c->room && !(f->state == FILE_UPLOADING && f->up == NULL && f->busy == 0 &&
                    f->expires_ms <= c->now))
    return;
  if (c->n == c->cap) {
    size_t cap = c->cap ? c->cap * 2 : 16;
    struct hfile **nv = realloc(c->v, cap * sizeof(*nv));
    if (nv == NULL) return;
    c->v = nv;
    c->cap = cap;
  }
  c->v[c->n++] = f;
}

/* The room's history was evicted: its files go with it. */
static void on_history_evict(void *arg, const char *room_id) {
  struct files *fs = arg;
  struct collect c = {room_id, 0, NULL, 0, 0};
  map_each(&fs->byid, collect_one, &c);
  for (size_t i = 0; i < c.n; i++) {
    log_info("file_deleted id=%s room=%s reason=history_evicted", c.v[i]->id, room_id);
    file_delete(c.v[i]);
  }
  free(c.v);
}

static void ping_work(uv_work_t *w) {
  struct files *fs = w->data;
  fs->scan_state = clamd_ping(fs->hub->cfg->clamd_socket) == 0 ? 1 : 0;
}

static void ping_done(uv_work_t *w, int status) {
  struct files *fs = w->data;
  fs->pinging = 0;
}

static void ping_start(struct files *fs) {
  if (fs->hub->cfg->clamd_socket == NULL || fs->pinging) return;
  fs->ping.data = fs;
  if (uv_queue_work(fs->hub->loop, &fs->ping, ping_work, ping_done) == 0) fs->pinging = 1;
}

static void on_sweep(uv_timer_t *t) {
  struct files *fs = t->data;
  struct collect c = {NULL, hub_now_ms(), NULL, 0, 0};
  map_each(&fs->byid, collect_one, &c);
  for (size_t i = 0; i < c.n; i++) reject_and_delete(c.v[i], API_ERR_UPLOAD_EXPIRED, NULL);
  free(c.v);
  ping_start(fs);
}

int files_open(struct files **out, struct hub *h, char *err, size_t err_len) {
  struct files *fs = calloc(1, sizeof(*fs));
  if (fs == NULL) return snprintf(err, err_len, "out of memory"), -1;
  fs->hub = h;
  fs->scan_state = -1;
  snprintf(fs->dir, sizeof(fs->dir), "%s/files", h->cfg->data_dir);
  if (mkdir(fs->dir, 0700) != 0 && errno != EEXIST) {
    snprintf(err, err_len, "%s: %s", fs->dir, strerror(errno));
    free(fs);
    return -1;
  }
  /* The registry is in memory: what a previous run left is unreachable. */
  DIR *d = opendir(fs->dir);
  if (d) {
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
      if (e->d_name[0] == '.') continue;
      char p[4400];
      snprintf(p, sizeof(p), "%s/%s", fs->dir, e->d_name);
      unlink(p);
    }
    closedir(d);
  }
  uv_timer_init(h->loop, &fs->timer);
  fs->timer.data = fs;
  fs->timer_open = 1;
  uint64_t every = (uint64_t)h->cfg->upload_expire_s * 250; /* a quarter of the expiry */
  if (every < 1000) every = 1000;
  if (every > 60000) every = 60000;
  uv_timer_start(&fs->timer, on_sweep, every, every);
  uv_unref((uv_handle_t *)&fs->timer);
  h->history.on_evict = on_history_evict;
  h->history.evict_arg = fs;
  ping_start(fs);
  *out = fs;
  return 0;
}

void files_close(struct files *fs) {
  if (fs == NULL || !fs->timer_open) return;
  fs->timer_open = 0;
  uv_close((uv_handle_t *)&fs->timer, NULL);
}

static void free_one(const char *k, void *v, void *arg) { file_free(v); }

void files_free(struct files *fs) {
  if (fs == NULL) return;
  map_each(&fs->byid, free_one, NULL);
  map_free(&fs->byid);
  free(fs);
  filecheck_shared_cleanup(); /* no job runs any more: the loop has stopped */
}

json_t *files_health_json(struct files *fs) {
  const struct config *cfg = fs ? fs->hub->cfg : NULL;
  int configured = cfg && cfg->clamd_socket;
  const char *st = !configured ? "not_configured" : fs->scan_state == 0 ? "unavailable" : "ok";
  return json_pack("{s:s,s:b,s:b}", "status", st, "scanning", configured, "required",
                   cfg ? cfg->require_scan : 0);
}

/* ---- offers ---- */

static struct hfile *file_new(struct files *fs, const char *id, const char *room, const char *sender,
                              const char *to, const char *name, const char *mime, const char *sha,
                              uint64_t size, char *detail, size_t dl) {
  struct hfile *f = calloc(1, sizeof(*f));
  if (f == NULL) return NULL;
  f->fs = fs;
  f->fd = -1;
  snprintf(f->id, sizeof(f->id), "%s", id);
  snprintf(f->room, sizeof(f->room), "%s", room);
  snprintf(f->sender, sizeof(f->sender), "%s", sender);
  snprintf(f->to, sizeof(f->to), "%s", to ? to : "");
  snprintf(f->name, sizeof(f->name), "%s", name);
  mime_plain(mime, f->mime, sizeof(f->mime));
  snprintf(f->sha256, sizeof(f->sha256), "%s", sha ? sha : "");
  f->size = size;
  f->expires_ms = hub_now_ms() + (uint64_t)fs->hub->cfg->upload_expire_s * 1000;
  f->sha = EVP_MD_CTX_new();
  char path[4200];
  file_path(f, path, sizeof(path));
  /* The name on disk is the server's random id, never the client's. */
  f->fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (f->sha == NULL || EVP_DigestInit_ex(f->sha, EVP_sha256(), NULL) != 1 || f->fd < 0 ||
      map_put(&fs->byid, f->id, f) != 0) {
    snprintf(detail, dl, "cannot create the upload");
    if (f->fd >= 0) unlink(path);
    file_free(f);
    return NULL;
  }
  /* Open only while a PATCH or the checks use it: an offer holds no fd. */
  close(f->fd);
  f->fd = -1;
  return f;
}

enum api_err files_offer_publish(struct hub *h, struct room *r, const struct transfer *t,
                                 const char *ref, char *detail, size_t dl) {
  struct files *fs = h->files;
  const struct config *cfg = h->cfg;
  if (fs == NULL) return API_ERR_INTERNAL_ERROR;
  if (cfg->require_scan && (cfg->clamd_socket == NULL || fs->scan_state == 0)) {
    snprintf(detail, dl, "files must be virus-scanned and no scanner is reachable");
    return API_ERR_SCAN_UNAVAILABLE;
  }
  struct usage u = {r->id, t->sender, 0, 0};
  map_each(&fs->byid, sum_usage, &u);
  uint64_t room_q = (uint64_t)cfg->file_room_quota_mb << 20, user_q = (uint64_t)cfg->file_user_quota_mb << 20;
  if (u.room_bytes + t->size > room_q) {
    snprintf(detail, dl, "the room holds %" PRIu64 " of %d MiB", u.room_bytes >> 20, cfg->file_room_quota_mb);
    return API_ERR_FILE_QUOTA_EXCEEDED;
  }
  if (u.user_bytes + t->size > user_q) {
    snprintf(detail, dl, "you hold %" PRIu64 " of %d MiB", u.user_bytes >> 20, cfg->file_user_quota_mb);
    return API_ERR_FILE_QUOTA_EXCEEDED;
  }
  struct hfile *f = file_new(fs, t->id, r->id, t->sender, t->to, t->name, t->mime, t->sha256, t->size,
                             detail, dl);
  if (f == NULL) return API_ERR_INTERNAL_ERROR;
  json_t *p = json_pack("{s:s,s:s,s:I,s:s}", "transfer_id", t->id, "name", t->name, "size",
                        (json_int_t)t->size, "mime_type", t->mime);
  if (p == NULL) {
    file_delete(f);
    return API_ERR_INTERNAL_ERROR;
  }
  json_object_set_new(p, "sha256", t->sha256[0] ? json_string(t->sha256) : json_null());
  const char *to = t->to[0] ? t->to : NULL;
  /* Everyone else: the offer (one room message, in the room log). */
  struct room_event others = {"file-share-offer", t->sender, to, to ? NULL : t->sender, NULL, 0, p, NULL,
                              NULL, 0};
  int rc = hub_send(h, r, &others);
  /* The sender: the same, with where to upload and whether it is scanned
   * (a room message for the sender only, so a resumed session gets it too). */
  char url[256];
  snprintf(url, sizeof(url), FILES_BASE "%s/files/%s", r->id, t->id);
  json_object_set_new(p, "upload_url", json_string(url));
  json_object_set_new(p, "upload_expires", json_integer((json_int_t)f->expires_ms));
  json_object_set_new(p, "scanned", json_boolean(cfg->clamd_socket != NULL));
  struct room_event own = {"file-share-offer", t->sender, to, NULL, NULL, 0, p, ref, NULL, 0};
  if (rc == 0) rc = hub_send_only(h, r, &own, t->sender);
  json_decref(p);
  if (rc != 0) {
    file_delete(f);
    return API_ERR_INTERNAL_ERROR;
  }
  log_info("file_offered id=%s room=%s user=%s size=%" PRIu64 " private=%d", f->id, f->room, f->sender,
           f->size, f->to[0] != 0);
  return API_OK;
}

void files_declined(struct hub *h, const char *transfer_id) {
  struct hfile *f = h->files ? map_get(&h->files->byid, transfer_id) : NULL;
  if (f == NULL || f->to[0] == '\0') return;
  log_info("file_deleted id=%s room=%s reason=declined", f->id, f->room);
  file_delete(f);
}

/* ---- request context ---- */

/* Resolves {room_id} and {file_id} for the caller. Uploads are visible to
 * their sender; ready files to the members of the room it was shared with
 * who hold can_share_files (a private share: its recipient and sender). Replies and returns NULL
 * otherwise; FILE_NOT_FOUND also for what the caller may not see. */
static struct hfile *file_for(struct api_req *r, struct api_room *ar, int sender_only) {
  if (api_room_access(r, CMD_NONE, ar) != 0) return NULL;
  char id[40];
  struct files *fs = r->hub->files;
  struct hfile *f = NULL;
  if (fs && api_param(r, "file_id", id, sizeof(id)) > 0) f = map_get(&fs->byid, id);
  const char *me = r->claims.sub;
  int mine = f && strcmp(f->sender, me) == 0;
  if (f && strcmp(f->room, ar->id) != 0) f = NULL;
  if (f && sender_only && !mine) f = NULL;
  if (f && !mine && !r->claims.admin) {
    if (ar->self == NULL) {
      api_reply_error(r, API_ERR_PERMISSION_DENIED, "only members of the room get its files");
      return NULL;
    }
    if (!(ar->perms & PERM_SHARE_FILES)) { /* the room's file permission, live */
      api_reply_error(r, API_ERR_PERMISSION_DENIED, "can_share_files is needed to get files");
      return NULL;
    }
    if (f->state != FILE_READY || (f->to[0] && strcmp(f->to, me) != 0)) f = NULL;
  }
  if (f == NULL) api_reply_error(r, API_ERR_FILE_NOT_FOUND, NULL);
  return f;
}

static void tus_reply(struct api_req *r, int status, struct hfile *f, const char *more) {
  char h[512], exp[64] = "";
  if (f && f->state == FILE_UPLOADING) {
    char d[40];
    http_date(f->expires_ms, d, sizeof(d));
    snprintf(exp, sizeof(exp), "Upload-Expires: %s\r\n", d);
  }
  snprintf(h, sizeof(h), "Tus-Resumable: 1.0.0\r\n%s%s", exp, more ? more : "");
  if (f) {
    size_t n = strlen(h);
    snprintf(h + n, sizeof(h) - n, "Upload-Offset: %" PRIu64 "\r\nUpload-Length: %" PRIu64 "\r\n",
             f->offset, f->size);
  }
  http_reply(r->conn, status, h, "application/octet-stream", "", 0);
}

/* ---- OPTIONS, POST (creation), HEAD, DELETE ---- */

void files_api_options(struct api_req *r) {
  char h[400];
  snprintf(h, sizeof(h),
           "Tus-Resumable: 1.0.0\r\nTus-Version: 1.0.0\r\n"
           "Tus-Extension: creation,termination,checksum,expiration\r\n"
           "Tus-Checksum-Algorithm: sha256\r\nTus-Max-Size: %" PRIu64 "\r\n",
           (uint64_t)r->srv->cfg->file_max_mb << 20);
  http_reply(r->conn, 204, h, "application/octet-stream", "", 0);
}

/* Upload-Metadata: "key base64,key base64". Copies key's decoded value. */
static int metadata_get(const struct buf *md, const char *key, char *out, size_t out_len) {
  const char *p = md->data ? md->data : "";
  size_t kl = strlen(key);
  while (*p) {
    while (*p == ' ' || *p == ',') p++;
    const char *end = strchr(p, ',');
    if (end == NULL) end = p + strlen(p);
    const char *sp = memchr(p, ' ', (size_t)(end - p));
    size_t klen = sp ? (size_t)(sp - p) : (size_t)(end - p);
    if (klen == kl && strncmp(p, key, kl) == 0) {
      if (sp == NULL) return out[0] = '\0', 0;
      int n = b64_decode(sp + 1, (size_t)(end - sp - 1), (unsigned char *)out, out_len - 1);
      if (n < 0 || memchr(out, '\0', (size_t)n)) return -1;
      out[n] = '\0';
      return n;
    }
    p = end;
  }
  return -1;
}

void files_api_create(struct api_req *r) {
  struct api_room ar;
  struct hub *h = r->hub;
  if (api_room_access(r, CMD_FILE_SHARE, &ar) != 0) return;
  if (ar.room == NULL || ar.self == NULL) {
    api_reply_error(r, API_ERR_PERMISSION_DENIED, "join the room before sharing a file");
    return;
  }
  const struct buf *ul = &r->conn->req->hdr[HDR_UPLOAD_LENGTH];
  char *end = NULL;
  unsigned long long size = ul->len ? strtoull(ul->data, &end, 10) : 0;
  if (ul->len == 0 || end == ul->data || *end != '\0' || size == 0) {
    api_reply_error(r, API_ERR_BAD_REQUEST, "Upload-Length (a positive integer) is required");
    return;
  }
  const struct buf *md = &r->conn->req->hdr[HDR_UPLOAD_METADATA];
  char name[512], mime[160], sha[80], to[80], clean[256];
  if (metadata_get(md, "filename", name, sizeof(name)) < 0 &&
      metadata_get(md, "name", name, sizeof(name)) < 0) {
    api_reply_error(r, API_ERR_INVALID_FILE_NAME, "Upload-Metadata needs filename");
    return;
  }
  if (metadata_get(md, "filetype", mime, sizeof(mime)) < 0 &&
      metadata_get(md, "mime_type", mime, sizeof(mime)) < 0)
    snprintf(mime, sizeof(mime), "application/octet-stream");
  if (metadata_get(md, "sha256", sha, sizeof(sha)) < 0) sha[0] = '\0';
  if (metadata_get(md, "to", to, sizeof(to)) < 0) to[0] = '\0';
  if (sanitize_filename(name, strlen(name), clean, sizeof(clean)) != API_OK) {
    api_reply_error(r, API_ERR_INVALID_FILE_NAME, NULL);
    return;
  }
  if (sha[0]) {
    if (strlen(sha) != 64 || strspn(sha, "0123456789abcdefABCDEF") != 64) {
      api_reply_error(r, API_ERR_INVALID_MESSAGE, "metadata sha256 must be 64 hexadecimal characters");
      return;
    }
    for (char *c = sha; *c; c++) *c = (char)(*c >= 'A' && *c <= 'F' ? *c + 32 : *c);
  }
  if (to[0] && (room_participant_find(ar.room, to) == NULL || strcmp(to, r->claims.sub) == 0)) {
    api_reply_error(r, API_ERR_TARGET_NOT_FOUND, NULL);
    return;
  }
  uint64_t max = (uint64_t)h->cfg->file_max_mb << 20;
  enum api_err e = filecheck_offer(clean, mime, (uint64_t)size, max);
  if (e != API_OK) {
    api_reply_error(r, e, e == API_ERR_INVALID_MESSAGE ? "filetype must be a MIME type" : NULL);
    return;
  }
  if (api_command_budget(r, CMD_FILE_SHARE, &ar) != 0) { /* replied 429 */
    h->stats.errors_by_code[API_ERR_RATE_LIMIT_EXCEEDED]++;
    return;
  }
  struct transfer *t = room_transfer_new(ar.room, r->claims.sub, to[0] ? to : NULL, hub_now_ms());
  if (t == NULL) {
    api_reply_error(r, API_ERR_RATE_LIMIT_EXCEEDED, "too many open transfers in this room");
    return;
  }
  snprintf(t->name, sizeof(t->name), "%s", clean);
  mime_plain(mime, t->mime, sizeof(t->mime));
  memcpy(t->sha256, sha, strlen(sha) + 1); /* "" or 64 hex digits, checked above */
  t->size = (uint64_t)size;
  char detail[200] = "";
  e = files_offer_publish(h, ar.room, t, NULL, detail, sizeof(detail));
  if (e != API_OK) {
    room_transfer_remove(ar.room, t);
    api_reply_error(r, e, detail);
    return;
  }
  struct hfile *f = map_get(&h->files->byid, t->id);
  char loc[300];
  snprintf(loc, sizeof(loc), "Location: " FILES_BASE "%s/files/%s\r\n", ar.id, t->id);
  tus_reply(r, 201, f, loc);
}

void files_api_head(struct api_req *r) {
  struct api_room ar;
  struct hfile *f = file_for(r, &ar, 0);
  if (f) tus_reply(r, 200, f, NULL);
}

void files_api_delete(struct api_req *r) {
  struct api_room ar;
  struct hfile *f = file_for(r, &ar, 1);
  if (f == NULL) return;
  if (f->up || f->busy) {
    api_reply_error(r, API_ERR_TRANSFER_STATE, "the upload is being written or checked");
    return;
  }
  log_info("file_deleted id=%s room=%s reason=terminated", f->id, f->room);
  notify_reject(f->fs, f, API_ERR_TRANSFER_NOT_FOUND, "deleted by its sender");
  file_delete(f);
  http_reply(r->conn, 204, "Tus-Resumable: 1.0.0\r\n", "application/octet-stream", "", 0);
}

/* ---- PATCH: the body streamed to disk ---- */

static void upload_free(struct upload *up) {
  free(up->pending);
  free(up->writing);
  EVP_MD_CTX_free(up->sum);
  EVP_MD_CTX_free(up->saved);
  free(up);
}

static void write_work(uv_work_t *w) {
  struct upload *up = w->data;
  struct hfile *f = up->f;
  size_t done = 0;
  while (done < up->writing_len) {
    ssize_t n = pwrite(f->fd, up->writing + done, up->writing_len - done,
                       (off_t)(up->write_off + done));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      up->failed = 1;
      return;
    }
    done += (size_t)n;
  }
  EVP_DigestUpdate(f->sha, up->writing, up->writing_len);
  if (up->has_sum) EVP_DigestUpdate(up->sum, up->writing, up->writing_len);
}

static void write_done(uv_work_t *w, int status);

/* Hands what is pending to a write job unless one is running. */
static void kick(struct upload *up) {
  if (up->writing_busy || up->pending_len == 0 || up->failed) return;
  char *t = up->writing;
  up->writing = up->pending;
  up->writing_len = up->pending_len;
  up->pending = t;
  up->pending_len = 0;
  up->write_off = up->f->offset;
  up->work.data = up;
  if (uv_queue_work(up->f->fs->hub->loop, &up->work, write_work, write_done) != 0) {
    up->failed = 1;
    return;
  }
  up->writing_busy = 1;
  up->f->busy++;
}

static void start_check(struct hfile *f);

/* Puts the file back as it was before this PATCH (a bad checksum, a cut
 * PATCH that carried one, a disk error). */
static void rollback(struct upload *up) {
  struct hfile *f = up->f;
  if (ftruncate(f->fd, (off_t)up->start) != 0) log_warn("ftruncate_failed id=%s", f->id);
  f->offset = up->start;
  EVP_MD_CTX_copy_ex(f->sha, up->saved);
}

static void finish(struct upload *up) {
  struct hfile *f = up->f;
  struct files *fs = f->fs;
  struct conn *c = up->conn;
  enum api_err e = API_OK;
  if (f->gone) e = API_ERR_FILE_NOT_FOUND;
  else if (up->failed) e = API_ERR_INTERNAL_ERROR;
  else if (up->overflow) e = API_ERR_PAYLOAD_TOO_LARGE;
  else if (up->aborted && up->has_sum) e = API_ERR_CHECKSUM_MISMATCH; /* cut: not verifiable */
  else if (up->has_sum) {
    unsigned char md[32];
    unsigned int mdl = 0;
    EVP_DigestFinal_ex(up->sum, md, &mdl);
    if (mdl != 32 || memcmp(md, up->want, 32) != 0) e = API_ERR_CHECKSUM_MISMATCH;
  }
  if (e != API_OK && !f->gone) rollback(up);
  f->up = NULL;
  log_debug("upload_patch id=%s from=%" PRIu64 " to=%" PRIu64 " code=%s aborted=%d", f->id, up->start,
            f->offset, api_err_code(e), up->aborted);
  if (c) {
    if (e == API_OK) {
      char h[256], d[40];
      http_date(f->expires_ms, d, sizeof(d));
      snprintf(h, sizeof(h), "Tus-Resumable: 1.0.0\r\nUpload-Offset: %" PRIu64 "\r\n%s%s%s", f->offset,
               f->offset < f->size ? "Upload-Expires: " : "", f->offset < f->size ? d : "",
               f->offset < f->size ? "\r\n" : "");
      http_reply(c, 204, h, "application/octet-stream", "", 0);
    } else {
      http_reply_error(c, e, e == API_ERR_CHECKSUM_MISMATCH ? "Upload-Checksum" : NULL, 0);
    }
  }
  upload_free(up);
  if (f->gone) {
    maybe_free(f);
  } else {
    notify_progress(fs, f);
    if (f->offset == f->size && f->state == FILE_UPLOADING) start_check(f);
    if (f->state == FILE_UPLOADING && f->fd >= 0) {
      close(f->fd); /* until the next PATCH */
      f->fd = -1;
    }
  }
  if (c) http_request_done(c); /* last: it may run the next request on c */
}

static void maybe_finish(struct upload *up) {
  if (up->writing_busy) return;
  if (up->pending_len && !up->failed && !(up->aborted && up->has_sum)) return;
  if (up->ended || up->aborted) finish(up);
}

static void write_done(uv_work_t *w, int status) {
  struct upload *up = w->data;
  struct hfile *f = up->f;
  up->writing_busy = 0;
  f->busy--;
  if (!up->failed && status == 0) f->offset += up->writing_len;
  else up->failed = 1;
  up->writing_len = 0;
  /* Progress about every tenth of the file, never more often than 1 MiB. */
  uint64_t step = f->size / 10 > (1u << 20) ? f->size / 10 : (1u << 20);
  if (!up->failed && f->offset - f->progress_sent >= step && f->offset < f->size) notify_progress(f->fs, f);
  if (!(up->aborted && up->has_sum)) kick(up);
  if (up->paused && up->pending_len < CHUNK_MAX) {
    up->paused = 0;
    if (up->conn) http_stream_resume(up->conn);
  }
  maybe_finish(up);
}

static int on_patch_chunk(void *data, const char *at, size_t len) {
  struct upload *up = data;
  if (up->overflow || up->failed) return 0;
  if (up->received + len > up->max) {
    up->overflow = 1; /* more than Upload-Length allows (chunked): refused at the end */
    return 0;
  }
  if (up->pending_len + len > up->pending_cap) {
    /* Only if a socket read was larger than expected: grow both. */
    size_t cap = up->pending_len + len;
    char *p = realloc(up->pending, cap), *w = p ? realloc(up->writing, cap) : NULL;
    if (p) up->pending = p;
    if (w) up->writing = w;
    if (p == NULL || w == NULL) {
      up->failed = 1;
      return 0;
    }
    up->pending_cap = cap;
  }
  memcpy(up->pending + up->pending_len, at, len);
  up->pending_len += len;
  up->received += len;
  kick(up);
  if (up->writing_busy && up->pending_len >= CHUNK_MAX) {
    up->paused = 1; /* backpressure: no more reads until the disk caught up */
    return 1;
  }
  return 0;
}

static void on_patch_end(void *data) {
  struct upload *up = data;
  up->ended = 1;
  kick(up);
  maybe_finish(up);
}

static void on_patch_abort(void *data) {
  struct upload *up = data;
  up->conn = NULL;
  up->aborted = 1;
  if (up->has_sum) up->pending_len = 0; /* rolled back anyway */
  else kick(up);                            /* keep what arrived: resumable */
  maybe_finish(up);
}

static const struct http_stream patch_stream = {on_patch_chunk, on_patch_end, on_patch_abort, NULL};

void files_api_patch(struct api_req *r) {
  struct api_room ar;
  struct conn *c = r->conn;
  struct hfile *f = file_for(r, &ar, 1);
  if (f == NULL) return;
  const struct buf *ct = &c->req->hdr[HDR_CONTENT_TYPE];
  if (ct->len < 31 || strncasecmp(ct->data, "application/offset+octet-stream", 31) != 0) {
    api_reply_error(r, API_ERR_UNSUPPORTED_MEDIA_TYPE, "tus PATCH bodies are application/offset+octet-stream");
    return;
  }
  const struct buf *uo = &c->req->hdr[HDR_UPLOAD_OFFSET];
  char *end = NULL;
  unsigned long long off = uo->len ? strtoull(uo->data, &end, 10) : 0;
  if (uo->len == 0 || end == uo->data || *end != '\0') {
    api_reply_error(r, API_ERR_BAD_REQUEST, "Upload-Offset is required");
    return;
  }
  if (f->up || f->busy) {
    api_reply_error(r, API_ERR_TRANSFER_STATE, "another PATCH of this upload is still being written");
    return;
  }
  if (f->state != FILE_UPLOADING || off != f->offset) {
    if (f->state != FILE_UPLOADING && off == f->offset && c->req->complete && c->req->body.len == 0) {
      tus_reply(r, 204, f, NULL);
      return;
    }
    char d[80];
    snprintf(d, sizeof(d), "the server has %" PRIu64 " bytes", f->offset);
    api_reply_error(r, API_ERR_UPLOAD_OFFSET_MISMATCH, d);
    return;
  }
  uint64_t room = f->size - f->offset;
  if ((c->req->parser.flags & F_CONTENTLENGTH) && c->req->parser.content_length > room) {
    api_reply_error(r, API_ERR_PAYLOAD_TOO_LARGE, "past Upload-Length");
    return;
  }
  if (c->req->complete) {
    tus_reply(r, 204, f, NULL); /* no body (a body is always streamed from the head) */
    return;
  }
  if (f->fd < 0) {
    char path[4200];
    file_path(f, path, sizeof(path));
    f->fd = open(path, O_RDWR | O_CLOEXEC);
    if (f->fd < 0) {
      api_reply_error(r, API_ERR_INTERNAL_ERROR, "the upload's file is gone");
      return;
    }
  }
  struct upload *up = calloc(1, sizeof(*up));
  if (up == NULL) {
    api_reply_error(r, API_ERR_INTERNAL_ERROR, NULL);
    return;
  }
  const struct buf *cs = &c->req->hdr[HDR_UPLOAD_CHECKSUM];
  if (cs->len) {
    if (cs->len < 8 || strncasecmp(cs->data, "sha256 ", 7) != 0 ||
        b64_decode(cs->data + 7, cs->len - 7, up->want, sizeof(up->want)) != 32) {
      upload_free(up);
      api_reply_error(r, API_ERR_BAD_REQUEST, "Upload-Checksum must be 'sha256 <base64 digest>'");
      return;
    }
    up->has_sum = 1;
  }
  up->f = f;
  up->conn = c;
  up->start = f->offset;
  up->max = room;
  up->sum = EVP_MD_CTX_new();
  up->saved = EVP_MD_CTX_new();
  up->pending_cap = BATCH_CAP;
  up->pending = malloc(BATCH_CAP);
  up->writing = malloc(BATCH_CAP);
  if (up->sum == NULL || up->saved == NULL || up->pending == NULL || up->writing == NULL || EVP_DigestInit_ex(up->sum, EVP_sha256(), NULL) != 1 ||
      EVP_MD_CTX_copy_ex(up->saved, f->sha) != 1) {
    upload_free(up);
    api_reply_error(r, API_ERR_INTERNAL_ERROR, NULL);
    return;
  }
  f->up = up;
  http_stream_set(c, &patch_stream, up);
}

/* ---- checks once the last byte is stored ---- */

/* One libmagic database (8 MB) for all pool threads, used under a lock. */
static uv_mutex_t sniff_lock;
static uv_once_t sniff_once = UV_ONCE_INIT;
static void sniff_lock_init(void) { uv_mutex_init(&sniff_lock); }

/* In the thread pool: the hash, then (if it matches) the type, then the scan. */
static void check_work(uv_work_t *w) {
  struct hfile *f = w->data;
  unsigned char md[32];
  unsigned int mdl = 0;
  EVP_DigestFinal_ex(f->sha, md, &mdl);
  hex32(md, f->got_sha);
  f->scan_rc = CLAMD_CLEAN;
  f->sniff_rc = -1;
  if (f->sha256[0] && strcmp(f->got_sha, f->sha256) != 0) return; /* refused anyway */
  unsigned char *head = malloc(SNIFF_BYTES);
  ssize_t n = head ? pread(f->fd, head, SNIFF_BYTES, 0) : -1;
  if (n > 0) {
    uv_once(&sniff_once, sniff_lock_init);
    uv_mutex_lock(&sniff_lock);
    f->sniff_rc = filecheck_sniff_shared(head, (size_t)n, f->sniffed, sizeof(f->sniffed));
    uv_mutex_unlock(&sniff_lock);
  }
  free(head);
  if (f->sniff_rc != 0 || filecheck_match(f->mime, f->sniffed) != API_OK) return;
  const char *sock = f->fs->hub->cfg->clamd_socket;
  if (sock) f->scan_rc = clamd_scan_fd(sock, f->fd, f->scan_msg, sizeof(f->scan_msg));
}

static void check_done(uv_work_t *w, int status) {
  struct hfile *f = w->data;
  struct files *fs = f->fs;
  f->busy--;
  if (f->gone) {
    maybe_free(f);
    return;
  }
  const char *sock = fs->hub->cfg->clamd_socket;
  char detail[320] = "";
  enum api_err e = API_OK;
  if (status != 0) {
    e = API_ERR_INTERNAL_ERROR;
  } else if (f->sha256[0] && strcmp(f->got_sha, f->sha256) != 0) {
    e = API_ERR_CHECKSUM_MISMATCH;
    snprintf(detail, sizeof(detail), "the stored bytes hash to %s", f->got_sha);
  } else if (f->sniff_rc != 0 || filecheck_match(f->mime, f->sniffed) != API_OK) {
    e = API_ERR_FILE_TYPE_NOT_ALLOWED;
    snprintf(detail, sizeof(detail), "declared %s, content is %s", f->mime,
             f->sniff_rc == 0 ? f->sniffed : "unknown");
  } else if (sock && f->scan_rc == CLAMD_INFECTED) {
    e = API_ERR_FILE_INFECTED;
    snprintf(detail, sizeof(detail), "%s", f->scan_msg);
  } else if (sock && f->scan_rc == CLAMD_ERROR) {
    fs->scan_state = 0;
    if (fs->hub->cfg->require_scan) {
      e = API_ERR_SCAN_UNAVAILABLE;
      snprintf(detail, sizeof(detail), "%s", f->scan_msg);
    } else {
      log_warn("scan_failed id=%s reason=\"%s\" (delivered unscanned)", f->id, f->scan_msg);
    }
  }
  if (sock && f->scan_rc != CLAMD_ERROR) fs->scan_state = 1;
  if (e != API_OK) {
    reject_and_delete(f, e, detail);
    return;
  }
  f->scanned = sock && f->scan_rc == CLAMD_CLEAN;
  f->state = FILE_READY;
  close(f->fd);
  f->fd = -1;
  char url[256];
  snprintf(url, sizeof(url), FILES_BASE "%s/files/%s", f->room, f->id);
  log_info("file_ready id=%s room=%s size=%" PRIu64 " type=%s scanned=%d", f->id, f->room, f->size,
           f->sniffed, f->scanned);
  notify(fs, f, "file-share-complete",
         json_pack("{s:s,s:s,s:s,s:s,s:I,s:s,s:s,s:b}", "transfer_id", f->id, "file_id", f->id,
                   "download_url", url, "name", f->name, "size", (json_int_t)f->size, "mime_type",
                   f->mime, "sha256", f->got_sha, "scanned", f->scanned));
}

static void start_check(struct hfile *f) {
  f->state = FILE_CHECKING;
  f->work.data = f;
  if (uv_queue_work(f->fs->hub->loop, &f->work, check_work, check_done) != 0) {
    reject_and_delete(f, API_ERR_INTERNAL_ERROR, "cannot queue the checks");
    return;
  }
  f->busy++;
}

/* ---- GET: downloads streamed from disk ---- */

struct download {
  struct conn *conn;                /* borrowed; NULL once the connection went away */
  int fd;                           /* owned */
  uint64_t pos, end;                /* next byte to send; one past the last */
  int keep;                         /* keep the connection alive afterwards */
  int busy;                         /* a read is in flight */
  uv_fs_t fsreq;
  struct outbuf *ob;                /* owned: what the read in flight fills */
};

static void download_free(struct download *d) {
  if (d->fd >= 0) close(d->fd);
  outbuf_unref(d->ob);
  free(d);
}

static void download_read(struct download *d);

/* The socket took the last chunk: the next one, or the end. */
static void download_sent(struct download *d) {
  if (d->pos >= d->end) {
    struct conn *c = d->conn;
    int keep = d->keep;
    download_free(d);
    if (!keep) conn_end(c);
    http_request_done(c); /* detaches the stream; may run the next request */
    return;
  }
  http_stream_resume(d->conn); /* the client reads: restart the inactivity timer */
  download_read(d);
}

static void on_download_drained(void *data) { download_sent(data); }

static void on_download_read(uv_fs_t *req) {
  struct download *d = req->data;
  ssize_t n = req->result;
  uv_fs_req_cleanup(req);
  d->busy = 0;
  if (d->conn == NULL) {
    download_free(d);
    return;
  }
  if (n <= 0 || d->conn->closing) {
    conn_close(d->conn); /* the length was promised: cut rather than lie */
    return;
  }
  struct outbuf *b = d->ob;
  d->ob = NULL;
  b->len = (size_t)n;
  d->pos += (uint64_t)n;
  /* Behind the head queued by conn_write_copy; 0: on_download_drained
   * follows once the socket took it; -1: on_download_abort follows. */
  if (conn_write_stream(d->conn, b) == 1) download_sent(d);
}

static void download_read(struct download *d) {
  uint64_t left = d->end - d->pos;
  size_t want = left < READ_CHUNK ? (size_t)left : READ_CHUNK;
  if (d->ob == NULL) d->ob = outbuf_new(want);
  if (d->ob == NULL) {
    conn_close(d->conn);
    return;
  }
  uv_buf_t b = uv_buf_init((char *)d->ob->data, (unsigned)want);
  d->fsreq.data = d;
  if (uv_fs_read(d->conn->srv->loop, &d->fsreq, d->fd, &b, 1, (int64_t)d->pos, on_download_read) != 0) {
    conn_close(d->conn);
    return;
  }
  d->busy = 1;
}

static void on_download_abort(void *data) {
  struct download *d = data;
  d->conn = NULL;
  if (!d->busy) download_free(d);
}

static const struct http_stream download_stream = {NULL, NULL, on_download_abort, on_download_drained};

/* "bytes=a-b", "bytes=a-", "bytes=-n". Returns 1 with [*from, *to] set,
 * 0 to send the whole file (absent, several ranges, another unit), or -1
 * if unsatisfiable. */
static int parse_range(const struct buf *h, uint64_t size, uint64_t *from, uint64_t *to) {
  if (h->len == 0 || strncmp(h->data, "bytes=", 6) != 0 || strchr(h->data, ',')) return 0;
  const char *p = h->data + 6;
  char *e;
  if (*p == '-') {
    unsigned long long n = strtoull(p + 1, &e, 10);
    if (e == p + 1 || *e) return 0;
    if (n == 0 || size == 0) return -1;
    *from = n >= size ? 0 : size - n;
    *to = size - 1;
    return 1;
  }
  unsigned long long a = strtoull(p, &e, 10);
  if (e == p || *e != '-') return 0;
  const char *q = e + 1;
  unsigned long long b = size ? size - 1 : 0;
  if (*q) {
    b = strtoull(q, &e, 10);
    if (e == q || *e) return 0;
    if (b < a) return 0;
  }
  if (a >= size) return -1;
  if (b >= size) b = size - 1;
  *from = a;
  *to = b;
  return 1;
}

void files_api_download(struct api_req *r) {
  struct api_room ar;
  struct conn *c = r->conn;
  struct hfile *f = file_for(r, &ar, 0);
  if (f == NULL) return;
  if (f->state != FILE_READY) {
    api_reply_error(r, API_ERR_FILE_NOT_FOUND, "the upload is not finished and checked yet");
    return;
  }
  uint64_t from = 0, to = f->size - 1;
  int ranged = parse_range(&c->req->hdr[HDR_RANGE], f->size, &from, &to);
  if (ranged < 0) {
    char h[80];
    snprintf(h, sizeof(h), "Content-Range: bytes */%" PRIu64 "\r\n", f->size);
    const struct api_err_info *info = api_err_info(API_ERR_RANGE_NOT_SATISFIABLE);
    json_t *body = json_pack("{s:{s:s,s:s,s:s}}", "error", "code", info->code, "message", info->message,
                             "recovery", info->recovery);
    http_reply_json(c, 416, body, h);
    return;
  }
  char path[4200];
  file_path(f, path, sizeof(path));
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    api_reply_error(r, API_ERR_INTERNAL_ERROR, NULL);
    return;
  }
  /* Names for the header: an ASCII fallback and the UTF-8 name, encoded. */
  char ascii[256], enc[800];
  size_t ai = 0, ei = 0;
  for (const unsigned char *p = (const unsigned char *)f->name; *p && ai + 1 < sizeof(ascii); p++)
    ascii[ai++] = (*p >= 0x20 && *p < 0x7f && *p != '"' && *p != '\\' && *p != '%') ? (char)*p : '_';
  ascii[ai] = '\0';
  for (const unsigned char *p = (const unsigned char *)f->name; *p && ei + 4 < sizeof(enc); p++) {
    if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
        strchr("-._~", *p))
      enc[ei++] = (char)*p;
    else
      ei += (size_t)snprintf(enc + ei, sizeof(enc) - ei, "%%%02X", *p);
  }
  enc[ei] = '\0';
  uint64_t len = to - from + 1;
  int keep = !c->srv->shutting_down && http_should_keep_alive(&c->req->parser);
  char range[120] = "";
  if (ranged)
    snprintf(range, sizeof(range), "Content-Range: bytes %" PRIu64 "-%" PRIu64 "/%" PRIu64 "\r\n", from,
             to, f->size);
  char head[2048];
  int n = snprintf(head, sizeof(head),
                   "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %" PRIu64 "\r\n"
                   "Content-Disposition: attachment; filename=\"%s\"; filename*=UTF-8''%s\r\n"
                   "X-Content-Type-Options: nosniff\r\n"
                   "Content-Security-Policy: default-src 'none'; sandbox\r\n"
                   "Cache-Control: private, no-store\r\nAccept-Ranges: bytes\r\n%s"
                   "Connection: %s\r\n\r\n",
                   ranged ? 206 : 200, ranged ? "Partial Content" : "OK", f->mime, len, ascii, enc, range,
                   keep ? "keep-alive" : "close");
  if (n < 0 || (size_t)n >= sizeof(head)) {
    close(fd);
    api_reply_error(r, API_ERR_INTERNAL_ERROR, NULL);
    return;
  }
  c->srv->stats.http_requests++;
  c->srv->stats.http_by_status[2]++;
  conn_write_copy(c, head, (size_t)n);
  if (c->req->parser.method == HTTP_HEAD || c->closing) {
    close(fd);
    if (!keep) conn_end(c);
    return;
  }
  struct download *d = malloc(sizeof(*d));
  if (d == NULL) {
    close(fd);
    conn_close(c);
    return;
  }
  d->conn = c;
  d->fd = fd;
  d->pos = from;
  d->end = to + 1;
  d->keep = keep;
  d->busy = 0;
  d->ob = NULL;
  log_debug("file_download id=%s user=%s from=%" PRIu64 " len=%" PRIu64, f->id, r->claims.sub, from, len);
  http_stream_set(c, &download_stream, d);
  download_read(d);
}

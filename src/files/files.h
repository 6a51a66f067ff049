/* Shared files: storage under <data-dir>/files with server-made names,
 * tus 1.0 resumable uploads streamed to disk off the loop, checks once the
 * last byte is stored (sha256 against the offer, libmagic type against the
 * allow-list and the declared type, a clamd scan), downloads streamed from
 * disk, quotas, expiry of unfinished uploads, deletion with the room's
 * history. The registry is in memory: files do not outlive the process
 * (the directory is emptied at start) until the store holds them. */
#ifndef HUDDLE_FILES_FILES_H
#define HUDDLE_FILES_FILES_H

#include <jansson.h>
#include <stddef.h>

#include "guard/errors.h"

struct files;
struct hub;
struct room;
struct transfer;
struct api_req;

/* Creates <data-dir>/files (emptied), the expiry timer, and registers
 * with the hub's history registry for deletions. Sets *out (main.c keeps
 * it in h->files). Returns 0 or -1. */
int files_open(struct files **out, struct hub *h, char *err, size_t err_len);
/* Closes the timer (run the loop once more afterwards). NULL is fine. */
void files_close(struct files *fs);
/* Releases everything after the loop has stopped. NULL is fine. */
void files_free(struct files *fs);

/* Reserves storage for the offer t made in room r (quotas, scanning
 * policy), then sends the offer: to the room (or t->to) without, and to the
 * sender with ref, payload.upload_url and payload.scanned. On refusal sends
 * nothing and returns the reason (detail filled). */
enum api_err files_offer_publish(struct hub *h, struct room *r, const struct transfer *t,
                                 const char *ref, char *detail, size_t detail_len);

/* The only recipient of a private share declined it: its upload or file
 * is deleted. Unknown ids are ignored. */
void files_declined(struct hub *h, const char *transfer_id);

/* components.file_scan for GET /webrtc/health (new reference). */
json_t *files_health_json(struct files *fs);

/* Endpoints under /webrtc/rooms/{room_id}/files/ (tus 1.0 and downloads). */
void files_api_options(struct api_req *r);  /* OPTIONS  .../files/ */
void files_api_create(struct api_req *r);   /* POST     .../files/ (tus creation) */
void files_api_head(struct api_req *r);     /* HEAD     .../files/{file_id} */
void files_api_patch(struct api_req *r);    /* PATCH    .../files/{file_id} (at the head) */
void files_api_delete(struct api_req *r);   /* DELETE   .../files/{file_id} (termination) */
void files_api_download(struct api_req *r); /* GET      .../files/{file_id} */

#endif

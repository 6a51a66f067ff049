/* File sharing validation: the declared MIME type against an allow-list,
 * the name's extension against a list of dangerous types (executables,
 * scripts, HTML), size limits, and sniffing the real type of the first bytes
 * with libmagic once bytes arrive. */
#ifndef HUDDLE_GUARD_FILECHECK_H
#define HUDDLE_GUARD_FILECHECK_H

#include <stddef.h>
#include <stdint.h>

#include "guard/errors.h"

/* Checks an offer: sanitized name, declared MIME type and size.
 * Returns API_OK, API_ERR_FILE_TYPE_NOT_ALLOWED (dangerous extension, or a
 * type not on the allow-list, or a name/type mismatch such as "x.exe" as
 * image/png), API_ERR_FILE_TOO_LARGE (size > max_size) or
 * API_ERR_INVALID_MESSAGE (size 0, malformed type). */
enum api_err filecheck_offer(const char *name, const char *mime, uint64_t size, uint64_t max_size);

/* Sniffs bytes[0..len) with libmagic and writes the detected MIME type.
 * Returns 0, or -1 if libmagic is unavailable. Thread-safe only per
 * thread: each thread keeps its own magic handle. */
int filecheck_sniff(const void *bytes, size_t len, char *mime_out, size_t mime_len);

/* Like filecheck_sniff with one handle shared by all threads (loaded
 * once, about 8 MB): the caller holds one lock around every call, and
 * calls filecheck_shared_cleanup() at exit. */
int filecheck_sniff_shared(const void *bytes, size_t len, char *mime_out, size_t mime_len);
void filecheck_shared_cleanup(void);

/* Returns API_OK if the sniffed type is compatible with the declared one
 * (same type, or the declared type's family accepts it, e.g. text/plain for
 * text/csv), else API_ERR_FILE_TYPE_NOT_ALLOWED. */
enum api_err filecheck_match(const char *declared, const char *sniffed);

/* Releases this thread's libmagic handle. */
void filecheck_cleanup(void);

#endif

/* Identifier rules shared by every module: room and user ids are 1 to 64
 * characters of [A-Za-z0-9_.-], never normalized (protocol.md). */
#ifndef HUDDLE_LIB_IDS_H
#define HUDDLE_LIB_IDS_H

#include <stddef.h>

#define ID_MAX 64

/* Returns 1 if s[0..len) is a valid room or user id, else 0. */
int id_valid(const char *s, size_t len);

/* Fills out with 2*n lowercase hex characters of fresh randomness plus a NUL.
 * Returns 0, or -1 if the system's random source failed. */
int id_random_hex(char *out, size_t n);

#endif

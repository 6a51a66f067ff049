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
/* Fills out[0..n) with fresh randomness. 0, or -1 if the random source failed. */
int id_random_bytes(unsigned char *out, size_t n);
/* Writes 2*n lowercase hex characters of in[0..n) plus a NUL to out; returns out. */
char *id_hex(const unsigned char *in, size_t n, char *out);
/* Reads exactly 2*n hex characters (either case) of s into out; 0, or -1. */
int id_unhex(const char *s, unsigned char *out, size_t n);

#endif

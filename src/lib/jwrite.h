/* Writing JSON text by hand where a frame's shape is fixed (the envelope,
 * the chat-message payload), byte for byte as jansson's json_dumpb writes
 * it with JSON_COMPACT and without JSON_ENSURE_ASCII or JSON_ESCAPE_SLASH,
 * so a hand-built frame equals the tree-built one (tests/unit/test_jwrite.c
 * compares them). No allocation: the caller sizes the output. */
#ifndef HUDDLE_LIB_JWRITE_H
#define HUDDLE_LIB_JWRITE_H

#include <stddef.h>
#include <stdint.h>

/* The most bytes jwrite_string writes for n input bytes (each byte a
 * \u00XX escape, and the quotes). */
#define JWRITE_STRING_MAX(n) (6 * (size_t)(n) + 2)
/* The most bytes jwrite_u64 writes. */
#define JWRITE_U64_MAX 20

/* Writes s[0..n) as a JSON string, quotes included: '"' and '\\' escaped,
 * \b \f \n \r \t as such, other bytes below 0x20 as \u00XX (uppercase hex,
 * as jansson), every other byte as it is. s must be valid UTF-8 (jansson
 * refuses to dump anything else) and may not hold NUL unless the reader
 * accepts \u0000. Returns the byte after the closing quote. */
char *jwrite_string(char *out, const char *s, size_t n);

/* Writes v in decimal; returns the byte after it. */
char *jwrite_u64(char *out, uint64_t v);

#endif

/* Leveled logging, one line per event, machine-parsable:
 *   ts=2026-11-25T10:00:00.123Z level=info mod=ws event key=value ...
 * Each .c defines LOG_MODULE before including this header. Never pass a
 * token, a secret or a WebSocket URL's query string to these macros. */
#ifndef HUDDLE_LOG_H
#define HUDDLE_LOG_H

enum log_level { LOG_ERROR = 0, LOG_WARN, LOG_INFO, LOG_DEBUG };

extern enum log_level log_threshold;

/* Parses "error", "warn", "info" or "debug"; returns 0 or -1. */
int log_level_parse(const char *s, enum log_level *out);
void log_write(enum log_level lvl, const char *mod, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#ifndef LOG_MODULE
#define LOG_MODULE "main"
#endif

#define log_at(lvl, ...) \
  do { if ((lvl) <= log_threshold) log_write((lvl), LOG_MODULE, __VA_ARGS__); } while (0)
#define log_error(...) log_at(LOG_ERROR, __VA_ARGS__)
#define log_warn(...) log_at(LOG_WARN, __VA_ARGS__)
#define log_info(...) log_at(LOG_INFO, __VA_ARGS__)
#define log_debug(...) log_at(LOG_DEBUG, __VA_ARGS__)

#endif

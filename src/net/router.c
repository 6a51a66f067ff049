/* Path pattern matching (see router.h). */
#include <string.h>

#include "net/router.h"

int router_match(const char *pattern, const char *path, size_t path_len,
                 struct router_param *params, int max_params) {
  const char *p = pattern, *s = path, *end = path + path_len;
  int n = 0;
  while (*p && s < end) {
    if (*p != '/' || *s != '/') return -1;
    p++, s++;
    const char *pseg_end = strchr(p, '/');
    if (pseg_end == NULL) pseg_end = p + strlen(p);
    const char *sseg_end = memchr(s, '/', (size_t)(end - s));
    if (sseg_end == NULL) sseg_end = end;
    size_t plen = (size_t)(pseg_end - p), slen = (size_t)(sseg_end - s);
    if (plen >= 2 && p[0] == '{' && p[plen - 1] == '}') {
      if (slen == 0 || n >= max_params) return -1;
      params[n].name = p + 1;
      params[n].name_len = plen - 2;
      params[n].value = s;
      params[n].value_len = slen;
      n++;
    } else if (plen != slen || memcmp(p, s, plen) != 0) {
      return -1;
    }
    p = pseg_end;
    s = sseg_end;
  }
  return (*p == '\0' && s == end) ? n : -1;
}

/* Sanitizing what users send for others to display (see sanitize.h): chat
 * text, reaction emoji and file names. Each function decodes UTF-8 itself,
 * strictly, so it is safe on raw bytes too. This module cleans or refuses;
 * it does not truncate, render or normalize (no NFC, no case folding). */
#include <assert.h>
#include <stdint.h>
#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include "guard/sanitize.h"

#define NO_CP UINT32_MAX           /* "nothing to emit" from text_map() */
#define FILENAME_MAX_BYTES 255     /* longest accepted file name, in bytes */
#define REACTION_MAX_CPS 10        /* code points of a reaction, tags excluded */
#define REACTION_MAX_TAG_SPECS 7   /* CLDR subdivision ids have at most 7 characters */

/* ---- UTF-8 ---- */

/* Decodes the code point at s[*pos] strictly (RFC 3629): no overlong forms,
 * no surrogates, nothing past U+10FFFF, no truncated sequence. On success
 * stores it in *cp and advances *pos. Returns 1, 0 at the end of input, or
 * -1 on invalid UTF-8. */
static int utf8_next(const unsigned char *s, size_t len, size_t *pos, uint32_t *cp) {
  size_t i = *pos, n;
  uint32_t v, min;
  if (i >= len) return 0;
  unsigned char c = s[i];
  if (c < 0x80) {
    *cp = c;
    *pos = i + 1;
    return 1;
  }
  if (c >= 0xc2 && c <= 0xdf) {
    n = 1, v = c & 0x1f, min = 0x80;
  } else if (c >= 0xe0 && c <= 0xef) {
    n = 2, v = c & 0x0f, min = 0x800;
  } else if (c >= 0xf0 && c <= 0xf4) {
    n = 3, v = c & 0x07, min = 0x10000;
  } else {
    return -1; /* a continuation byte, C0/C1 (always overlong) or F5..FF */
  }
  if (len - i - 1 < n) return -1;
  for (size_t k = 1; k <= n; k++) {
    unsigned char d = s[i + k];
    if ((d & 0xc0) != 0x80) return -1;
    v = (v << 6) | (d & 0x3f);
  }
  if (v < min || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff)) return -1;
  *cp = v;
  *pos = i + 1 + n;
  return 1;
}

/* Writes cp (a valid scalar value) as UTF-8 into out[0..4); returns the length. */
static size_t utf8_put(uint32_t cp, char *out) {
  if (cp < 0x80) {
    out[0] = (char)cp;
    return 1;
  }
  if (cp < 0x800) {
    out[0] = (char)(0xc0 | (cp >> 6));
    out[1] = (char)(0x80 | (cp & 0x3f));
    return 2;
  }
  if (cp < 0x10000) {
    out[0] = (char)(0xe0 | (cp >> 12));
    out[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
    out[2] = (char)(0x80 | (cp & 0x3f));
    return 3;
  }
  out[0] = (char)(0xf0 | (cp >> 18));
  out[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
  out[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
  out[3] = (char)(0x80 | (cp & 0x3f));
  return 4;
}

/* Counts the code points of s[0..len) into *n. Returns 0, or -1 on invalid UTF-8. */
static int utf8_count(const unsigned char *s, size_t len, size_t *n) {
  size_t pos = 0, count = 0;
  uint32_t cp;
  int r;
  while ((r = utf8_next(s, len, &pos, &cp)) == 1) count++;
  *n = count;
  return r;
}

/* ---- Character classes ---- */

/* Code points removed from everything shown to others: all C0 controls
 * (sanitize_text keeps \n and \t itself), DEL, C1 controls, and the bidi
 * marks, embeddings, overrides and isolates, which can make "exe.pdf" read
 * as "fdp.exe". Beyond the list in sanitize.h we also remove U+FEFF (a BOM
 * or zero width no-break space: invisible, only useful for spoofing) and,
 * for file names, U+2028/U+2029; sanitize_text turns those two line and
 * paragraph separators into \n instead (see text_map()). */
static int is_removed(uint32_t cp) {
  if (cp < 0x20 || (cp >= 0x7f && cp <= 0x9f)) return 1;
  if (cp == 0x061c || cp == 0x200e || cp == 0x200f || cp == 0xfeff) return 1;
  if (cp >= 0x202a && cp <= 0x202e) return 1;
  if (cp >= 0x2066 && cp <= 0x2069) return 1;
  return cp == 0x2028 || cp == 0x2029;
}

/* What sanitize_text emits for cp: cp itself, \n for U+2028/U+2029 (so
 * pasted lines stay apart and no raw separator reaches a JavaScript string
 * literal), or NO_CP if it is removed. */
static uint32_t text_map(uint32_t cp) {
  if (cp == '\n' || cp == '\t') return cp;
  if (cp == 0x2028 || cp == 0x2029) return '\n';
  return is_removed(cp) ? NO_CP : cp;
}

static int is_ascii_alnum(uint32_t cp) {
  return (cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z') || (cp >= '0' && cp <= '9');
}

/* Whitespace skipped inside a scheme word. The other ASCII whitespace (\r,
 * \f, \v) is a C0 control, already gone from the cleaned text. */
static int is_scheme_space(uint32_t cp) { return cp == ' ' || cp == '\t' || cp == '\n'; }

/* Blank for the "nothing left" test: Unicode White_Space, plus the zero
 * width characters and Hangul fillers that render as nothing. */
static int is_blank(uint32_t cp) {
  if (cp == ' ' || cp == '\t' || cp == '\n' || cp == 0x85 || cp == 0xa0) return 1;
  if (cp == 0x1680 || cp == 0x180e || (cp >= 0x2000 && cp <= 0x200d)) return 1;
  if (cp == 0x202f || cp == 0x205f || cp == 0x2060 || cp == 0x3000) return 1;
  return cp == 0x115f || cp == 0x1160 || cp == 0x3164 || cp == 0xffa0;
}

/* ---- Chat text ---- */

/* Next code point of the cleaned text (text_map() applied) at or after
 * s[*pos]; s is already validated. Returns 1, or 0 at the end. */
static int next_kept(const unsigned char *s, size_t len, size_t *pos, uint32_t *cp) {
  uint32_t c;
  while (utf8_next(s, len, pos, &c) == 1) {
    c = text_map(c);
    if (c != NO_CP) {
      *cp = c;
      return 1;
    }
  }
  return 0;
}

/* Schemes that run code or carry an arbitrary document when clicked. */
static const char *const bad_schemes[] = {"javascript", "vbscript", "data"};

/* If the cleaned text from s[pos] on spells word (ASCII, lowercase) then ':',
 * case-insensitively and with whitespace allowed anywhere in between, returns
 * the byte offset of that ':'; else SIZE_MAX. */
static size_t scheme_colon(const unsigned char *s, size_t len, size_t pos, const char *word) {
  uint32_t cp;
  for (;;) {
    do {
      if (!next_kept(s, len, &pos, &cp)) return SIZE_MAX;
    } while (is_scheme_space(cp));
    if (*word == '\0') return cp == ':' ? pos - 1 : SIZE_MAX; /* ':' is one byte */
    if (cp >= 'A' && cp <= 'Z') cp += 'a' - 'A';
    if (cp != (unsigned char)*word++) return SIZE_MAX;
  }
}

/* The offset of the colon to neutralize if a dangerous scheme starts at
 * s[pos], else SIZE_MAX. */
static size_t bad_scheme_at(const unsigned char *s, size_t len, size_t pos) {
  for (size_t i = 0; i < sizeof(bad_schemes) / sizeof(bad_schemes[0]); i++) {
    size_t colon = scheme_colon(s, len, pos, bad_schemes[i]);
    if (colon != SIZE_MAX) return colon;
  }
  return SIZE_MAX;
}

/* Appends cp to out, HTML-escaped; a colon at the offset of a dangerous
 * scheme becomes &#58; (which reads the same but is no scheme separator).
 * Returns 0, or -1 on allocation failure. */
static int emit(struct buf *out, uint32_t cp, int neutralize) {
  const char *esc = NULL;
  char tmp[4];
  switch (cp) {
  case '&': esc = "&amp;"; break;
  case '<': esc = "&lt;"; break;
  case '>': esc = "&gt;"; break;
  case '"': esc = "&quot;"; break;
  case '\'': esc = "&#39;"; break;
  case ':': esc = neutralize ? "&#58;" : NULL; break;
  default: break;
  }
  if (esc != NULL) return buf_append(out, esc, strlen(esc));
  return buf_append(out, tmp, utf8_put(cp, tmp));
}

/* ---- Chat text: the ASCII fast path ---- */

/* 1 if the ASCII text before the colon at s[colon] ends in a dangerous
 * scheme word that starts where sanitize_text's slow path looks for one:
 * walking back from the colon over scheme spaces, the word's letters (any
 * case, spaces allowed between them), and before its first letter nothing
 * or a byte that is not an ASCII letter or digit. This is the slow path's
 * forward test (scheme_colon from each word start) read backwards: for
 * text of printable ASCII, \n and \t only, every byte is kept as it is,
 * so the two read the same characters. */
static int ascii_scheme_before(const unsigned char *s, size_t colon) {
  for (size_t w = 0; w < sizeof(bad_schemes) / sizeof(bad_schemes[0]); w++) {
    const char *word = bad_schemes[w];
    size_t k = strlen(word), i = colon;
    for (;;) {
      while (i > 0 && is_scheme_space(s[i - 1])) i--;
      if (i == 0) break;
      unsigned c = s[i - 1];
      if (c >= 'A' && c <= 'Z') c += 'a' - 'A';
      if (c != (unsigned char)word[k - 1]) break;
      i--;
      if (--k == 0) break;
    }
    if (k == 0 && (i == 0 || !is_ascii_alnum(s[i - 1]))) return 1;
  }
  return 0;
}

/* sanitize_text for text whose bytes are all printable ASCII, \n or \t
 * (the common case), in one pass: each byte is its own code point, none is
 * removed or mapped, so only the HTML escapes and the scheme colons change
 * anything. Returns 1 with *e set when it decided, 0 when the text has a
 * byte it does not handle (out is then reset, for the slow path). */
static int text_ascii(const unsigned char *s, size_t len, size_t max_chars, struct buf *out,
                      enum api_err *e) {
  /* Per byte: 0 kept as it is, 1 escaped or maybe a scheme's colon, 2 not
   * handled here (other controls, DEL, anything >= 0x80). */
  static const unsigned char cls[256] = {
    2, 2, 2, 2, 2, 2, 2, 2, 2, 0, 0, 2, 2, 2, 2, 2,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    0, 0, 1, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 1, 0, 1, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
  };
  /* Over the limit: left to the slow path, which counts code points. */
  if (len > max_chars || len > SIZE_MAX / 8) return 0;
  if (buf_reserve(out, 6 * len) != 0) { /* each byte at most "&quot;" */
    *e = API_ERR_INTERNAL_ERROR;
    return 1;
  }
  char *o = out->data;
  size_t i = 0;
  for (;;) {
#ifdef __SSE2__
    /* 16 bytes at a time while they are all kept as they are (\n and \t
     * stop a block and go one at a time). The store may write past what
     * is kept: out has room for 6 bytes per input byte. */
    while (len - i >= 16) {
      __m128i x = _mm_loadu_si128((const __m128i *)(s + i));
      __m128i bad = _mm_or_si128(_mm_cmpeq_epi8(x, _mm_set1_epi8('&')), _mm_cmpeq_epi8(x, _mm_set1_epi8('<')));
      bad = _mm_or_si128(bad, _mm_or_si128(_mm_cmpeq_epi8(x, _mm_set1_epi8('>')), _mm_cmpeq_epi8(x, _mm_set1_epi8('"'))));
      bad = _mm_or_si128(bad, _mm_or_si128(_mm_cmpeq_epi8(x, _mm_set1_epi8('\'')), _mm_cmpeq_epi8(x, _mm_set1_epi8(':'))));
      bad = _mm_or_si128(bad, _mm_cmpeq_epi8(x, _mm_set1_epi8(0x7f)));
      /* Signed: bytes >= 0x80 are negative and fail "> 0x1f" with the controls. */
      __m128i ok = _mm_andnot_si128(bad, _mm_cmpgt_epi8(x, _mm_set1_epi8(0x1f)));
      unsigned m = (unsigned)_mm_movemask_epi8(ok);
      _mm_storeu_si128((__m128i *)o, x);
      if (m == 0xffff) {
        o += 16, i += 16;
        continue;
      }
      unsigned k = (unsigned)__builtin_ctz(~m);
      o += k, i += k;
      break;
    }
#endif
    unsigned c = 0;
    if (i == len) break;
    if (cls[c = s[i]] == 0) { /* \n, \t, or a plain byte of the last 15 */
      *o++ = (char)c, i++;
      continue;
    }
    switch (c) {
    case '&': memcpy(o, "&amp;", 5), o += 5; break;
    case '<': memcpy(o, "&lt;", 4), o += 4; break;
    case '>': memcpy(o, "&gt;", 4), o += 4; break;
    case '"': memcpy(o, "&quot;", 6), o += 6; break;
    case '\'': memcpy(o, "&#39;", 5), o += 5; break;
    case ':':
      if (ascii_scheme_before(s, i)) memcpy(o, "&#58;", 5), o += 5;
      else *o++ = ':';
      break;
    default:
      buf_reset(out);
      return 0;
    }
    i++;
  }
  out->len = (size_t)(o - out->data);
  out->data[out->len] = '\0';
  /* Nothing left but blanks (space, \t, \n)? Usually the first byte says. */
  size_t k = 0;
  while (k < len && is_scheme_space(s[k])) k++;
  if (k == len) {
    buf_reset(out);
    *e = API_ERR_INVALID_MESSAGE;
    return 1;
  }
  *e = API_OK;
  return 1;
}

/* A scheme word counts only where a URL could start with it: "metadata:" is
 * not the data: scheme. Neutralizing too much is harmless (&#58; displays
 * as ':'), so anything but an ASCII letter or digit before the word counts
 * as a start, including spaces, punctuation and quotes. */
enum api_err sanitize_text_cp(const char *in, size_t len, size_t max_chars, struct buf *out) {
  const unsigned char *s = (const unsigned char *)in;
  size_t n, pos = 0, colon = SIZE_MAX;
  uint32_t cp, prev = ' ';
  int visible = 0;

  buf_reset(out);
  if (s == NULL || utf8_count(s, len, &n) != 0) return API_ERR_INVALID_MESSAGE;
  if (n > max_chars) return API_ERR_MESSAGE_TOO_LONG;
  while (pos < len) {
    size_t at = pos;
    utf8_next(s, len, &pos, &cp);
    cp = text_map(cp);
    if (cp == NO_CP) continue;
    if (!is_ascii_alnum(prev) && is_ascii_alnum(cp)) {
      size_t c = bad_scheme_at(s, len, at);
      if (c != SIZE_MAX) colon = c;
    }
    if (emit(out, cp, cp == ':' && at == colon) != 0) {
      buf_reset(out);
      return API_ERR_INTERNAL_ERROR;
    }
    if (!is_blank(cp)) visible = 1;
    prev = cp;
  }
  if (!visible) {
    buf_reset(out);
    return API_ERR_INVALID_MESSAGE;
  }
  return API_OK;
}

enum api_err sanitize_text(const char *in, size_t len, size_t max_chars, struct buf *out) {
  enum api_err e;
  buf_reset(out);
  if (in != NULL && text_ascii((const unsigned char *)in, len, max_chars, out, &e)) return e;
  return sanitize_text_cp(in, len, max_chars, out);
}

/* ---- Reactions ---- */

/* Extended_Pictographic, coarsely: the blocks that hold emoji, plus the
 * emoji singletons outside them (©, ®, ‼, ⁉, ™, ℹ, Ⓜ, ▪, ▫, ▶, ◀, ◻-◾,
 * ⤴, ⤵, 〰, 〽, ㊗, ㊙). Some non-emoji symbols of those blocks pass too,
 * which is harmless: they are one symbol, not text. */
static int is_pictographic(uint32_t cp) {
  static const uint32_t ranges[][2] = {
    {0x00a9, 0x00a9}, {0x00ae, 0x00ae}, {0x203c, 0x203c}, {0x2049, 0x2049},
    {0x2122, 0x2122}, {0x2139, 0x2139}, {0x2194, 0x21aa}, {0x2300, 0x23ff},
    {0x24c2, 0x24c2}, {0x25aa, 0x25ab}, {0x25b6, 0x25b6}, {0x25c0, 0x25c0},
    {0x25fb, 0x25fe}, {0x2600, 0x27bf}, {0x2934, 0x2935}, {0x2b00, 0x2bff},
    {0x3030, 0x3030}, {0x303d, 0x303d}, {0x3297, 0x3297}, {0x3299, 0x3299},
    {0x1f000, 0x1faff},
  };
  for (size_t i = 0; i < sizeof(ranges) / sizeof(ranges[0]); i++)
    if (cp >= ranges[i][0] && cp <= ranges[i][1]) return 1;
  return 0;
}

static int is_regional(uint32_t cp) { return cp >= 0x1f1e6 && cp <= 0x1f1ff; }
static int is_skin_tone(uint32_t cp) { return cp >= 0x1f3fb && cp <= 0x1f3ff; }
static int is_keycap_base(uint32_t cp) { return (cp >= '0' && cp <= '9') || cp == '#' || cp == '*'; }
static int is_vs(uint32_t cp) { return cp == 0xfe0f || cp == 0xfe0e; }

/* Tag characters of a subdivision flag: lowercase ASCII letters and digits. */
static int is_tag_spec(uint32_t cp) {
  return (cp >= 0xe0030 && cp <= 0xe0039) || (cp >= 0xe0061 && cp <= 0xe007a);
}

/* Parses one element of a reaction at cp[*i], advancing *i past it:
 *   keycap:   [0-9#*] U+FE0F? U+20E3
 *   flag:     two regional indicators
 *   emoji:    pictographic VS? skin-tone? tags?
 *   tags:     only after U+1F3F4, 1..7 tag specs then U+E007F (cancel tag)
 * Returns 0, or -1 if no element starts there. */
static int reaction_element(const uint32_t *cp, size_t n, size_t *i) {
  size_t k = *i;
  if (k >= n) return -1;
  if (is_keycap_base(cp[k])) {
    k++;
    if (k < n && cp[k] == 0xfe0f) k++;
    if (k >= n || cp[k] != 0x20e3) return -1;
    *i = k + 1;
    return 0;
  }
  if (is_regional(cp[k])) {
    if (k + 1 >= n || !is_regional(cp[k + 1])) return -1;
    *i = k + 2;
    return 0;
  }
  if (!is_pictographic(cp[k])) return -1;
  uint32_t base = cp[k++];
  if (k < n && is_vs(cp[k])) k++;
  if (k < n && is_skin_tone(cp[k]) && !is_skin_tone(base)) k++;
  if (base == 0x1f3f4 && k < n && is_tag_spec(cp[k])) {
    size_t specs = 0;
    while (k < n && is_tag_spec(cp[k])) k++, specs++;
    if (specs > REACTION_MAX_TAG_SPECS || k >= n || cp[k] != 0xe007f) return -1;
    k++;
  }
  *i = k;
  return 0;
}

/* One grapheme: elements joined by U+200D (ZWJ), nothing before, between
 * or after. "👍👍" is two graphemes and refused; so is a lone regional
 * indicator. At most REACTION_MAX_CPS code points besides tag characters
 * (a kiss with two skin tones, the longest RGI sequence, has 10). */
enum api_err sanitize_reaction(const char *in, size_t len, size_t max_bytes) {
  const unsigned char *s = (const unsigned char *)in;
  uint32_t cp[REACTION_MAX_CPS + REACTION_MAX_TAG_SPECS + 1];
  size_t n = 0, pos = 0, tags = 0, others = 0, i = 0;
  uint32_t c;
  int r;

  if (s == NULL || len == 0 || len > max_bytes) return API_ERR_INVALID_MESSAGE;
  while ((r = utf8_next(s, len, &pos, &c)) == 1) {
    if (c >= 0xe0000 && c <= 0xe007f)
      tags++;
    else
      others++;
    if (tags > REACTION_MAX_TAG_SPECS + 1 || others > REACTION_MAX_CPS)
      return API_ERR_INVALID_MESSAGE;
    cp[n++] = c; /* n <= REACTION_MAX_CPS + REACTION_MAX_TAG_SPECS + 1 */
  }
  if (r != 0) return API_ERR_INVALID_MESSAGE;
  for (;;) {
    if (reaction_element(cp, n, &i) != 0) return API_ERR_INVALID_MESSAGE;
    if (i == n) return API_OK;
    if (cp[i] != 0x200d) return API_ERR_INVALID_MESSAGE;
    i++;
  }
}

/* ---- File names ---- */

/* Replaced by '_': the characters Windows forbids in names. ':' would also
 * open an NTFS alternate data stream ("a.txt:evil.exe"). '/' and '\\'
 * never reach here: only the part after the last one is kept. */
static int is_reserved_in_name(uint32_t cp) {
  return cp == ':' || cp == '*' || cp == '?' || cp == '"' || cp == '<' || cp == '>' || cp == '|';
}

static int is_trimmed(uint32_t cp) { return cp == ' ' || cp == '.'; }

/* All controls (\n and \t included) and the bidi characters are removed
 * (see is_removed()), so "invoice\u202Efdp.exe" becomes "invoicefdp.exe"
 * and keeps its real extension last. Invalid UTF-8 anywhere in the input
 * is refused. Windows' reserved device names (CON, NUL...) are not
 * rewritten: receivers save under their own name policy. */
enum api_err sanitize_filename(const char *in, size_t len, char *out, size_t out_len) {
  const unsigned char *s = (const unsigned char *)in;
  size_t n, pos = 0, w = 0, end = 0;
  uint32_t cp;

  assert(out != NULL && out_len > 0);
  out[0] = '\0';
  if (s == NULL || utf8_count(s, len, &n) != 0) return API_ERR_INVALID_MESSAGE;
  for (size_t i = 0; i < len; i++)
    if (s[i] == '/' || s[i] == '\\') pos = i + 1;
  /* w is the cleaned length so far; bytes are stored while they fit, and end
   * is the length up to the last character that trimming keeps. */
  while (utf8_next(s, len, &pos, &cp) == 1) {
    char tmp[4];
    if (is_removed(cp)) continue;
    if (w == 0 && is_trimmed(cp)) continue;
    if (is_reserved_in_name(cp)) cp = '_';
    size_t k = utf8_put(cp, tmp);
    if (w + k < out_len) memcpy(out + w, tmp, k);
    w += k;
    if (!is_trimmed(cp)) end = w;
  }
  if (end == 0 || end > FILENAME_MAX_BYTES || end >= out_len) {
    out[0] = '\0';
    return API_ERR_INVALID_MESSAGE;
  }
  out[end] = '\0';
  return API_OK;
}

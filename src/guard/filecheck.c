/* File sharing checks (see filecheck.h): the declared MIME type against an
 * allow-list, the name's extension against dangerous types and against the
 * declared type's family, sizes, and libmagic sniffing of the first bytes.
 * It decides whether a file may be offered; it never stores or opens one. */
#include <magic.h>
#include <string.h>

#include "guard/filecheck.h"

#define MIME_MAX 128 /* longest media type we parse, "type/subtype" */
#define EXT_MAX 16   /* longest extension we look up */

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* Families tie extensions to declared types: a known extension must share a
 * family with the declared type. Audio and video are separate families, but
 * container extensions (.mp4, .webm, .ogg) belong to both. */
enum family {
  FAM_IMAGE = 1 << 0,
  FAM_AUDIO = 1 << 1,
  FAM_VIDEO = 1 << 2,
  FAM_TEXT = 1 << 3,
  FAM_DOC = 1 << 4,
  FAM_ARCHIVE = 1 << 5,
};

struct allowed_type {
  const char *mime; /* lowercase, without parameters */
  unsigned family;  /* one enum family bit */
};

static const struct allowed_type allowed[] = {
  {"image/png", FAM_IMAGE},
  {"image/jpeg", FAM_IMAGE},
  {"image/gif", FAM_IMAGE},
  {"image/webp", FAM_IMAGE},
  {"image/bmp", FAM_IMAGE},
  {"audio/mpeg", FAM_AUDIO},
  {"audio/ogg", FAM_AUDIO},
  {"audio/wav", FAM_AUDIO},
  {"audio/webm", FAM_AUDIO},
  {"audio/mp4", FAM_AUDIO},
  {"video/mp4", FAM_VIDEO},
  {"video/webm", FAM_VIDEO},
  {"video/ogg", FAM_VIDEO},
  {"video/quicktime", FAM_VIDEO},
  {"application/pdf", FAM_DOC},
  {"text/plain", FAM_TEXT},
  {"text/csv", FAM_TEXT},
  {"text/markdown", FAM_TEXT},
  {"application/json", FAM_TEXT},
  {"application/zip", FAM_ARCHIVE},
  {"application/x-7z-compressed", FAM_ARCHIVE},
  {"application/gzip", FAM_ARCHIVE},
  {"application/msword", FAM_DOC},
  {"application/vnd.openxmlformats-officedocument.wordprocessingml.document", FAM_DOC},
  {"application/vnd.ms-excel", FAM_DOC},
  {"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", FAM_DOC},
  {"application/vnd.ms-powerpoint", FAM_DOC},
  {"application/vnd.openxmlformats-officedocument.presentationml.presentation", FAM_DOC},
  {"application/vnd.oasis.opendocument.text", FAM_DOC},
  {"application/vnd.oasis.opendocument.spreadsheet", FAM_DOC},
  {"application/vnd.oasis.opendocument.presentation", FAM_DOC},
  {"application/rtf", FAM_DOC},
};

/* Extensions that run code, render active content or install software when
 * opened. Compared lowercase. */
static const char *const dangerous_ext[] = {
  "exe", "com", "bat", "cmd", "scr", "pif", "msi", "msp", "dll", "cpl", "jar", "js",
  "mjs", "jse", "vbs", "vbe", "wsf", "wsh", "ps1", "psm1", "sh", "bash", "zsh", "csh",
  "py", "pl", "rb", "php", "html", "htm", "xhtml", "shtml", "svg", "hta", "lnk", "reg",
  "apk", "app", "dmg", "deb", "rpm", "iso", "elf", "run", "bin",
  /* renderers, macro and script containers, installers and shortcuts */
  "mhtml", "mht", "svgz", "xht", "chm", "vb", "msix", "appx", "jnlp", "url", "scf", "wsc",
  "desktop", "command", "ps1xml", "xll", "xlsm", "docm", "pptm", "xlam", "dotm", "xltm",
  "potm", "ppam", "ppsm", "sldm", "msixbundle", "appxbundle", "inf", "ins", "isp", "gadget",
  "msc", "msh", "mshxml", "psc1", "psd1", "vbscript", "website", "webloc", "inetloc",
  "library-ms", "searchconnector-ms", "settingcontent-ms", "appref-ms", "xbap", "xsl", "xslt",
};

struct known_ext {
  const char *ext;  /* lowercase */
  unsigned family;  /* enum family bits the declared type may have */
};

/* Extensions whose family we know. .csv is also a document because Windows
 * browsers declare it as application/vnd.ms-excel; .rtf is also text. */
static const struct known_ext known_ext[] = {
  {"png", FAM_IMAGE}, {"jpg", FAM_IMAGE}, {"jpeg", FAM_IMAGE}, {"jpe", FAM_IMAGE},
  {"jfif", FAM_IMAGE}, {"gif", FAM_IMAGE}, {"webp", FAM_IMAGE}, {"bmp", FAM_IMAGE},
  {"mp3", FAM_AUDIO}, {"wav", FAM_AUDIO}, {"oga", FAM_AUDIO}, {"opus", FAM_AUDIO},
  {"weba", FAM_AUDIO}, {"m4a", FAM_AUDIO},
  {"ogg", FAM_AUDIO | FAM_VIDEO}, {"webm", FAM_AUDIO | FAM_VIDEO}, {"mp4", FAM_AUDIO | FAM_VIDEO},
  {"ogv", FAM_VIDEO}, {"m4v", FAM_VIDEO}, {"mov", FAM_VIDEO}, {"qt", FAM_VIDEO},
  {"txt", FAM_TEXT}, {"text", FAM_TEXT}, {"log", FAM_TEXT}, {"md", FAM_TEXT},
  {"markdown", FAM_TEXT}, {"json", FAM_TEXT}, {"csv", FAM_TEXT | FAM_DOC},
  {"pdf", FAM_DOC}, {"doc", FAM_DOC}, {"docx", FAM_DOC}, {"xls", FAM_DOC}, {"xlsx", FAM_DOC},
  {"ppt", FAM_DOC}, {"pptx", FAM_DOC}, {"odt", FAM_DOC}, {"ods", FAM_DOC}, {"odp", FAM_DOC},
  {"rtf", FAM_DOC | FAM_TEXT},
  {"zip", FAM_ARCHIVE}, {"7z", FAM_ARCHIVE}, {"gz", FAM_ARCHIVE}, {"tgz", FAM_ARCHIVE},
};

/* Sniffed types that never match, whatever was declared: programs, scripts
 * and documents a browser would run. */
static const char *const never_sniffed[] = {
  "application/x-executable", "application/x-dosexec", "application/x-sharedlib",
  "application/x-pie-executable", "application/vnd.microsoft.portable-executable",
  "application/x-mach-binary", "application/x-msi", "application/javascript",
  "text/javascript", "text/x-shellscript", "text/x-php", "text/x-python", "text/x-perl",
  "text/x-ruby", "text/x-msdos-batch", "text/html", "application/xhtml+xml",
  "image/svg+xml",
};

/* Sniffed types accepted for a declared type other than the type itself.
 * libmagic names some formats differently from browsers (audio/x-wav,
 * image/x-ms-bmp, text/rtf, audio/x-m4a), sees only the container of
 * others (application/zip for OOXML and ODF, application/ogg, CDFV2 / OLE
 * storage for legacy Office when it lacks the directory), and calls any
 * text it cannot place text/plain. */
static const struct {
  const char *declared;
  const char *sniffed;
} compatible[] = {
  {"text/csv", "text/plain"},
  {"text/markdown", "text/plain"},
  {"application/json", "text/plain"},
  {"application/vnd.openxmlformats-officedocument.wordprocessingml.document", "application/zip"},
  {"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "application/zip"},
  {"application/vnd.openxmlformats-officedocument.presentationml.presentation", "application/zip"},
  {"application/vnd.oasis.opendocument.text", "application/zip"},
  {"application/vnd.oasis.opendocument.spreadsheet", "application/zip"},
  {"application/vnd.oasis.opendocument.presentation", "application/zip"},
  {"application/msword", "application/cdfv2"},
  {"application/msword", "application/x-ole-storage"},
  {"application/vnd.ms-excel", "application/cdfv2"},
  {"application/vnd.ms-excel", "application/x-ole-storage"},
  {"application/vnd.ms-powerpoint", "application/cdfv2"},
  {"application/vnd.ms-powerpoint", "application/x-ole-storage"},
  {"audio/webm", "video/webm"},
  {"audio/ogg", "video/ogg"},
  {"audio/ogg", "application/ogg"},
  {"video/ogg", "audio/ogg"},
  {"video/ogg", "application/ogg"},
  {"audio/mp4", "video/mp4"},
  {"audio/mp4", "audio/x-m4a"},
  {"audio/wav", "audio/x-wav"},
  {"audio/wav", "audio/vnd.wave"},
  {"image/bmp", "image/x-ms-bmp"},
  {"application/rtf", "text/rtf"},
};

/* One libmagic handle per thread: magic_t is not thread-safe. */
static _Thread_local magic_t magic;

/* RFC 6838 restricted-name characters. */
static int is_name_char(char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return 1;
  return c != '\0' && strchr("!#$&-^_.+", c) != NULL;
}

static char lower(char c) { return c >= 'A' && c <= 'Z' ? (char)(c + ('a' - 'A')) : c; }

/* Writes the media type of s, lowercased and without parameters or the
 * spaces around it, into out[MIME_MAX]. Returns 0, or -1 if it is not
 * "type/subtype" of restricted-name characters or does not fit. */
static int mime_base(const char *s, char *out) {
  size_t n = 0, slash = 0;
  while (*s == ' ' || *s == '\t') s++;
  for (; *s != '\0' && *s != ';' && *s != ' ' && *s != '\t'; s++) {
    if (*s == '/') {
      if (slash != 0 || n == 0) return -1;
      slash = n;
    } else if (!is_name_char(*s)) {
      return -1;
    }
    if (n + 1 >= MIME_MAX) return -1;
    out[n++] = lower(*s);
  }
  out[n] = '\0';
  while (*s == ' ' || *s == '\t') s++;
  if (*s != '\0' && *s != ';') return -1; /* "image/png x" */
  return slash != 0 && slash + 1 < n ? 0 : -1;
}

static const struct allowed_type *allowed_find(const char *mime) {
  for (size_t i = 0; i < ARRAY_LEN(allowed); i++)
    if (strcmp(allowed[i].mime, mime) == 0) return &allowed[i];
  return NULL;
}

static int in_list(const char *const *list, size_t n, const char *s) {
  for (size_t i = 0; i < n; i++)
    if (strcmp(list[i], s) == 0) return 1;
  return 0;
}

/* Writes the lowercased last extension of name into ext[EXT_MAX]: what
 * follows the last '.' of the last path component, ignoring trailing dots
 * and spaces (Windows drops them, so "a.exe." opens as "a.exe"). Returns 0,
 * or -1 if there is none or it is too long to be one we know. */
static int last_ext(const char *name, char *ext) {
  const char *base = name, *p;
  for (p = name; *p != '\0'; p++)
    if (*p == '/' || *p == '\\') base = p + 1;
  const char *end = base + strlen(base);
  while (end > base && (end[-1] == '.' || end[-1] == ' ')) end--;
  const char *dot = NULL;
  for (p = base; p < end; p++)
    if (*p == '.') dot = p;
  if (dot == NULL || (size_t)(end - dot - 1) >= EXT_MAX || end - dot - 1 == 0) return -1;
  size_t n = 0;
  for (p = dot + 1; p < end; p++) ext[n++] = lower(*p);
  ext[n] = '\0';
  return 0;
}

/* The extension rule: only the last extension decides, as it does for the
 * operating system that opens the file. A dangerous one is refused
 * ("invoice.pdf.exe"); a known one must share a family with the declared
 * type ("x.exe" as image/png is refused by the first rule, "x.png" as
 * application/pdf by the second); an unknown one or none is allowed, since
 * libmagic checks the bytes later. Earlier extensions ("report.exe.pdf")
 * are not refused: the file opens as its last extension says. */
static enum api_err check_ext(const char *name, unsigned family) {
  char ext[EXT_MAX];
  if (last_ext(name, ext) != 0) return API_OK;
  if (in_list(dangerous_ext, ARRAY_LEN(dangerous_ext), ext)) return API_ERR_FILE_TYPE_NOT_ALLOWED;
  for (size_t i = 0; i < ARRAY_LEN(known_ext); i++)
    if (strcmp(known_ext[i].ext, ext) == 0)
      return (known_ext[i].family & family) ? API_OK : API_ERR_FILE_TYPE_NOT_ALLOWED;
  return API_OK;
}

/* Checks run in this order: malformed input (INVALID_MESSAGE), then policy
 * (FILE_TYPE_NOT_ALLOWED), then size (FILE_TOO_LARGE), so a huge .exe is
 * told that its type, not its size, is the problem. */
enum api_err filecheck_offer(const char *name, const char *mime, uint64_t size, uint64_t max_size) {
  char base[MIME_MAX];
  if (name == NULL || name[0] == '\0' || mime == NULL || mime_base(mime, base) != 0)
    return API_ERR_INVALID_MESSAGE;
  if (size == 0) return API_ERR_INVALID_MESSAGE;
  const struct allowed_type *t = allowed_find(base);
  if (t == NULL) return API_ERR_FILE_TYPE_NOT_ALLOWED;
  enum api_err e = check_ext(name, t->family);
  if (e != API_OK) return e;
  if (size > max_size) return API_ERR_FILE_TOO_LARGE;
  return API_OK;
}

/* Opens this thread's handle on first use. Returns it, or NULL. */
static magic_t magic_get(void) {
  if (magic != NULL) return magic;
  magic_t m = magic_open(MAGIC_MIME_TYPE);
  if (m == NULL) return NULL;
  if (magic_load(m, NULL) != 0) {
    magic_close(m);
    return NULL;
  }
  magic = m;
  return magic;
}

static int sniff_with(magic_t m, const void *bytes, size_t len, char *mime_out, size_t mime_len);

/* Besides an unavailable libmagic, also returns -1 (and "") when the type
 * does not fit in mime_out: a truncated type could name another one. */
int filecheck_sniff(const void *bytes, size_t len, char *mime_out, size_t mime_len) {
  if (mime_out == NULL || mime_len == 0) return -1;
  mime_out[0] = '\0';
  return sniff_with(magic_get(), bytes, len, mime_out, mime_len);
}

/* One handle for every thread of a caller that serializes its calls. */
static magic_t shared_magic;

int filecheck_sniff_shared(const void *bytes, size_t len, char *mime_out, size_t mime_len) {
  if (mime_out == NULL || mime_len == 0) return -1;
  mime_out[0] = '\0';
  if (shared_magic == NULL) {
    magic_t m = magic_open(MAGIC_MIME_TYPE);
    if (m == NULL) return -1;
    if (magic_load(m, NULL) != 0) {
      magic_close(m);
      return -1;
    }
    shared_magic = m;
  }
  return sniff_with(shared_magic, bytes, len, mime_out, mime_len);
}

void filecheck_shared_cleanup(void) {
  if (shared_magic == NULL) return;
  magic_close(shared_magic);
  shared_magic = NULL;
}

static int sniff_with(magic_t m, const void *bytes, size_t len, char *mime_out, size_t mime_len) {
  if (m == NULL) return -1;
  const char *type = magic_buffer(m, len ? bytes : "", len);
  if (type == NULL) return -1;
  size_t n = strlen(type);
  if (n >= mime_len) return -1; /* NOTE: a cut type could read as another */
  memcpy(mime_out, type, n + 1);
  return 0;
}

/* The declared type must be on the allow-list and the sniffed one must not
 * be executable; then they match if equal or listed in compatible[]. */
enum api_err filecheck_match(const char *declared, const char *sniffed) {
  char d[MIME_MAX], s[MIME_MAX];
  if (declared == NULL || sniffed == NULL) return API_ERR_FILE_TYPE_NOT_ALLOWED;
  if (mime_base(declared, d) != 0 || mime_base(sniffed, s) != 0)
    return API_ERR_FILE_TYPE_NOT_ALLOWED;
  if (allowed_find(d) == NULL || in_list(never_sniffed, ARRAY_LEN(never_sniffed), s))
    return API_ERR_FILE_TYPE_NOT_ALLOWED;
  if (strcmp(d, s) == 0) return API_OK;
  for (size_t i = 0; i < ARRAY_LEN(compatible); i++)
    if (strcmp(compatible[i].declared, d) == 0 && strcmp(compatible[i].sniffed, s) == 0)
      return API_OK;
  return API_ERR_FILE_TYPE_NOT_ALLOWED;
}

void filecheck_cleanup(void) {
  if (magic == NULL) return;
  magic_close(magic);
  magic = NULL;
}

/* Unit tests for guard/filecheck.c: offers (allow-list, dangerous and
 * mismatched extensions, sizes), libmagic sniffing of real bytes, and
 * matching sniffed against declared types. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>

#include <cmocka.h>

#include "guard/filecheck.h"

#define MAX_SIZE (100u * 1024 * 1024)
#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

static const char *const allowed_types[] = {
  "image/png", "image/jpeg", "image/gif", "image/webp", "image/bmp",
  "audio/mpeg", "audio/ogg", "audio/wav", "audio/webm", "audio/mp4",
  "video/mp4", "video/webm", "video/ogg", "video/quicktime",
  "application/pdf", "text/plain", "text/csv", "text/markdown", "application/json",
  "application/zip", "application/x-7z-compressed", "application/gzip",
  "application/msword",
  "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
  "application/vnd.ms-excel",
  "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
  "application/vnd.ms-powerpoint",
  "application/vnd.openxmlformats-officedocument.presentationml.presentation",
  "application/vnd.oasis.opendocument.text",
  "application/vnd.oasis.opendocument.spreadsheet",
  "application/vnd.oasis.opendocument.presentation",
  "application/rtf",
};

static const char *const dangerous_exts[] = {
  "exe", "com", "bat", "cmd", "scr", "pif", "msi", "msp", "dll", "cpl", "jar", "js",
  "mjs", "jse", "vbs", "vbe", "wsf", "wsh", "ps1", "psm1", "sh", "bash", "zsh", "csh",
  "py", "pl", "rb", "php", "html", "htm", "xhtml", "shtml", "svg", "hta", "lnk", "reg",
  "apk", "app", "dmg", "deb", "rpm", "iso", "elf", "run", "bin",
};

/* Real file starts. */
static const unsigned char png_bytes[] = {
  0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n', 0, 0, 0, 13, 'I', 'H', 'D', 'R',
  0, 0, 0, 1, 0, 0, 0, 1, 8, 6, 0, 0, 0, 0x1f, 0x15, 0xc4, 0x89,
};
static const char pdf_bytes[] = "%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog >>\nendobj\n";
static const unsigned char elf_bytes[64] = {
  0x7f, 'E', 'L', 'F', 2, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0,
  2, 0, 0x3e, 0, 1, 0, 0, 0, /* ET_EXEC, x86-64, version 1 */
};
static const char sh_bytes[] = "#!/bin/sh\necho hi\n";
static const char html_bytes[] = "<html><body>hi</body></html>";
static const char text_bytes[] = "Meeting notes\nAlice: hello\nBob: hi\n";

static void assert_offer(const char *name, const char *mime, uint64_t size, enum api_err want) {
  enum api_err e = filecheck_offer(name, mime, size, MAX_SIZE);
  if (e != want) fail_msg("%s as %s: got %d, want %d", name, mime, (int)e, (int)want);
}

static void assert_sniffed(const void *bytes, size_t len, const char *want) {
  char mime[128];
  assert_int_equal(filecheck_sniff(bytes, len, mime, sizeof(mime)), 0);
  assert_string_equal(mime, want);
}

static void assert_match(const char *declared, const char *sniffed, enum api_err want) {
  enum api_err e = filecheck_match(declared, sniffed);
  if (e != want) fail_msg("%s vs %s: got %d, want %d", declared, sniffed, (int)e, (int)want);
}

/* ---- Offers: types ---- */

static void offer_accepts_every_allowed_type(void **state) {
  (void)state;
  for (size_t i = 0; i < ARRAY_LEN(allowed_types); i++)
    assert_offer("shared-file", allowed_types[i], 1000, API_OK);
}

static void offer_ignores_type_case_and_parameters(void **state) {
  (void)state;
  assert_offer("notes.txt", "Text/Plain; charset=UTF-8", 10, API_OK);
  assert_offer("photo.png", "IMAGE/PNG", 10, API_OK);
  assert_offer("photo.png", " image/png ;x=y", 10, API_OK);
}

static void offer_refuses_types_off_the_allow_list(void **state) {
  static const char *const refused[] = {
    "text/html", "image/svg+xml", "application/x-msdownload", "application/javascript",
    "text/javascript", "application/x-sh", "application/octet-stream", "application/xhtml+xml",
    "application/x-executable", "video/x-matroska", "text/plain+html",
  };
  (void)state;
  for (size_t i = 0; i < ARRAY_LEN(refused); i++)
    assert_offer("file", refused[i], 10, API_ERR_FILE_TYPE_NOT_ALLOWED);
}

static void offer_refuses_malformed_type(void **state) {
  static const char *const malformed[] = {
    "", "image", "image/", "/png", "image/png/x", "image png", "ima ge/png",
    "image/png x", "image/p\"ng", "image/png\n", "text/\xc3\xa9",
  };
  (void)state;
  for (size_t i = 0; i < ARRAY_LEN(malformed); i++)
    assert_offer("file", malformed[i], 10, API_ERR_INVALID_MESSAGE);
  assert_int_equal(filecheck_offer("file", NULL, 10, MAX_SIZE), API_ERR_INVALID_MESSAGE);
}

static void offer_refuses_overlong_type(void **state) {
  char mime[300];
  (void)state;
  memcpy(mime, "image/", 6);
  memset(mime + 6, 'x', sizeof(mime) - 7);
  mime[sizeof(mime) - 1] = '\0';
  assert_offer("file", mime, 10, API_ERR_INVALID_MESSAGE);
}

/* ---- Offers: extensions ---- */

static void offer_refuses_every_dangerous_extension(void **state) {
  char name[32];
  (void)state;
  for (size_t i = 0; i < ARRAY_LEN(dangerous_exts); i++) {
    strcpy(name, "file.");
    strcat(name, dangerous_exts[i]);
    assert_offer(name, "application/zip", 10, API_ERR_FILE_TYPE_NOT_ALLOWED);
  }
}

static void offer_refuses_windows_executables(void **state) {
  (void)state;
  assert_offer("setup.exe", "application/pdf", 10, API_ERR_FILE_TYPE_NOT_ALLOWED);
  assert_offer("screensaver.scr", "image/png", 10, API_ERR_FILE_TYPE_NOT_ALLOWED);
  assert_offer("lib.dll", "application/zip", 10, API_ERR_FILE_TYPE_NOT_ALLOWED);
  assert_offer("install.msi", "application/zip", 10, API_ERR_FILE_TYPE_NOT_ALLOWED);
  assert_offer("shortcut.lnk", "text/plain", 10, API_ERR_FILE_TYPE_NOT_ALLOWED);
}

static void offer_refuses_scripts(void **state) {
  (void)state;
  assert_offer("run.sh", "text/plain", 10, API_ERR_FILE_TYPE_NOT_ALLOWED);
  assert_offer("tool.ps1", "text/plain", 10, API_ERR_FILE_TYPE_NOT_ALLOWED);
  assert_offer("x.vbs", "text/plain", 10, API_ERR_FILE_TYPE_NOT_ALLOWED);
  assert_offer("app.js", "application/json", 10, API_ERR_FILE_TYPE_NOT_ALLOWED);
  assert_offer("a.py", "text/plain", 10, API_ERR_FILE_TYPE_NOT_ALLOWED);
  assert_offer("batch.cmd", "text/plain", 10, API_ERR_FILE_TYPE_NOT_ALLOWED);
}

static void offer_refuses_web_content(void **state) {
  (void)state;
  assert_offer("page.html", "text/plain", 10, API_ERR_FILE_TYPE_NOT_ALLOWED);
  assert_offer("page.HTM", "text/plain", 10, API_ERR_FILE_TYPE_NOT_ALLOWED);
  assert_offer("logo.svg", "image/png", 10, API_ERR_FILE_TYPE_NOT_ALLOWED);
  assert_offer("app.hta", "text/plain", 10, API_ERR_FILE_TYPE_NOT_ALLOWED);
}

static void offer_refuses_packages_and_disk_images(void **state) {
  (void)state;
  assert_offer("app.apk", "application/zip", 10, API_ERR_FILE_TYPE_NOT_ALLOWED);
  assert_offer("lib.jar", "application/zip", 10, API_ERR_FILE_TYPE_NOT_ALLOWED);
  assert_offer("pkg.deb", "application/gzip", 10, API_ERR_FILE_TYPE_NOT_ALLOWED);
  assert_offer("disk.dmg", "application/zip", 10, API_ERR_FILE_TYPE_NOT_ALLOWED);
  assert_offer("cd.iso", "application/zip", 10, API_ERR_FILE_TYPE_NOT_ALLOWED);
}

/* Issue 13 defect 11: renderers, macro and script containers. */
static void offer_refuses_renderer_and_macro_extensions(void **state) {
  (void)state;
  static const char *const exts[] = {
    "mhtml", "mht", "svgz", "xht", "chm", "vb", "msix", "appx", "jnlp", "url", "scf", "wsc",
    "desktop", "command", "ps1xml", "xll", "xlsm", "docm",
  };
  for (size_t i = 0; i < ARRAY_LEN(exts); i++) {
    char name[64] = "shared.";
    strcat(name, exts[i]);
    assert_offer(name, "text/plain", 10, API_ERR_FILE_TYPE_NOT_ALLOWED);
    assert_offer(name, "application/zip", 10, API_ERR_FILE_TYPE_NOT_ALLOWED);
  }
}

/* The shared handle sniffs like the per-thread one. */
static void sniff_shared_handle(void **state) {
  (void)state;
  char a[128], b[128];
  static const char text[] = "Meeting notes\nAlice: hello\n";
  assert_int_equal(filecheck_sniff(text, sizeof(text) - 1, a, sizeof(a)), 0);
  assert_int_equal(filecheck_sniff_shared(text, sizeof(text) - 1, b, sizeof(b)), 0);
  assert_string_equal(a, b);
  filecheck_shared_cleanup();
  filecheck_shared_cleanup(); /* idempotent */
}

static void offer_refuses_dangerous_extension_in_any_case(void **state) {
  (void)state;
  assert_offer("EVIL.ExE", "application/pdf", 10, API_ERR_FILE_TYPE_NOT_ALLOWED);
  assert_offer("x.Ps1", "text/plain", 10, API_ERR_FILE_TYPE_NOT_ALLOWED);
}

static void offer_refuses_double_extension_ending_dangerous(void **state) {
  (void)state;
  assert_offer("invoice.pdf.exe", "application/pdf", 10, API_ERR_FILE_TYPE_NOT_ALLOWED);
  assert_offer("photo.jpg.scr", "image/jpeg", 10, API_ERR_FILE_TYPE_NOT_ALLOWED);
}

static void offer_refuses_dangerous_extension_before_trailing_dots(void **state) {
  (void)state;
  assert_offer("evil.exe.", "application/pdf", 10, API_ERR_FILE_TYPE_NOT_ALLOWED);
  assert_offer("evil.exe . .", "application/pdf", 10, API_ERR_FILE_TYPE_NOT_ALLOWED);
  assert_offer("dir/evil.bat", "text/plain", 10, API_ERR_FILE_TYPE_NOT_ALLOWED);
}

static void offer_allows_dangerous_word_before_last_extension(void **state) {
  (void)state;
  assert_offer("setup.exe.zip", "application/zip", 10, API_OK);
  assert_offer("page.html.txt", "text/plain", 10, API_OK);
}

static void offer_refuses_name_from_another_family(void **state) {
  (void)state;
  assert_offer("x.png", "application/pdf", 10, API_ERR_FILE_TYPE_NOT_ALLOWED);
  assert_offer("song.mp3", "image/png", 10, API_ERR_FILE_TYPE_NOT_ALLOWED);
  assert_offer("notes.txt", "application/zip", 10, API_ERR_FILE_TYPE_NOT_ALLOWED);
  assert_offer("report.pdf", "text/plain", 10, API_ERR_FILE_TYPE_NOT_ALLOWED);
  assert_offer("movie.mov", "audio/mpeg", 10, API_ERR_FILE_TYPE_NOT_ALLOWED);
}

static void offer_accepts_name_in_the_declared_family(void **state) {
  (void)state;
  assert_offer("photo.JPG", "image/jpeg", 10, API_OK);
  assert_offer("photo.png", "image/jpeg", 10, API_OK);
  assert_offer("clip.webm", "audio/webm", 10, API_OK);
  assert_offer("clip.webm", "video/webm", 10, API_OK);
  assert_offer("data.csv", "application/vnd.ms-excel", 10, API_OK);
  assert_offer("data.csv", "text/csv", 10, API_OK);
  assert_offer("Q3.docx",
               "application/vnd.openxmlformats-officedocument.wordprocessingml.document", 10,
               API_OK);
  assert_offer("backup.tar.gz", "application/gzip", 10, API_OK);
}

static void offer_accepts_unknown_or_missing_extension(void **state) {
  (void)state;
  assert_offer("README", "text/plain", 10, API_OK);
  assert_offer("archive.xyz", "application/zip", 10, API_OK);
  assert_offer("trailing.", "text/plain", 10, API_OK);
}

static void offer_refuses_empty_name(void **state) {
  (void)state;
  assert_offer("", "text/plain", 10, API_ERR_INVALID_MESSAGE);
  assert_int_equal(filecheck_offer(NULL, "text/plain", 10, MAX_SIZE), API_ERR_INVALID_MESSAGE);
}

/* ---- Offers: sizes ---- */

static void offer_refuses_size_zero(void **state) {
  (void)state;
  assert_offer("notes.txt", "text/plain", 0, API_ERR_INVALID_MESSAGE);
}

static void offer_accepts_size_equal_to_max(void **state) {
  (void)state;
  assert_offer("notes.txt", "text/plain", MAX_SIZE, API_OK);
  assert_offer("notes.txt", "text/plain", 1, API_OK);
}

static void offer_refuses_size_one_over_max(void **state) {
  (void)state;
  assert_offer("notes.txt", "text/plain", (uint64_t)MAX_SIZE + 1, API_ERR_FILE_TOO_LARGE);
  assert_offer("movie.mp4", "video/mp4", UINT64_MAX, API_ERR_FILE_TOO_LARGE);
}

static void offer_reports_type_before_size(void **state) {
  (void)state;
  assert_offer("setup.exe", "application/zip", UINT64_MAX, API_ERR_FILE_TYPE_NOT_ALLOWED);
  assert_offer("page", "text/html", UINT64_MAX, API_ERR_FILE_TYPE_NOT_ALLOWED);
}

/* ---- Sniffing ---- */

static void sniff_detects_png_signature(void **state) {
  (void)state;
  assert_sniffed(png_bytes, sizeof(png_bytes), "image/png");
}

static void sniff_detects_pdf_header(void **state) {
  (void)state;
  assert_sniffed(pdf_bytes, sizeof(pdf_bytes) - 1, "application/pdf");
}

static void sniff_detects_elf_header(void **state) {
  char mime[128];
  (void)state;
  assert_int_equal(filecheck_sniff(elf_bytes, sizeof(elf_bytes), mime, sizeof(mime)), 0);
  assert_string_equal(mime, "application/x-executable");
}

static void sniff_detects_shell_script(void **state) {
  (void)state;
  assert_sniffed(sh_bytes, sizeof(sh_bytes) - 1, "text/x-shellscript");
}

static void sniff_detects_html(void **state) {
  (void)state;
  assert_sniffed(html_bytes, sizeof(html_bytes) - 1, "text/html");
}

static void sniff_detects_plain_text(void **state) {
  (void)state;
  assert_sniffed(text_bytes, sizeof(text_bytes) - 1, "text/plain");
}

static void sniff_reports_empty_input(void **state) {
  (void)state;
  assert_sniffed(NULL, 0, "application/x-empty");
}

static void sniff_refuses_too_small_output(void **state) {
  char mime[6] = "stale";
  (void)state;
  assert_int_equal(filecheck_sniff(pdf_bytes, sizeof(pdf_bytes) - 1, mime, sizeof(mime)), -1);
  assert_string_equal(mime, "");
  assert_int_equal(filecheck_sniff(pdf_bytes, sizeof(pdf_bytes) - 1, mime, 0), -1);
}

static void sniff_reopens_after_cleanup(void **state) {
  (void)state;
  assert_sniffed(png_bytes, sizeof(png_bytes), "image/png");
  filecheck_cleanup();
  filecheck_cleanup(); /* idempotent */
  assert_sniffed(png_bytes, sizeof(png_bytes), "image/png");
}

static void *sniff_thread(void *arg) {
  char *mime = arg;
  if (filecheck_sniff(pdf_bytes, sizeof(pdf_bytes) - 1, mime, 128) != 0) mime[0] = '\0';
  filecheck_cleanup();
  return NULL;
}

static void sniff_works_on_another_thread(void **state) {
  char mime[128] = "";
  pthread_t t;
  (void)state;
  assert_sniffed(png_bytes, sizeof(png_bytes), "image/png");
  assert_int_equal(pthread_create(&t, NULL, sniff_thread, mime), 0);
  assert_int_equal(pthread_join(t, NULL), 0);
  assert_string_equal(mime, "application/pdf");
  assert_sniffed(png_bytes, sizeof(png_bytes), "image/png"); /* ours is still open */
}

/* ---- Matching ---- */

static void match_accepts_equal_types(void **state) {
  (void)state;
  for (size_t i = 0; i < ARRAY_LEN(allowed_types); i++)
    assert_match(allowed_types[i], allowed_types[i], API_OK);
}

static void match_ignores_case_and_parameters(void **state) {
  (void)state;
  assert_match("Text/CSV; charset=utf-8", "text/plain", API_OK);
  assert_match("image/png", "IMAGE/PNG", API_OK);
}

static void match_accepts_text_plain_for_text_types(void **state) {
  (void)state;
  assert_match("text/csv", "text/plain", API_OK);
  assert_match("text/markdown", "text/plain", API_OK);
  assert_match("application/json", "text/plain", API_OK);
}

static void match_accepts_zip_for_office_documents(void **state) {
  static const char *const office[] = {
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    "application/vnd.oasis.opendocument.text",
  };
  (void)state;
  for (size_t i = 0; i < ARRAY_LEN(office); i++) {
    assert_match(office[i], "application/zip", API_OK);
    assert_match(office[i], office[i], API_OK);
  }
}

static void match_accepts_webm_video_for_audio_webm(void **state) {
  (void)state;
  assert_match("audio/webm", "video/webm", API_OK);
  assert_match("video/webm", "video/webm", API_OK);
}

static void match_accepts_libmagic_names_for_the_same_format(void **state) {
  (void)state;
  assert_match("audio/wav", "audio/x-wav", API_OK);
  assert_match("image/bmp", "image/x-ms-bmp", API_OK);
  assert_match("application/rtf", "text/rtf", API_OK);
  assert_match("application/msword", "application/CDFV2", API_OK);
  assert_match("audio/ogg", "application/ogg", API_OK);
}

static void match_refuses_executables_whatever_was_declared(void **state) {
  static const char *const executables[] = {
    "application/x-executable", "application/x-dosexec", "application/x-sharedlib",
    "application/x-pie-executable", "application/vnd.microsoft.portable-executable",
    "text/x-shellscript", "text/html", "image/svg+xml",
  };
  (void)state;
  for (size_t i = 0; i < ARRAY_LEN(executables); i++) {
    assert_match("application/zip", executables[i], API_ERR_FILE_TYPE_NOT_ALLOWED);
    assert_match("text/plain", executables[i], API_ERR_FILE_TYPE_NOT_ALLOWED);
    assert_match(executables[i], executables[i], API_ERR_FILE_TYPE_NOT_ALLOWED);
  }
}

static void match_refuses_other_types(void **state) {
  (void)state;
  assert_match("image/png", "application/pdf", API_ERR_FILE_TYPE_NOT_ALLOWED);
  assert_match("image/png", "image/jpeg", API_ERR_FILE_TYPE_NOT_ALLOWED);
  assert_match("text/plain", "application/pdf", API_ERR_FILE_TYPE_NOT_ALLOWED);
  assert_match("application/zip", "video/webm", API_ERR_FILE_TYPE_NOT_ALLOWED);
  assert_match("video/webm", "audio/webm", API_ERR_FILE_TYPE_NOT_ALLOWED);
  assert_match("audio/webm", "video/mp4", API_ERR_FILE_TYPE_NOT_ALLOWED);
  assert_match("application/pdf", "application/zip", API_ERR_FILE_TYPE_NOT_ALLOWED);
  assert_match("text/plain", "application/octet-stream", API_ERR_FILE_TYPE_NOT_ALLOWED);
}

static void match_refuses_declared_type_off_the_allow_list(void **state) {
  (void)state;
  assert_match("application/octet-stream", "application/octet-stream",
               API_ERR_FILE_TYPE_NOT_ALLOWED);
  assert_match("text/x-c", "text/x-c", API_ERR_FILE_TYPE_NOT_ALLOWED);
}

static void match_refuses_missing_or_malformed_types(void **state) {
  (void)state;
  assert_match("", "text/plain", API_ERR_FILE_TYPE_NOT_ALLOWED);
  assert_match("text/plain", "", API_ERR_FILE_TYPE_NOT_ALLOWED);
  assert_match("text/plain", "text", API_ERR_FILE_TYPE_NOT_ALLOWED);
  assert_int_equal(filecheck_match(NULL, "text/plain"), API_ERR_FILE_TYPE_NOT_ALLOWED);
  assert_int_equal(filecheck_match("text/plain", NULL), API_ERR_FILE_TYPE_NOT_ALLOWED);
}

/* Sniffs bytes and matches the result against declared. */
static enum api_err sniff_and_match(const void *bytes, size_t len, const char *declared) {
  char mime[128];
  assert_int_equal(filecheck_sniff(bytes, len, mime, sizeof(mime)), 0);
  return filecheck_match(declared, mime);
}

static void sniffed_bytes_match_honest_declarations(void **state) {
  (void)state;
  assert_int_equal(sniff_and_match(png_bytes, sizeof(png_bytes), "image/png"), API_OK);
  assert_int_equal(sniff_and_match(pdf_bytes, sizeof(pdf_bytes) - 1, "application/pdf"), API_OK);
  assert_int_equal(sniff_and_match(text_bytes, sizeof(text_bytes) - 1, "text/markdown"), API_OK);
}

static void sniffed_bytes_refuse_disguised_files(void **state) {
  (void)state;
  assert_int_equal(sniff_and_match(elf_bytes, sizeof(elf_bytes), "image/png"),
                   API_ERR_FILE_TYPE_NOT_ALLOWED);
  assert_int_equal(sniff_and_match(sh_bytes, sizeof(sh_bytes) - 1, "text/plain"),
                   API_ERR_FILE_TYPE_NOT_ALLOWED);
  assert_int_equal(sniff_and_match(html_bytes, sizeof(html_bytes) - 1, "text/plain"),
                   API_ERR_FILE_TYPE_NOT_ALLOWED);
  assert_int_equal(sniff_and_match(pdf_bytes, sizeof(pdf_bytes) - 1, "image/png"),
                   API_ERR_FILE_TYPE_NOT_ALLOWED);
}

static int teardown(void **state) {
  (void)state;
  filecheck_cleanup();
  return 0;
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(offer_accepts_every_allowed_type),
    cmocka_unit_test(offer_ignores_type_case_and_parameters),
    cmocka_unit_test(offer_refuses_types_off_the_allow_list),
    cmocka_unit_test(offer_refuses_malformed_type),
    cmocka_unit_test(offer_refuses_overlong_type),
    cmocka_unit_test(offer_refuses_every_dangerous_extension),
    cmocka_unit_test(offer_refuses_renderer_and_macro_extensions),
    cmocka_unit_test(sniff_shared_handle),
    cmocka_unit_test(offer_refuses_windows_executables),
    cmocka_unit_test(offer_refuses_scripts),
    cmocka_unit_test(offer_refuses_web_content),
    cmocka_unit_test(offer_refuses_packages_and_disk_images),
    cmocka_unit_test(offer_refuses_dangerous_extension_in_any_case),
    cmocka_unit_test(offer_refuses_double_extension_ending_dangerous),
    cmocka_unit_test(offer_refuses_dangerous_extension_before_trailing_dots),
    cmocka_unit_test(offer_allows_dangerous_word_before_last_extension),
    cmocka_unit_test(offer_refuses_name_from_another_family),
    cmocka_unit_test(offer_accepts_name_in_the_declared_family),
    cmocka_unit_test(offer_accepts_unknown_or_missing_extension),
    cmocka_unit_test(offer_refuses_empty_name),
    cmocka_unit_test(offer_refuses_size_zero),
    cmocka_unit_test(offer_accepts_size_equal_to_max),
    cmocka_unit_test(offer_refuses_size_one_over_max),
    cmocka_unit_test(offer_reports_type_before_size),
    cmocka_unit_test(sniff_detects_png_signature),
    cmocka_unit_test(sniff_detects_pdf_header),
    cmocka_unit_test(sniff_detects_elf_header),
    cmocka_unit_test(sniff_detects_shell_script),
    cmocka_unit_test(sniff_detects_html),
    cmocka_unit_test(sniff_detects_plain_text),
    cmocka_unit_test(sniff_reports_empty_input),
    cmocka_unit_test(sniff_refuses_too_small_output),
    cmocka_unit_test(sniff_reopens_after_cleanup),
    cmocka_unit_test(sniff_works_on_another_thread),
    cmocka_unit_test(match_accepts_equal_types),
    cmocka_unit_test(match_ignores_case_and_parameters),
    cmocka_unit_test(match_accepts_text_plain_for_text_types),
    cmocka_unit_test(match_accepts_zip_for_office_documents),
    cmocka_unit_test(match_accepts_webm_video_for_audio_webm),
    cmocka_unit_test(match_accepts_libmagic_names_for_the_same_format),
    cmocka_unit_test(match_refuses_executables_whatever_was_declared),
    cmocka_unit_test(match_refuses_other_types),
    cmocka_unit_test(match_refuses_declared_type_off_the_allow_list),
    cmocka_unit_test(match_refuses_missing_or_malformed_types),
    cmocka_unit_test(sniffed_bytes_match_honest_declarations),
    cmocka_unit_test(sniffed_bytes_refuse_disguised_files),
  };
  return cmocka_run_group_tests(tests, NULL, teardown);
}

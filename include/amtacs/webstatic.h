/*
 * webstatic: amtacs-web's console, the files of src/web/console compiled in
 * at build time (cmake/embed_files.cmake) and served from that table alone:
 * no file system is read, so no path can reach anything else.
 *   GET / and /index.html        the console's one page (index.html)
 *   GET /console/<file>          a file of the table ("/console/pages/jobs.js")
 *   GET /console/v-<16 hex>/<file>  the same file under a version prefix
 * Only GET and HEAD (else 405). Every answer carries WEBSTATIC_CSP instead of
 * the API's default-src 'none', and an ETag (the content's SHA-256).
 * index.html and unversioned paths are Cache-Control: no-cache: a browser asks
 * again each time and gets 304 while the file is the same, so a new
 * amtacs-web is picked up at once. The embedded index.html names its files
 * under the build's own version (webstatic_version, a hash of them all), and
 * those answers are cached for a year, immutable: a reload costs one round
 * trip for index.html, not one per module. A version prefix other than the
 * build's (a page from before an upgrade) still gets the file, uncached.
 */
#ifndef AMTACS_WEBSTATIC_H
#define AMTACS_WEBSTATIC_H

#include <stdbool.h>
#include <stddef.h>

#include "amtacs/httpserv.h"

#define WEBSTATIC_CSP                                                                     \
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "     \
    "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"

struct webstatic_file {
    const char *path;  /* relative to src/web/console: "index.html", "pages/jobs.js" */
    const char *ctype; /* "text/javascript; charset=utf-8" */
    const char *etag;  /* quoted, as sent */
    const unsigned char *data;
    size_t len;
};

/* The table (generated). */
extern const struct webstatic_file webstatic_files[];
extern const size_t webstatic_files_count;
/* "v-" and 16 hex digits (generated). */
extern const char webstatic_version[];

/* True for the paths the console answers (anything outside /api/). */
bool webstatic_owns(const char *path);
/* The file a URL path names, or NULL. *current (if not NULL) says whether the
 * path carried this build's version prefix, i.e. may be cached for good. */
const struct webstatic_file *webstatic_find(const char *path, bool *current);
/* Answers the request (on the server's thread: it reads only memory). */
void webstatic_serve(struct httpserv_req *req);

#endif

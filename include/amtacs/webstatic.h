/*
 * webstatic: amtacs-web's console, the files of src/web/console compiled in
 * at build time (cmake/embed_files.cmake) and served from that table alone:
 * no file system is read, so no path can reach anything else.
 *   GET / and /index.html        the console's one page (index.html)
 *   GET /console/<file>          a file of the table ("/console/pages/jobs.js")
 * Only GET and HEAD (else 405). Every answer carries WEBSTATIC_CSP instead of
 * the API's default-src 'none', and Cache-Control: no-cache with an ETag (the
 * content's SHA-256): a browser asks again each time and gets 304 while the
 * file is the same, so a new amtacs-web is picked up at once.
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

/* True for the paths the console answers (anything outside /api/). */
bool webstatic_owns(const char *path);
/* The file a URL path names, or NULL. */
const struct webstatic_file *webstatic_find(const char *path);
/* Answers the request (on the server's thread: it reads only memory). */
void webstatic_serve(struct httpserv_req *req);

#endif

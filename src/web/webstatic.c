/* webstatic: the console's files, from the table compiled in (see the header). */
#include "amtacs/webstatic.h"

#include <stdio.h>
#include <string.h>

#include "webint.h"

#define PREFIX "/console/"

bool webstatic_owns(const char *path)
{
    return strcmp(path, "/api") && strncmp(path, "/api/", 5);
}

/* "v-" and 16 lowercase hex digits and '/': the length of the prefix, else 0 */
static size_t version_prefix(const char *name)
{
    if (strncmp(name, "v-", 2))
        return 0;
    for (size_t i = 2; i < 18; i++)
        if (!((name[i] >= '0' && name[i] <= '9') || (name[i] >= 'a' && name[i] <= 'f')))
            return 0;
    return name[18] == '/' ? 19 : 0;
}

const struct webstatic_file *webstatic_find(const char *path, bool *current)
{
    const char *name;
    bool cur = false;
    if (!strcmp(path, "/") || !strcmp(path, "/index.html")) {
        name = "index.html";
    } else if (!strncmp(path, PREFIX, strlen(PREFIX))) {
        name = path + strlen(PREFIX);
        size_t v = version_prefix(name);
        if (v) {
            cur = !strncmp(name, webstatic_version, v - 1);
            name += v;
            /* index.html changes with every build: never under a version */
            if (!strcmp(name, "index.html"))
                return NULL;
        }
    } else {
        return NULL;
    }
    if (current)
        *current = cur;
    /* an exact name of the table: "..", "//" or "%2e" can only miss */
    for (size_t i = 0; i < webstatic_files_count; i++)
        if (!strcmp(webstatic_files[i].path, name))
            return &webstatic_files[i];
    return NULL;
}

static bool etag_matches(const char *inm, const char *etag)
{
    if (!inm)
        return false;
    if (!strcmp(inm, "*"))
        return true;
    size_t n = strlen(etag);
    for (const char *p = inm; (p = strstr(p, etag)); p += n) {
        /* a list member: "W/" in front allowed, a separator or the end after */
        char after = p[n];
        if (after == '\0' || after == ',' || after == ' ')
            return true;
    }
    return false;
}

void webstatic_serve(struct httpserv_req *req)
{
    const char *m = httpserv_method(req);
    bool current = false;
    const struct webstatic_file *f = webstatic_find(httpserv_path(req), &current);
    if (!f) {
        /* as the API's: one kind of error from the whole server */
        problemf(req, 404, "no such resource: %.200s (the console is at /, the API at /api/v1)",
                 httpserv_path(req));
        return;
    }
    if (strcmp(m, "GET") && strcmp(m, "HEAD")) {
        problemf(req, 405, "%.16s is not allowed here; use GET, HEAD", m);
        httpserv_reply_header(req, "Allow", "GET, HEAD");
        return;
    }
    httpserv_reply_header(req, "Content-Security-Policy", WEBSTATIC_CSP);
    httpserv_reply_header(req, "Cache-Control",
                          current ? "public, max-age=31536000, immutable" : "no-cache");
    httpserv_reply_header(req, "ETag", f->etag);
    if (etag_matches(httpserv_header(req, "If-None-Match"), f->etag)) {
        httpserv_reply(req, 304, f->ctype);
        return;
    }
    struct buf *b = httpserv_reply_body(req);
    buf_reset(b);
    if (buf_append(b, f->data, f->len)) {
        problem(req, 500, "out of memory");
        return;
    }
    httpserv_reply(req, 200, f->ctype);
}

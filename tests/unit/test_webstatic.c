/* webstatic: the console's embedded table and how a URL path finds a file
 * in it (and nothing else). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "amtacs/webstatic.h"

static bool one_of(const char *s, const char *const *list)
{
    for (; *list; list++)
        if (!strcmp(s, *list))
            return true;
    return false;
}

/* Every file: a plain relative name, a type a browser runs or shows as the
 * console means, an ETag of the content's hash, its bytes NUL-terminated. */
static void test_table(void **state)
{
    (void)state;
    static const char *const types[] = {"text/html; charset=utf-8", "text/css; charset=utf-8",
                                        "text/javascript; charset=utf-8", "image/svg+xml",
                                        "image/png", NULL};
    static const char *const needed[] = {"index.html", "style.css", "app.js", "api.js", "sse.js",
                                         "ui.js", "pages/login.js", "pages/jobs.js",
                                         "pages/job.js", NULL};
    assert_true(webstatic_files_count >= 9);
    for (size_t i = 0; i < webstatic_files_count; i++) {
        const struct webstatic_file *f = &webstatic_files[i];
        assert_true(one_of(f->ctype, types));
        assert_int_not_equal(f->path[0], '/');
        assert_null(strstr(f->path, ".."));
        assert_null(strstr(f->path, "//"));
        assert_int_equal(strlen(f->etag), 34);
        assert_int_equal(f->etag[0], '"');
        assert_true(f->len > 0);
        assert_int_equal(f->data[f->len], 0);
        assert_null(webstatic_find(f->path, NULL)); /* without /console/ in front: no file */
        char url[512];
        snprintf(url, sizeof url, "/console/%s", f->path);
        assert_ptr_equal(webstatic_find(url, NULL), f);
    }
    for (const char *const *n = needed; *n; n++) {
        char url[128];
        snprintf(url, sizeof url, "/console/%s", *n);
        if (!webstatic_find(url, NULL))
            fail_msg("%s is not embedded", *n);
    }
    assert_null(webstatic_find("/console/README.md", NULL));
}

static void test_paths(void **state)
{
    (void)state;
    const struct webstatic_file *index = webstatic_find("/console/index.html", NULL);
    assert_non_null(index);
    assert_ptr_equal(webstatic_find("/", NULL), index);
    assert_ptr_equal(webstatic_find("/index.html", NULL), index);
    static const char *const misses[] = {
        "", "/console", "/console/", "/console/../index.html", "/console/./app.js",
        "/console//app.js", "/console/pages/../app.js", "/console/app.js/", "/console/APP.JS",
        "/console/%2e%2e/index.html", "/app.js", "/pages/jobs.js", "/console/pages",
        "/console/pages/", "//console/app.js", "/console/app.js\n", "/index.html/", NULL};
    for (const char *const *m = misses; *m; m++)
        if (webstatic_find(*m, NULL))
            fail_msg("%s found a file", *m);
}

/* The API keeps /api and everything under /api/; the console has the rest. */
static void test_owns(void **state)
{
    (void)state;
    assert_false(webstatic_owns("/api"));
    assert_false(webstatic_owns("/api/"));
    assert_false(webstatic_owns("/api/v1/jobs"));
    assert_false(webstatic_owns("/api/v2/x"));
    assert_true(webstatic_owns("/"));
    assert_true(webstatic_owns("/console/app.js"));
    assert_true(webstatic_owns("/apix"));
    assert_true(webstatic_owns("/openapi.json"));
}

/* Under this build's version a file is the same entry and may be cached for
 * good; under another version it is still found but not "current"; the
 * prefix is exactly "v-", 16 lowercase hex digits and '/'. index.html is
 * never versioned, and the embedded one names its files under the version. */
static void test_versioned(void **state)
{
    (void)state;
    assert_int_equal(strlen(webstatic_version), 18);
    assert_memory_equal(webstatic_version, "v-", 2);
    char url[256];
    bool cur = true;
    assert_non_null(webstatic_find("/console/app.js", &cur));
    assert_false(cur);
    snprintf(url, sizeof url, "/console/%s/pages/jobs.js", webstatic_version);
    assert_ptr_equal(webstatic_find(url, &cur), webstatic_find("/console/pages/jobs.js", NULL));
    assert_true(cur);
    assert_non_null(webstatic_find("/console/v-0123456789abcdef/app.js", &cur));
    assert_true(!strcmp(webstatic_version, "v-0123456789abcdef") || !cur);
    static const char *const misses[] = {
        "/console/v-0123456789ABCDEF/app.js", "/console/v-0123456789abcde/app.js",
        "/console/v-0123456789abcdef0/app.js", "/console/v-0123456789abcdef/",
        "/console/v-0123456789abcdef/index.html", "/console/v-0123456789abcdef//app.js",
        "/console/v-0123456789abcdef/../app.js", "/console/v-/app.js", "/console/v-", NULL};
    for (const char *const *m = misses; *m; m++)
        if (webstatic_find(*m, NULL))
            fail_msg("%s found a file", *m);
    const struct webstatic_file *index = webstatic_find("/", NULL);
    snprintf(url, sizeof url, "\"/console/%s/app.js\"", webstatic_version);
    assert_non_null(strstr((const char *)index->data, url));
    assert_null(strstr((const char *)index->data, "\"/console/app.js\""));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_paths),
        cmocka_unit_test(test_owns),
        cmocka_unit_test(test_versioned),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

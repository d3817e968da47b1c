/* openapi: the document amtacs-web serves describes exactly the routes it
 * serves (webapi_routes, the router's own table), both ways. */
#include <ctype.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <cjson/cJSON.h>

#include "amtacs/openapi.h"
#include "amtacs/webapi.h"

#define MAX_ROUTES 128

static const char *const METHODS[] = {"get", "put", "post", "delete", "options",
                                      "head", "patch", "trace"};

static cJSON *document(void)
{
    assert_int_equal(strlen(amtacs_openapi_json), amtacs_openapi_json_len);
    cJSON *doc = cJSON_ParseWithLength(amtacs_openapi_json, amtacs_openapi_json_len);
    assert_non_null(doc);
    return doc;
}

static void lower(char *dst, const char *src, size_t n)
{
    size_t i = 0;
    for (; src[i] && i + 1 < n; i++)
        dst[i] = (char)tolower((unsigned char)src[i]);
    dst[i] = '\0';
}

static bool served(const char *method, const char *path)
{
    const char *m[MAX_ROUTES], *p[MAX_ROUTES];
    size_t n = webapi_routes(m, p, MAX_ROUTES);
    assert_true(n <= MAX_ROUTES);
    for (size_t i = 0; i < n; i++) {
        char lm[16];
        lower(lm, m[i], sizeof lm);
        if (!strcmp(lm, method) && !strcmp(p[i], path))
            return true;
    }
    return false;
}

static void test_is_openapi_3_1(void **state)
{
    (void)state;
    cJSON *doc = document();
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(doc, "openapi");
    assert_true(cJSON_IsString(v));
    assert_memory_equal(v->valuestring, "3.1.", 4);
    const cJSON *servers = cJSON_GetObjectItemCaseSensitive(doc, "servers");
    assert_string_equal(cJSON_GetArrayItem(servers, 0)->child->valuestring, "/api/v1");
    cJSON_Delete(doc);
}

/* Every route the router serves is an operation of the document. */
static void test_every_route_documented(void **state)
{
    (void)state;
    cJSON *doc = document();
    const cJSON *paths = cJSON_GetObjectItemCaseSensitive(doc, "paths");
    const char *m[MAX_ROUTES], *p[MAX_ROUTES];
    size_t n = webapi_routes(m, p, MAX_ROUTES);
    assert_true(n > 0 && n <= MAX_ROUTES);
    for (size_t i = 0; i < n; i++) {
        char lm[16];
        lower(lm, m[i], sizeof lm);
        const cJSON *item = cJSON_GetObjectItemCaseSensitive(paths, p[i]);
        const cJSON *op = cJSON_GetObjectItemCaseSensitive(item, lm);
        if (!cJSON_IsObject(op))
            fail_msg("%s %s is served but not in src/web/openapi.json", m[i], p[i]);
        if (!cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(op, "responses")))
            fail_msg("%s %s has no responses in the document", m[i], p[i]);
    }
    cJSON_Delete(doc);
}

/* A path parameter {x} of a route is declared (at the path or the operation). */
static bool declares(const cJSON *params, const cJSON *components, const char *name)
{
    const cJSON *prm;
    cJSON_ArrayForEach(prm, params) {
        const cJSON *ref = cJSON_GetObjectItemCaseSensitive(prm, "$ref");
        if (cJSON_IsString(ref)) {
            const char *pre = "#/components/parameters/";
            if (strncmp(ref->valuestring, pre, strlen(pre)))
                continue;
            prm = cJSON_GetObjectItemCaseSensitive(
                cJSON_GetObjectItemCaseSensitive(components, "parameters"),
                ref->valuestring + strlen(pre));
        }
        const cJSON *in = cJSON_GetObjectItemCaseSensitive(prm, "in");
        const cJSON *nm = cJSON_GetObjectItemCaseSensitive(prm, "name");
        if (cJSON_IsString(in) && !strcmp(in->valuestring, "path") && cJSON_IsString(nm) &&
            !strcmp(nm->valuestring, name))
            return true;
    }
    return false;
}

/* Every operation of the document is served (HEAD wherever GET is), and
 * declares each of its path's parameters. */
static void test_every_operation_served(void **state)
{
    (void)state;
    cJSON *doc = document();
    const cJSON *paths = cJSON_GetObjectItemCaseSensitive(doc, "paths");
    const cJSON *components = cJSON_GetObjectItemCaseSensitive(doc, "components");
    const cJSON *item;
    size_t ops = 0;
    cJSON_ArrayForEach(item, paths) {
        const cJSON *op;
        cJSON_ArrayForEach(op, item) {
            bool method = false;
            for (size_t i = 0; i < sizeof METHODS / sizeof METHODS[0]; i++)
                method = method || !strcmp(op->string, METHODS[i]);
            if (!method)
                continue;
            ops++;
            bool ok = !strcmp(op->string, "head") ? served("get", item->string)
                                                  : served(op->string, item->string);
            if (!ok)
                fail_msg("the document has %s %s, which amtacs-web does not serve", op->string,
                         item->string);
            for (const char *s = strchr(item->string, '{'); s; s = strchr(s + 1, '{')) {
                char name[64];
                size_t l = strcspn(s + 1, "}");
                assert_true(l < sizeof name);
                memcpy(name, s + 1, l);
                name[l] = '\0';
                if (!declares(cJSON_GetObjectItemCaseSensitive(item, "parameters"), components,
                              name) &&
                    !declares(cJSON_GetObjectItemCaseSensitive(op, "parameters"), components,
                              name))
                    fail_msg("%s %s does not declare its path parameter %s", op->string,
                             item->string, name);
            }
        }
    }
    const char *m[MAX_ROUTES], *p[MAX_ROUTES];
    assert_int_equal(ops, webapi_routes(m, p, MAX_ROUTES));
    cJSON_Delete(doc);
}

/* The check can fail: a made-up route is not served, a real one is. */
static void test_check_can_fail(void **state)
{
    (void)state;
    assert_true(served("get", "/jobs/{id}"));
    assert_false(served("delete", "/jobs/{id}"));
    assert_false(served("get", "/jobs/{id}/nothing"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_is_openapi_3_1),
        cmocka_unit_test(test_every_route_documented),
        cmocka_unit_test(test_every_operation_served),
        cmocka_unit_test(test_check_can_fail),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * Fuzzes config_load_string(), the configuration file's parser (libyaml via
 * yamldoc, then the checks of every key). A file that loads must dump as YAML
 * that loads again and dumps the same: the dump is what `amtacsctl config
 * check` shows as the effective configuration.
 *
 * Nothing here writes a file: config_load_string() only parses (a relative
 * path stays as written; tls.ca_file is only tested for readability with
 * access()), and the dump goes to memory.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "amtacs/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The dump of cfg (malloc'd, *len bytes), or NULL when out of memory. */
static char *dump(const struct amtacs_config *cfg, size_t *len)
{
    char *text = NULL;
    FILE *f = open_memstream(&text, len);
    if (!f)
        return NULL;
    bool ok = config_dump(cfg, f);
    if (fclose(f) != 0 || !ok) {
        free(text);
        return NULL;
    }
    return text;
}

static void check_errors(const struct config_errors *errs)
{
    size_t n = config_errors_count(errs);
    if (n == 0)
        abort(); /* a file that does not load says why */
    for (size_t i = 0; i < n; i++) {
        const char *e = config_errors_get(errs, i);
        if (!e || !*e)
            abort();
    }
    if (config_errors_get(errs, n))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* An exact-size copy without a terminating NUL: reads past the end show. */
    char *text = malloc(size ? size : 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    struct config_errors *errs = NULL;
    const struct amtacs_config *cfg = config_load_string("fuzz.yaml", text, size, &errs);
    free(text);
    if (!cfg) {
        check_errors(errs);
        config_errors_free(errs);
        return 0;
    }
    if (errs || cfg->n_connections < 1)
        abort();

    size_t len1 = 0, len2 = 0;
    char *d1 = dump(cfg, &len1);
    config_free(cfg);
    if (!d1)
        return 0;
    cfg = config_load_string("fuzz.yaml", d1, len1, &errs);
    if (!cfg) {
        fprintf(stderr, "the dump does not load again:\n%s\n", d1);
        config_errors_print(errs, stderr);
        abort();
    }
    char *d2 = dump(cfg, &len2);
    config_free(cfg);
    if (d2 && (len1 != len2 || memcmp(d1, d2, len1))) {
        fprintf(stderr, "the dump changes on a second round:\n%s\n---\n%s\n", d1, d2);
        abort();
    }
    free(d1);
    free(d2);
    return 0;
}

#include "amtacs/yamldoc.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <yaml.h>

struct yd_doc {
    char *name;
    yaml_document_t ydoc;
    bool loaded;     /* ydoc holds a document that must be deleted */
    char **errors;
    size_t nerrors;
    size_t cap;
};

static void add_error(struct yd_doc *doc, size_t line, size_t col, const char *msg)
{
    if (doc->nerrors == doc->cap) {
        size_t ncap = doc->cap ? doc->cap * 2 : 8;
        char **n = realloc(doc->errors, ncap * sizeof *n);
        if (!n)
            return; /* out of memory: the caller still sees the earlier errors */
        doc->errors = n;
        doc->cap = ncap;
    }
    size_t need;
    char *text;
    if (line) {
        need = (size_t)snprintf(NULL, 0, "%s:%zu:%zu: %s", doc->name, line, col, msg) + 1;
        text = malloc(need);
        if (text)
            snprintf(text, need, "%s:%zu:%zu: %s", doc->name, line, col, msg);
    } else {
        need = (size_t)snprintf(NULL, 0, "%s: %s", doc->name, msg) + 1;
        text = malloc(need);
        if (text)
            snprintf(text, need, "%s: %s", doc->name, msg);
    }
    if (text)
        doc->errors[doc->nerrors++] = text;
}

static struct yd_doc *doc_new(const char *name)
{
    struct yd_doc *doc = calloc(1, sizeof *doc);
    if (!doc)
        return NULL;
    doc->name = strdup(name ? name : "<input>");
    if (!doc->name) {
        free(doc);
        return NULL;
    }
    return doc;
}

static void load(struct yd_doc *doc, yaml_parser_t *parser)
{
    if (!yaml_parser_load(parser, &doc->ydoc)) {
        char msg[512];
        const char *problem = parser->problem ? parser->problem : "invalid YAML";
        if (parser->context)
            snprintf(msg, sizeof msg, "YAML syntax error: %s %s", parser->context, problem);
        else
            snprintf(msg, sizeof msg, "YAML syntax error: %s", problem);
        add_error(doc, parser->problem_mark.line + 1, parser->problem_mark.column + 1, msg);
        return;
    }
    doc->loaded = true;
    /* A second document would be silently ignored: say so instead. */
    yaml_document_t extra;
    if (yaml_parser_load(parser, &extra)) {
        yaml_node_t *root = yaml_document_get_root_node(&extra);
        if (root)
            add_error(doc, root->start_mark.line + 1, root->start_mark.column + 1,
                      "only one YAML document is allowed in this file");
        yaml_document_delete(&extra);
    }
}

struct yd_doc *yd_load_file(const char *path)
{
    struct yd_doc *doc = doc_new(path);
    if (!doc)
        return NULL;
    struct stat st;
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
        add_error(doc, 0, 0, "is a directory, not a YAML file");
        return doc;
    }
    FILE *f = fopen(path, "rb");
    if (!f) {
        char msg[256];
        snprintf(msg, sizeof msg, "cannot open: %s", strerror(errno));
        add_error(doc, 0, 0, msg);
        return doc;
    }
    yaml_parser_t parser;
    if (!yaml_parser_initialize(&parser)) {
        fclose(f);
        yd_free(doc);
        return NULL;
    }
    yaml_parser_set_input_file(&parser, f);
    load(doc, &parser);
    yaml_parser_delete(&parser);
    if (ferror(f)) {
        char msg[256];
        snprintf(msg, sizeof msg, "read error: %s", strerror(errno));
        add_error(doc, 0, 0, msg);
    }
    fclose(f);
    return doc;
}

struct yd_doc *yd_load_string(const char *name, const char *text, size_t len)
{
    struct yd_doc *doc = doc_new(name);
    if (!doc)
        return NULL;
    yaml_parser_t parser;
    if (!yaml_parser_initialize(&parser)) {
        yd_free(doc);
        return NULL;
    }
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    load(doc, &parser);
    yaml_parser_delete(&parser);
    return doc;
}

void yd_free(struct yd_doc *doc)
{
    if (!doc)
        return;
    if (doc->loaded)
        yaml_document_delete(&doc->ydoc);
    for (size_t i = 0; i < doc->nerrors; i++)
        free(doc->errors[i]);
    free(doc->errors);
    free(doc->name);
    free(doc);
}

const char *yd_name(const struct yd_doc *doc) { return doc->name; }

static yaml_node_t *node(const struct yd_doc *doc, int id)
{
    if (!doc->loaded || id <= 0)
        return NULL;
    return yaml_document_get_node((yaml_document_t *)&doc->ydoc, id);
}

int yd_root(const struct yd_doc *doc)
{
    if (!doc->loaded || !yaml_document_get_root_node((yaml_document_t *)&doc->ydoc))
        return 0;
    return 1; /* libyaml numbers nodes from 1 and the root is always the first */
}

enum yd_type yd_type(const struct yd_doc *doc, int id)
{
    yaml_node_t *n = node(doc, id);
    if (!n)
        return YD_NONE;
    switch (n->type) {
    case YAML_SCALAR_NODE:
        return YD_SCALAR;
    case YAML_SEQUENCE_NODE:
        return YD_SEQ;
    case YAML_MAPPING_NODE:
        return YD_MAP;
    default:
        return YD_NONE;
    }
}

size_t yd_line(const struct yd_doc *doc, int id)
{
    yaml_node_t *n = node(doc, id);
    return n ? n->start_mark.line + 1 : 0;
}

size_t yd_column(const struct yd_doc *doc, int id)
{
    yaml_node_t *n = node(doc, id);
    return n ? n->start_mark.column + 1 : 0;
}

const char *yd_scalar(const struct yd_doc *doc, int id)
{
    yaml_node_t *n = node(doc, id);
    if (!n || n->type != YAML_SCALAR_NODE)
        return NULL;
    return (const char *)n->data.scalar.value;
}

bool yd_is_plain(const struct yd_doc *doc, int id)
{
    yaml_node_t *n = node(doc, id);
    return n && n->type == YAML_SCALAR_NODE && n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
}

bool yd_is_null(const struct yd_doc *doc, int id)
{
    if (!yd_is_plain(doc, id))
        return false;
    const char *s = yd_scalar(doc, id);
    return !*s || !strcmp(s, "~") || !strcmp(s, "null") || !strcmp(s, "Null") ||
           !strcmp(s, "NULL");
}

size_t yd_len(const struct yd_doc *doc, int id)
{
    yaml_node_t *n = node(doc, id);
    if (!n)
        return 0;
    if (n->type == YAML_SEQUENCE_NODE)
        return (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
    if (n->type == YAML_MAPPING_NODE)
        return (size_t)(n->data.mapping.pairs.top - n->data.mapping.pairs.start);
    return 0;
}

int yd_seq_at(const struct yd_doc *doc, int seq, size_t i)
{
    yaml_node_t *n = node(doc, seq);
    if (!n || n->type != YAML_SEQUENCE_NODE || i >= yd_len(doc, seq))
        return 0;
    return n->data.sequence.items.start[i];
}

int yd_map_key(const struct yd_doc *doc, int map, size_t i)
{
    yaml_node_t *n = node(doc, map);
    if (!n || n->type != YAML_MAPPING_NODE || i >= yd_len(doc, map))
        return 0;
    return n->data.mapping.pairs.start[i].key;
}

int yd_map_value(const struct yd_doc *doc, int map, size_t i)
{
    yaml_node_t *n = node(doc, map);
    if (!n || n->type != YAML_MAPPING_NODE || i >= yd_len(doc, map))
        return 0;
    return n->data.mapping.pairs.start[i].value;
}

int yd_map_get(const struct yd_doc *doc, int map, const char *key)
{
    size_t n = yd_len(doc, map);
    if (yd_type(doc, map) != YD_MAP)
        return 0;
    for (size_t i = 0; i < n; i++) {
        const char *k = yd_scalar(doc, yd_map_key(doc, map, i));
        if (k && !strcmp(k, key))
            return yd_map_value(doc, map, i);
    }
    return 0;
}

void yd_errorf(struct yd_doc *doc, int id, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    add_error(doc, yd_line(doc, id), yd_column(doc, id), msg);
}

size_t yd_error_count(const struct yd_doc *doc) { return doc->nerrors; }

const char *yd_error(const struct yd_doc *doc, size_t i)
{
    return i < doc->nerrors ? doc->errors[i] : NULL;
}

static const char *type_word(const struct yd_doc *doc, int id)
{
    switch (yd_type(doc, id)) {
    case YD_SCALAR:
        return "a scalar";
    case YD_SEQ:
        return "a list";
    case YD_MAP:
        return "a mapping";
    default:
        return "nothing";
    }
}

bool yd_check_keys(struct yd_doc *doc, int map, const char *const allowed[])
{
    if (yd_type(doc, map) != YD_MAP) {
        yd_errorf(doc, map, "expected a mapping (key: value), got %s", type_word(doc, map));
        return false;
    }
    bool clean = true;
    size_t n = yd_len(doc, map);
    for (size_t i = 0; i < n; i++) {
        int kid = yd_map_key(doc, map, i);
        const char *k = yd_scalar(doc, kid);
        if (!k) {
            yd_errorf(doc, kid, "a key must be a plain string");
            clean = false;
            continue;
        }
        bool known = false;
        for (size_t a = 0; allowed[a]; a++)
            if (!strcmp(allowed[a], k))
                known = true;
        if (!known) {
            yd_errorf(doc, kid, "unknown key '%s'", k);
            clean = false;
        }
        for (size_t j = 0; j < i; j++) {
            const char *prev = yd_scalar(doc, yd_map_key(doc, map, j));
            if (prev && !strcmp(prev, k)) {
                yd_errorf(doc, kid, "duplicate key '%s' (first given on line %zu)", k,
                          yd_line(doc, yd_map_key(doc, map, j)));
                clean = false;
                break;
            }
        }
    }
    return clean;
}

static bool scalar_or_error(struct yd_doc *doc, int id, const char *what, const char **s)
{
    *s = yd_scalar(doc, id);
    if (!*s) {
        yd_errorf(doc, id, "expected %s, got %s", what, type_word(doc, id));
        return false;
    }
    yaml_node_t *n = node(doc, id);
    if (strlen(*s) != n->data.scalar.length) {
        yd_errorf(doc, id, "expected %s, got a string with an embedded NUL byte", what);
        return false;
    }
    return true;
}

bool yd_get_string(struct yd_doc *doc, int id, const char **out)
{
    const char *s;
    if (!scalar_or_error(doc, id, "a string", &s))
        return false;
    *out = s;
    return true;
}

bool yd_get_long(struct yd_doc *doc, int id, long min, long max, long *out)
{
    const char *s;
    if (!scalar_or_error(doc, id, "an integer", &s))
        return false;
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (!*s || *end || errno == EINVAL) {
        yd_errorf(doc, id, "expected an integer, got '%s'", s);
        return false;
    }
    if (errno == ERANGE || v < min || v > max) {
        yd_errorf(doc, id, "%s is out of range: expected an integer from %ld to %ld", s, min, max);
        return false;
    }
    *out = v;
    return true;
}

bool yd_get_double(struct yd_doc *doc, int id, double min, double max, double *out)
{
    const char *s;
    if (!scalar_or_error(doc, id, "a number", &s))
        return false;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (!*s || *end || !isfinite(v)) {
        yd_errorf(doc, id, "expected a number, got '%s'", s);
        return false;
    }
    if (errno == ERANGE || v < min || v > max) {
        yd_errorf(doc, id, "%s is out of range: expected a number from %g to %g", s, min, max);
        return false;
    }
    *out = v;
    return true;
}

bool yd_get_bool(struct yd_doc *doc, int id, bool *out)
{
    const char *s;
    if (!scalar_or_error(doc, id, "a boolean (true/false)", &s))
        return false;
    if (!strcmp(s, "true") || !strcmp(s, "True") || !strcmp(s, "TRUE")) {
        *out = true;
        return true;
    }
    if (!strcmp(s, "false") || !strcmp(s, "False") || !strcmp(s, "FALSE")) {
        *out = false;
        return true;
    }
    yd_errorf(doc, id, "expected a boolean (true/false), got '%s'", s);
    return false;
}

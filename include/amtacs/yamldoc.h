/*
 * yamldoc: a parsed YAML file as a read-only tree with positions, plus an error
 * list whose entries read "file:line:column: message". Shared by the connector's
 * config module and the simulator's catalog so that both report bad input alike.
 *
 * Nodes are named by int ids (0 = no node); ids stay valid until yd_free().
 */
#ifndef AMTACS_YAMLDOC_H
#define AMTACS_YAMLDOC_H

#include <stdbool.h>
#include <stddef.h>

struct yd_doc;

enum yd_type {
    YD_NONE = 0, /* id 0 or out of range */
    YD_SCALAR,   /* plain or quoted string */
    YD_SEQ,      /* - item */
    YD_MAP,      /* key: value */
};

/* Parses a file. Returns a document even on a syntax error (then it has one
 * error and no root); returns NULL only when out of memory. Caller frees. */
struct yd_doc *yd_load_file(const char *path);
/* As yd_load_file, from memory; name is used in error messages. */
struct yd_doc *yd_load_string(const char *name, const char *text, size_t len);
/* Frees the document; NULL is a no-op. */
void yd_free(struct yd_doc *doc);

/* The file name the document was loaded as (borrowed). */
const char *yd_name(const struct yd_doc *doc);
/* Root node id, 0 for an empty document or after a syntax error. */
int yd_root(const struct yd_doc *doc);
enum yd_type yd_type(const struct yd_doc *doc, int id);
/* 1-based position of the node's start. */
size_t yd_line(const struct yd_doc *doc, int id);
size_t yd_column(const struct yd_doc *doc, int id);
/* The scalar's text (borrowed, NUL-terminated) or NULL if not a scalar. */
const char *yd_scalar(const struct yd_doc *doc, int id);
/* True if the scalar was written without quotes (so `~`/`null`/empty mean null). */
bool yd_is_plain(const struct yd_doc *doc, int id);
/* True for a plain scalar `~`, `null`, `Null`, `NULL` or empty. */
bool yd_is_null(const struct yd_doc *doc, int id);
/* Items in a sequence, pairs in a map, 0 otherwise. */
size_t yd_len(const struct yd_doc *doc, int id);
int yd_seq_at(const struct yd_doc *doc, int seq, size_t i);
int yd_map_key(const struct yd_doc *doc, int map, size_t i);
int yd_map_value(const struct yd_doc *doc, int map, size_t i);
/* Value of `key` in a map, 0 if absent. */
int yd_map_get(const struct yd_doc *doc, int map, const char *key);

/* Records "file:line:column: message" for the node (id 0: position unknown). */
void yd_errorf(struct yd_doc *doc, int id, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
size_t yd_error_count(const struct yd_doc *doc);
/* The i-th error (borrowed). */
const char *yd_error(const struct yd_doc *doc, size_t i);

/* Records an error for every key of `map` not in the NULL-terminated `allowed`
 * list and for every key given twice; records one if `map` is not a map.
 * Returns true if the map was clean. */
bool yd_check_keys(struct yd_doc *doc, int map, const char *const allowed[]);

/* Typed readers: on a wrong type or range they record an error naming what was
 * expected and return false, leaving *out unchanged. */
bool yd_get_string(struct yd_doc *doc, int id, const char **out);
bool yd_get_long(struct yd_doc *doc, int id, long min, long max, long *out);
bool yd_get_double(struct yd_doc *doc, int id, double min, double max, double *out);
bool yd_get_bool(struct yd_doc *doc, int id, bool *out);

#endif

/* text: UTF-8 checks and the quoting rules used where outside text is printed. */
#ifndef AMTACS_TEXT_H
#define AMTACS_TEXT_H

#include <stdbool.h>
#include <stddef.h>

#include "amtacs/buf.h"

/* Length of the valid UTF-8 sequence at p (1-4), or 0 if p starts an invalid
 * one (overlong forms, surrogates and code points past U+10FFFF are invalid). */
size_t text_utf8_seq(const unsigned char *p, size_t n);
/* True if all n bytes are valid UTF-8. */
bool text_utf8_valid(const char *p, size_t n);
/* Appends s as a JSON string literal, quotes included: `"` and `\` escaped,
 * control characters as \n, \t, ... or \u00XX, invalid UTF-8 bytes as \ufffd. */
enum buf_rc text_json_quote(struct buf *b, const char *s, size_t n)
    __attribute__((warn_unused_result));
/* Appends s for a one-line human context: control characters become a space,
 * invalid UTF-8 bytes become U+FFFD; nothing else changes. */
enum buf_rc text_one_line(struct buf *b, const char *s, size_t n)
    __attribute__((warn_unused_result));

#endif

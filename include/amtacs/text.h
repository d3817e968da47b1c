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
 * control characters as \n, \t, ... or \u00XX, invalid UTF-8 bytes as \ufffd.
 * Other UTF-8 (C1 and bidi controls included) passes as it is: this is the form
 * of stored documents and of the wire, which stay byte-exact. */
enum buf_rc text_json_quote(struct buf *b, const char *s, size_t n)
    __attribute__((warn_unused_result));
/* Where text_escape() writes. In every form C0 controls, DEL, C1 controls
 * (U+0080..U+009F) and the bidi embedding, override and isolate controls
 * (U+202A..U+202E, U+2066..U+2069) come out as \uXXXX (\n, \t, \r, \b, \f,
 * \" and \\ as in JSON where the form says), so nothing an outside party wrote
 * can drive a terminal or reorder what it shows; all other UTF-8 passes as it is. */
enum text_escape_form {
    TEXT_ESC_LINE,   /* one line of a human view: newline and tab escaped too;
                      * invalid UTF-8 bytes as \xNN */
    TEXT_ESC_LINES,  /* a multi-line document for a terminal: newline and tab pass;
                      * invalid bytes as \xNN */
    TEXT_ESC_QUOTED, /* a JSON string literal, quotes included (log lines, message
                      * lines); invalid bytes as \ufffd */
    TEXT_ESC_JSON,   /* JSON text already made: the escapes keep it valid and its
                      * meaning unchanged; invalid bytes as \ufffd */
};
/* Appends s as `form` says. The one escaping rule for terminals and log lines. */
enum buf_rc text_escape(struct buf *b, const char *s, size_t n, enum text_escape_form form)
    __attribute__((warn_unused_result));
/* True for a code point text_escape() never lets through. */
bool text_drives_terminal(unsigned cp);
/* Appends s for a one-line human context: control characters become a space,
 * invalid UTF-8 bytes become U+FFFD; nothing else changes. */
enum buf_rc text_one_line(struct buf *b, const char *s, size_t n)
    __attribute__((warn_unused_result));

#endif

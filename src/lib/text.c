#include "amtacs/text.h"

#include <stdbool.h>
#include <stdio.h>

size_t text_utf8_seq(const unsigned char *p, size_t n)
{
    if (n == 0)
        return 0;
    unsigned char c = p[0];
    if (c < 0x80)
        return 1;
    size_t len;
    unsigned cp;
    if (c >= 0xC2 && c <= 0xDF) {
        len = 2;
        cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        cp = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        cp = c & 0x07;
    } else {
        return 0;
    }
    if (n < len)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((p[i] & 0xC0) != 0x80)
            return 0;
        cp = (cp << 6) | (p[i] & 0x3F);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) || cp > 0x10FFFF ||
        (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return len;
}

bool text_utf8_valid(const char *p, size_t n)
{
    const unsigned char *u = (const unsigned char *)p;
    size_t i = 0;
    while (i < n) {
        size_t l = text_utf8_seq(u + i, n - i);
        if (!l)
            return false;
        i += l;
    }
    return true;
}

static const char replacement[] = "\xEF\xBF\xBD"; /* U+FFFD */

/* The code point of a sequence text_utf8_seq() accepted as `len` bytes long. */
static unsigned code_point(const unsigned char *p, size_t len)
{
    static const unsigned char lead_mask[5] = {0, 0x7F, 0x1F, 0x0F, 0x07};
    unsigned cp = p[0] & lead_mask[len];
    for (size_t i = 1; i < len; i++)
        cp = (cp << 6) | (p[i] & 0x3F);
    return cp;
}

bool text_drives_terminal(unsigned cp)
{
    return cp < 0x20 || (cp >= 0x7F && cp <= 0x9F) || (cp >= 0x202A && cp <= 0x202E) ||
           (cp >= 0x2066 && cp <= 0x2069);
}

/* How escape() writes: */
enum {
    ESC_QUOTED = 1,   /* a JSON string literal: quotes around, `"` and `\` escaped */
    ESC_TERMINAL = 2, /* C1 controls and bidi controls as \uXXXX too */
    ESC_LINES = 4,    /* newline and tab pass (a multi-line document) */
    ESC_JSON = 8,     /* invalid bytes as \ufffd (valid JSON) rather than \xNN */
};

/* Printable ASCII that goes out as it is. */
static bool plain(unsigned char c, unsigned how)
{
    return c >= 0x20 && c < 0x7F && (!(how & ESC_QUOTED) || (c != '"' && c != '\\'));
}

/* The one place where outside text is escaped for JSON, a terminal or a log line. */
static enum buf_rc escape(struct buf *b, const char *s, size_t n, unsigned how)
{
    const unsigned char *u = (const unsigned char *)s;
    enum buf_rc rc = (how & ESC_QUOTED) ? buf_putc(b, '"') : BUF_OK;
    size_t i = 0;
    while (!rc && i < n) {
        /* Runs of plain characters go in one piece: most of any text is. */
        size_t run = i;
        while (run < n && plain(u[run], how))
            run++;
        if (run > i) {
            rc = buf_append(b, u + i, run - i);
            i = run;
            continue;
        }
        unsigned char c = u[i];
        size_t l = text_utf8_seq(u + i, n - i);
        if (!l) {
            rc = (how & (ESC_QUOTED | ESC_JSON)) ? buf_puts(b, "\\ufffd")
                                                  : buf_printf(b, "\\x%02x", c);
            i++;
            continue;
        }
        if (l > 1) {
            unsigned cp = code_point(u + i, l);
            if ((how & ESC_TERMINAL) && text_drives_terminal(cp))
                rc = buf_printf(b, "\\u%04x", cp);
            else
                rc = buf_append(b, u + i, l);
            i += l;
            continue;
        }
        if ((how & ESC_LINES) && (c == '\n' || c == '\t')) {
            rc = buf_putc(b, (char)c);
            i++;
            continue;
        }
        switch (c) {
        case '"':
            rc = buf_puts(b, "\\\"");
            break;
        case '\\':
            rc = buf_puts(b, "\\\\");
            break;
        case '\n':
            rc = buf_puts(b, "\\n");
            break;
        case '\r':
            rc = buf_puts(b, "\\r");
            break;
        case '\t':
            rc = buf_puts(b, "\\t");
            break;
        case '\b':
            rc = buf_puts(b, "\\b");
            break;
        case '\f':
            rc = buf_puts(b, "\\f");
            break;
        default:
            rc = buf_printf(b, "\\u%04x", c); /* the rest of C0, and DEL */
        }
        i++;
    }
    if (!rc && (how & ESC_QUOTED))
        rc = buf_putc(b, '"');
    return rc;
}

enum buf_rc text_json_quote(struct buf *b, const char *s, size_t n)
{
    return escape(b, s, n, ESC_QUOTED);
}

enum buf_rc text_escape(struct buf *b, const char *s, size_t n, enum text_escape_form form)
{
    static const unsigned how[] = {
        [TEXT_ESC_LINE] = ESC_TERMINAL,
        [TEXT_ESC_LINES] = ESC_TERMINAL | ESC_LINES,
        [TEXT_ESC_QUOTED] = ESC_TERMINAL | ESC_QUOTED,
        [TEXT_ESC_JSON] = ESC_TERMINAL | ESC_LINES | ESC_JSON,
    };
    return escape(b, s, n, how[form]);
}

enum buf_rc text_one_line(struct buf *b, const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    enum buf_rc rc = BUF_OK;
    size_t i = 0;
    while (!rc && i < n) {
        size_t l = text_utf8_seq(u + i, n - i);
        if (!l) {
            rc = buf_puts(b, replacement);
            i++;
        } else if (l == 1 && (u[i] < 0x20 || u[i] == 0x7F)) {
            rc = buf_putc(b, ' ');
            i++;
        } else {
            rc = buf_append(b, u + i, l);
            i += l;
        }
    }
    return rc;
}

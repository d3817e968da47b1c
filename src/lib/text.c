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

/* Printable ASCII that JSON takes as it is. */
static bool json_plain(unsigned char c) { return c >= 0x20 && c < 0x7F && c != '"' && c != '\\'; }

enum buf_rc text_json_quote(struct buf *b, const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    enum buf_rc rc = buf_putc(b, '"');
    size_t i = 0;
    while (!rc && i < n) {
        /* Runs of plain characters go in one piece: most of any text is. */
        size_t run = i;
        while (run < n && json_plain(u[run]))
            run++;
        if (run > i) {
            rc = buf_append(b, u + i, run - i);
            i = run;
            continue;
        }
        unsigned char c = u[i];
        size_t l = text_utf8_seq(u + i, n - i);
        if (!l) {
            rc = buf_puts(b, "\\ufffd");
            i++;
            continue;
        }
        if (l > 1) {
            rc = buf_append(b, u + i, l);
            i += l;
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
            if (c < 0x20 || c == 0x7F)
                rc = buf_printf(b, "\\u%04x", c);
            else
                rc = buf_putc(b, (char)c);
        }
        i++;
    }
    if (!rc)
        rc = buf_putc(b, '"');
    return rc;
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

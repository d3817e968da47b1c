/*
 * text_escape: nothing that can drive a terminal or reorder what it shows gets
 * through (C0, DEL, C1 as UTF-8 and as raw bytes, bidi controls), in every
 * form, while ordinary UTF-8 passes unchanged; the daemon's log lines use it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "amtacs/buf.h"
#include "amtacs/log.h"
#include "amtacs/text.h"

static const enum text_escape_form forms[] = {TEXT_ESC_LINE, TEXT_ESC_LINES, TEXT_ESC_QUOTED,
                                              TEXT_ESC_JSON};

/* s (n bytes) escaped as `form`, NUL-terminated; the caller frees. */
static char *esc(const char *s, size_t n, enum text_escape_form form)
{
    struct buf b;
    buf_init(&b, 0);
    assert_int_equal(text_escape(&b, s, n, form), BUF_OK);
    assert_int_equal(buf_putc(&b, '\0'), BUF_OK);
    return buf_take(&b);
}

/* The bytes that must never reach a terminal: any C0 but newline and tab
 * (kept by TEXT_ESC_LINES only), DEL, a raw 0x80..0x9F, the UTF-8 of C1
 * controls and of the bidi controls. Returns the offset of one, or -1. */
static long raw_control(const char *out, bool lines_kept)
{
    const unsigned char *u = (const unsigned char *)out;
    size_t n = strlen(out);
    for (size_t i = 0; i < n;) {
        size_t l = text_utf8_seq(u + i, n - i);
        if (!l)
            return (long)i; /* a raw byte a terminal may take as an 8-bit C1 */
        unsigned cp = u[i];
        if (l == 2 && u[i] == 0xC2 && u[i + 1] <= 0x9F)
            return (long)i;
        if (l == 3 && u[i] == 0xE2 &&
            ((u[i + 1] == 0x80 && u[i + 2] >= 0xAA && u[i + 2] <= 0xAE) ||
             (u[i + 1] == 0x81 && u[i + 2] >= 0xA6 && u[i + 2] <= 0xA9)))
            return (long)i;
        if (l == 1 && (cp < 0x20 || cp == 0x7F) && !(lines_kept && (cp == '\n' || cp == '\t')))
            return (long)i;
        i += l;
    }
    return -1;
}

static void expect(const char *in, size_t n, enum text_escape_form form, const char *want)
{
    char *got = esc(in, n, form);
    assert_string_equal(got, want);
    free(got);
}

static size_t utf8(unsigned cp, char *out)
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

static void c0_and_del(void **state)
{
    (void)state;
    for (unsigned c = 0; c <= 0x7F; c++) {
        if (c >= 0x20 && c < 0x7F)
            continue;
        char in[3] = {'a', (char)c, 'b'};
        char want[16];
        const char *shortform = c == '\n' ? "\\n" : c == '\t' ? "\\t" : c == '\r' ? "\\r"
                                : c == '\b' ? "\\b" : c == '\f' ? "\\f" : NULL;
        if (shortform)
            snprintf(want, sizeof want, "a%sb", shortform);
        else
            snprintf(want, sizeof want, "a\\u%04xb", c);
        expect(in, 3, TEXT_ESC_LINE, want);
        char quoted[20];
        snprintf(quoted, sizeof quoted, "\"%s\"", want);
        expect(in, 3, TEXT_ESC_QUOTED, quoted);
        if (c == '\n' || c == '\t') {
            expect(in, 3, TEXT_ESC_LINES, (char[]){'a', (char)c, 'b', '\0'});
            expect(in, 3, TEXT_ESC_JSON, (char[]){'a', (char)c, 'b', '\0'});
        } else {
            expect(in, 3, TEXT_ESC_LINES, want);
            expect(in, 3, TEXT_ESC_JSON, want);
        }
        assert_true(text_drives_terminal(c));
    }
}

static void c1_as_utf8(void **state)
{
    (void)state;
    for (unsigned cp = 0x80; cp <= 0x9F; cp++) {
        char in[4] = {'x', (char)0xC2, (char)cp, 'y'};
        char want[16];
        snprintf(want, sizeof want, "x\\u%04xy", cp);
        for (size_t f = 0; f < sizeof forms / sizeof forms[0]; f++) {
            char *got = esc(in, 4, forms[f]);
            assert_non_null(strstr(got, want));
            assert_int_equal(raw_control(got, false), -1);
            free(got);
        }
        assert_true(text_drives_terminal(cp));
    }
    /* CSI and OSC as a terminal would take them */
    static const char csi_osc[] = "\xC2\x9b" "31mred\xC2\x9d" "0;title\x07";
    expect(csi_osc, sizeof csi_osc - 1, TEXT_ESC_LINE,
           "\\u009b31mred\\u009d0;title\\u0007");
}

static void invalid_bytes(void **state)
{
    (void)state;
    /* 0x80..0xFF alone are never valid UTF-8: 8-bit C1 controls among them */
    for (unsigned c = 0x80; c <= 0xFF; c++) {
        char in[3] = {'x', (char)c, 'y'};
        char want[16];
        snprintf(want, sizeof want, "x\\x%02xy", c);
        expect(in, 3, TEXT_ESC_LINE, want);
        expect(in, 3, TEXT_ESC_LINES, want);
        expect(in, 3, TEXT_ESC_JSON, "x\\ufffdy");
        expect(in, 3, TEXT_ESC_QUOTED, "\"x\\ufffdy\"");
    }
    /* a lead byte whose sequence breaks off */
    expect("\xE2\x80", 2, TEXT_ESC_LINE, "\\xe2\\x80");
}

static void bidi_controls(void **state)
{
    (void)state;
    static const unsigned bidi[] = {0x202A, 0x202B, 0x202C, 0x202D, 0x202E,
                                    0x2066, 0x2067, 0x2068, 0x2069};
    for (size_t i = 0; i < sizeof bidi / sizeof bidi[0]; i++) {
        char in[8] = "a";
        size_t n = 1 + utf8(bidi[i], in + 1);
        in[n++] = 'b';
        char want[16];
        snprintf(want, sizeof want, "a\\u%04xb", bidi[i]);
        expect(in, n, TEXT_ESC_LINE, want);
        expect(in, n, TEXT_ESC_LINES, want);
        expect(in, n, TEXT_ESC_JSON, want);
        char quoted[20];
        snprintf(quoted, sizeof quoted, "\"%s\"", want);
        expect(in, n, TEXT_ESC_QUOTED, quoted);
        assert_true(text_drives_terminal(bidi[i]));
    }
}

static void ordinary_text_unchanged(void **state)
{
    (void)state;
    static const char *const texts[] = {
        "caf\xC3\xA9",                         /* café */
        "\xE6\x97\xA5\xE6\x9C\xAC",            /* 日本 */
        "\xC2\xA0nbsp \xC2\xA9 \xC3\xBF",      /* U+00A0, ©, ÿ: just past C1 */
        "\xE2\x80\xA9 \xE2\x81\xA5 \xE2\x81\xAA", /* U+2029, U+2065, U+206A: beside bidi */
        "\xF0\x9F\x98\x80 ok",                 /* an emoji */
        "JOB 4 ended: C:\\temp \"x\" = y",
    };
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        expect(texts[i], strlen(texts[i]), TEXT_ESC_LINE, texts[i]);
        expect(texts[i], strlen(texts[i]), TEXT_ESC_LINES, texts[i]);
        expect(texts[i], strlen(texts[i]), TEXT_ESC_JSON, texts[i]);
    }
    expect("a\"b\\c", 5, TEXT_ESC_QUOTED, "\"a\\\"b\\\\c\"");
    expect("line one\nline\ttwo\n", 18, TEXT_ESC_LINES, "line one\nline\ttwo\n");
}

/* Every code point, as UTF-8, in every form: only the listed ones change. */
static void every_code_point(void **state)
{
    (void)state;
    for (unsigned cp = 0x20; cp <= 0x10FFFF; cp++) {
        if (cp >= 0xD800 && cp <= 0xDFFF)
            continue;
        char in[4];
        size_t n = utf8(cp, in);
        char *got = esc(in, n, TEXT_ESC_LINE);
        assert_int_equal(raw_control(got, false), -1);
        if (!text_drives_terminal(cp) && cp != '"' && cp != '\\')
            assert_memory_equal(got, in, n);
        free(got);
    }
}

/* What is stored and sent (job logs, request bodies) keeps C1 and bidi as they are. */
static void json_quote_keeps_them(void **state)
{
    (void)state;
    struct buf b;
    buf_init(&b, 0);
    assert_int_equal(text_json_quote(&b, "\xC2\x9b\xE2\x80\xAE", 5), BUF_OK);
    assert_int_equal(buf_putc(&b, '\0'), BUF_OK);
    assert_string_equal(b.data, "\"\xC2\x9b\xE2\x80\xAE\"");
    buf_free(&b);
}

static void log_lines_escaped(void **state)
{
    (void)state;
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    assert_non_null(f);
    struct logger lg = {f, LOG_DEBUG};
    struct log_ctx x = {.connection = "AMT\xE2\x80\xAE" "DEMO", .job = 7};
    log_event(&lg, LOG_ERROR, "amt.error", &x, "server said: %s",
              "\xC2\x9b" "2J\xC2\x9d" "0;pwned\x07 \xE2\x80\xAEtxt.exe \x9b" "1m");
    fclose(f);
    assert_int_equal(raw_control(text, false), (long)len - 1); /* only the final newline */
    assert_non_null(strstr(text, "connection=\"AMT\\u202eDEMO\""));
    assert_non_null(strstr(text, "msg=\"server said: \\u009b2J\\u009d0;pwned\\u0007 "
                                 "\\u202etxt.exe \\ufffd1m\""));
    free(text);
}

/* A reload changes the level through log_set_level(): lines below it go, above it come. */
static void log_level_set(void **state)
{
    (void)state;
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    assert_non_null(f);
    struct logger lg = {f, LOG_INFO};
    log_event(&lg, LOG_DEBUG, "a.hidden", NULL, "x");
    log_set_level(&lg, LOG_DEBUG);
    assert_true(log_on(&lg, LOG_DEBUG));
    log_event(&lg, LOG_DEBUG, "b.shown", NULL, "x");
    log_set_level(&lg, LOG_ERROR);
    assert_false(log_on(&lg, LOG_WARN));
    log_event(&lg, LOG_WARN, "c.hidden", NULL, "x");
    fclose(f);
    assert_null(strstr(text, "a.hidden"));
    assert_non_null(strstr(text, "event=b.shown"));
    assert_null(strstr(text, "c.hidden"));
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(c0_and_del),
        cmocka_unit_test(c1_as_utf8),
        cmocka_unit_test(invalid_bytes),
        cmocka_unit_test(bidi_controls),
        cmocka_unit_test(ordinary_text_unchanged),
        cmocka_unit_test(every_code_point),
        cmocka_unit_test(json_quote_keeps_them),
        cmocka_unit_test(log_lines_escaped),
        cmocka_unit_test(log_level_set),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

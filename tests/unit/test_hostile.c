/*
 * Every answer of the Batch Server is hostile: a table of malformed answers,
 * each with the named error it must produce, and a set of valid answers at
 * the edges of the rules that must still parse to the right values.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "amtacs/amt.h"
#include "amtacs/buf.h"
#include "amtacs/jsoncheck.h"

#define HB AMT_CALL_HEARTBEAT
#define LOGON AMT_CALL_LOGON
#define START AMT_CALL_START
#define KILL AMT_CALL_KILL
#define MON AMT_CALL_MONITOR
#define MANY AMT_CALL_MONITOR_MANY
#define MSGS AMT_CALL_MESSAGES

#define PROTO AMT_ERR_PROTOCOL

struct row {
    enum amt_call call;
    long http;
    const char *body;
    size_t len; /* the literal's size: embedded NULs count */
    const char *name;
    enum amt_status status;
};

/* A 200 answer that must fail as a protocol error. Mind the C rule that a \x
 * escape eats every hex digit after it: such literals are split ("\xAC" "abc"). */
#define ROW(call, body, name) {call, 200, body, sizeof(body) - 1, name, PROTO}
/* Any status, any expected outcome. */
#define HROW(call, http, body, name, st) {call, http, body, sizeof(body) - 1, name, st}

static const struct row rows[] = {
    /* ---- the body as a whole */
    ROW(HB, "", "json.empty"),
    ROW(MON, " \r\n\t ", "json.empty"),
    ROW(HB, "\xEF\xBB\xBF{}", "json.bom"),
    ROW(LOGON, "\xEF\xBB\xBF{\"AmtLogonToken\":\"abc\"}", "json.bom"),
    ROW(HB, "{\"status\":\"ok\"}\0", "json.nul_byte"),
    ROW(LOGON, "\0{}", "json.nul_byte"),
    ROW(LOGON, "{\"AmtLogonToken\":\"ab\0cd\"}", "json.nul_byte"),
    ROW(MSGS, "{\"messages\":[],\0\"more\":false}", "json.nul_byte"),
    ROW(START, "{\"BatchRequestId\":42\0}", "json.nul_byte"),
    ROW(HB, "[]", "json.not_object"),
    ROW(START, "[{\"BatchRequestId\":4280}]", "json.not_object"),
    ROW(KILL, "\"BatchRequestId\"", "json.not_object"),
    ROW(START, "4280", "json.not_object"),
    ROW(HB, "true", "json.not_object"),
    ROW(HB, "null", "json.not_object"),
    ROW(MON, "-1", "json.not_object"),
    ROW(HB, "{}{}", "json.trailing_data"),
    ROW(START, "{\"BatchRequestId\":1} x", "json.trailing_data"),
    ROW(KILL, "{\"BatchRequestId\":1}]", "json.trailing_data"),
    ROW(HB, "{}\n{}", "json.trailing_data"),
    ROW(HB, "{},", "json.trailing_data"),
    ROW(HB, "{} // comment", "json.trailing_data"),
    ROW(HB, "<html><body>502 Bad Gateway</body></html>", "json.syntax"),

    /* ---- cut short */
    ROW(HB, "{", "json.truncated"),
    ROW(HB, "{\"status\"", "json.truncated"),
    ROW(HB, "{\"status\":", "json.truncated"),
    ROW(START, "{\"BatchRequestId\":42", "json.truncated"),
    ROW(HB, "{\"status\":\"o", "json.truncated"),
    ROW(HB, "{\"features\":[\"MonitorJobs\"", "json.truncated"),
    ROW(KILL, "{\"accepted\":tr", "json.truncated"),
    ROW(HB, "{\"status\":\"\\u00", "json.truncated"),
    ROW(HB, "{\"status\":\"\\", "json.truncated"),
    ROW(START, "{\"BatchRequestId\":-", "json.truncated"),
    ROW(START, "{\"BatchRequestId\":1.", "json.truncated"),
    ROW(START, "{\"BatchRequestId\":1e", "json.truncated"),
    ROW(HB, "{\"status\":\"\\ud83d", "json.truncated"),

    /* ---- invalid UTF-8 */
    ROW(HB, "{\"status\":\"\x80\"}", "utf8.invalid"),
    ROW(HB, "{\"status\":\"\xBF\"}", "utf8.invalid"),
    ROW(HB, "{\"status\":\"\xFF\"}", "utf8.invalid"),
    ROW(HB, "{\"status\":\"\xFE\xFF\"}", "utf8.invalid"),
    ROW(HB, "{\"status\":\"\xF8\x88\x80\x80\x80\"}", "utf8.invalid"),
    ROW(MON, "{\"\x80\":1}", "utf8.invalid"),
    ROW(MSGS, "{\"messages\":[{\"seq\":1,\"text\":\"caf\xE9\"}]}", "utf8.truncated"),
    ROW(HB, "{\"status\":\"\xC3\"}", "utf8.truncated"),
    ROW(HB, "{\"status\":\"\xE2\x82\"}", "utf8.truncated"),
    ROW(HB, "{\"status\":\"\xF0\x9F\x98\"}", "utf8.truncated"),
    ROW(HB, "{\"status\":\"ok\"}\xE2\x82", "utf8.truncated"),
    ROW(HB, "{\"status\":\"\xC0\xAF\"}", "utf8.overlong"),
    ROW(HB, "{\"status\":\"\xC1\xBF\"}", "utf8.overlong"),
    ROW(HB, "{\"status\":\"\xE0\x80\xAF\"}", "utf8.overlong"),
    ROW(HB, "{\"status\":\"\xE0\x9F\xBF\"}", "utf8.overlong"),
    ROW(HB, "{\"status\":\"\xF0\x80\x80\xAF\"}", "utf8.overlong"),
    ROW(LOGON, "{\"AmtLogonToken\":\"\xC0\x80\"}", "utf8.overlong"),
    ROW(HB, "{\"status\":\"\xED\xA0\x80\"}", "utf8.surrogate"),
    ROW(HB, "{\"status\":\"\xED\xBF\xBF\"}", "utf8.surrogate"),
    ROW(MSGS, "{\"messages\":[{\"seq\":1,\"text\":\"\xED\xA0\xBD\xED\xB8\x80\"}]}",
        "utf8.surrogate"),
    ROW(HB, "{\"status\":\"\xF4\x90\x80\x80\"}", "utf8.too_big"),
    ROW(HB, "{\"status\":\"\xF5\x80\x80\x80\"}", "utf8.too_big"),
    ROW(HB, "{\"status\":\"\xF7\xBF\xBF\xBF\"}", "utf8.too_big"),

    /* ---- control characters */
    ROW(HB, "{\"status\":\"o\x01k\"}", "json.control_char"),
    ROW(MSGS, "{\"messages\":[{\"seq\":1,\"text\":\"line\none\"}]}", "json.control_char"),
    ROW(MSGS, "{\"messages\":[{\"seq\":1,\"text\":\"tab\there\"}]}", "json.control_char"),
    ROW(HB, "{\"status\":\"\x1F\"}", "json.control_char"),
    ROW(LOGON, "{\"AmtLogonToken\":\"abc\r\nX-Evil: 1\"}", "json.control_char"),
    ROW(HB, "{\"st\x1b[31matus\":\"ok\"}", "json.control_char"),
    ROW(HB, "\x0B{}", "json.control_char"),
    ROW(HB, "{\"status\":\x0C\"ok\"}", "json.control_char"),
    ROW(HB, "{\"status\":\"ok\"\x7F}", "json.control_char"),

    /* ---- escapes */
    ROW(HB, "{\"status\":\"\\u0000\"}", "json.nul_escape"),
    ROW(LOGON, "{\"AmtLogonToken\":\"abc\\u0000def\"}", "json.nul_escape"),
    ROW(MSGS, "{\"messages\":[{\"seq\":1,\"text\":\"a\\u0000\"}]}", "json.nul_escape"),
    ROW(START, "{\"BatchRequestId\\u0000\":1}", "json.nul_escape"),
    ROW(HB, "{\"status\":\"\\x41\"}", "json.bad_escape"),
    ROW(HB, "{\"status\":\"\\'\"}", "json.bad_escape"),
    ROW(HB, "{\"status\":\"\\U0041\"}", "json.bad_escape"),
    ROW(HB, "{\"status\":\"\\u12G4\"}", "json.bad_escape"),
    ROW(HB, "{\"status\":\"\\a\"}", "json.bad_escape"),
    ROW(HB, "{\"status\":\"\\0\"}", "json.bad_escape"),
    ROW(HB, "{\"status\":\"\\u00e\"}", "json.bad_escape"),
    ROW(HB, "{\"status\":\"\\ ok\"}", "json.bad_escape"),
    ROW(HB, "{\"status\":\"\\uD800\"}", "json.lone_surrogate"),
    ROW(HB, "{\"status\":\"\\uDC00\"}", "json.lone_surrogate"),
    ROW(HB, "{\"status\":\"\\uD800\\u0041\"}", "json.lone_surrogate"),
    ROW(HB, "{\"status\":\"\\uD800x\"}", "json.lone_surrogate"),
    ROW(HB, "{\"status\":\"\\uDBFF\\uDBFF\"}", "json.lone_surrogate"),
    ROW(HB, "{\"status\":\"\\uDFFF\\uD800\"}", "json.lone_surrogate"),
    ROW(MSGS, "{\"messages\":[{\"seq\":1,\"text\":\"\\ud83d\\n\"}]}", "json.lone_surrogate"),

    /* ---- numbers */
    ROW(START, "{\"BatchRequestId\":01}", "json.number_syntax"),
    ROW(START, "{\"BatchRequestId\":-01}", "json.number_syntax"),
    ROW(START, "{\"BatchRequestId\":00}", "json.number_syntax"),
    ROW(START, "{\"BatchRequestId\":+1}", "json.number_syntax"),
    ROW(START, "{\"BatchRequestId\":.5}", "json.number_syntax"),
    ROW(START, "{\"BatchRequestId\":1.}", "json.number_syntax"),
    ROW(START, "{\"BatchRequestId\":1.e5}", "json.number_syntax"),
    ROW(START, "{\"BatchRequestId\":1e}", "json.number_syntax"),
    ROW(START, "{\"BatchRequestId\":1e+}", "json.number_syntax"),
    ROW(START, "{\"BatchRequestId\":0x10}", "json.number_syntax"),
    ROW(START, "{\"BatchRequestId\":1.2.3}", "json.number_syntax"),
    ROW(START, "{\"BatchRequestId\":--1}", "json.number_syntax"),
    ROW(START, "{\"BatchRequestId\":- 1}", "json.number_syntax"),
    ROW(START, "{\"BatchRequestId\":1e5e1}", "json.number_syntax"),
    ROW(MON, "{\"BatchRequestId\":1,\"code\":-Infinity}", "json.number_syntax"),
    ROW(START, "{\"BatchRequestId\":4280abc}", "json.number_syntax"),
    ROW(START, "{\"BatchRequestId\":1e999}", "json.number_range"),
    ROW(MON, "{\"BatchRequestId\":1,\"code\":-1e999}", "json.number_range"),
    ROW(HB, "{\"x\":1e309}", "json.number_range"),
    ROW(HB, "{\"x\":1.8e308}", "json.number_range"),
    ROW(HB, "{\"x\":9.999999999999999e308}", "json.number_range"),
    ROW(HB, "{\"x\":1e-400}", "json.number_range"),
    ROW(HB, "{\"x\":4.9e-324}", "json.number_range"),
    ROW(MSGS, "{\"messages\":[{\"seq\":9007199254740992,\"text\":\"\"}]}", "json.number_range"),
    ROW(MSGS, "{\"messages\":[{\"seq\":9007199254740993,\"text\":\"\"}]}", "json.number_range"),
    ROW(MSGS, "{\"messages\":[],\"next\":-9007199254740992}", "json.number_range"),
    ROW(START, "{\"BatchRequestId\":18446744073709551617}", "json.number_range"),
    ROW(HB, "{\"x\":100000000000000000000000000000000000000000000000000}", "json.number_range"),
    ROW(HB, "{\"x\":1.000000000000000001}", "json.number_precision"),
    ROW(HB, "{\"x\":0.12345678901234567890}", "json.number_precision"),
    ROW(START, "{\"BatchRequestId\":4280.00000000000000000001}", "json.number_precision"),
    ROW(HB, "{\"x\":0.00000000000000000000000000000000000000001}", "json.number_precision"),
    ROW(HB, "{\"x\":NaN}", "json.literal"),
    ROW(HB, "{\"x\":Infinity}", "json.literal"),
    ROW(KILL, "{\"BatchRequestId\":1,\"accepted\":True}", "json.literal"),
    ROW(KILL, "{\"BatchRequestId\":1,\"accepted\":FALSE}", "json.literal"),
    ROW(HB, "{\"x\":nul}", "json.literal"),
    ROW(HB, "{\"x\":undefined}", "json.literal"),
    ROW(HB, "{\"x\":truee}", "json.literal"),
    ROW(HB, "{\"x\":nulll}", "json.literal"),

    /* ---- structure */
    ROW(HB, "{'status':'ok'}", "json.syntax"),
    ROW(HB, "{status:\"ok\"}", "json.syntax"),
    ROW(HB, "{\"status\" \"ok\"}", "json.syntax"),
    ROW(HB, "{\"status\"::\"ok\"}", "json.syntax"),
    ROW(HB, "{\"status\":\"ok\",}", "json.syntax"),
    ROW(HB, "{\"features\":[\"MonitorJobs\",]}", "json.syntax"),
    ROW(HB, "{\"a\":1 \"b\":2}", "json.syntax"),
    ROW(HB, "{\"a\":1]", "json.syntax"),
    ROW(HB, "{\"a\":[1}", "json.syntax"),
    ROW(HB, "{,}", "json.syntax"),
    ROW(HB, "{/* c */}", "json.syntax"),
    ROW(HB, "{\"a\":\xC2\xA0" "1}", "json.syntax"),
    ROW(HB, "{\"a\":[,1]}", "json.syntax"),
    ROW(START, "{\"BatchRequestId\":1,\"BatchRequestId\":2}", "json.duplicate_key"),
    ROW(START, "{\"BatchRequestId\":1,\"\\u0042atchRequestId\":2}", "json.duplicate_key"),
    ROW(START, "{\"Batch\\u0052equestId\":1,\"BatchRequest\\u0049d\":2}", "json.duplicate_key"),
    ROW(MON, "{\"BatchRequestId\":1,\"code\":2,\"code\":4}", "json.duplicate_key"),
    ROW(MON,
        "{\"BatchRequestId\":1,\"code\":2,\"children\":[{\"BatchRequestId\":2,\"code\":4,"
        "\"code\":11}]}",
        "json.duplicate_key"),
    ROW(MSGS, "{\"messages\":[{\"seq\":1,\"seq\":2,\"text\":\"\"}]}", "json.duplicate_key"),
    ROW(HB, "{\"a\\/b\":1,\"a/b\":2}", "json.duplicate_key"),
    ROW(HB, "{\"\\ud83d\\ude00\":1,\"\xF0\x9F\x98\x80\":2}", "json.duplicate_key"),

    /* ---- heartbeat fields */
    ROW(HB, "{\"status\":1}", "field.type"),
    ROW(HB, "{\"amtVersion\":8}", "field.type"),
    ROW(HB, "{\"amtVersion\":\"8.0\\u0007\"}", "field.format"),
    ROW(HB, "{\"amtVersion\":\"8.0\\n24223\"}", "field.format"),
    ROW(HB, "{\"amtVersion\":\"0123456789012345678901234567890123456789012345678901234567890123"
            "4\"}",
        "field.too_long"),
    ROW(HB, "{\"features\":\"MonitorJobs\"}", "field.type"),
    ROW(HB, "{\"features\":{\"MonitorJobs\":true}}", "field.type"),
    ROW(HB, "{\"features\":[\"MonitorJobs\",1]}", "field.type"),
    ROW(HB, "{\"features\":[null]}", "field.type"),

    /* ---- logon fields */
    ROW(LOGON, "{}", "field.missing"),
    ROW(LOGON, "{\"AmtLogonToken\":null}", "field.missing"),
    ROW(LOGON, "{\"amtlogontoken\":\"abc\"}", "field.missing"),
    ROW(LOGON, "{\"AmtLogonToken\":123}", "field.type"),
    ROW(LOGON, "{\"AmtLogonToken\":[\"abc\"]}", "field.type"),
    ROW(LOGON, "{\"AmtLogonToken\":\"\"}", "field.empty"),
    ROW(LOGON, "{\"AmtLogonToken\":\"ab cd\"}", "field.format"),
    ROW(LOGON, "{\"AmtLogonToken\":\"abc\\r\\nX-Evil: 1\"}", "field.format"),
    ROW(LOGON, "{\"AmtLogonToken\":\"\\u00e9t\\u00e9\"}", "field.format"),
    ROW(LOGON, "{\"AmtLogonToken\":\"abc\\u007f\"}", "field.format"),
    ROW(LOGON, "{\"AmtLogonToken\":\"abc\",\"expiresIn\":\"3600\"}", "field.type"),
    ROW(LOGON, "{\"AmtLogonToken\":\"abc\",\"expiresIn\":1.5}", "field.type"),
    ROW(LOGON, "{\"AmtLogonToken\":\"abc\",\"expiresIn\":-1}", "field.range"),

    /* ---- start and kill fields */
    ROW(START, "{}", "field.missing"),
    ROW(START, "{\"BatchRequestId\":null}", "field.missing"),
    ROW(START, "{\"batchRequestId\":4280}", "field.missing"),
    ROW(START, "{\"BatchRequestId\":\"4280\"}", "field.type"),
    ROW(START, "{\"BatchRequestId\":4280.5}", "field.type"),
    ROW(START, "{\"BatchRequestId\":true}", "field.type"),
    ROW(START, "{\"BatchRequestId\":[4280]}", "field.type"),
    ROW(START, "{\"BatchRequestId\":2147483648}", "field.range"),
    ROW(START, "{\"BatchRequestId\":-2147483649}", "field.range"),
    ROW(START, "{\"BatchRequestId\":1e10}", "field.range"),
    HROW(START, 200, "{\"BatchRequestId\":0}", "start.not_started", AMT_ERR_REJECTED),
    HROW(START, 200, "{\"BatchRequestId\":-5}", "start.not_started", AMT_ERR_REJECTED),
    ROW(KILL, "{}", "field.missing"),
    ROW(KILL, "{\"accepted\":true}", "field.missing"),
    ROW(KILL, "{\"BatchRequestId\":\"x\"}", "field.type"),
    ROW(KILL, "{\"BatchRequestId\":0}", "field.range"),
    ROW(KILL, "{\"BatchRequestId\":-1}", "field.range"),
    ROW(KILL, "{\"BatchRequestId\":4281,\"accepted\":\"yes\"}", "field.type"),
    ROW(KILL, "{\"BatchRequestId\":4281,\"accepted\":1}", "field.type"),

    /* ---- monitor fields */
    ROW(MON, "{}", "field.missing"),
    ROW(MON, "{\"BatchRequestId\":1}", "field.missing"),
    ROW(MON, "{\"code\":4}", "field.missing"),
    ROW(MON, "{\"BatchRequestId\":1,\"code\":\"4\"}", "field.type"),
    ROW(MON, "{\"BatchRequestId\":1,\"code\":4.5}", "field.type"),
    ROW(MON, "{\"BatchRequestId\":1,\"code\":-1}", "field.range"),
    ROW(MON, "{\"BatchRequestId\":1,\"code\":1000}", "field.range"),
    ROW(MON, "{\"BatchRequestId\":0,\"code\":4}", "field.range"),
    ROW(MON, "{\"BatchRequestId\":1,\"code\":4,\"messageCount\":-1}", "field.range"),
    ROW(MON, "{\"BatchRequestId\":1,\"code\":4,\"messageCount\":\"5\"}", "field.type"),
    ROW(MON, "{\"BatchRequestId\":1,\"code\":4,\"messageCount\":1e16}", "field.range"),
    ROW(MON, "{\"BatchRequestId\":1,\"code\":4,\"status\":5}", "field.type"),
    ROW(MON, "{\"BatchRequestId\":1,\"code\":4,\"description\":[]}", "field.type"),
    ROW(MON, "{\"BatchRequestId\":1,\"code\":4,\"children\":{}}", "field.type"),
    ROW(MON, "{\"BatchRequestId\":1,\"code\":4,\"children\":\"none\"}", "field.type"),
    ROW(MON, "{\"BatchRequestId\":1,\"code\":4,\"children\":[1]}", "field.type"),
    ROW(MON, "{\"BatchRequestId\":1,\"code\":4,\"children\":[null]}", "field.type"),
    ROW(MON, "{\"BatchRequestId\":1,\"code\":4,\"children\":[{}]}", "field.missing"),
    ROW(MON, "{\"BatchRequestId\":1,\"code\":4,\"children\":[{\"BatchRequestId\":2,\"code\":\"x\"}]}",
        "field.type"),
    ROW(MON, "{\"BatchRequestId\":1,\"code\":4,\"children\":[{\"BatchRequestId\":-2,\"code\":4}]}",
        "field.range"),
    ROW(MON,
        "{\"BatchRequestId\":1,\"code\":4,\"children\":[{\"BatchRequestId\":2,\"code\":4,"
        "\"name\":7}]}",
        "field.type"),

    /* ---- monitor many fields */
    ROW(MANY, "{}", "field.missing"),
    ROW(MANY, "{\"jobs\":null}", "field.missing"),
    ROW(MANY, "{\"jobs\":{}}", "field.type"),
    ROW(MANY, "{\"jobs\":[1]}", "field.type"),
    ROW(MANY, "{\"jobs\":[[]]}", "field.type"),
    ROW(MANY, "{\"jobs\":[{\"code\":4}]}", "field.missing"),
    ROW(MANY, "{\"jobs\":[{\"BatchRequestId\":1,\"code\":4},{\"BatchRequestId\":2}]}",
        "field.missing"),
    ROW(MANY, "{\"jobs\":[],\"unknown\":\"x\"}", "field.type"),
    ROW(MANY, "{\"jobs\":[],\"unknown\":[\"1\"]}", "field.type"),
    ROW(MANY, "{\"jobs\":[],\"unknown\":[1.5]}", "field.type"),
    ROW(MANY, "{\"jobs\":[],\"unknown\":[null]}", "field.type"),
    ROW(MANY, "{\"jobs\":[],\"unknown\":[0]}", "field.range"),
    ROW(MANY, "{\"jobs\":[],\"unknown\":[2147483648]}", "field.range"),

    /* ---- messages fields */
    ROW(MSGS, "{}", "field.missing"),
    ROW(MSGS, "{\"messages\":{}}", "field.type"),
    ROW(MSGS, "{\"messages\":[1]}", "field.type"),
    ROW(MSGS, "{\"messages\":[\"text\"]}", "field.type"),
    ROW(MSGS, "{\"messages\":[{}]}", "field.missing"),
    ROW(MSGS, "{\"messages\":[{\"text\":\"x\"}]}", "field.missing"),
    ROW(MSGS, "{\"messages\":[{\"seq\":1}]}", "field.missing"),
    ROW(MSGS, "{\"messages\":[{\"seq\":1,\"text\":null}]}", "field.missing"),
    ROW(MSGS, "{\"messages\":[{\"seq\":\"1\",\"text\":\"x\"}]}", "field.type"),
    ROW(MSGS, "{\"messages\":[{\"seq\":1.5,\"text\":\"x\"}]}", "field.type"),
    ROW(MSGS, "{\"messages\":[{\"seq\":0,\"text\":\"x\"}]}", "field.range"),
    ROW(MSGS, "{\"messages\":[{\"seq\":-3,\"text\":\"x\"}]}", "field.range"),
    ROW(MSGS, "{\"messages\":[{\"seq\":1,\"text\":5}]}", "field.type"),
    ROW(MSGS, "{\"messages\":[{\"seq\":1,\"text\":\"x\",\"BatchRequestId\":0}]}", "field.range"),
    ROW(MSGS, "{\"messages\":[{\"seq\":1,\"text\":\"x\",\"BatchRequestId\":\"7\"}]}", "field.type"),
    ROW(MSGS, "{\"messages\":[{\"seq\":1,\"text\":\"x\",\"time\":5}]}", "field.type"),
    ROW(MSGS, "{\"messages\":[{\"seq\":2,\"text\":\"b\"},{\"seq\":1,\"text\":\"a\"}]}",
        "seq.order"),
    ROW(MSGS, "{\"messages\":[{\"seq\":2,\"text\":\"b\"},{\"seq\":2,\"text\":\"a\"}]}",
        "seq.order"),
    ROW(MSGS, "{\"messages\":[],\"next\":-1}", "field.range"),
    ROW(MSGS, "{\"messages\":[],\"next\":\"3\"}", "field.type"),
    ROW(MSGS, "{\"messages\":[{\"seq\":5,\"text\":\"x\"}],\"next\":4}", "seq.next"),
    ROW(MSGS, "{\"messages\":[],\"more\":\"true\"}", "field.type"),
    ROW(MSGS, "{\"messages\":[],\"more\":1}", "field.type"),
    ROW(MSGS, "{\"messages\":[],\"next\":7,\"more\":true}", "seq.more_empty"),

    /* ---- HTTP statuses: the status decides, whatever the body holds */
    HROW(HB, 500, "{\"errorCode\":500,\"errorDescription\":\"boom\"}", "http.5xx", AMT_ERR_SERVER),
    HROW(START, 503, "", "http.5xx", AMT_ERR_SERVER),
    HROW(START, 502, "<html>bad gateway</html>", "http.5xx", AMT_ERR_SERVER),
    HROW(MON, 504, "{\"errorCode\":504,\"errorCode\":1}", "http.5xx", AMT_ERR_SERVER),
    HROW(MSGS, 599, "\xFF\xFE", "http.5xx", AMT_ERR_SERVER),
    HROW(MON, 404, "{\"errorCode\":404,\"errorDescription\":\"unknown BatchRequestId 4711\"}",
         "http.4xx", AMT_ERR_REJECTED),
    HROW(START, 400, "{\"errorCode\":400}", "http.4xx", AMT_ERR_REJECTED),
    HROW(KILL, 409, "{\"errorCode\":409,\"errorDescription\":\"already ended\"}", "http.4xx",
         AMT_ERR_REJECTED),
    HROW(MANY, 405, "", "http.4xx", AMT_ERR_REJECTED),
    HROW(START, 413, "{\"errorCode\":413,\"errorDescription\":\"\\u0000\"}", "http.4xx",
         AMT_ERR_REJECTED),
    HROW(LOGON, 401, "{\"errorCode\":24,\"errorDescription\":\"invalid user or password\"}",
         "http.auth", AMT_ERR_AUTH),
    HROW(MON, 408, "", "http.busy", AMT_ERR_SERVER),
    HROW(MSGS, 429, "{\"errorCode\":429}", "http.busy", AMT_ERR_SERVER),
    HROW(HB, 302, "", "http.unexpected", AMT_ERR_REJECTED),
    HROW(START, 304, "{\"BatchRequestId\":4280}", "http.unexpected", AMT_ERR_REJECTED),
    HROW(HB, 100, "", "http.unexpected", AMT_ERR_REJECTED),
    HROW(HB, 0, "", "http.unexpected", AMT_ERR_REJECTED),
    HROW(HB, 600, "{}", "http.unexpected", AMT_ERR_REJECTED),
};

#define NROWS (sizeof rows / sizeof rows[0])

/* The human text names the problem, never carries the answer's raw bytes. */
static void assert_clean_text(const char *s)
{
    assert_non_null(s);
    assert_true(strlen(s) < 512);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p < 0x20 || *p == 0x7F)
            fail_msg("control character 0x%02x in error text '%s'", *p, s);
}

/* Runs one answer and checks the outcome; returns nothing, fails the test. */
static void expect(enum amt_call call, long http, const char *body, size_t len, const char *name,
                   enum amt_status st, const char *what)
{
    struct amt_reply r;
    struct amt_parsed *p = amt_parse_reply(call, http, body, len, &r);
    assert_non_null(p);
    if (r.status != st || strcmp(r.error_name, name))
        fail_msg("%s (%s, HTTP %ld, %zu bytes): expected %s/%s, got %s/%s: %s", what,
                 amt_call_name(call), http, len, amt_status_name(st), name,
                 amt_status_name(r.status), r.error_name, r.error);
    assert_int_equal(r.call, call);
    assert_int_equal(r.http_status, http);
    assert_clean_text(r.error);
    assert_true(r.error[0] != '\0');
    /* A failed answer hands out no half-parsed data. */
    assert_null(r.jobs);
    assert_null(r.messages);
    assert_null(r.unknown);
    assert_null(r.amt_version);
    amt_parsed_free(p);
}

static void table(void **state)
{
    (void)state;
    for (size_t i = 0; i < NROWS; i++) {
        char what[32];
        snprintf(what, sizeof what, "row %zu", i);
        expect(rows[i].call, rows[i].http, rows[i].body, rows[i].len, rows[i].name,
               rows[i].status, what);
    }
}

/* Every row is distinct: a copy-pasted row would test nothing new. */
static void rows_distinct(void **state)
{
    (void)state;
    assert_true(NROWS >= 150);
    for (size_t i = 0; i < NROWS; i++)
        for (size_t j = i + 1; j < NROWS; j++)
            if (rows[i].call == rows[j].call && rows[i].http == rows[j].http &&
                rows[i].len == rows[j].len && !memcmp(rows[i].body, rows[j].body, rows[i].len))
                fail_msg("rows %zu and %zu are the same", i, j);
}

/* ---------------------------------------------------------------- generated */

static void put(struct buf *b, const char *s) { assert_int_equal(buf_puts(b, s), BUF_OK); }

static void put_n(struct buf *b, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        put(b, s);
}

/* {"a": [[...[1]...]]} with `depth` containers in all, the object included. */
static void nested_arrays(struct buf *b, unsigned depth)
{
    buf_reset(b);
    put(b, "{\"BatchRequestId\":1,\"code\":2,\"x\":");
    put_n(b, "[", depth - 1);
    put(b, "1");
    put_n(b, "]", depth - 1);
    put(b, "}");
}

static void nested_objects(struct buf *b, unsigned depth)
{
    buf_reset(b);
    put(b, "{\"BatchRequestId\":1,\"code\":2,\"x\":");
    put_n(b, "{\"y\":", depth - 1);
    put(b, "null");
    put_n(b, "}", depth - 1);
    put(b, "}");
}

static void string_field(struct buf *b, const char *head, const char *c, size_t n,
                         const char *tail)
{
    buf_reset(b);
    put(b, head);
    put_n(b, c, n);
    put(b, tail);
}

static void members(struct buf *b, size_t n)
{
    buf_reset(b);
    put(b, "{\"BatchRequestId\":1,\"code\":2");
    for (size_t i = 2; i < n; i++)
        assert_int_equal(buf_printf(b, ",\"k%zu\":%zu", i, i), BUF_OK);
    put(b, "}");
}

static void check_ok(enum amt_call call, const struct buf *b, struct amt_reply *r,
                     struct amt_parsed **p)
{
    *p = amt_parse_reply(call, 200, b->data, b->len, r);
    assert_non_null(*p);
    if (r->status != AMT_OK)
        fail_msg("expected OK, got %s: %s", r->error_name, r->error);
    assert_string_equal(r->error_name, "");
    assert_string_equal(r->error, "");
}

/* Limits: the last allowed value passes, one more fails with its name. */
static void limits(void **state)
{
    (void)state;
    struct buf b;
    buf_init(&b, 0);
    struct amt_reply r;
    struct amt_parsed *p;

    nested_arrays(&b, 32);
    check_ok(MON, &b, &r, &p);
    amt_parsed_free(p);
    nested_arrays(&b, 33);
    expect(MON, 200, b.data, b.len, "json.depth", PROTO, "33 levels of arrays");
    nested_objects(&b, 32);
    check_ok(MON, &b, &r, &p);
    amt_parsed_free(p);
    nested_objects(&b, 33);
    expect(MON, 200, b.data, b.len, "json.depth", PROTO, "33 levels of objects");
    nested_arrays(&b, 1001); /* past cJSON's own limit as well */
    expect(MON, 200, b.data, b.len, "json.depth", PROTO, "1001 levels");
    nested_arrays(&b, 100000);
    expect(MON, 200, b.data, b.len, "json.depth", PROTO, "100000 levels");

    members(&b, 128);
    check_ok(MON, &b, &r, &p);
    amt_parsed_free(p);
    members(&b, 129);
    expect(MON, 200, b.data, b.len, "json.too_many_members", PROTO, "129 members");

    /* Strings count decoded bytes: "\u00e9" is two. */
    string_field(&b, "{\"messages\":[{\"seq\":1,\"text\":\"", "x", 65536, "\"}]}");
    check_ok(MSGS, &b, &r, &p);
    assert_int_equal(strlen(r.messages[0].text), 65536);
    amt_parsed_free(p);
    string_field(&b, "{\"messages\":[{\"seq\":1,\"text\":\"", "x", 65537, "\"}]}");
    expect(MSGS, 200, b.data, b.len, "json.string_too_long", PROTO, "64 KiB + 1");
    string_field(&b, "{\"messages\":[{\"seq\":1,\"text\":\"", "\\u00e9", 32768, "\"}]}");
    check_ok(MSGS, &b, &r, &p);
    amt_parsed_free(p);
    string_field(&b, "{\"messages\":[{\"seq\":1,\"text\":\"x", "\\u00e9", 32768, "\"}]}");
    expect(MSGS, 200, b.data, b.len, "json.string_too_long", PROTO, "escapes past 64 KiB");
    string_field(&b, "{\"BatchRequestId\":1,\"code\":2,\"", "k", 256, "\":1}");
    check_ok(MON, &b, &r, &p);
    amt_parsed_free(p);
    string_field(&b, "{\"BatchRequestId\":1,\"code\":2,\"", "k", 257, "\":1}");
    expect(MON, 200, b.data, b.len, "json.key_too_long", PROTO, "257-byte key");

    /* Field lengths. */
    string_field(&b, "{\"AmtLogonToken\":\"", "a", 4096, "\"}");
    check_ok(LOGON, &b, &r, &p);
    amt_parsed_free(p);
    string_field(&b, "{\"AmtLogonToken\":\"", "a", 4097, "\"}");
    expect(LOGON, 200, b.data, b.len, "field.too_long", PROTO, "4097-byte token");
    string_field(&b, "{\"amtVersion\":\"", "8", 64, "\"}");
    check_ok(HB, &b, &r, &p);
    amt_parsed_free(p);
    string_field(&b,
                 "{\"BatchRequestId\":1,\"code\":2,\"children\":[{\"BatchRequestId\":2,\"code\":"
                 "4,\"name\":\"",
                 "N", 257, "\"}]}");
    expect(MON, 200, b.data, b.len, "field.too_long", PROTO, "257-byte child name");
    string_field(&b, "{\"features\":[", "\"f\",", 64, "\"f\"]}");
    expect(HB, 200, b.data, b.len, "list.too_long", PROTO, "65 features");

    /* Lists: 100,000 entries pass, one more fails before any entry is read. */
    string_field(&b, "{\"jobs\":[],\"unknown\":[", "1,", 99999, "1]}");
    check_ok(MANY, &b, &r, &p);
    assert_int_equal(r.nunknown, 100000);
    amt_parsed_free(p);
    string_field(&b, "{\"jobs\":[],\"unknown\":[", "1,", 100000, "1]}");
    expect(MANY, 200, b.data, b.len, "list.too_long", PROTO, "100001 unknown ids");
    string_field(&b, "{\"jobs\":[", "0,", 100000, "0]}");
    expect(MANY, 200, b.data, b.len, "list.too_long", PROTO, "100001 jobs");
    string_field(&b, "{\"messages\":[", "0,", 100000, "0]}");
    expect(MSGS, 200, b.data, b.len, "list.too_long", PROTO, "100001 messages");
    string_field(&b, "{\"BatchRequestId\":1,\"code\":2,\"children\":[", "0,", 100000, "0]}");
    expect(MON, 200, b.data, b.len, "list.too_long", PROTO, "100001 children");
    buf_reset(&b);
    put(&b, "{\"jobs\":[");
    for (int i = 0; i < 3; i++) {
        put(&b, i ? ",{\"BatchRequestId\":1,\"code\":2,\"children\":["
                  : "{\"BatchRequestId\":1,\"code\":2,\"children\":[");
        put_n(&b, "{\"BatchRequestId\":1,\"code\":2},", 33333);
        put(&b, "{\"BatchRequestId\":1,\"code\":2}]}");
    }
    put(&b, "]}");
    expect(MANY, 200, b.data, b.len, "list.too_long", PROTO, "100002 children in all");

    buf_free(&b);
}

/* ---------------------------------------------------------------- valid */

static struct amt_parsed *ok(enum amt_call call, const char *body, struct amt_reply *r)
{
    struct amt_parsed *p = amt_parse_reply(call, 200, body, strlen(body), r);
    assert_non_null(p);
    if (r->status != AMT_OK)
        fail_msg("expected OK for %s, got %s: %s", body, r->error_name, r->error);
    assert_string_equal(r->error_name, "");
    assert_int_equal(r->call, call);
    return p;
}

static void valid_heartbeat_logon(void **state)
{
    (void)state;
    struct amt_reply r;
    struct amt_parsed *p = ok(HB,
                              "{\"status\":\"ok\",\"amtVersion\":\"8.0.24223.0\","
                              "\"features\":[\"MonitorJobs\",\"IdempotentStart\",\"Future\"]}",
                              &r);
    assert_string_equal(r.amt_version, "8.0.24223.0");
    assert_true(r.monitor_jobs);
    assert_true(r.idempotent_start);
    amt_parsed_free(p);
    p = ok(HB, "{}", &r);
    assert_null(r.amt_version);
    assert_false(r.monitor_jobs);
    amt_parsed_free(p);
    p = ok(HB, " \r\n\t{ \"features\" : [ ] , \"amtVersion\" : null } \n", &r);
    assert_false(r.idempotent_start);
    assert_null(r.amt_version);
    amt_parsed_free(p);
    /* A unicode escape decodes; keys differ by case are different keys. */
    p = ok(HB, "{\"status\":\"\\u00e9\\ud83d\\ude00\",\"Status\":1,\"features\":[\"\\u004donitorJobs\"]}",
           &r);
    assert_true(r.monitor_jobs);
    amt_parsed_free(p);
    p = ok(LOGON, "{\"AmtLogonToken\":\"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\","
                  "\"expiresIn\":3600}",
           &r);
    amt_parsed_free(p);
    p = ok(LOGON, "{\"AmtLogonToken\":\"!~\\/\\\"\"}", &r);
    amt_parsed_free(p);
}

static void valid_start_kill(void **state)
{
    (void)state;
    struct amt_reply r;
    struct amt_parsed *p = ok(START, "{\"BatchRequestId\":2147483647}", &r);
    assert_int_equal(r.batch_request_id, INT_MAX);
    amt_parsed_free(p);
    /* An integer field takes any number with an integral value. */
    p = ok(START, "{\"BatchRequestId\":4.28e3}", &r);
    assert_int_equal(r.batch_request_id, 4280);
    amt_parsed_free(p);
    p = ok(START, "{\"BatchRequestId\":4280.000}", &r);
    assert_int_equal(r.batch_request_id, 4280);
    amt_parsed_free(p);
    p = ok(START, "{\"BatchRequestId\":1,\"batchRequestId\":2,\"extra\":{\"deep\":[1.7976931348623157e308,"
                  "-1.7976931348623157e308,1e-308,-9007199254740991,9007199254740991,0e999999,-0,"
                  "0.0,1.0000000000000000,123456789.01234567,1E+2,1e-0]}}",
           &r);
    assert_int_equal(r.batch_request_id, 1);
    amt_parsed_free(p);
    p = ok(KILL, "{\"BatchRequestId\":4281,\"accepted\":true}", &r);
    assert_int_equal(r.batch_request_id, 4281);
    amt_parsed_free(p);
    p = ok(KILL, "{\"BatchRequestId\":4281,\"accepted\":null}", &r);
    amt_parsed_free(p);
}

static void valid_monitor(void **state)
{
    (void)state;
    struct amt_reply r;
    struct amt_parsed *p =
        ok(MON,
           "{\"BatchRequestId\":4283,\"code\":15,\"status\":\"WAIT FOR JOB\","
           "\"description\":\"Waiting for another job to finish\","
           "\"children\":[{\"BatchRequestId\":4284,\"name\":\"CHILDA\",\"code\":4,\"status\":\"DONE\"},"
           "{\"BatchRequestId\":4286,\"name\":\"CHILDB\",\"code\":2,\"status\":\"RUNNING\"}],"
           "\"messageCount\":9007199254740991}",
           &r);
    assert_int_equal(r.njobs, 1);
    assert_int_equal(r.jobs[0].id, 4283);
    assert_int_equal(r.jobs[0].code, 15);
    assert_true(r.jobs[0].message_count == 9007199254740991L);
    assert_int_equal(r.jobs[0].nchildren, 2);
    assert_string_equal(r.jobs[0].children[1].name, "CHILDB");
    assert_int_equal(r.jobs[0].children[1].code, 2);
    amt_parsed_free(p);
    p = ok(MON, "{\"BatchRequestId\":1,\"code\":999,\"children\":null,\"messageCount\":null}", &r);
    assert_int_equal(r.jobs[0].nchildren, 0);
    assert_int_equal(r.jobs[0].message_count, -1);
    assert_int_equal(r.jobs[0].code, 999);
    amt_parsed_free(p);
    p = ok(MANY,
           "{\"jobs\":[{\"BatchRequestId\":1,\"code\":2,\"children\":[{\"BatchRequestId\":3,"
           "\"code\":4}]},{\"BatchRequestId\":2,\"code\":0,\"children\":[{\"BatchRequestId\":5,"
           "\"code\":11,\"name\":\"\\u00c5r\"}]}],\"unknown\":[9999,2147483647]}",
           &r);
    assert_int_equal(r.njobs, 2);
    assert_int_equal(r.jobs[1].children[0].id, 5);
    assert_string_equal(r.jobs[1].children[0].name, "\xC3\x85r");
    assert_int_equal(r.nunknown, 2);
    assert_int_equal(r.unknown[1], INT_MAX);
    amt_parsed_free(p);
    p = ok(MANY, "{\"jobs\":[]}", &r);
    assert_int_equal(r.njobs, 0);
    assert_int_equal(r.nunknown, 0);
    amt_parsed_free(p);
}

static void valid_messages(void **state)
{
    (void)state;
    struct amt_reply r;
    struct amt_parsed *p =
        ok(MSGS,
           "{\"messages\":[{\"seq\":1,\"BatchRequestId\":4283,\"time\":\"2026-11-25T07:37:51.557Z\","
           "\"text\":\"Gr\\u00fc\\u00dfe \xE2\x98\x83 \\ud83d\\ude00\\ttab\\u001f\"},"
           "{\"seq\":9007199254740991,\"text\":\"\"}],\"next\":9007199254740991,\"more\":true}",
           &r);
    assert_int_equal(r.nmessages, 2);
    assert_string_equal(r.messages[0].text,
                        "Gr\xC3\xBC\xC3\x9F" "e \xE2\x98\x83 \xF0\x9F\x98\x80\ttab\x1F");
    assert_int_equal(r.messages[0].id, 4283);
    assert_int_equal(r.messages[1].id, 0);
    assert_true(r.messages[1].seq == 9007199254740991L);
    assert_true(r.more);
    amt_parsed_free(p);
    p = ok(MSGS, "{\"messages\":[],\"next\":5,\"more\":false}", &r);
    assert_int_equal(r.nmessages, 0);
    assert_int_equal(r.next, 5);
    amt_parsed_free(p);
    p = ok(MSGS, "{\"messages\":[{\"seq\":3,\"text\":\"a\"},{\"seq\":7,\"text\":\"b\"}]}", &r);
    assert_int_equal(r.next, 7); /* said nowhere: the last seq */
    assert_false(r.more);
    amt_parsed_free(p);

    /* A big page: 1,000 messages, the most the server sends at once. */
    struct buf b;
    buf_init(&b, 0);
    put(&b, "{\"messages\":[");
    for (int i = 1; i <= 1000; i++)
        assert_int_equal(buf_printf(&b, "%s{\"seq\":%d,\"BatchRequestId\":%d,\"text\":\"line %d\"}",
                                    i > 1 ? "," : "", i, 4000 + i % 7, i),
                         BUF_OK);
    put(&b, "],\"next\":1000,\"more\":true}");
    check_ok(MSGS, &b, &r, &p);
    assert_int_equal(r.nmessages, 1000);
    assert_string_equal(r.messages[999].text, "line 1000");
    amt_parsed_free(p);
    buf_free(&b);
}

/* An HTTP error keeps the server's errorCode and a short one-line excerpt of
 * its description, never the raw text. */
static void http_error_details(void **state)
{
    (void)state;
    struct amt_reply r;
    const char *body = "{\"errorCode\":404,\"errorDescription\":\"unknown BatchRequestId 4711\"}";
    struct amt_parsed *p = amt_parse_reply(MON, 404, body, strlen(body), &r);
    assert_int_equal(r.status, AMT_ERR_REJECTED);
    assert_int_equal(r.error_code, 404);
    assert_string_equal(r.error, "HTTP 404: unknown BatchRequestId 4711");
    amt_parsed_free(p);

    body = "{\"errorCode\":24,\"errorDescription\":\"bad\\u0007\\r\\nX-Injected: 1\\u001b[2J\"}";
    p = amt_parse_reply(LOGON, 401, body, strlen(body), &r);
    assert_int_equal(r.status, AMT_ERR_AUTH);
    assert_int_equal(r.error_code, 24);
    assert_clean_text(r.error);
    assert_non_null(strstr(r.error, "bad"));
    amt_parsed_free(p);

    struct buf b;
    buf_init(&b, 0);
    string_field(&b, "{\"errorCode\":503,\"errorDescription\":\"", "\\u00e9", 5000, "\"}");
    p = amt_parse_reply(START, 503, b.data, b.len, &r);
    assert_int_equal(r.status, AMT_ERR_SERVER);
    assert_int_equal(r.error_code, 503);
    assert_true(strlen(r.error) < 200);
    assert_non_null(strstr(r.error, "..."));
    assert_clean_text(r.error);
    amt_parsed_free(p);
    buf_free(&b);

    /* A hostile error body is ignored as a whole. */
    body = "{\"errorCode\":500,\"errorCode\":24,\"errorDescription\":\"x\"}";
    p = amt_parse_reply(START, 500, body, strlen(body), &r);
    assert_int_equal(r.error_code, 0);
    assert_string_equal(r.error, "HTTP 500");
    amt_parsed_free(p);
}

/* The error text names the field and says where; it quotes nothing. */
static void messages_name_the_place(void **state)
{
    (void)state;
    static const struct {
        enum amt_call call;
        const char *body, *text;
    } t[] = {
        {MANY,
         "{\"jobs\":[{\"BatchRequestId\":1,\"code\":2},{\"BatchRequestId\":2,\"code\":4,"
         "\"children\":[{\"BatchRequestId\":3,\"code\":\"SECRET\"}]}]}",
         "MonitorJobs answer: jobs[1].children[0].code is not an integer"},
        {MSGS, "{\"messages\":[{\"seq\":1,\"text\":\"a\"},{\"seq\":1,\"text\":\"b\"}]}",
         "GetMessages answer: messages[1].seq does not increase"},
        {LOGON, "{\"AmtLogonToken\":\"abc def\"}",
         "logon answer: AmtLogonToken holds a forbidden character at offset 3"},
        {START, "{\"BatchRequestId\":1,\"x\":[[[[\"\\uDEAD\"]]]]}",
         "Start answer: unpaired surrogate escape at byte 29 of 41"},
        {HB, "{\"features\":[\"a\",7]}", "heartbeat answer: features[1] is not a string"},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        struct amt_reply r;
        struct amt_parsed *p = amt_parse_reply(t[i].call, 200, t[i].body, strlen(t[i].body), &r);
        assert_string_equal(r.error, t[i].text);
        assert_null(strstr(r.error, "SECRET"));
        amt_parsed_free(p);
    }
}

static void content_types(void **state)
{
    (void)state;
    assert_true(amt_content_type_ok("application/json"));
    assert_true(amt_content_type_ok("Application/JSON"));
    assert_true(amt_content_type_ok("application/json; charset=utf-8"));
    assert_true(amt_content_type_ok("application/json;charset=\"UTF-8\""));
    assert_true(amt_content_type_ok(" application/json "));
    assert_false(amt_content_type_ok(NULL));
    assert_false(amt_content_type_ok(""));
    assert_false(amt_content_type_ok("text/html"));
    assert_false(amt_content_type_ok("text/json"));
    assert_false(amt_content_type_ok("application/jsonp"));
    assert_false(amt_content_type_ok("application/json-seq"));
    assert_false(amt_content_type_ok("application/problem+json"));
    assert_false(amt_content_type_ok("application/json; charset=iso-8859-1"));
    assert_false(amt_content_type_ok("application/json; charset=utf-16"));
    assert_false(amt_content_type_ok("application/json; charset=utf-8x"));
    assert_false(amt_content_type_ok("application/json; boundary=x"));
}

/* The checker alone: names, offsets and limits given by the caller. */
static void checker(void **state)
{
    (void)state;
    size_t at = 99;
    assert_int_equal(jsoncheck("{}", 2, NULL, &at), JSONCHECK_OK);
    assert_int_equal(at, 0);
    assert_int_equal(jsoncheck("{\"a\":[1,2,x]}", 13, NULL, &at), JSONCHECK_LITERAL);
    assert_int_equal(at, 10);
    assert_int_equal(jsoncheck("{\"a\":1,\"a\":2}", 13, NULL, &at), JSONCHECK_DUPLICATE_KEY);
    assert_int_equal(at, 7);
    /* The same key in sibling objects is fine; in one object it is not. */
    assert_int_equal(jsoncheck("{\"a\":{\"b\":1},\"c\":{\"b\":1}}", 25, NULL, NULL), JSONCHECK_OK);
    struct jsoncheck_limits lim = {2, 4, 2, 2};
    assert_int_equal(jsoncheck("{\"a\":{}}", 8, &lim, NULL), JSONCHECK_OK);
    assert_int_equal(jsoncheck("{\"a\":{\"b\":[]}}", 14, &lim, NULL), JSONCHECK_DEPTH);
    assert_int_equal(jsoncheck("{\"a\":\"abcd\"}", 12, &lim, NULL), JSONCHECK_OK);
    assert_int_equal(jsoncheck("{\"a\":\"abcde\"}", 13, &lim, NULL), JSONCHECK_STRING_TOO_LONG);
    assert_int_equal(jsoncheck("{\"abc\":1}", 9, &lim, NULL), JSONCHECK_KEY_TOO_LONG);
    assert_int_equal(jsoncheck("{\"a\":1,\"b\":2,\"c\":3}", 19, &lim, NULL),
                     JSONCHECK_TOO_MANY_MEMBERS);
    lim.max_depth = 1000; /* capped */
    struct buf b;
    buf_init(&b, 0);
    put(&b, "{\"a\":");
    put_n(&b, "[", JSONCHECK_DEPTH_CAP);
    put_n(&b, "]", JSONCHECK_DEPTH_CAP);
    put(&b, "}");
    assert_int_equal(jsoncheck(b.data, b.len, &lim, NULL), JSONCHECK_DEPTH);
    buf_free(&b);
    for (int e = JSONCHECK_OK; e <= JSONCHECK_SYNTAX; e++) {
        assert_non_null(strchr(jsoncheck_name((enum jsoncheck_err)e), e ? '.' : 'o'));
        assert_true(jsoncheck_describe((enum jsoncheck_err)e)[0] != '\0');
    }
}

/* ---------------------------------------------------------------- mutations */

static uint32_t next_rand(uint32_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 17;
    *x ^= *x << 5;
    return *x;
}

static bool known_prefix(const char *name)
{
    static const char *const prefixes[] = {"json.", "utf8.", "field.", "list.", "seq.",
                                           "start.not_started"};
    for (size_t i = 0; i < sizeof prefixes / sizeof prefixes[0]; i++)
        if (!strncmp(name, prefixes[i], strlen(prefixes[i])))
            return true;
    return false;
}

/* Valid answers cut at every length and mutated at random (a fixed seed):
 * nothing crashes (the sanitizer build watches), every failure is named, and
 * whatever the checker passes, cJSON parses. */
static void mutations(void **state)
{
    (void)state;
    static const struct {
        enum amt_call call;
        const char *body;
    } seeds[] = {
        {HB, "{\"status\":\"ok\",\"amtVersion\":\"8.0.24223.0\",\"features\":[\"MonitorJobs\"]}"},
        {LOGON, "{\"AmtLogonToken\":\"0123456789abcdef\",\"expiresIn\":3600}"},
        {START, "{\"BatchRequestId\":4280}"},
        {KILL, "{\"BatchRequestId\":4281,\"accepted\":true}"},
        {MON, "{\"BatchRequestId\":4283,\"code\":15,\"children\":[{\"BatchRequestId\":4284,"
              "\"name\":\"CHILDA\",\"code\":4}],\"messageCount\":5}"},
        {MANY, "{\"jobs\":[{\"BatchRequestId\":1,\"code\":2}],\"unknown\":[9999]}"},
        {MSGS, "{\"messages\":[{\"seq\":1,\"BatchRequestId\":4283,\"text\":\"Gr\\u00fc\\u00dfe "
               "\\ud83d\\ude00\"}],\"next\":1,\"more\":false}"},
    };
    static const char alphabet[] = "{}[]\":,\\u0-9eE.+- \t\nnulltruefalse\x00\x01\x7F\x80\xC3\xED\xF4";
    uint32_t seed = 0x2545F491u;
    char buf[512];
    for (size_t s = 0; s < sizeof seeds / sizeof seeds[0]; s++) {
        size_t len = strlen(seeds[s].body);
        for (size_t round = 0; round < len + 10000; round++) {
            memcpy(buf, seeds[s].body, len);
            size_t n = len;
            if (round < len) {
                n = round; /* every truncation */
            } else {
                unsigned edits = 1 + next_rand(&seed) % 4;
                for (unsigned e = 0; e < edits && n > 0; e++) {
                    size_t at = next_rand(&seed) % n;
                    uint32_t how = next_rand(&seed) % 4;
                    char c = how == 3 ? (char)(next_rand(&seed) & 0xFF)
                                      : alphabet[next_rand(&seed) % (sizeof alphabet - 1)];
                    if (how == 0 && n > 1) { /* delete */
                        memmove(buf + at, buf + at + 1, n - at - 1);
                        n--;
                    } else if (how == 1 && n < sizeof buf) { /* insert */
                        memmove(buf + at + 1, buf + at, n - at);
                        buf[at] = c;
                        n++;
                    } else {
                        buf[at] = c;
                    }
                }
            }
            struct amt_reply r;
            struct amt_parsed *p = amt_parse_reply(seeds[s].call, 200, buf, n, &r);
            assert_non_null(p);
            assert_clean_text(r.error);
            if (r.status == AMT_OK) {
                assert_string_equal(r.error_name, "");
            } else if (!known_prefix(r.error_name)) {
                fail_msg("unnamed failure '%s': %s", r.error_name, r.error);
            }
            if (jsoncheck(buf, n, NULL, NULL) == JSONCHECK_OK) {
                cJSON *j = cJSON_ParseWithLength(buf, n);
                if (!j)
                    fail_msg("the checker passed what cJSON refuses: %.*s", (int)n, buf);
                cJSON_Delete(j);
            }
            amt_parsed_free(p);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(table),
        cmocka_unit_test(rows_distinct),
        cmocka_unit_test(limits),
        cmocka_unit_test(valid_heartbeat_logon),
        cmocka_unit_test(valid_start_kill),
        cmocka_unit_test(valid_monitor),
        cmocka_unit_test(valid_messages),
        cmocka_unit_test(http_error_details),
        cmocka_unit_test(messages_name_the_place),
        cmocka_unit_test(content_types),
        cmocka_unit_test(checker),
        cmocka_unit_test(mutations),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

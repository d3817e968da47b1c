/*
 * The client against a hostile HTTP server on the loopback (a thread here):
 * body caps with and without Content-Length, content types, a server that
 * stalls, one that is too slow, one that is not there; every failure named.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "amtacs/amt.h"
#include "amtacs/timeutil.h"

#define MAX_BODY 4096

enum scenario {
    SC_CHUNKED_OK,      /* a valid heartbeat, chunked */
    SC_CHUNKED_AT_CAP,  /* exactly MAX_BODY bytes, chunked */
    SC_CHUNKED_OVER,    /* MAX_BODY + 1 bytes, chunked */
    SC_CHUNKED_HUGE,    /* 2 MiB, chunked, no Content-Length */
    SC_LENGTH_AT_CAP,   /* exactly MAX_BODY bytes with Content-Length */
    SC_LENGTH_HUGE,     /* Content-Length: 2 MiB */
    SC_HTML,            /* 200 text/html */
    SC_LATIN1,          /* 200 application/json; charset=iso-8859-1 */
    SC_NO_TYPE,         /* 200 without a Content-Type */
    SC_STALL,           /* headers and one byte of the body, then nothing */
    SC_ERROR_503,       /* 503 with a JSON error body */
    SC_DEEP,            /* 200 application/json, nested 40 deep */
};

struct server {
    int fd;
    int port;
    pthread_t th;
    atomic_int scenario;
    atomic_bool stop;
};

static bool send_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w <= 0)
            return false;
        p += w;
        n -= (size_t)w;
    }
    return true;
}

static bool send_str(int fd, const char *s) { return send_all(fd, s, strlen(s)); }

/* A JSON heartbeat padded with spaces to exactly n bytes (n >= 20). */
static char *padded_body(size_t n)
{
    char *b = malloc(n + 1);
    assert_non_null(b);
    memset(b, ' ', n);
    memcpy(b, "{\"status\":\"ok\"}", 15);
    b[n] = '\0';
    return b;
}

static void send_chunked(int fd, const char *type, const char *body, size_t n)
{
    char head[256];
    snprintf(head, sizeof head,
             "HTTP/1.1 200 OK\r\nContent-Type: %s\r\nTransfer-Encoding: chunked\r\n"
             "Connection: close\r\n\r\n",
             type);
    if (!send_str(fd, head))
        return;
    for (size_t off = 0; off < n;) {
        size_t k = n - off < 1000 ? n - off : 1000;
        char sz[32];
        snprintf(sz, sizeof sz, "%zx\r\n", k);
        if (!send_str(fd, sz) || !send_all(fd, body + off, k) || !send_str(fd, "\r\n"))
            return;
        off += k;
    }
    send_str(fd, "0\r\n\r\n");
}

static void send_plain(int fd, const char *status, const char *type, const char *body)
{
    char head[512];
    snprintf(head, sizeof head, "HTTP/1.1 %s\r\n%s%s%sContent-Length: %zu\r\nConnection: close\r\n\r\n",
             status, type ? "Content-Type: " : "", type ? type : "", type ? "\r\n" : "",
             strlen(body));
    if (send_str(fd, head))
        send_str(fd, body);
}

/* Waits until the client hangs up (or the test stops the server). */
static void hold(struct server *s, int fd)
{
    int64_t until = now_ms() + 15000;
    while (!atomic_load(&s->stop) && now_ms() < until) {
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, 100) > 0) {
            char b[256];
            if (recv(fd, b, sizeof b, 0) <= 0)
                return;
        }
    }
}

static void serve(struct server *s, int fd)
{
    char req[4096];
    size_t got = 0;
    while (got < sizeof req - 1) {
        ssize_t r = recv(fd, req + got, sizeof req - 1 - got, 0);
        if (r <= 0)
            return;
        got += (size_t)r;
        req[got] = '\0';
        if (strstr(req, "\r\n\r\n"))
            break;
    }
    char *body;
    switch ((enum scenario)atomic_load(&s->scenario)) {
    case SC_CHUNKED_OK: {
        static const char hb[] =
            "{\"status\":\"ok\",\"amtVersion\":\"8.0\",\"features\":[\"MonitorJobs\"]}";
        send_chunked(fd, "application/json", hb, sizeof hb - 1);
        break;
    }
    case SC_CHUNKED_AT_CAP:
    case SC_CHUNKED_OVER: {
        size_t n = MAX_BODY + (atomic_load(&s->scenario) == SC_CHUNKED_OVER);
        body = padded_body(n);
        send_chunked(fd, "application/json", body, n);
        free(body);
        break;
    }
    case SC_CHUNKED_HUGE: {
        size_t n = 2u << 20;
        body = padded_body(n);
        send_chunked(fd, "application/json", body, n);
        free(body);
        break;
    }
    case SC_LENGTH_AT_CAP:
        body = padded_body(MAX_BODY);
        send_plain(fd, "200 OK", "application/json", body);
        free(body);
        break;
    case SC_LENGTH_HUGE:
        body = padded_body(2u << 20);
        send_plain(fd, "200 OK", "application/json", body);
        free(body);
        break;
    case SC_HTML:
        send_plain(fd, "200 OK", "text/html", "<html>hello</html>");
        break;
    case SC_LATIN1:
        send_plain(fd, "200 OK", "application/json; charset=iso-8859-1", "{\"status\":\"ok\"}");
        break;
    case SC_NO_TYPE:
        send_plain(fd, "200 OK", NULL, "{\"status\":\"ok\"}");
        break;
    case SC_STALL:
        if (send_str(fd, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                         "Content-Length: 100\r\n\r\n{"))
            hold(s, fd);
        break;
    case SC_ERROR_503:
        send_plain(fd, "503 Service Unavailable", "application/json",
                   "{\"errorCode\":503,\"errorDescription\":\"maintenance\\u0007 window\"}");
        break;
    case SC_DEEP: {
        char deep[128] = "{\"x\":";
        for (int i = 0; i < 40; i++)
            strcat(deep, "[");
        for (int i = 0; i < 40; i++)
            strcat(deep, "]");
        strcat(deep, "}");
        send_plain(fd, "200 OK", "application/json", deep);
        break;
    }
    }
}

static void *server_main(void *ud)
{
    struct server *s = ud;
    while (!atomic_load(&s->stop)) {
        struct pollfd p = {s->fd, POLLIN, 0};
        if (poll(&p, 1, 100) <= 0)
            continue;
        int c = accept(s->fd, NULL, NULL);
        if (c < 0)
            continue;
        serve(s, c);
        close(c);
    }
    return NULL;
}

static int listen_any(int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    socklen_t len = sizeof a;
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    *port = ntohs(a.sin_port);
    return fd;
}

static int setup(void **state)
{
    struct server *s = calloc(1, sizeof *s);
    if (!s)
        return -1;
    s->fd = listen_any(&s->port);
    if (listen(s->fd, 8))
        return -1;
    atomic_init(&s->scenario, SC_CHUNKED_OK);
    atomic_init(&s->stop, false);
    if (pthread_create(&s->th, NULL, server_main, s))
        return -1;
    *state = s;
    return 0;
}

static int teardown(void **state)
{
    struct server *s = *state;
    atomic_store(&s->stop, true);
    pthread_join(s->th, NULL);
    close(s->fd);
    free(s);
    return 0;
}

/* ---------------------------------------------------------------- client */

struct outcome {
    bool done;
    enum amt_status status;
    enum amt_call call;
    long http;
    int error_code;
    double seconds;
    char name[64];
    char error[512];
    bool monitor_jobs;
};

static void on_reply(void *ud, const struct amt_reply *r)
{
    struct outcome *o = ud;
    o->done = true;
    o->status = r->status;
    o->call = r->call;
    o->http = r->http_status;
    o->error_code = r->error_code;
    o->seconds = r->seconds;
    o->monitor_jobs = r->monitor_jobs;
    snprintf(o->name, sizeof o->name, "%s", r->error_name ? r->error_name : "(null)");
    snprintf(o->error, sizeof o->error, "%s", r->error ? r->error : "(null)");
}

static char *no_password(void *ud, const char *user, char *err, size_t errlen)
{
    (void)ud;
    (void)user;
    snprintf(err, errlen, "no password in this test");
    return NULL;
}

static void release(char *pw) { free(pw); }

/* One heartbeat against port with these limits; returns its outcome. */
static struct outcome heartbeat(int port, long timeout_ms, long low_speed_ms)
{
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", port);
    struct amt_settings st = {
        .name = "test", .url = url, .user = "amtopcon", .connect_timeout_ms = 2000,
        .timeout_ms = timeout_ms, .low_speed_ms = low_speed_ms, .max_body = MAX_BODY,
        .max_connections = 2,
    };
    CURLM *m = curl_multi_init();
    assert_non_null(m);
    char err[256];
    struct amt_client *c = amt_client_new(m, &st, no_password, release, NULL, err, sizeof err);
    assert_non_null(c);
    struct outcome o;
    memset(&o, 0, sizeof o);
    assert_int_equal(amt_heartbeat(c, on_reply, &o), 0);
    int64_t until = now_ms() + 20000;
    while (!o.done && now_ms() < until) {
        int running;
        curl_multi_perform(m, &running);
        amt_multi_dispatch(m);
        if (!o.done)
            curl_multi_poll(m, NULL, 0, 50, NULL);
    }
    assert_true(o.done);
    amt_client_free(c);
    curl_multi_cleanup(m);
    assert_int_equal(o.call, AMT_CALL_HEARTBEAT);
    for (const char *p = o.error; *p; p++)
        assert_true((unsigned char)*p >= 0x20 && *p != 0x7F);
    return o;
}

static struct outcome run(void **state, enum scenario sc)
{
    struct server *s = *state;
    atomic_store(&s->scenario, (int)sc);
    return heartbeat(s->port, 10000, 0);
}

static void expect_fail(struct outcome o, enum amt_status st, const char *name)
{
    if (o.status != st || strcmp(o.name, name))
        fail_msg("expected %s/%s, got %s/%s: %s", amt_status_name(st), name,
                 amt_status_name(o.status), o.name, o.error);
}

static void chunked_within_cap(void **state)
{
    struct outcome o = run(state, SC_CHUNKED_OK);
    expect_fail(o, AMT_OK, "");
    assert_true(o.monitor_jobs);
    assert_int_equal(o.http, 200);
    assert_true(o.seconds > 0 && o.seconds < 10);
    expect_fail(run(state, SC_CHUNKED_AT_CAP), AMT_OK, "");
    expect_fail(run(state, SC_LENGTH_AT_CAP), AMT_OK, "");
}

/* Without a Content-Length curl cannot refuse early: the buffer's cap must. */
static void chunked_over_cap(void **state)
{
    struct outcome o = run(state, SC_CHUNKED_OVER);
    expect_fail(o, AMT_ERR_PROTOCOL, "body.too_large");
    assert_non_null(strstr(o.error, "larger than 4096 bytes"));
    expect_fail(run(state, SC_CHUNKED_HUGE), AMT_ERR_PROTOCOL, "body.too_large");
    expect_fail(run(state, SC_LENGTH_HUGE), AMT_ERR_PROTOCOL, "body.too_large");
}

static void content_type(void **state)
{
    struct outcome o = run(state, SC_HTML);
    expect_fail(o, AMT_ERR_PROTOCOL, "http.content_type");
    assert_non_null(strstr(o.error, "'text/html'"));
    expect_fail(run(state, SC_LATIN1), AMT_ERR_PROTOCOL, "http.content_type");
    expect_fail(run(state, SC_NO_TYPE), AMT_ERR_PROTOCOL, "http.content_type");
}

static void server_error(void **state)
{
    struct outcome o = run(state, SC_ERROR_503);
    expect_fail(o, AMT_ERR_SERVER, "http.5xx");
    assert_int_equal(o.http, 503);
    assert_int_equal(o.error_code, 503);
    assert_non_null(strstr(o.error, "HTTP 503 from http://127.0.0.1:"));
    assert_non_null(strstr(o.error, ": maintenance  window"));
    expect_fail(run(state, SC_DEEP), AMT_ERR_PROTOCOL, "json.depth");
}

/* A server that stops sending is dropped at the low-speed limit, long before
 * the whole-call timeout. */
static void stalled(void **state)
{
    struct server *s = *state;
    atomic_store(&s->scenario, SC_STALL);
    int64_t t0 = now_ms();
    struct outcome o = heartbeat(s->port, 20000, 1000);
    int64_t took = now_ms() - t0;
    expect_fail(o, AMT_ERR_TRANSPORT, "transport.stalled");
    assert_true(took < 8000);
    assert_true(o.seconds >= 0.9 && o.seconds < 8);
}

static void timed_out(void **state)
{
    struct server *s = *state;
    atomic_store(&s->scenario, SC_STALL);
    struct outcome o = heartbeat(s->port, 1500, 0);
    expect_fail(o, AMT_ERR_TRANSPORT, "transport.timeout");
    assert_true(o.seconds >= 1.4 && o.seconds < 8);
}

static void refused(void **state)
{
    (void)state;
    int port;
    int fd = listen_any(&port); /* bound, never listening: connections are refused */
    struct outcome o = heartbeat(port, 5000, 0);
    close(fd);
    expect_fail(o, AMT_ERR_TRANSPORT, "transport.connect");
    assert_int_equal(o.http, 0);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    if (amt_global_init()) /* the daemon's libcurl: blocks wiped on free */
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(chunked_within_cap), cmocka_unit_test(chunked_over_cap),
        cmocka_unit_test(content_type),       cmocka_unit_test(server_error),
        cmocka_unit_test(stalled),            cmocka_unit_test(timed_out),
        cmocka_unit_test(refused),
    };
    int rc = cmocka_run_group_tests(tests, setup, teardown);
    amt_global_cleanup();
    return rc;
}

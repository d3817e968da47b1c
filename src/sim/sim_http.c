/* sim_http: libmicrohttpd handlers, routing, body caps and fault application. */
#include "sim_http.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <microhttpd.h>

#include "amtacs/buf.h"
#include "amtacs/text.h"

#define CONNECTION_LIMIT 4096
#define IDLE_TIMEOUT_S 120
#define THREAD_STACK (512 * 1024)
#define TOKEN_HEADER "X-AMT-LogonToken"

struct sim_http {
    struct MHD_Daemon *d;
    struct sim_world *world;
    struct sim_faults *faults;
    bool verbose;
    unsigned port;
};

/* State of one HTTP request across the access-handler calls. */
struct call {
    struct buf body;
    bool too_big;
};

enum route {
    R_NONE,
    R_HEARTBEAT,
    R_LOGON,
    R_ACTION,
    R_MONITOR,
    R_MONITOR_JOBS,
    R_MESSAGES,
    R_SIM_COUNTERS,
    R_SIM_TASKS,
    R_SIM_CLOCK,
    R_SIM_REQUEST,
    R_SIM_REQUEST_STATE,
    R_SIM_FAULTS,
    R_SIM_TOKENS_EXPIRE,
    R_SIM_TOKENS,
    R_SIM_CONFIG,
    R_SIM_USERS,
};

struct route_def {
    const char *prefix; /* the path, or its prefix when with_id */
    bool with_id;       /* a /<integer> follows (and perhaps suffix) */
    const char *suffix;
    enum route route;
    const char *methods; /* allowed methods, space-separated, as in an Allow header */
};

static const struct route_def routes[] = {
    {"/api/heartbeat", false, NULL, R_HEARTBEAT, "GET"},
    {"/api/logon", false, NULL, R_LOGON, "POST"},
    {"/api/OpConJobAction", false, NULL, R_ACTION, "POST"},
    {"/api/MonitorJob/", true, "", R_MONITOR, "GET"},
    {"/api/MonitorJobs", false, NULL, R_MONITOR_JOBS, "POST"},
    {"/api/GetMessages/", true, "", R_MESSAGES, "GET"},
    {"/sim/counters", false, NULL, R_SIM_COUNTERS, "GET"},
    {"/sim/tasks", false, NULL, R_SIM_TASKS, "GET"},
    {"/sim/clock", false, NULL, R_SIM_CLOCK, "GET"},
    {"/sim/requests/", true, "", R_SIM_REQUEST, "GET"},
    {"/sim/requests/", true, "/state", R_SIM_REQUEST_STATE, "POST"},
    {"/sim/faults", false, NULL, R_SIM_FAULTS, "GET, PUT, DELETE"},
    {"/sim/tokens/expire", false, NULL, R_SIM_TOKENS_EXPIRE, "POST"},
    {"/sim/tokens", false, NULL, R_SIM_TOKENS, "GET"},
    {"/sim/config", false, NULL, R_SIM_CONFIG, "GET, PUT"},
    {"/sim/users", false, NULL, R_SIM_USERS, "POST"},
};

/* Matches a path; *id gets the number of a with_id route, *bad_id is set when
 * the segment is there but not a number. */
static const struct route_def *match_route(const char *url, long *id, bool *bad_id)
{
    *bad_id = false;
    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
        const struct route_def *r = &routes[i];
        size_t pl = strlen(r->prefix);
        if (!r->with_id) {
            if (strcmp(url, r->prefix) == 0)
                return r;
            continue;
        }
        if (strncmp(url, r->prefix, pl) != 0)
            continue;
        const char *seg = url + pl;
        const char *slash = strchr(seg, '/');
        size_t seglen = slash ? (size_t)(slash - seg) : strlen(seg);
        const char *rest = seg + seglen;
        if (strcmp(rest, r->suffix) != 0 || seglen == 0)
            continue;
        char tmp[24];
        bool digits = seglen < sizeof(tmp);
        for (size_t k = 0; digits && k < seglen; k++)
            digits = seg[k] >= '0' && seg[k] <= '9';
        if (!digits) {
            *bad_id = true;
            return r;
        }
        memcpy(tmp, seg, seglen);
        tmp[seglen] = '\0';
        errno = 0;
        *id = strtol(tmp, NULL, 10);
        if (errno != 0)
            *bad_id = true;
        return r;
    }
    return NULL;
}

static bool method_allowed(const struct route_def *r, const char *method)
{
    const char *p = r->methods;
    size_t ml = strlen(method);
    while ((p = strstr(p, method)) != NULL) {
        bool start = p == r->methods || p[-1] == ' ';
        bool end = p[ml] == '\0' || p[ml] == ',';
        if (start && end)
            return true;
        p += ml;
    }
    return false;
}

/* The fault filter's name for an /api call. */
static const char *route_name(enum route rt, const cJSON *body)
{
    switch (rt) {
    case R_HEARTBEAT:
        return "heartbeat";
    case R_LOGON:
        return "logon";
    case R_ACTION: {
        const cJSON *a = cJSON_GetObjectItemCaseSensitive(body, "action");
        if (cJSON_IsString(a) && strcmp(a->valuestring, "Start") == 0)
            return "start";
        if (cJSON_IsString(a) && strcmp(a->valuestring, "Kill") == 0)
            return "kill";
        if (cJSON_IsString(a) && strcmp(a->valuestring, "Stop") == 0)
            return "stop";
        return "other";
    }
    case R_MONITOR:
        return "monitor";
    case R_MONITOR_JOBS:
        return "monitor_jobs";
    case R_MESSAGES:
        return "messages";
    default:
        return "other";
    }
}

/* Turns the raw body into a JSON object; NULL with an error reply otherwise. */
static cJSON *parse_body(const struct call *c, struct sim_reply *r)
{
    if (c->body.len == 0) {
        sim_reply_error(r, 400, 400, "the request body must be a JSON object");
        return NULL;
    }
    if (!text_utf8_valid(c->body.data, c->body.len)) {
        sim_reply_error(r, 400, 400, "the request body is not valid UTF-8");
        return NULL;
    }
    cJSON *o = cJSON_ParseWithLength(c->body.data, c->body.len);
    if (o == NULL) {
        sim_reply_error(r, 400, 400, "malformed JSON in the request body");
        return NULL;
    }
    if (!cJSON_IsObject(o)) {
        cJSON_Delete(o);
        sim_reply_error(r, 400, 400, "the request body must be a JSON object");
        return NULL;
    }
    return o;
}

static void handle_api(struct sim_http *h, struct MHD_Connection *con, enum route rt, long id,
                       const cJSON *body, struct sim_reply *r)
{
    switch (rt) {
    case R_HEARTBEAT:
        sim_world_heartbeat(h->world, r);
        return;
    case R_LOGON:
        sim_world_logon(h->world, body, r);
        return;
    default:
        break;
    }
    const char *token = MHD_lookup_connection_value(con, MHD_HEADER_KIND, TOKEN_HEADER);
    if (token == NULL || *token == '\0') {
        sim_reply_error(r, 401, SIM_ERR_AUTH, "missing " TOKEN_HEADER " header");
        sim_world_token_ok(h->world, NULL); /* counts the failure */
        return;
    }
    if (!sim_world_token_ok(h->world, token)) {
        sim_reply_error(r, 401, SIM_ERR_AUTH, "unknown or expired logon token");
        return;
    }
    switch (rt) {
    case R_ACTION:
        sim_world_job_action(h->world, body, r);
        break;
    case R_MONITOR:
        sim_world_monitor(h->world, id, r);
        break;
    case R_MONITOR_JOBS:
        sim_world_monitor_many(h->world, body, r);
        break;
    case R_MESSAGES:
        sim_world_messages(h->world, id,
                           MHD_lookup_connection_value(con, MHD_GET_ARGUMENT_KIND, "after"),
                           MHD_lookup_connection_value(con, MHD_GET_ARGUMENT_KIND, "limit"), r);
        break;
    default:
        sim_reply_error(r, 404, 404, "no such route");
        break;
    }
}

static void handle_sim(struct sim_http *h, const char *method, enum route rt, long id,
                       const cJSON *body, struct sim_reply *r)
{
    char err[256];
    switch (rt) {
    case R_SIM_COUNTERS:
        sim_world_counters(h->world, r);
        break;
    case R_SIM_TASKS:
        sim_world_tasks(h->world, r);
        break;
    case R_SIM_CLOCK:
        sim_world_clock(h->world, r);
        break;
    case R_SIM_REQUEST:
        sim_world_request_info(h->world, id, r);
        break;
    case R_SIM_REQUEST_STATE:
        sim_world_force_state(h->world, id, body, r);
        break;
    case R_SIM_FAULTS:
        if (strcmp(method, "PUT") == 0 && !sim_faults_set(h->faults, body, err, sizeof(err))) {
            sim_reply_error(r, 400, 400, "%s", err);
            break;
        }
        if (strcmp(method, "DELETE") == 0)
            sim_faults_clear(h->faults);
        sim_reply_ok(r, sim_faults_get(h->faults));
        break;
    case R_SIM_TOKENS_EXPIRE:
        sim_world_expire_tokens(h->world, r);
        break;
    case R_SIM_TOKENS:
        sim_world_tokens(h->world, r);
        break;
    case R_SIM_CONFIG:
        sim_world_config(h->world, strcmp(method, "PUT") == 0 ? body : NULL, r);
        break;
    case R_SIM_USERS:
        sim_world_add_user(h->world, body, r);
        break;
    default:
        sim_reply_error(r, 404, 404, "no such route");
        break;
    }
}

static bool needs_body(enum route rt, const char *method)
{
    switch (rt) {
    case R_LOGON:
    case R_ACTION:
    case R_MONITOR_JOBS:
    case R_SIM_REQUEST_STATE:
    case R_SIM_USERS:
        return true;
    case R_SIM_FAULTS:
    case R_SIM_CONFIG:
        return strcmp(method, "PUT") == 0;
    default:
        return false;
    }
}

/* Pads a JSON object answer with a "padding" string up to at least n bytes. */
static char *oversize(cJSON *body, size_t n)
{
    size_t pad = n;
    char *fill = malloc(pad + 1);
    if (fill == NULL)
        return NULL;
    memset(fill, 'x', pad);
    fill[pad] = '\0';
    cJSON *item = cJSON_CreateString(fill);
    free(fill);
    if (item == NULL || !cJSON_IsObject(body)) {
        cJSON_Delete(item);
        return NULL;
    }
    cJSON_AddItemToObject(body, "padding", item);
    return cJSON_PrintUnformatted(body);
}

static enum MHD_Result send_reply(struct MHD_Connection *con, struct sim_reply *r,
                                  const struct sim_fault_plan *plan, const char *allow)
{
    char *text = NULL;
    const char *ctype = "application/json";
    if (plan != NULL && plan->wrong_content_type) {
        text = strdup("<html><head><title>Gateway</title></head>"
                      "<body><h1>Service temporarily unavailable</h1></body></html>");
        ctype = "text/html; charset=utf-8";
    } else if (plan != NULL && plan->oversized && r->body != NULL) {
        text = oversize(r->body, plan->oversized_bytes);
    }
    if (text == NULL && r->body != NULL)
        text = cJSON_PrintUnformatted(r->body);
    cJSON_Delete(r->body);
    r->body = NULL;
    if (text == NULL)
        return MHD_NO;
    size_t len = strlen(text);
    if (plan != NULL && plan->malformed && !plan->wrong_content_type)
        len = len / 2 > 0 ? len / 2 : 0; /* cut mid-document: never valid JSON */
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(len, text, MHD_RESPMEM_MUST_FREE);
    if (resp == NULL) {
        free(text);
        return MHD_NO;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
    if (allow != NULL)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, allow);
    enum MHD_Result ret = MHD_queue_response(con, (unsigned)r->status, resp);
    MHD_destroy_response(resp);
    return ret;
}

static void log_line(const struct sim_http *h, const char *method, const char *url, int status,
                     const char *note)
{
    if (!h->verbose)
        return;
    struct buf b;
    buf_init(&b, 4096);
    /* URLs come from the network: print them on one line, never raw. */
    if (text_one_line(&b, url, strlen(url)) == BUF_OK)
        fprintf(stderr, "amt-batch-sim: %s %s -> %d%s%s\n", method, b.data ? b.data : "", status,
                note ? " " : "", note ? note : "");
    buf_free(&b);
}

static enum MHD_Result dispatch(struct sim_http *h, struct MHD_Connection *con, const char *url,
                                const char *method, struct call *c)
{
    struct sim_reply r = {0};
    long id = 0;
    bool bad_id = false;
    const struct route_def *rd = match_route(url, &id, &bad_id);
    bool api = strncmp(url, "/api/", 5) == 0 || strcmp(url, "/api") == 0;
    enum route rt = rd ? rd->route : R_NONE;
    bool method_ok = rd != NULL && method_allowed(rd, method);
    cJSON *body = NULL;
    struct sim_fault_plan plan = {0};
    const char *allow = NULL;
    enum MHD_Result ret;

    if (method_ok && needs_body(rt, method) && !c->too_big)
        body = parse_body(c, &r);

    if (api) {
        const char *name = method_ok ? route_name(rt, body) : "other";
        sim_world_count_route(h->world, name);
        sim_faults_plan(h->faults, name, &plan);
        if (plan.any)
            sim_world_count_fault(h->world);
        if (plan.latency_ms > 0 && !sim_faults_sleep(h->faults, plan.latency_ms))
            plan.cut = SIM_CUT_RESET;
        if (plan.cut == SIM_CUT_HANG) {
            sim_faults_sleep(h->faults, plan.hang_ms);
            plan.cut = SIM_CUT_RESET;
        }
        if (plan.cut == SIM_CUT_RESET) {
            log_line(h, method, url, 0, "(fault: connection reset)");
            cJSON_Delete(body);
            cJSON_Delete(r.body);
            return MHD_NO;
        }
        if (plan.cut == SIM_CUT_ERROR) {
            cJSON_Delete(r.body);
            r.body = NULL;
            sim_reply_error(&r, plan.error_status, plan.error_status,
                            "injected fault: status %d", plan.error_status);
            goto reply;
        }
    }

    if (c->too_big) {
        cJSON_Delete(r.body);
        sim_reply_error(&r, 413, 413, "request body larger than %d bytes", SIM_HTTP_BODY_MAX);
    } else if (rd == NULL) {
        sim_reply_error(&r, 404, 404, "no such route");
    } else if (!method_ok) {
        allow = rd->methods;
        sim_reply_error(&r, 405, 405, "method %.16s not allowed here (allowed: %s)", method,
                        rd->methods);
    } else if (bad_id) {
        sim_reply_error(&r, 400, 400, "the BatchRequestId in the path must be an integer");
    } else if (r.body != NULL) {
        /* parse_body already answered 400 */
    } else if (rt == R_MONITOR_JOBS && !sim_world_has_monitor_jobs(h->world)) {
        sim_reply_error(&r, 404, 404, "no such route (feature MonitorJobs is off)");
    } else if (api) {
        handle_api(h, con, rt, id, body, &r);
    } else {
        handle_sim(h, method, rt, id, body, &r);
    }

reply:
    cJSON_Delete(body);
    if (plan.reset_after) {
        log_line(h, method, url, r.status, "(fault: answer lost)");
        cJSON_Delete(r.body);
        return MHD_NO;
    }
    log_line(h, method, url, r.status, plan.any ? "(fault injected)" : NULL);
    ret = send_reply(con, &r, api ? &plan : NULL, allow);
    return ret;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *con, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size,
                                  void **con_cls)
{
    (void)version;
    struct sim_http *h = cls;
    struct call *c = *con_cls;
    if (c == NULL) {
        c = calloc(1, sizeof(*c));
        if (c == NULL)
            return MHD_NO;
        buf_init(&c->body, SIM_HTTP_BODY_MAX);
        *con_cls = c;
        const char *cl = MHD_lookup_connection_value(con, MHD_HEADER_KIND,
                                                     MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (cl != NULL) {
            errno = 0;
            char *end;
            unsigned long long n = strtoull(cl, &end, 10);
            if (errno == 0 && *end == '\0' && n > SIM_HTTP_BODY_MAX) {
                /* Answer before the upload: no point reading what we refuse. */
                c->too_big = true;
                return dispatch(h, con, url, method, c);
            }
        }
        return MHD_YES;
    }
    if (*upload_data_size > 0) {
        if (!c->too_big && buf_append(&c->body, upload_data, *upload_data_size) != BUF_OK)
            c->too_big = true;
        *upload_data_size = 0;
        return MHD_YES;
    }
    return dispatch(h, con, url, method, c);
}

/* Counts TCP connections, so a client's keep-alive and reuse can be seen. */
static void on_connection(void *cls, struct MHD_Connection *connection, void **socket_context,
                          enum MHD_ConnectionNotificationCode toe)
{
    struct sim_http *h = cls;
    (void)connection;
    (void)socket_context;
    if (toe == MHD_CONNECTION_NOTIFY_STARTED)
        sim_world_count_connection(h->world);
}

static void on_completed(void *cls, struct MHD_Connection *con, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)con;
    (void)toe;
    struct call *c = *con_cls;
    if (c == NULL)
        return;
    buf_free(&c->body);
    free(c);
    *con_cls = NULL;
}

struct sim_http *sim_http_start(struct sim_world *world, struct sim_faults *faults,
                                const struct sim_http_opts *o, char *err, size_t errlen)
{
    struct sim_http *h = calloc(1, sizeof(*h));
    if (h == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    h->world = world;
    h->faults = faults;
    h->verbose = o->verbose;
    unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD |
                     MHD_USE_POLL;
    if (o->verbose)
        flags |= MHD_USE_ERROR_LOG;
    if (o->addr->sa_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    bool tls = o->tls_cert_pem != NULL && o->tls_key_pem != NULL;
    if (tls)
        flags |= MHD_USE_TLS;
    struct MHD_OptionItem tls_opts[] = {
        {MHD_OPTION_HTTPS_MEM_CERT, 0, (void *)(uintptr_t)o->tls_cert_pem},
        {MHD_OPTION_HTTPS_MEM_KEY, 0, (void *)(uintptr_t)o->tls_key_pem},
        {MHD_OPTION_END, 0, NULL},
    };
    struct MHD_OptionItem no_opts[] = {{MHD_OPTION_END, 0, NULL}};
    h->d = MHD_start_daemon(
        flags, 0, NULL, NULL, on_request, h, MHD_OPTION_SOCK_ADDR, o->addr,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)CONNECTION_LIMIT, MHD_OPTION_CONNECTION_TIMEOUT,
        (unsigned)IDLE_TIMEOUT_S, MHD_OPTION_LISTEN_BACKLOG_SIZE, (unsigned)1024,
        MHD_OPTION_THREAD_STACK_SIZE, (size_t)THREAD_STACK, MHD_OPTION_NOTIFY_COMPLETED,
        on_completed, NULL, MHD_OPTION_NOTIFY_CONNECTION, on_connection, h, MHD_OPTION_ARRAY, tls ? tls_opts : no_opts, MHD_OPTION_END);
    if (h->d == NULL) {
        snprintf(err, errlen, "cannot start the HTTP server (address in use, bad TLS "
                 "certificate or key, or too few resources)");
        free(h);
        return NULL;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_BIND_PORT);
    h->port = info ? info->port : 0;
    return h;
}

unsigned sim_http_port(const struct sim_http *h)
{
    return h->port;
}

void sim_http_stop(struct sim_http *h)
{
    if (h == NULL)
        return;
    sim_faults_shutdown(h->faults);
    MHD_stop_daemon(h->d);
    free(h);
}

/*
 * sim_http: the simulator's HTTP front end on libmicrohttpd — routing of /api/...
 * (the AMT REST interface, with fault injection) and /sim/... (test controls),
 * request-body caps and JSON error answers. One thread per connection, so a
 * delayed or hanging answer never holds up another client.
 */
#ifndef AMTACS_SIM_HTTP_H
#define AMTACS_SIM_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include "sim_faults.h"
#include "sim_world.h"

/* Largest request body accepted; larger bodies answer 413. */
#define SIM_HTTP_BODY_MAX (1024 * 1024)

struct sim_http_opts {
    const struct sockaddr *addr; /* where to listen (port 0: any free port) */
    socklen_t addrlen;
    const char *tls_cert_pem;    /* PEM text; both NULL for plain HTTP */
    const char *tls_key_pem;
    bool verbose;                /* one log line per request on stderr */
};

struct sim_http;

/* Starts serving; world and faults are borrowed and must outlive the server.
 * On failure returns NULL with a reason in err. */
struct sim_http *sim_http_start(struct sim_world *world, struct sim_faults *faults,
                                const struct sim_http_opts *o, char *err, size_t errlen);
/* The port actually bound. */
unsigned sim_http_port(const struct sim_http *h);
/* Stops accepting, ends every connection (hangs included) and frees; NULL is a no-op. */
void sim_http_stop(struct sim_http *h);

#endif

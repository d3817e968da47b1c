/*
 * netaddr: "HOST:PORT" / "[V6]:PORT" listen addresses, as the simulator's
 * --listen and the daemon's http.listen take them.
 */
#ifndef AMTACS_NETADDR_H
#define AMTACS_NETADDR_H

#include <stdbool.h>
#include <stddef.h>

#include <netdb.h>

/* A resolved listen address. host/port are the parts as given (without the
 * brackets of an IPv6 literal); ai is owned: release with netaddr_free(). */
struct netaddr {
    char host[256];
    char port[8];
    struct addrinfo *ai;
};

/* Splits and resolves `listen` (port 0-65535; 0 = any free port). Returns 0,
 * or -1 with a message naming the problem in err. */
int netaddr_resolve(const char *listen, struct netaddr *out, char *err, size_t errlen);
void netaddr_free(struct netaddr *a);

/* True if the host part of `listen` (HOST:PORT) names the loopback interface
 * without a lookup: "localhost", an address in 127.0.0.0/8 or ::1 (also as
 * ::ffff:127.x.y.z). Any other name counts as not loopback. */
bool netaddr_listen_is_loopback(const char *listen);
/* True if sa is an IPv4 address in 127.0.0.0/8, ::1 or ::ffff:127.x.y.z. */
bool netaddr_sockaddr_is_loopback(const struct sockaddr *sa);

#endif

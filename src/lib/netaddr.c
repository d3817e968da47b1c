#include "amtacs/netaddr.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

int netaddr_resolve(const char *listen, struct netaddr *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    const char *colon = strrchr(listen, ':');
    if (!colon || !colon[1]) {
        snprintf(err, errlen, "needs HOST:PORT, not '%s'", listen);
        return -1;
    }
    const char *h = listen;
    size_t hl = (size_t)(colon - listen);
    if (hl >= 2 && h[0] == '[' && h[hl - 1] == ']') {
        h++;
        hl -= 2;
    }
    char *end;
    errno = 0;
    long p = strtol(colon + 1, &end, 10);
    if (hl == 0 || hl >= sizeof out->host || errno || *end || colon[1] == '-' ||
        colon[1] == '+' || colon[1] == ' ' || p < 0 || p > 65535) {
        snprintf(err, errlen, "needs HOST:PORT with a port 0-65535, not '%s'", listen);
        return -1;
    }
    memcpy(out->host, h, hl);
    out->host[hl] = '\0';
    snprintf(out->port, sizeof out->port, "%ld", p);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_NUMERICSERV | AI_PASSIVE};
    int rc = getaddrinfo(out->host, out->port, &hints, &out->ai);
    if (rc) {
        snprintf(err, errlen, "cannot resolve '%s': %s", out->host, gai_strerror(rc));
        out->ai = NULL;
        return -1;
    }
    return 0;
}

void netaddr_free(struct netaddr *a)
{
    if (a && a->ai) {
        freeaddrinfo(a->ai);
        a->ai = NULL;
    }
}

static bool v4_loopback(const struct in_addr *a) { return (ntohl(a->s_addr) >> 24) == 127; }

static bool v6_loopback(const struct in6_addr *a)
{
    if (IN6_IS_ADDR_LOOPBACK(a))
        return true;
    if (IN6_IS_ADDR_V4MAPPED(a))
        return a->s6_addr[12] == 127;
    return false;
}

bool netaddr_listen_is_loopback(const char *listen)
{
    const char *colon = strrchr(listen, ':');
    if (!colon)
        return false;
    const char *h = listen;
    size_t hl = (size_t)(colon - listen);
    if (hl >= 2 && h[0] == '[' && h[hl - 1] == ']') {
        h++;
        hl -= 2;
    }
    char host[256];
    if (hl == 0 || hl >= sizeof host)
        return false;
    memcpy(host, h, hl);
    host[hl] = '\0';
    if (!strcasecmp(host, "localhost"))
        return true;
    struct in_addr a4;
    struct in6_addr a6;
    if (inet_pton(AF_INET, host, &a4) == 1)
        return v4_loopback(&a4);
    if (inet_pton(AF_INET6, host, &a6) == 1)
        return v6_loopback(&a6);
    return false;
}

bool netaddr_sockaddr_is_loopback(const struct sockaddr *sa)
{
    if (!sa)
        return false;
    if (sa->sa_family == AF_INET)
        return v4_loopback(&((const struct sockaddr_in *)(const void *)sa)->sin_addr);
    if (sa->sa_family == AF_INET6)
        return v6_loopback(&((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr);
    return false;
}

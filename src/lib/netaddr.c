#include "amtacs/netaddr.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

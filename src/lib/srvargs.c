#include "amtacs/srvargs.h"

#include <getopt.h>
#include <stdlib.h>

int srvargs_parse(const char *prog, int argc, char **argv, void (*usage)(FILE *out),
                  const char **path, int *check)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'}, {"check", no_argument, NULL, 'n'},
        {"version", no_argument, NULL, 'V'},      {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    *path = getenv("AMTACS_CONFIG");
    *check = 0;
    int ch;
    while ((ch = getopt_long(argc, argv, "c:nVh", opts, NULL)) != -1) {
        switch (ch) {
        case 'c':
            *path = optarg;
            break;
        case 'n':
            *check = 1;
            break;
        case 'V':
            printf("%s %s\n", prog, AMTACS_VERSION);
            return 0;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "%s: unexpected argument '%s'\n", prog, argv[optind]);
        usage(stderr);
        return 2;
    }
    if (!*path)
        *path = SRVARGS_DEFAULT_CONFIG;
    return -1;
}

/*
 * srvargs: the command line both servers (amtacsd, amtacs-web) take:
 * -c/--config FILE (else $AMTACS_CONFIG, else SRVARGS_DEFAULT_CONFIG),
 * -n/--check, -V/--version, -h/--help.
 */
#ifndef AMTACS_SRVARGS_H
#define AMTACS_SRVARGS_H

#include <stdio.h>

#define SRVARGS_DEFAULT_CONFIG "/etc/amtacs/amtacs.yaml"

/* Parses argv into *path and *check. Returns -1 to go on, or the exit status
 * when the program is done (version or help printed: 0; a usage error: 2). */
int srvargs_parse(const char *prog, int argc, char **argv, void (*usage)(FILE *out),
                  const char **path, int *check);

#endif

/*
 * codes_dump: what src/lib/codes.c says of every code from -1 to 100, one line
 * each: code, name, final, success, raises_alert (t/f), tab-separated. The
 * success column is amt_code_is_success() and must agree with the table's own
 * success field (it exits 1 if not). test_schema compares the lines with
 * acs.completion_codes, so that the daemon's C and the database's functions
 * cannot drift apart on which code succeeds or raises an alert.
 */
#include "amtacs/codes.h"

#include <stdio.h>

int main(void)
{
    int rc = 0;
    for (int code = -1; code <= 100; code++) {
        struct amt_code_info info = amt_code_lookup(code);
        if (info.success != amt_code_is_success(code)) {
            fprintf(stderr, "codes_dump: code %d: the table says success=%d, "
                            "amt_code_is_success says %d\n",
                    code, info.success, amt_code_is_success(code));
            rc = 1;
        }
        printf("%d\t%s\t%c\t%c\t%c\n", code, amt_code_known(code) ? info.name : "",
               amt_code_known(code) ? (info.final ? 't' : 'f') : '-',
               amt_code_is_success(code) ? 't' : 'f', amt_code_raises_alert(code) ? 't' : 'f');
    }
    return rc;
}

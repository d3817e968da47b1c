#include "amtacs/codes.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#define S AMT_ORIGIN_SERVER
#define C AMT_ORIGIN_CONNECTOR

/*
 * Finality is ours (the vendor does not publish it): a state is final when the
 * request can no longer change on its own. 23 and 24 are final because the
 * connector only sets them when it gives up on a job.
 */
static const struct amt_code_info table[] = {
    {0, "IDLE", "Job is idle", false, false, S},
    {1, "QUEUED", "Job is queued for future start in current timeframe", false, false, S},
    {2, "RUNNING", "Job was started manually or by the scheduler", false, false, S},
    {3, "KILLED", "Job was terminated by a 'kill' command", true, false, S},
    {4, "DONE", "Job completed normally", true, true, S},
    {5, "SUSPENDED", "Queued job has not started on time", false, false, S},
    {6, "SKIPPED_BY_OPS", "Suspended job has been skipped by control center", true, false, S},
    {7, "RUN_MANUAL", "Job was started by control center", false, false, S},
    {8, "RUN_FORCED", "Forced start manual; start this job even when job server halted",
     false, false, S},
    {9, "RUN_DEBUG", "When a report is started from Visual Studio", false, false, S},
    {10, "DEL_QUEUE", "Job is deleted from queue", true, false, S},
    {11, "ERROR",
     "Job ended in error. When executing a script and the script does not exist, an error "
     "code of 11 is returned with a description of 'File not found'",
     true, false, S},
    {12, "ABORTED", "The job was aborted on purpose in the business-logic", true, false, S},
    {13, "WAIT FOR FILE", "Waiting for a file", false, false, S},
    {14, "WAIT FOR INPUT REQUEST", "Waiting for request", false, false, S},
    {15, "WAIT FOR JOB", "Waiting for another job to finish", false, false, S},
    {16, "WAIT FOR REPORT", "Waiting for a report to finish; for future use", false, false, S},
    {18, "RECOVER_CP", "This job (report) is a request to recover from a saved critical point",
     false, false, S},
    {19, "UNDEFINED", "State is undefined", true, false, S},
    {20, "WAIT_FOR QUEUE", "Waiting for queue start time", false, false, S},
    {21, "WAIT_FOR_DEBUGGER", "Waiting for a LION Debugger to start debug session for the job",
     false, false, S},
    {22, "ABORTED_WITH_RECOVER", "Aborted with recover", true, false, S},
    {23, "WEB_SERVER_ERROR", "", true, false, C},
    {24, "AUTHENTICATION_ERROR", "", true, false, C},
    {99, "INVALID AMT USER",
     "When executing an AMT script with a named AMT user and the user is invalid", true, false,
     S},
};

#undef S
#undef C

const struct amt_code_info *amt_codes_table(size_t *count)
{
    if (count)
        *count = sizeof table / sizeof table[0];
    return table;
}

static const struct amt_code_info *find(int code)
{
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
        if (table[i].code == code)
            return &table[i];
    return NULL;
}

struct amt_code_info amt_code_lookup(int code)
{
    const struct amt_code_info *row = find(code);
    if (row)
        return *row;
    struct amt_code_info unknown = {
        code, "UNKNOWN", "Code not in the published AMT table", true, false, AMT_ORIGIN_UNKNOWN,
    };
    return unknown;
}

bool amt_code_known(int code) { return find(code) != NULL; }

const char *amt_code_name(int code)
{
    const struct amt_code_info *row = find(code);
    return row ? row->name : "UNKNOWN";
}

bool amt_code_is_final(int code)
{
    const struct amt_code_info *row = find(code);
    return row ? row->final : true;
}

bool amt_code_is_success(int code) { return code == AMT_DONE; }

bool amt_code_raises_alert(int code)
{
    return code == AMT_ERROR || code == AMT_ABORTED || code == AMT_WEB_SERVER_ERROR ||
           code == AMT_AUTHENTICATION_ERROR;
}

bool amt_code_parse(const char *text, int *out)
{
    if (!text || !*text)
        return false;
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
        if (strcmp(table[i].name, text) == 0) {
            *out = table[i].code;
            return true;
        }
    }
    char *end;
    errno = 0;
    long v = strtol(text, &end, 10);
    if (errno || *end || end == text || v < INT_MIN || v > INT_MAX)
        return false;
    *out = (int)v;
    return true;
}

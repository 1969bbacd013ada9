/* Status texts and names, generated from the one X-macro list in common.h. */
#include <otelprof/common.h>
#include <otelprof/version.h>

const char *otelprof_strerror(otelprof_status status)
{
    /* A switch without default: -Wswitch flags a code added to the map but not here,
     * which cannot happen since both come from the same list. */
    switch (status) {
#define OTELPROF_STATUS_MSG_(name, value, msg)                                                     \
    case OTELPROF_##name:                                                                          \
        return msg;
        OTELPROF_STATUS_MAP(OTELPROF_STATUS_MSG_)
#undef OTELPROF_STATUS_MSG_
    }
    return "unknown status";
}

const char *otelprof_status_name(otelprof_status status)
{
    switch (status) {
#define OTELPROF_STATUS_NAME_(name, value, msg)                                                    \
    case OTELPROF_##name:                                                                          \
        return "OTELPROF_" #name;
        OTELPROF_STATUS_MAP(OTELPROF_STATUS_NAME_)
#undef OTELPROF_STATUS_NAME_
    }
    return "OTELPROF_E_UNKNOWN";
}

const char *otelprof_version(void)
{
    return OTELPROF_VERSION_STRING;
}

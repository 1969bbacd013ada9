/* polarsignals custom-labels ABI v1: the two symbols Parca Agent's reader looks up.
 *
 * In libotelprof.a this object lands in the executable, where the reader computes the
 * static TLS offset from the symbol. For shared builds it is its own library,
 * libcustomlabels-otelprof.so: the reader only accepts a shared object whose file name
 * matches `libcustomlabels.*\.so`, and takes the TLS offset from the second word of this
 * module's own TLSDESC descriptor for the variable, so the access below must live in this
 * module and be compiled with -mtls-dialect=gnu2.
 */
#include <stdint.h>

void **otelprof_cl_slot(void);

__attribute__((visibility("default"))) const uint32_t custom_labels_abi_version = 1;
__attribute__((visibility("default"))) __thread void *custom_labels_current_set;

/* libotelprof caches this address per thread. */
__attribute__((visibility("default"))) void **otelprof_cl_slot(void)
{
    return &custom_labels_current_set;
}

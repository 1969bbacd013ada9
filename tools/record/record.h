/* Internals of `otelprof record`: target processes, symbolization, the aggregated profile
 * and its writers (pprof, folded stacks, SVG flame graph). The BPF side is record.bpf.c;
 * what crosses the boundary is record_abi.h. */
#ifndef OTELPROF_RECORD_H
#define OTELPROF_RECORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "reader.h"

/* ------------------------------------------------------------ hash table ---- */

/* Byte-string keys (copied) to dense ids 0..n-1, in insertion order. */
struct rc_intern {
    uint32_t *slots; /* id + 1, 0 = empty */
    size_t cap;
    struct rc_ikey {
        uint8_t *key;
        uint32_t len;
        uint64_t hash;
    } * keys;
    size_t n, keys_cap;
};

/* The id of key, adding it when absent (*added tells); UINT32_MAX when out of memory. */
uint32_t rc_intern_get(struct rc_intern *t, const void *key, size_t len, bool *added);
/* The id of key or UINT32_MAX. */
uint32_t rc_intern_find(const struct rc_intern *t, const void *key, size_t len);
void rc_intern_free(struct rc_intern *t);

/* ------------------------------------------------------------- symbols.c ---- */

struct rc_func {
    uint64_t start, end;
    const char *name;
};

/* One ELF file mapped by some target, shared by all processes mapping it. */
struct rc_module {
    unsigned dev_major, dev_minor;
    uint64_t inode;
    char *path;
    char *base; /* file name, for unnamed addresses: "libfoo.so+0x1234" */
    bool ok;    /* rd_elf opened */
    struct rd_elf elf;
    struct rc_func *funcs;
    size_t n_funcs;
    bool from_symtab; /* .symtab (else .dynsym only) */
};

/* An executable mapping of one process. */
struct rc_map {
    uint64_t start, end, offset, bias;
    bool has_bias;
    struct rc_module *mod; /* NULL: anonymous / special */
    char *name;            /* [vdso], [anon], path of a file that cannot be read */
};

struct rc_symbolizer {
    struct rc_module **mods;
    size_t n_mods;
    struct rc_func *ksyms; /* /proc/kallsyms text symbols */
    size_t n_ksyms;
    char *kstrs;
    bool kloaded;
};

/* A resolved frame. */
struct rc_frame {
    const char *func;  /* function name, or NULL */
    const char *file;  /* module path or "[kernel.kallsyms]" */
    uint64_t addr;     /* address in the module (ELF vaddr), or the kernel address */
    uint64_t func_off; /* when func == NULL: offset used in a made-up name */
    const char *base;  /* module file name for made-up names */
    bool kernel;
};

/* Read the executable mappings of pid; 0 or -errno. */
int rc_maps_load(struct rc_symbolizer *s, pid_t pid, struct rc_map **maps, size_t *n);
void rc_maps_free(struct rc_map *maps, size_t n);
/* Resolve a user address through a process's mappings; false when no mapping holds it. */
bool rc_sym_user(const struct rc_map *maps, size_t n, uint64_t ip, struct rc_frame *f);
void rc_sym_kernel(struct rc_symbolizer *s, uint64_t ip, struct rc_frame *f);
void rc_symbolizer_free(struct rc_symbolizer *s);

/* ------------------------------------------------------------- profile.c ---- */

struct rc_label {
    uint32_t key; /* string id */
    uint32_t str; /* string id; 0 = numeric label */
    int64_t num;
};

#define RC_MAX_FRAMES 254 /* user + kernel stack map depth */
#define RC_MAX_LABELS 300

/* One sample as it goes into the profile. Frames leaf first. */
struct rc_sample {
    struct rc_frame frames[RC_MAX_FRAMES];
    size_t n_frames;
    struct rc_label labels[RC_MAX_LABELS];
    size_t n_labels;
    const char *process; /* process name: the flame graph's root frame */
    bool has_trace;
    uint8_t trace_id[16];
};

/* The aggregated profile, ready for the writers. */
struct rc_profile {
    struct rc_intern strings;   /* pprof string table; id 0 = "" */
    struct rc_intern functions; /* (name id, file id) */
    struct rc_intern mappings;  /* file id */
    struct rc_intern locations; /* (mapping, address, function) */
    struct rc_loc {
        uint32_t mapping, function;
        uint64_t addr;
        bool kernel;
    } * locs;
    size_t locs_cap;
    struct rc_fn {
        uint32_t name, file;
    } * fns;
    size_t fns_cap;
    struct rc_intern samples; /* key: encoded (locations, labels, process, trace) */
    int64_t *counts;
    size_t counts_cap;
    uint64_t period_ns;
    uint64_t start_unix_ns, duration_ns;
    bool oom;
};

void rc_profile_init(struct rc_profile *p, uint64_t period_ns);
/* Intern a string: its id in the string table. */
uint32_t rc_str(struct rc_profile *p, const char *s, size_t len);
const char *rc_str_at(const struct rc_profile *p, uint32_t id, size_t *len);
void rc_profile_add(struct rc_profile *p, const struct rc_sample *s);
void rc_profile_free(struct rc_profile *p);

/* A decoded aggregated sample (pointers into the profile). */
struct rc_agg {
    const uint32_t *locs; /* leaf first */
    uint32_t n_locs;
    const uint32_t *label_words; /* read with rc_agg_label */
    uint32_t n_labels;
    uint32_t process; /* string id */
    int64_t count;
};
void rc_profile_sample(const struct rc_profile *p, size_t i, struct rc_agg *out);
void rc_agg_label(const struct rc_agg *a, size_t i, struct rc_label *out);

/* Writers: 0 or -errno; err gets the reason. */
/* adds its own names to p's string table */
int rc_write_pprof(struct rc_profile *p, const char *path, char *err, size_t errlen);
int rc_write_folded(const struct rc_profile *p, const char *path, char *err, size_t errlen);
int rc_write_flamegraph(const struct rc_profile *p, const char *path, const char *title,
                        const char *subtitle, char *err, size_t errlen);

/* The display name of a location's function: "fib", "libc.so.6+0x1234", "do_syscall [k]"
 * style suffixes are added by the text writers. */
const char *rc_loc_name(const struct rc_profile *p, uint32_t loc, size_t *len);

#endif

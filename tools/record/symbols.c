/* Symbolization: user addresses through the process's executable mappings and the ELF
 * files' .symtab (or .dynsym when stripped), kernel addresses through /proc/kallsyms.
 * Files are opened through /proc/PID/map_files while the process is alive, and kept
 * open (mapped) for the whole recording, so a process that exits early is still named. */
#define _GNU_SOURCE
#include "record.h"

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int func_cmp(const void *a, const void *b)
{
    const struct rc_func *x = a, *y = b;
    if (x->start != y->start)
        return x->start < y->start ? -1 : 1;
    /* same start: the larger one first, so aliases of a real function win over markers */
    return x->end > y->end ? -1 : x->end < y->end;
}

/* Functions from one symbol table section; strings stay in the mapped file. */
static void add_symtab(struct rc_module *m, const Elf64_Shdr *sh, const Elf64_Shdr *all,
                       unsigned shnum)
{
    const struct rd_elf *e = &m->elf;
    if (sh->sh_link >= shnum || sh->sh_entsize != sizeof(Elf64_Sym))
        return;
    const Elf64_Shdr *str = &all[sh->sh_link];
    if (sh->sh_offset > e->size || sh->sh_size > e->size - sh->sh_offset ||
        str->sh_offset > e->size || str->sh_size > e->size - str->sh_offset ||
        (sh->sh_offset & 7) != 0)
        return;
    size_t n = sh->sh_size / sizeof(Elf64_Sym);
    const Elf64_Sym *syms = (const Elf64_Sym *)(e->data + sh->sh_offset);
    const char *strs = (const char *)(e->data + str->sh_offset);
    struct rc_func *nf = realloc(m->funcs, (m->n_funcs + n) * sizeof *nf);
    if (!nf)
        return;
    m->funcs = nf;
    for (size_t i = 1; i < n; i++) {
        unsigned t = ELF64_ST_TYPE(syms[i].st_info);
        if ((t != STT_FUNC && t != STT_GNU_IFUNC) || syms[i].st_shndx == SHN_UNDEF ||
            syms[i].st_value == 0 || syms[i].st_name >= str->sh_size)
            continue;
        const char *name = strs + syms[i].st_name;
        if (!memchr(name, '\0', str->sh_size - syms[i].st_name) || !*name)
            continue;
        m->funcs[m->n_funcs++] =
            (struct rc_func){syms[i].st_value, syms[i].st_value + syms[i].st_size, name};
    }
}

static void load_functions(struct rc_module *m)
{
    const struct rd_elf *e = &m->elf;
    const Elf64_Ehdr *eh = (const Elf64_Ehdr *)e->data;
    if (eh->e_shoff == 0 || eh->e_shentsize != sizeof(Elf64_Shdr) || (eh->e_shoff & 7) ||
        eh->e_shoff > e->size || (uint64_t)eh->e_shnum * sizeof(Elf64_Shdr) > e->size - eh->e_shoff)
        return;
    const Elf64_Shdr *sh = (const Elf64_Shdr *)(e->data + eh->e_shoff);
    for (unsigned i = 0; i < eh->e_shnum; i++)
        if (sh[i].sh_type == SHT_SYMTAB) {
            add_symtab(m, &sh[i], sh, eh->e_shnum);
            m->from_symtab = m->n_funcs > 0;
        }
    if (!m->n_funcs)
        for (unsigned i = 0; i < eh->e_shnum; i++)
            if (sh[i].sh_type == SHT_DYNSYM)
                add_symtab(m, &sh[i], sh, eh->e_shnum);
    if (!m->n_funcs)
        return;
    qsort(m->funcs, m->n_funcs, sizeof *m->funcs, func_cmp);
    /* Drop duplicates of one address; give size-0 symbols the room up to the next one. */
    size_t w = 0;
    for (size_t i = 0; i < m->n_funcs; i++) {
        if (w && m->funcs[w - 1].start == m->funcs[i].start)
            continue;
        m->funcs[w++] = m->funcs[i];
    }
    m->n_funcs = w;
    for (size_t i = 0; i < w; i++)
        if (m->funcs[i].end == m->funcs[i].start)
            m->funcs[i].end = i + 1 < w ? m->funcs[i + 1].start : m->funcs[i].start + 1;
}

static const struct rc_func *find_func(const struct rc_func *f, size_t n, uint64_t addr)
{
    size_t lo = 0, hi = n;
    while (lo < hi) { /* first function starting after addr */
        size_t mid = lo + (hi - lo) / 2;
        if (f[mid].start <= addr)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == 0)
        return NULL;
    /* nested or overlapping symbols: walk back a little for one that covers addr */
    for (size_t i = lo, k = 0; i-- > 0 && k < 4; k++)
        if (addr < f[i].end)
            return &f[i];
    return NULL;
}

static struct rc_module *module_get(struct rc_symbolizer *s, pid_t pid, const struct rd_mapping *m)
{
    for (size_t i = 0; i < s->n_mods; i++) {
        struct rc_module *x = s->mods[i];
        if (x->inode == m->inode && x->dev_major == m->dev_major && x->dev_minor == m->dev_minor)
            return x;
    }
    struct rc_module **nm = realloc(s->mods, (s->n_mods + 1) * sizeof *nm);
    struct rc_module *x = calloc(1, sizeof *x);
    if (!nm || !x) {
        free(x);
        if (nm)
            s->mods = nm;
        return NULL;
    }
    s->mods = nm;
    s->mods[s->n_mods++] = x;
    x->dev_major = m->dev_major;
    x->dev_minor = m->dev_minor;
    x->inode = m->inode;
    x->path = strdup(m->path);
    const char *b = strrchr(m->path, '/');
    x->base = strdup(b ? b + 1 : m->path);
    char p[4200];
    /* map_files: the very file mapped, even if replaced on disk or in another mount ns */
    snprintf(p, sizeof p, "/proc/%d/map_files/%" PRIx64 "-%" PRIx64, (int)pid, m->start, m->end);
    int fd = open(p, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(p, sizeof p, "/proc/%d/root%s", (int)pid, m->path);
        fd = open(p, O_RDONLY | O_CLOEXEC);
    }
    if (fd >= 0) {
        char err[128];
        x->ok = rd_elf_open(&x->elf, fd, err, sizeof err) == 0;
        close(fd);
        if (x->ok)
            load_functions(x);
    }
    return x;
}

static int map_cmp(const void *a, const void *b)
{
    const struct rc_map *x = a, *y = b;
    return x->start < y->start ? -1 : x->start > y->start;
}

int rc_maps_load(struct rc_symbolizer *s, pid_t pid, struct rc_map **out, size_t *n_out)
{
    struct rd_maps maps;
    int rc = rd_maps_read(pid, &maps);
    if (rc != 0)
        return rc;
    struct rc_map *v = calloc(maps.n ? maps.n : 1, sizeof *v);
    if (!v) {
        rd_maps_free(&maps);
        return -ENOMEM;
    }
    size_t n = 0;
    for (size_t i = 0; i < maps.n; i++) {
        const struct rd_mapping *m = &maps.v[i];
        if (m->perms[2] != 'x')
            continue;
        struct rc_map *r = &v[n++];
        r->start = m->start;
        r->end = m->end;
        r->offset = m->offset;
        if (m->inode && m->path[0] == '/') {
            r->mod = module_get(s, pid, m);
            if (r->mod && r->mod->ok)
                r->has_bias = rd_elf_bias(&r->mod->elf, m->start, m->offset, &r->bias);
        }
        if (!r->mod)
            r->name = strdup(m->path[0] ? m->path : "[anon]");
    }
    rd_maps_free(&maps);
    qsort(v, n, sizeof *v, map_cmp);
    *out = v;
    *n_out = n;
    return 0;
}

void rc_maps_free(struct rc_map *maps, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(maps[i].name);
    free(maps);
}

bool rc_sym_user(const struct rc_map *maps, size_t n, uint64_t ip, struct rc_frame *f)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (maps[mid].start <= ip)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == 0 || ip >= maps[lo - 1].end)
        return false;
    const struct rc_map *m = &maps[lo - 1];
    memset(f, 0, sizeof *f);
    if (!m->mod) {
        f->file = m->name;
        f->base = m->name;
        f->addr = ip - m->start;
        f->func_off = f->addr;
        return true;
    }
    f->file = m->mod->path;
    f->base = m->mod->base;
    /* ELF virtual address when the bias is known, else the file offset */
    f->addr = m->has_bias ? ip - m->bias : ip - m->start + m->offset;
    f->func_off = f->addr;
    const struct rc_func *fn = find_func(m->mod->funcs, m->mod->n_funcs, f->addr);
    if (fn)
        f->func = fn->name;
    return true;
}

static int kcmp(const void *a, const void *b)
{
    const struct rc_func *x = a, *y = b;
    return x->start < y->start ? -1 : x->start > y->start;
}

static void kallsyms_load(struct rc_symbolizer *s)
{
    s->kloaded = true;
    FILE *f = fopen("/proc/kallsyms", "re");
    if (!f)
        return;
    char *line = NULL;
    size_t cap = 0, n = 0, vcap = 0, slen = 0, scap = 0;
    struct rc_func *v = NULL;
    char *strs = NULL;
    /* names are offsets into strs while it grows; made pointers at the end */
    while (getline(&line, &cap, f) > 0) {
        uint64_t addr;
        char type, name[256];
        if (sscanf(line, "%" SCNx64 " %c %255s", &addr, &type, name) != 3 || addr == 0)
            continue;
        if (type != 't' && type != 'T' && type != 'w' && type != 'W')
            continue;
        size_t l = strlen(name) + 1;
        if (n == vcap) {
            vcap = vcap ? vcap * 2 : 65536;
            struct rc_func *nv = realloc(v, vcap * sizeof *v);
            if (!nv)
                break;
            v = nv;
        }
        if (slen + l > scap) {
            scap = scap ? scap * 2 : 1 << 20;
            char *ns = realloc(strs, scap);
            if (!ns)
                break;
            strs = ns;
        }
        memcpy(strs + slen, name, l);
        v[n++] = (struct rc_func){addr, 0, (const char *)(uintptr_t)slen};
        slen += l;
    }
    free(line);
    fclose(f);
    if (!n) { /* kptr_restrict hides the addresses */
        free(v);
        free(strs);
        return;
    }
    for (size_t i = 0; i < n; i++)
        v[i].name = strs + (uintptr_t)v[i].name;
    qsort(v, n, sizeof *v, kcmp);
    for (size_t i = 0; i < n; i++)
        v[i].end = i + 1 < n ? v[i + 1].start : v[i].start + 4096;
    s->ksyms = v;
    s->n_ksyms = n;
    s->kstrs = strs;
}

void rc_sym_kernel(struct rc_symbolizer *s, uint64_t ip, struct rc_frame *f)
{
    if (!s->kloaded)
        kallsyms_load(s);
    memset(f, 0, sizeof *f);
    f->kernel = true;
    f->file = "[kernel.kallsyms]";
    f->base = "[kernel]";
    f->addr = ip;
    f->func_off = ip;
    const struct rc_func *fn = find_func(s->ksyms, s->n_ksyms, ip);
    if (fn)
        f->func = fn->name;
}

void rc_symbolizer_free(struct rc_symbolizer *s)
{
    for (size_t i = 0; i < s->n_mods; i++) {
        struct rc_module *m = s->mods[i];
        if (m->ok)
            rd_elf_close(&m->elf);
        free(m->funcs);
        free(m->path);
        free(m->base);
        free(m);
    }
    free(s->mods);
    free(s->ksyms);
    free(s->kstrs);
    memset(s, 0, sizeof *s);
}

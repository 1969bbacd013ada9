/* ELF64 parsing: .dynsym lookup, PT_TLS, load bias, TLS relocations.
 *
 * Readers look symbols up in .dynsym only (it is what survives `strip`), found through
 * the section headers or, when those are gone, through the dynamic segment. The file is
 * untrusted input: every offset and count is checked against the file size.
 */
#define _GNU_SOURCE
#include "reader.h"

#include <elf.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#if defined(__x86_64__)
#define RD_EM EM_X86_64
#elif defined(__aarch64__)
#define RD_EM EM_AARCH64
#else
#error "otelprof reader: x86-64 or aarch64 only"
#endif

static bool in_file(const struct rd_elf *e, uint64_t off, uint64_t len)
{
    return off <= e->size && len <= e->size - off;
}

/* Tables are read in place: refuse misaligned ones instead of reading them unaligned. */
static bool aligned(uint64_t off, uint64_t a)
{
    return (off & (a - 1)) == 0;
}

static const Elf64_Phdr *phdr(const struct rd_elf *e, unsigned i)
{
    return (const Elf64_Phdr *)(e->data + e->phoff + (uint64_t)i * sizeof(Elf64_Phdr));
}

int64_t rd_elf_vaddr_to_off(const struct rd_elf *e, uint64_t vaddr, uint64_t len)
{
    for (unsigned i = 0; i < e->phnum; i++) {
        const Elf64_Phdr *p = phdr(e, i);
        if (p->p_type != PT_LOAD || vaddr < p->p_vaddr)
            continue;
        uint64_t rel = vaddr - p->p_vaddr;
        if (rel > p->p_filesz || len > p->p_filesz - rel)
            continue;
        uint64_t off = p->p_offset + rel;
        if (!in_file(e, off, len))
            return -1;
        return (int64_t)off;
    }
    return -1;
}

bool rd_elf_bias(const struct rd_elf *e, uint64_t map_start, uint64_t map_off, uint64_t *bias)
{
    uint64_t pg = (uint64_t)sysconf(_SC_PAGESIZE);
    for (unsigned i = 0; i < e->phnum; i++) {
        const Elf64_Phdr *p = phdr(e, i);
        if (p->p_type == PT_LOAD && (p->p_offset & ~(pg - 1)) == map_off) {
            *bias = map_start - (p->p_vaddr & ~(pg - 1));
            return true;
        }
    }
    return false;
}

/* Number of symbols described by a DT_GNU_HASH table at file offset off. */
static bool gnu_hash_count(const struct rd_elf *e, uint64_t off, uint64_t *count)
{
    if (!in_file(e, off, 16) || !aligned(off, 4))
        return false;
    const uint32_t *h = (const uint32_t *)(e->data + off);
    uint64_t nbuckets = h[0], symoffset = h[1], bloom = h[2];
    uint64_t buckets = off + 16 + bloom * 8;
    if (bloom > e->size || !in_file(e, buckets, nbuckets * 4))
        return false;
    const uint32_t *b = (const uint32_t *)(e->data + buckets);
    uint64_t chains = buckets + nbuckets * 4;
    uint64_t last = 0;
    for (uint64_t i = 0; i < nbuckets; i++)
        if (b[i] > last)
            last = b[i];
    if (last < symoffset) {
        *count = symoffset;
        return true;
    }
    /* Walk the last bucket's chain to its end marker (low bit set). */
    for (;;) {
        uint64_t c = chains + (last - symoffset) * 4;
        if (!in_file(e, c, 4))
            return false;
        if (*(const uint32_t *)(e->data + c) & 1)
            break;
        last++;
    }
    *count = last + 1;
    return true;
}

static void find_dynsym_sections(struct rd_elf *e, const Elf64_Ehdr *eh)
{
    if (eh->e_shoff == 0 || eh->e_shnum == 0 || eh->e_shentsize != sizeof(Elf64_Shdr) ||
        !aligned(eh->e_shoff, 8) ||
        !in_file(e, eh->e_shoff, (uint64_t)eh->e_shnum * sizeof(Elf64_Shdr)))
        return;
    const Elf64_Shdr *sh = (const Elf64_Shdr *)(e->data + eh->e_shoff);
    for (unsigned i = 0; i < eh->e_shnum; i++) {
        if (sh[i].sh_type != SHT_DYNSYM || sh[i].sh_link >= eh->e_shnum)
            continue;
        const Elf64_Shdr *str = &sh[sh[i].sh_link];
        if (!in_file(e, sh[i].sh_offset, sh[i].sh_size) || !aligned(sh[i].sh_offset, 8) ||
            !in_file(e, str->sh_offset, str->sh_size))
            continue;
        e->dynsym_off = sh[i].sh_offset;
        e->dynsym_count = sh[i].sh_size / sizeof(Elf64_Sym);
        e->dynstr_off = str->sh_offset;
        e->dynstr_size = str->sh_size;
        return;
    }
}

/* Read the dynamic segment: relocation tables always, .dynsym when the section headers
 * did not give it (a stripped or section-less file). */
static void read_dynamic(struct rd_elf *e, uint64_t off, uint64_t size)
{
    if (!in_file(e, off, size) || !aligned(off, 8))
        return;
    uint64_t symtab = 0, strtab = 0, strsz = 0, hash = 0, gnuhash = 0;
    uint64_t rela = 0, relasz = 0, jmprel = 0, pltrelsz = 0, pltrel = DT_RELA;
    const Elf64_Dyn *d = (const Elf64_Dyn *)(e->data + off);
    for (uint64_t i = 0; i < size / sizeof *d && d[i].d_tag != DT_NULL; i++) {
        uint64_t v = d[i].d_un.d_val;
        switch (d[i].d_tag) {
        case DT_SYMTAB:
            symtab = v;
            break;
        case DT_STRTAB:
            strtab = v;
            break;
        case DT_STRSZ:
            strsz = v;
            break;
        case DT_HASH:
            hash = v;
            break;
        case DT_GNU_HASH:
            gnuhash = v;
            break;
        case DT_RELA:
            rela = v;
            break;
        case DT_RELASZ:
            relasz = v;
            break;
        case DT_JMPREL:
            jmprel = v;
            break;
        case DT_PLTRELSZ:
            pltrelsz = v;
            break;
        case DT_PLTREL:
            pltrel = v;
            break;
        default:
            break;
        }
    }
    int64_t o;
    if (rela && relasz && (o = rd_elf_vaddr_to_off(e, rela, relasz)) >= 0 &&
        aligned((uint64_t)o, 8)) {
        e->rela_off = (uint64_t)o;
        e->rela_size = relasz;
    }
    if (jmprel && pltrelsz && pltrel == DT_RELA &&
        (o = rd_elf_vaddr_to_off(e, jmprel, pltrelsz)) >= 0 && aligned((uint64_t)o, 8)) {
        e->jmprel_off = (uint64_t)o;
        e->jmprel_size = pltrelsz;
    }
    if (e->dynsym_count || !symtab || !strtab || !strsz)
        return;
    int64_t stro = rd_elf_vaddr_to_off(e, strtab, strsz);
    int64_t symo = rd_elf_vaddr_to_off(e, symtab, sizeof(Elf64_Sym));
    if (stro < 0 || symo < 0 || !aligned((uint64_t)symo, 8))
        return;
    uint64_t count = 0;
    int64_t ho;
    if (hash && (ho = rd_elf_vaddr_to_off(e, hash, 8)) >= 0 && aligned((uint64_t)ho, 4))
        count = ((const uint32_t *)(e->data + ho))[1]; /* nchain == number of symbols */
    else if (!(gnuhash && (ho = rd_elf_vaddr_to_off(e, gnuhash, 16)) >= 0 &&
               gnu_hash_count(e, (uint64_t)ho, &count)))
        return;
    if (count > e->size / sizeof(Elf64_Sym) ||
        !in_file(e, (uint64_t)symo, count * sizeof(Elf64_Sym)))
        return;
    e->dynsym_off = (uint64_t)symo;
    e->dynsym_count = count;
    e->dynstr_off = (uint64_t)stro;
    e->dynstr_size = strsz;
}

int rd_elf_open(struct rd_elf *e, int fd, char *err, size_t errlen)
{
    memset(e, 0, sizeof *e);
    struct stat st;
    if (fstat(fd, &st) != 0) {
        snprintf(err, errlen, "fstat: %s", strerror(errno));
        return -errno;
    }
    if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size < sizeof(Elf64_Ehdr)) {
        snprintf(err, errlen, "not an ELF file");
        return -ENOEXEC;
    }
    void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
        snprintf(err, errlen, "mmap: %s", strerror(errno));
        return -errno;
    }
    e->data = p;
    e->size = (size_t)st.st_size;
    const Elf64_Ehdr *eh = p;
    if (memcmp(eh->e_ident, ELFMAG, SELFMAG) != 0 || eh->e_ident[EI_CLASS] != ELFCLASS64 ||
        eh->e_ident[EI_DATA] != ELFDATA2LSB || eh->e_machine != RD_EM ||
        (eh->e_type != ET_EXEC && eh->e_type != ET_DYN) || eh->e_phentsize != sizeof(Elf64_Phdr) ||
        !aligned(eh->e_phoff, 8) ||
        !in_file(e, eh->e_phoff, (uint64_t)eh->e_phnum * sizeof(Elf64_Phdr))) {
        snprintf(err, errlen, "not an ELF64 file for this machine");
        rd_elf_close(e);
        return -ENOEXEC;
    }
    e->type = eh->e_type;
    e->phoff = eh->e_phoff;
    e->phnum = eh->e_phnum;
    uint64_t dyn_off = 0, dyn_size = 0;
    for (unsigned i = 0; i < e->phnum; i++) {
        const Elf64_Phdr *ph = phdr(e, i);
        if (ph->p_type == PT_TLS) {
            e->has_tls = true;
            e->tls_memsz = ph->p_memsz;
            e->tls_align = ph->p_align ? ph->p_align : 1;
        } else if (ph->p_type == PT_DYNAMIC) {
            dyn_off = ph->p_offset;
            dyn_size = ph->p_filesz;
        }
    }
    find_dynsym_sections(e, eh);
    if (dyn_size)
        read_dynamic(e, dyn_off, dyn_size);
    return 0;
}

void rd_elf_close(struct rd_elf *e)
{
    if (e->data)
        munmap((void *)e->data, e->size);
    e->data = NULL;
    e->size = 0;
}

int rd_elf_dynsym(const struct rd_elf *e, const char *name, struct rd_sym *out)
{
    size_t nlen = strlen(name);
    const Elf64_Sym *syms = (const Elf64_Sym *)(e->data + e->dynsym_off);
    const char *str = (const char *)(e->data + e->dynstr_off);
    for (uint64_t i = 1; i < e->dynsym_count; i++) {
        uint64_t n = syms[i].st_name;
        if (n >= e->dynstr_size || e->dynstr_size - n <= nlen)
            continue;
        if (memcmp(str + n, name, nlen) != 0 || str[n + nlen] != '\0')
            continue;
        out->index = (uint32_t)i;
        out->value = syms[i].st_value;
        out->size = syms[i].st_size;
        out->type = ELF64_ST_TYPE(syms[i].st_info);
        out->bind = ELF64_ST_BIND(syms[i].st_info);
        out->visibility = ELF64_ST_VISIBILITY(syms[i].st_other);
        out->shndx = syms[i].st_shndx;
        return 0;
    }
    return -ENOENT;
}

static int reloc_rank(unsigned type)
{
    switch (type) {
    case R_X86_64_TLSDESC:
        return 3;
    case R_X86_64_TPOFF64:
        return 2;
    case R_X86_64_DTPMOD64:
        return 1;
    default:
        return 0;
    }
}

static void scan_relocs(const struct rd_elf *e, uint64_t off, uint64_t size,
                        const struct rd_sym *sym, struct rd_tls_reloc *best, int *best_score)
{
    if (!size || !in_file(e, off, size) || !aligned(off, 8))
        return;
    const Elf64_Rela *r = (const Elf64_Rela *)(e->data + off);
    uint64_t n = size / sizeof *r;
    for (uint64_t i = 0; i < n; i++) {
        unsigned type = (unsigned)ELF64_R_TYPE(r[i].r_info);
        uint64_t symi = ELF64_R_SYM(r[i].r_info);
        int rank = reloc_rank(type);
        if (!rank)
            continue;
        bool by_symbol = symi == sym->index;
        /* A module may reach its own non-preemptible variable through a symbol-less
         * relocation whose addend is the variable's offset in the block. Not for
         * DTPMOD64: symbol-less means local-dynamic, which readers do not support. */
        bool by_addend =
            symi == 0 && type != R_X86_64_DTPMOD64 && (uint64_t)r[i].r_addend == sym->value;
        if (!by_symbol && !by_addend)
            continue;
        int score = rank * 2 + (by_symbol ? 1 : 0);
        if (score <= *best_score)
            continue;
        *best_score = score;
        best->type = type;
        best->offset = r[i].r_offset;
        best->addend = r[i].r_addend;
        best->by_symbol = by_symbol;
        best->dtpoff_addend = 0;
        if (type == R_X86_64_DTPMOD64) {
            for (uint64_t j = 0; j < n; j++)
                if (ELF64_R_TYPE(r[j].r_info) == R_X86_64_DTPOFF64 &&
                    r[j].r_offset == r[i].r_offset + 8 && ELF64_R_SYM(r[j].r_info) == symi)
                    best->dtpoff_addend = r[j].r_addend;
        }
    }
}

int rd_elf_tls_reloc(const struct rd_elf *e, const struct rd_sym *sym, struct rd_tls_reloc *out)
{
    int score = 0;
    memset(out, 0, sizeof *out);
    /* GNU ld puts TLSDESC relocations in .rela.plt (DT_JMPREL), the others in .rela.dyn. */
    scan_relocs(e, e->rela_off, e->rela_size, sym, out, &score);
    scan_relocs(e, e->jmprel_off, e->jmprel_size, sym, out, &score);
    return score ? 0 : -ENOENT;
}

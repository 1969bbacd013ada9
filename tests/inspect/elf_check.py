#!/usr/bin/env python3
"""ELF properties the readers rely on, checked with binutils' readelf (not with
otelprof's own ELF parser, so that a parser bug cannot hide a linking bug).

  static: the executable defines otel_thread_ctx_v1 and custom_labels_current_set
          (TLS, GLOBAL, DEFAULT, 8 bytes) and custom_labels_abi_version (OBJECT, GLOBAL,
          4 bytes, value 1 in the file) in .dynsym.
  shared: the executable defines none of them; libotelprof.so defines otel_thread_ctx_v1
          only, reaches it through R_X86_64_TLSDESC only; libcustomlabels-otelprof.so
          defines the custom-labels pair and has an R_X86_64_TLSDESC against
          custom_labels_current_set.
  dlopen: the host executable and the plugin define none of them (and the host does not
          need libotelprof), the plugin needs libotelprof.so; the libraries as for shared.

Usage: elf_check.py --readelf READELF --lib LIBOTELPROF --cl-lib LIBCUSTOMLABELS
                    --mode static|shared|dlopen --exe EXE [--plugin PLUGIN]
"""
import argparse
import re
import subprocess
import sys

SKIP = 77
TC = "otel_thread_ctx_v1"
CL = "custom_labels_current_set"
ABI = "custom_labels_abi_version"

failures = []


def fail(msg):
    failures.append(msg)
    print("FAIL: " + msg)


def readelf(tool, *args):
    r = subprocess.run([tool, "-W"] + list(args), capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        fail("readelf %s: %s" % (" ".join(args), r.stderr.strip()))
    return r.stdout


def dynsyms(tool, path):
    """name -> (value, size, type, bind, vis, ndx) from .dynsym."""
    syms = {}
    section = None
    for line in readelf(tool, "--dyn-syms", path).splitlines():
        m = re.match(r"Symbol table '([^']+)'", line)
        if m:
            section = m.group(1)
            continue
        f = line.split()
        if section != ".dynsym" or len(f) < 8 or not f[0].endswith(":") or not f[0][:-1].isdigit():
            continue
        name = f[7].split("@")[0]
        syms[name] = (int(f[1], 16), int(f[2], 0), f[3], f[4], f[5], f[6])
    return syms


def tls_relocs(tool, path):
    """[(type, symbol name)] for every dynamic relocation."""
    out = []
    for line in readelf(tool, "-r", path).splitlines():
        f = line.split()
        if len(f) >= 3 and re.fullmatch(r"[0-9a-f]{16}", f[0]) and f[2].startswith("R_"):
            name = f[4].split("@")[0] if len(f) >= 5 and not f[3] == "+" else ""
            out.append((f[2], name))
    return out


def file_bytes_at(tool, path, vaddr, size):
    """The file's bytes at link-time address vaddr, through the section headers."""
    for line in readelf(tool, "-S", path).splitlines():
        m = re.match(r"\s*\[\s*\d+\]\s+(\S+)\s+(\S+)\s+([0-9a-f]{16})\s+([0-9a-f]+)\s+([0-9a-f]+)", line)
        if not m or m.group(2) == "NOBITS":
            continue
        addr, off, sz = int(m.group(3), 16), int(m.group(4), 16), int(m.group(5), 16)
        if addr <= vaddr and vaddr + size <= addr + sz and addr != 0:
            with open(path, "rb") as f:
                f.seek(off + vaddr - addr)
                return f.read(size)
    return None


def needed(tool, path):
    return re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", readelf(tool, "-d", path))


def check_tls_symbol(syms, path, name):
    s = syms.get(name)
    if not s or s[5] == "UND":
        fail("%s: %s not defined in .dynsym" % (path, name))
        return
    _, size, typ, bind, vis, _ = s
    if (typ, bind, vis, size) != ("TLS", "GLOBAL", "DEFAULT", 8):
        fail("%s: %s is %s %s %s size %d, want TLS GLOBAL DEFAULT size 8" % (path, name, typ, bind, vis, size))
    else:
        print("ok %s: %s TLS GLOBAL DEFAULT 8" % (path, name))


def check_abi_symbol(tool, syms, path):
    s = syms.get(ABI)
    if not s or s[5] == "UND":
        fail("%s: %s not defined in .dynsym" % (path, ABI))
        return
    value, size, typ, bind, vis, _ = s
    if (typ, bind, vis, size) != ("OBJECT", "GLOBAL", "DEFAULT", 4):
        fail("%s: %s is %s %s %s size %d, want OBJECT GLOBAL DEFAULT 4" % (path, ABI, typ, bind, vis, size))
        return
    data = file_bytes_at(tool, path, value, 4)
    if data is None or int.from_bytes(data, "little") != 1:
        fail("%s: %s holds %r in the file, want 1" % (path, ABI, data))
    else:
        print("ok %s: %s OBJECT GLOBAL 4 = 1" % (path, ABI))


def check_not_defined(syms, path, *names):
    for n in names:
        if n in syms and syms[n][5] != "UND":
            fail("%s should not define %s" % (path, n))
    print("ok %s defines none of %s" % (path, ", ".join(names)))


def check_libs(tool, lib, cl_lib):
    s = dynsyms(tool, lib)
    check_tls_symbol(s, lib, TC)
    check_not_defined(s, lib, CL, ABI)
    rel = [t for t, n in tls_relocs(tool, lib) if n == TC]
    if not rel or any(t != "R_X86_64_TLSDESC" for t in rel):
        fail("%s: relocations against %s are %s, want R_X86_64_TLSDESC only" % (lib, TC, rel))
    else:
        print("ok %s: %d relocation(s) against %s, all R_X86_64_TLSDESC" % (lib, len(rel), TC))
    s = dynsyms(tool, cl_lib)
    check_tls_symbol(s, cl_lib, CL)
    check_abi_symbol(tool, s, cl_lib)
    check_not_defined(s, cl_lib, TC)
    rel = [t for t, n in tls_relocs(tool, cl_lib) if n == CL]
    if "R_X86_64_TLSDESC" not in rel:
        fail("%s: no R_X86_64_TLSDESC against %s (%s)" % (cl_lib, CL, rel))
    else:
        print("ok %s: R_X86_64_TLSDESC against %s" % (cl_lib, CL))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--readelf", default="")
    ap.add_argument("--lib", required=True)
    ap.add_argument("--cl-lib", required=True)
    ap.add_argument("--mode", choices=["static", "shared", "dlopen"], required=True)
    ap.add_argument("--exe", required=True)
    ap.add_argument("--plugin")
    a = ap.parse_args()
    tool = a.readelf
    if not tool or tool.endswith("NOTFOUND"):
        print("SKIPPED: readelf (binutils) not found")
        return SKIP
    if a.mode == "static":
        s = dynsyms(tool, a.exe)
        check_tls_symbol(s, a.exe, TC)
        check_tls_symbol(s, a.exe, CL)
        check_abi_symbol(tool, s, a.exe)
        if any(n.startswith("libotelprof") or n.startswith("libcustomlabels") for n in needed(tool, a.exe)):
            fail("%s: the static link needs %s" % (a.exe, needed(tool, a.exe)))
    else:
        check_not_defined(dynsyms(tool, a.exe), a.exe, TC, CL, ABI)
        if a.mode == "shared":
            if not any(n.startswith("libotelprof.so") for n in needed(tool, a.exe)):
                fail("%s does not need libotelprof.so: %s" % (a.exe, needed(tool, a.exe)))
        else:
            if any(n.startswith("libotelprof") for n in needed(tool, a.exe)):
                fail("the dlopen host %s links otelprof: %s" % (a.exe, needed(tool, a.exe)))
            check_not_defined(dynsyms(tool, a.plugin), a.plugin, TC, CL, ABI)
            if not any(n.startswith("libotelprof.so") for n in needed(tool, a.plugin)):
                fail("%s does not need libotelprof.so: %s" % (a.plugin, needed(tool, a.plugin)))
        check_libs(tool, a.lib, a.cl_lib)
    if failures:
        print("%d check(s) failed" % len(failures))
        return 1
    print("all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())

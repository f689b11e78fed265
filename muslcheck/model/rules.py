"""The kinds of finding muslcheck reports: stable ids, names and help, for SARIF, ignore files and docs."""

from __future__ import annotations

from dataclasses import dataclass

DOCS_URL = "https://github.com/muslcheck/muslcheck/blob/main/docs/rules.md"


@dataclass(frozen=True)
class Rule:
    id: str  # stable: never reused, never renumbered
    name: str  # what ignore files and --fail-on messages use
    summary: str
    help: str

    @property
    def help_uri(self) -> str:
        return f"{DOCS_URL}#{self.id.lower()}-{self.name}"


RULES: dict[str, Rule] = {r.name: r for r in (
    Rule("MC001", "glibc-interpreter", "The program's interpreter is glibc's loader",
         "The kernel runs PT_INTERP first. Alpine has /lib64/ld-linux-x86-64.so.2 (and ld-linux-aarch64.so.1) "
         "only with gcompat installed, whose stub runs musl's loader with libgcompat preloaded."),
    Rule("MC002", "missing-library", "A needed library is not in the image, and no cited Alpine package provides it",
         "musl searches LD_LIBRARY_PATH, the rpath/runpath of the requester and of each object up its chain, "
         "/etc/ld-musl-ARCH.path or /lib:/usr/local/lib:/usr/lib. Install the package that provides the soname "
         "(apk add so:SONAME), or ship a musl build of the library."),
    Rule("MC003", "unresolved-symbol", "A symbol no loaded object defines: the load fails",
         "musl binds every relocation at load time (or at dlopen with RTLD_NOW, or for data references) and "
         "fails with 'Error relocating FILE: SYMBOL: symbol not found'. Rebuild against musl, or use gcompat "
         "where it applies."),
    Rule("MC004", "latent-symbol", "A function no loaded object defines, reached only through the PLT/GOT",
         "Under dlopen(RTLD_LAZY) (the JVM, Node) musl defers these relocations: the library loads, and the "
         "process crashes on the first call."),
    Rule("MC005", "unsupported-relocation", "A relocation type musl does not implement",
         "musl fails with 'unsupported relocation type N'; R_X86_64_IRELATIVE (37) and R_AARCH64_IRELATIVE "
         "(1032) come from GNU IFUNC, which musl does not support. Rebuild without IFUNC."),
    Rule("MC006", "initial-exec-tls", "Initial-exec TLS in a library loaded by dlopen",
         "musl cannot give static TLS to a module loaded after start-up: 'initial-exec TLS resolves to "
         "dynamic definition'. Rebuild with -ftls-model=global-dynamic."),
    Rule("MC007", "relr-unsupported", "DT_RELR on a musl older than 1.2.4",
         "Before 1.2.4 musl ignores DT_RELR: the relative relocations are never applied and the program "
         "crashes. Target Alpine >= 3.18 or relink without -z pack-relative-relocs."),
    Rule("MC008", "wrong-architecture", "A needed library is built for another architecture",
         "musl does not compare e_machine: the first file of the right name is mapped and fails later. "
         "Replace it with the build for the target architecture."),
    Rule("MC009", "needs-package", "A needed library that an Alpine package provides",
         "Install the package on the Alpine image (apk add ...)."),
    Rule("MC010", "skipped-file", "A file that could not be checked",
         "The file is unreadable, a truncated or malformed ELF file, or a link to nowhere. Nothing in it "
         "was checked."),
)}


def rule(name: str) -> Rule:
    return RULES[name]

# muslcheck 0.1.0: the plan for /srv/rootfs on Alpine 3.23 (musl 1.2.5), verdict blocked
# A fragment to review: the application's own COPY and build steps are not here.
FROM alpine:3.23
RUN apk add --no-cache gcompat libstdc++
# gcompat covers: fortify: its package provides the interpreter /lib64/ld-linux-x86-64.so.2, __memcpy_chk
# rebuild against musl: server: rebuild without IFUNC: musl does not support IRELATIVE relocations
# rebuild against musl: libnative.so: rebuild against musl (glibc >= 2.38 with _GNU_SOURCE emits __isoc23_* names)
# rebuild against musl: libnative.so: rebuild against musl: musl does not export __isoc23_strtol

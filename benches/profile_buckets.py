"""Groups a flat `perf report --no-children --sort dso,sym --stdio` by what the code is.

Reads the report on standard input; prints one line per group, largest first, with its share of
the samples, its CPU-µs per request when that total is given as the first argument, and its
largest symbols (three, or the second argument). Used by benches/profile.sh.
"""

import re
import sys

# (group, test on (dso, symbol)), first match wins.
GROUPS = [
    ("kernel: syscalls, loopback TCP, epoll, scheduling", lambda d, s: d.startswith("[kernel") or d == "[unknown]" and s.startswith("0xffff")),
    ("allocator (mimalloc / glibc malloc)", lambda d, s: re.match(r"(_?mi_|mi\b|malloc|free|cfree|realloc|calloc|__libc_malloc|_int_malloc|_int_free|ngx_palloc|ngx_pnalloc|ngx_pfree|ngx_alloc|ngx_calloc)", s)),
    ("memcpy / memmove / memset / memcmp", lambda d, s: re.search(r"mem(cpy|move|set|cmp|chr)|strlen|__memcpy|__memmove", s)),
    ("HTTP/1 parsing (httparse, nginx parser)", lambda d, s: s.startswith("httparse") or re.match(r"ngx_http_parse", s)),
    ("header maps and names (http, pingora-http)", lambda d, s: re.match(r"(<)?(http::header|pingora_http|http::)", s)),
    ("bytes (refcounts, buffers)", lambda d, s: re.match(r"(<)?bytes::", s)),
    ("tokio runtime, timers, I/O driver", lambda d, s: re.match(r"(<)?(tokio|mio)::", s)),
    ("pingora (proxy, server, connection pool)", lambda d, s: re.match(r"(<)?pingora", s)),
    ("async glue (futures, async-trait, core::future)", lambda d, s: re.match(r"(<)?(futures|core::future|async_trait|core::pin)", s)),
    ("hashing", lambda d, s: re.search(r"hash|Hash|sip|ahash|fnv", s)),
    ("atomics, locks, thread parking", lambda d, s: re.search(r"parking_lot|Mutex|RwLock|atomic|futex|pthread", s)),
    ("nginx event loop and proxy module", lambda d, s: s.startswith("ngx_")),
    ("libc (other)", lambda d, s: d.startswith("libc")),
]

line = re.compile(r"^\s*([\d.]+)%\s+(\S+)\s+\[[.k]\]\s+(.*)$")
totals = {}
examples = {}
for raw in sys.stdin:
    m = line.match(raw)
    if not m:
        continue
    share, dso, symbol = float(m.group(1)), m.group(2), m.group(3).strip()
    group = next((name for name, test in GROUPS if test(dso, symbol)), "other (std, core, the program's own code)")
    totals[group] = totals.get(group, 0.0) + share
    examples.setdefault(group, []).append((share, symbol))

per_request = float(sys.argv[1]) if len(sys.argv) > 1 else None
detail = int(sys.argv[2]) if len(sys.argv) > 2 else 3
for group, share in sorted(totals.items(), key=lambda kv: -kv[1]):
    top = sorted(examples[group], reverse=True)[:detail]
    names = "; ".join(f"{s[:60]} {p:.1f}" for p, s in top)
    cost = f"{share * per_request / 100:5.1f} µs  " if per_request else ""
    print(f"{share:5.1f} %  {cost}{group}  ({names})")

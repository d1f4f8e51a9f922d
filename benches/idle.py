#!/usr/bin/env python3
"""Idle keep-alive connections against a proxy, for benches/load.sh.

Opens N connections to HOST:PORT, sends one request on each (with the given Cookie header) and
keeps them open and idle; reports the proxy's RSS (PID) before and while they are held, hence the
bytes per idle connection; then sends a second request on every connection and counts the 200s.

Usage: idle.py HOST PORT PID COUNT [COOKIE]
"""

import asyncio
import resource
import sys


def rss_bytes(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


async def request(reader, writer, host, port, cookie):
    head = f"GET / HTTP/1.1\r\nHost: {host}:{port}\r\n"
    if cookie:
        head += f"Cookie: {cookie}\r\n"
    writer.write((head + "\r\n").encode())
    await writer.drain()
    status_line = await reader.readline()
    length = 0
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b""):
            break
        name, _, value = line.decode("latin-1").partition(":")
        if name.strip().lower() == "content-length":
            length = int(value.strip())
    if length:
        await reader.readexactly(length)
    parts = status_line.split()
    return int(parts[1]) if len(parts) > 1 else 0


async def main():
    host, port, pid, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    cookie = sys.argv[5] if len(sys.argv) > 5 else ""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, count + 1024), hard))
    await asyncio.sleep(1)
    before = rss_bytes(pid)
    connections = []
    semaphore = asyncio.Semaphore(500)

    async def open_one():
        async with semaphore:
            reader, writer = await asyncio.open_connection(host, port)
            status = await request(reader, writer, host, port, cookie)
            connections.append((reader, writer))
            return status

    first = await asyncio.gather(*(open_one() for _ in range(count)), return_exceptions=True)
    await asyncio.sleep(2)
    held = rss_bytes(pid)

    async def again(reader, writer):
        async with semaphore:
            return await request(reader, writer, host, port, cookie)

    second = await asyncio.gather(*(again(r, w) for r, w in connections), return_exceptions=True)
    ok_first = sum(1 for s in first if s == 200)
    ok_second = sum(1 for s in second if s == 200)
    per_connection = (held - before) / max(len(connections), 1)
    print(
        f"{count} idle keep-alive connections: {ok_first} answered 200 when opened, "
        f"{ok_second} answered 200 when used again after idling; proxy RSS "
        f"{before >> 20} MiB -> {held >> 20} MiB while held: {per_connection:.0f} bytes per idle connection"
    )
    for _, writer in connections:
        writer.close()


asyncio.run(main())

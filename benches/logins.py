#!/usr/bin/env python3
"""Complete logins per second, for benches/load.sh: CONCURRENCY browsers each sign in again and
again for DURATION seconds against a gateway and its mock provider (login redirect, the
provider's authorize page, its confirmation, the callback: code exchange, id_token and signed
userinfo verification, session creation). Reports logins/s and the CPU seconds of the gateway
and of the provider, to say which one bounds it.

Usage: logins.py GATEWAY_HOST:PORT PROVIDER_HOST:PORT GATEWAY_PID PROVIDER_PID [DURATION] [CONCURRENCY]
"""

import http.client
import os
import re
import sys
import threading
import time
from urllib.parse import urlsplit

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def get(connections, url, cookies):
    parts = urlsplit(url)
    key = parts.netloc
    if key not in connections:
        connections[key] = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    connection = connections[key]
    target = parts.path + ("?" + parts.query if parts.query else "")
    headers = {"Accept": "text/html"}
    if cookies:
        headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in cookies.items())
    connection.request("GET", target, headers=headers)
    response = connection.getresponse()
    body = response.read().decode("utf-8", "replace")
    for header, value in response.getheaders():
        if header.lower() == "set-cookie":
            name, _, rest = value.partition("=")
            cookie_value = rest.split(";", 1)[0]
            if "Max-Age=0" in value:
                cookies.pop(name, None)
            else:
                cookies[name] = cookie_value
    return response.status, response.getheader("Location"), body


def login(gateway, provider, connections):
    cookies = {}
    status, location, _ = get(connections, f"http://{gateway}/.guichet/login?rd=/", cookies)
    assert status == 302, status
    status, _, page = get(connections, location, {})
    assert status == 200, status
    link = re.search(r'href="([^"]*agent=0)"', page).group(1).replace("&amp;", "&")
    status, callback, _ = get(connections, f"http://{provider}{link}", {})
    assert status == 302, status
    status, _, _ = get(connections, callback, cookies)
    assert status == 302, status
    return any(name.endswith("guichet") for name in cookies)


def main():
    gateway, provider = sys.argv[1], sys.argv[2]
    gateway_pid, provider_pid = int(sys.argv[3]), int(sys.argv[4])
    duration = float(sys.argv[5]) if len(sys.argv) > 5 else 8
    concurrency = int(sys.argv[6]) if len(sys.argv) > 6 else 16
    done = [0] * concurrency
    failed = [0] * concurrency
    stop = time.monotonic() + duration

    def worker(index):
        connections = {}
        while time.monotonic() < stop:
            try:
                if login(gateway, provider, connections):
                    done[index] += 1
                else:
                    failed[index] += 1
            except Exception:
                failed[index] += 1
                connections = {}

    before = (cpu_seconds(gateway_pid), cpu_seconds(provider_pid), time.monotonic())
    threads = [threading.Thread(target=worker, args=(i,)) for i in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    gateway_cpu = cpu_seconds(gateway_pid) - before[0]
    provider_cpu = cpu_seconds(provider_pid) - before[1]
    elapsed = time.monotonic() - before[2]
    total = sum(done)
    print(
        f"logins: {total / elapsed:.0f} complete logins/s over {elapsed:.1f} s with {concurrency} "
        f"browsers ({sum(failed)} failed); CPU: gateway {gateway_cpu:.2f} s "
        f"({total / max(gateway_cpu, 1e-9):.0f} logins per gateway CPU-second), mock provider "
        f"{provider_cpu:.2f} s ({total / max(provider_cpu, 1e-9):.0f} per provider CPU-second)"
    )


main()

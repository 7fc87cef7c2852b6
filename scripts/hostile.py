#!/usr/bin/env python3
"""Fires the hostile inputs of issue 12 at a fresh single-binary Strata and prints, for each, what it
answered, how long it took and the process' peak resident memory while it ran.

    go build -o /tmp/strata ./cmd/strata && python3 scripts/hostile.py /tmp/strata

With a loadgen binary and a series count (go build -o /tmp/loadgen ./tools/loadgen), it also loads that
many series into one tenant, with the series limits off, and measures the big reads of defect 10:

    python3 scripts/hostile.py /tmp/strata /tmp/loadgen 2000000

Measurements, not tests: the regression tests live next to the code they cover.
"""
import http.client
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


class Peak:
    """Samples the RSS of pid every 20 ms while active."""

    def __init__(self, pid):
        self.pid, self.peak, self.stop = pid, 0.0, threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while not self.stop.is_set():
            self.peak = max(self.peak, rss_mb(self.pid))
            time.sleep(0.02)

    def done(self):
        self.stop.set()
        self.thread.join()
        return max(self.peak, rss_mb(self.pid))


def request(port, method, path, body=b"", headers=None, timeout=300):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        data = resp.read()
        return resp.status, data[:160].decode(errors="replace").replace("\n", " ")
    except Exception as e:  # a dropped connection is an answer too
        return 0, repr(e)[:160]
    finally:
        conn.close()


def query(port, q, tenant="hostile", extra=None):
    form = {"query": q}
    form.update(extra or {})
    return request(port, "POST", "/prometheus/api/v1/query", urllib.parse.urlencode(form).encode(),
                   {"Content-Type": "application/x-www-form-urlencoded", "X-Scope-OrgID": tenant})


def uvarint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def snappy_literal(raw):
    # An uncompressed snappy block: the length, then literals of at most 60 bytes each.
    out = bytearray(uvarint(len(raw)))
    for i in range(0, len(raw), 60):
        chunk = raw[i:i + 60]
        out.append((len(chunk) - 1) << 2)
        out += chunk
    return bytes(out)


def write_request(tenant_index):
    # prometheus.WriteRequest{timeseries: [{labels: [__name__=up, tenant=<i>], samples: [{value 1, now}]}]}
    def field(num, wire, payload):
        return uvarint(num << 3 | wire) + payload

    def string(num, s):
        b = s.encode()
        return field(num, 2, uvarint(len(b)) + b)

    def label(name, value):
        b = string(1, name) + string(2, value)
        return field(1, 2, uvarint(len(b)) + b)

    import struct
    sample = field(1, 1, struct.pack("<d", 1.0)) + field(2, 0, uvarint(int(time.time() * 1000)))
    series = label("__name__", "up") + label("tenant", str(tenant_index)) + field(2, 2, uvarint(len(sample)) + sample)
    return field(1, 2, uvarint(len(series)) + series)


def run_case(pid, name, fn):
    peak = Peak(pid)
    start = time.time()
    answer = fn()
    took = time.time() - start
    print(f"{name:<58} {answer:<60.60} {took:7.2f}s {peak.done():8.0f} MB", flush=True)


def big_reads(port, pid, loadgen, series):
    start = time.time()
    subprocess.run([loadgen, "write", "-url", f"http://127.0.0.1:{port}/api/v1/push", "-series", str(series),
                    "-interval", "15s", "-rounds", "5", "-concurrency", "4"], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    print(f"{'(loaded %d series, 5 samples each, in %.0fs)' % (series, time.time() - start):<58} {'':<60} {'':>8} {rss_mb(pid):8.0f} MB", flush=True)
    now = time.time()
    everything = '{__name__=~".+"}'
    run_case(pid, "10a. count({__name__=~\".+\"})", lambda: "%d %s" % query(port, f"count({everything})", tenant="tenant-0"))
    run_case(pid, "10b. topk(1e9, {__name__=~\".+\"})",
             lambda: "%d %s" % query(port, f"topk(1e9, {everything})", tenant="tenant-0"))

    def range_select():
        form = urllib.parse.urlencode({"query": everything, "start": now - 3600, "end": now, "step": 15})
        return "%d %s" % request(port, "POST", "/prometheus/api/v1/query_range", form.encode(),
                                 {"Content-Type": "application/x-www-form-urlencoded", "X-Scope-OrgID": "tenant-0"})
    run_case(pid, "10c. every series over 1h at 15s (241 steps)", range_select)
    run_case(pid, "10d. /series match-all",
             lambda: "%d %s" % request(port, "GET", "/prometheus/api/v1/series?" + urllib.parse.urlencode({"match[]": everything}),
                                       headers={"X-Scope-OrgID": "tenant-0"}))


def main():
    binary = sys.argv[1]
    data = tempfile.mkdtemp(prefix="strata-hostile-")
    port = free_port()
    big = len(sys.argv) > 3
    limits_off = ["-ingester.max-global-series-per-user=0", "-distributor.ingestion-rate-limit=0"] if big else []
    proc = subprocess.Popen([binary, *limits_off, f"-data.dir={data}", "-server.http-listen-address=127.0.0.1",
                             f"-server.http-listen-port={port}", "-server.grpc-listen-address=127.0.0.1",
                             f"-server.grpc-listen-port={free_port()}"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(300):
            if request(port, "GET", "/ready", timeout=1)[0] == 200:
                break
            time.sleep(0.1)
        print(f"{'input':<58} {'answer':<60} {'time':>8} {'peak RSS':>11}")
        print(f"{'(idle)':<58} {'':<60} {'':>8} {rss_mb(proc.pid):8.0f} MB")
        pid = proc.pid
        if big:
            big_reads(port, pid, sys.argv[2], int(sys.argv[3]))
            return

        run_case(pid, "1. count_over_time(vector(1)[100d:1ms])",
                 lambda: "%d %s" % query(port, "count_over_time(vector(1)[100d:1ms])"))
        nested = "max_over_time(max_over_time(max_over_time(vector(1)[1h:1ms])[1h:1ms])[1h:1ms])"
        run_case(pid, "2. three nested [1h:1ms] subqueries", lambda: "%d %s" % query(port, nested))

        def slots():
            results = []
            threads = [threading.Thread(target=lambda: results.append(query(port, nested)[0])) for _ in range(40)]
            for th in threads:
                th.start()
            for th in threads:
                th.join()
            other = query(port, "vector(1)", tenant="other")
            return "40x: %s; then another tenant: %d" % (sorted(set(results)), other[0])
        run_case(pid, "3. 40 of them at once, then another tenant's query", slots)

        run_case(pid, "4a. 100k nested parentheses (200 KB)",
                 lambda: "%d %s" % query(port, "(" * 100000 + "m" + ")" * 100000))
        run_case(pid, "4b. m + m + ... (1 MB)", lambda: "%d %s" % query(port, "m" + " + m" * 250000))

        def snappy_lies():
            body = uvarint(100 << 20) + b"\x00"  # claims 100 MiB, carries nothing
            codes = set()
            for _ in range(40):
                codes.add(request(port, "POST", "/api/v1/push", body,
                                  {"X-Scope-OrgID": "hostile", "Content-Encoding": "snappy"})[0])
            return f"40x: {sorted(codes)}"
        run_case(pid, "5. 40 pushes of 5 bytes claiming 100 MiB", snappy_lies)

        def lying_length():
            socks = []
            for _ in range(20):
                s = socket.create_connection(("127.0.0.1", port))
                s.sendall(b"POST /api/v1/push HTTP/1.1\r\nHost: x\r\nX-Scope-OrgID: hostile\r\n"
                          b"Content-Encoding: snappy\r\nContent-Length: 104857600\r\n\r\n")
                socks.append(s)
            time.sleep(3)
            other = request(port, "POST", "/api/v1/push", snappy_literal(write_request(0)),
                            {"X-Scope-OrgID": "other", "Content-Encoding": "snappy"})[0]
            for s in socks:
                s.close()
            return f"20 held open 3s; another tenant's push meanwhile: {other}"
        run_case(pid, "6. 20 connections announcing 100 MB, sending nothing", lying_length)

        def tenant_flood():
            codes = {}
            for i in range(3000):
                c = request(port, "POST", "/api/v1/push", snappy_literal(write_request(i)),
                            {"X-Scope-OrgID": f"flood-{i}", "Content-Encoding": "snappy"})[0]
                codes[c] = codes.get(c, 0) + 1
            return f"3000 tenants: {codes}"
        run_case(pid, "7. one sample to each of 3000 new tenants", tenant_flood)

        run_case(pid, "9. GET /ingester/shutdown",
                 lambda: "%d %s" % request(port, "GET", "/ingester/shutdown"))
        run_case(pid, "11. time=NaN", lambda: "%d %s" % query(port, "vector(1)", extra={"time": "NaN"}))
        alive = request(port, "GET", "/ready")[0]
        print(f"after all of them: /ready answers {alive}, RSS {rss_mb(proc.pid):.0f} MB")
    finally:
        proc.terminate()
        proc.wait(timeout=60)


if __name__ == "__main__":
    main()

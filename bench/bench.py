"""Side-by-side benchmark of the proxy against nginx serving the same files.

Run through bench/run.sh, which installs the tools and builds the release
binary. Every figure is a ratio of two measurements taken in this run on this
machine, alternating proxy and reference rounds and keeping medians.
"""

import os
import platform
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import workload  # noqa: E402


def env_int(name, default):
    return int(os.environ.get(name, default))


SETTINGS = {
    "BIN": os.environ.get("BIN", "target/release/goproxy"),
    "SEED": env_int("SEED", 42),
    "DEPS": env_int("DEPS", 300),
    "DURATION": env_int("DURATION", 10),
    "ROUNDS": env_int("ROUNDS", 3),
    "HERD": env_int("HERD", 200),
    "MEM_CLIENTS": env_int("MEM_CLIENTS", 64),
    "STARTUP_MODULES": env_int("STARTUP_MODULES", 1000),
    "STARTUP_VERSIONS": env_int("STARTUP_VERSIONS", 100),
    "LOG_LEVEL": os.environ.get("LOG_LEVEL", "info"),
    "UPSTREAM_DELAY_MS": env_int("UPSTREAM_DELAY_MS", 10),
    "ONLY": os.environ.get("ONLY", "small,zip,cold,far,warm,herd,memory,startup"),
    "WORKDIR": os.environ.get("WORKDIR", ""),
}
CORES = os.cpu_count() or 1


# Every temporary directory of the run, removed only when the run is over.
# On ext4 without a journal (as on the VMs this suite was tuned on), creating a
# file skips every inode freed in the last minute (up to six while their inode
# table block is dirty), reading each one to check; removing one round's
# caches right before the next made every later round slower, the direct
# download from 0.68 s to 1.29 s over four rounds.
SCRATCH = []


def scratch_dir(work, prefix):
    path = tempfile.mkdtemp(dir=work, prefix=prefix)
    SCRATCH.append(path)
    return path


def remove_scratch():
    while SCRATCH:
        shutil.rmtree(SCRATCH.pop(), ignore_errors=True)


def log(msg):
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url, timeout=30.0, interval=0.002):
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{url} did not come up")
        time.sleep(interval)


def wait_port(port, what, timeout=10.0):
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{what} did not start")
            time.sleep(0.01)


def rss_kb(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


class Nginx:
    """nginx serving `root` as static files: sendfile on, one worker per core.
    With `fill_from`, a caching reverse proxy instead: what `root` lacks is
    fetched from that URL over keep-alive connections and stored there
    (`proxy_store`: a temp file renamed into place, without fsync)."""

    def __init__(self, work, root, access_log=None, fill_from=None):
        self.dir = scratch_dir(work, "nginx-")
        self.port = free_port()
        log_line = (
            f'log_format fetches "$request_uri $status \\"$http_range\\" $body_bytes_sent";\n'
            f"access_log {access_log} fetches;"
            if access_log
            else "access_log off;"
        )
        upstream, location = "", ""
        if fill_from:
            upstream = f"upstream fill {{ server {fill_from.split('//', 1)[1]}; keepalive 32; }}"
            location = f"""
        location / {{ try_files $uri @fill; }}
        location @fill {{
            proxy_pass http://fill;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_store on;
        }}"""
        conf = f"""
user root;
worker_processes {CORES};
daemon off;
pid {self.dir}/nginx.pid;
error_log {self.dir}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    default_type application/octet-stream;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 1000000;
    {log_line}
    {upstream}
    server {{
        listen 127.0.0.1:{self.port};
        root {root};
        client_body_temp_path {self.dir};
        proxy_temp_path {self.dir};
        fastcgi_temp_path {self.dir};
        uwsgi_temp_path {self.dir};
        scgi_temp_path {self.dir};{location}
    }}
}}
"""
        path = os.path.join(self.dir, "nginx.conf")
        with open(path, "w") as f:
            f.write(conf)
        self.proc = subprocess.Popen(
            ["nginx", "-c", path, "-p", self.dir], stderr=subprocess.DEVNULL
        )
        self.url = f"http://127.0.0.1:{self.port}"
        wait_port(self.port, "nginx")

    def stop(self):
        self.proc.terminate()
        self.proc.wait()


class Proxy:
    def __init__(self, cache, upstream_url, wait=True, extra=()):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.started = time.monotonic()
        self.proc = subprocess.Popen(
            [
                SETTINGS["BIN"],
                "--listen",
                f"127.0.0.1:{self.port}",
                "--cache",
                cache,
                "--upstream",
                upstream_url,
                "--gosumdb",
                "off",
                "--log-level",
                SETTINGS["LOG_LEVEL"],
                *extra,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        if wait:
            self.wait_ready()

    def wait_ready(self):
        wait_http(self.url + "/health", interval=0.001)
        return time.monotonic() - self.started

    def stop(self):
        self.proc.terminate()
        self.proc.wait()


class Relay:
    """bench/relay.py in front of `port`: an upstream `delay_ms` away."""

    def __init__(self, port, delay_ms):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        here = os.path.dirname(os.path.abspath(__file__))
        self.proc = subprocess.Popen(
            [sys.executable, os.path.join(here, "relay.py"), str(self.port), str(port), str(delay_ms)]
        )
        wait_port(self.port, "the relay")

    def stop(self):
        self.proc.terminate()
        self.proc.wait()


# ---------------------------------------------------------------- load tools


def wrk(url, paths, connections, duration, work):
    script = os.path.join(work, f"wrk-{len(paths)}.lua")
    with open(script, "w") as f:
        f.write("paths = {" + ",".join(f'"{p}"' for p in paths) + "}\n")
        f.write(
            "local i = math.random(#paths)\n"
            "request = function()\n  i = i % #paths + 1\n"
            '  return wrk.format("GET", paths[i])\nend\n'
        )
    out = subprocess.run(
        [
            "wrk",
            "--latency",
            "-t",
            str(min(CORES, connections)),
            "-c",
            str(connections),
            "-d",
            f"{duration}s",
            "-s",
            script,
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p99_match = re.search(r"99%\s+(\S+)", out)
    p99 = parse_duration(p99_match.group(1)) if p99_match else float("nan")
    transfer = parse_bytes(re.search(r"Transfer/sec:\s+(\S+)", out).group(1))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if errors:
        raise RuntimeError(f"wrk saw {errors.group(1)} error responses from {url}:\n{out}")
    return {"rps": rps, "p99_ms": p99, "bytes_s": transfer}


def parse_duration(s):
    # wrk prints e.g. 812.00us, 3.21ms, 1.02s, 1.50m, 2.00h; anything else
    # (a figure it could not compute) is reported as not a number.
    m = re.match(r"([\d.]+)(us|ms|s|m|h)$", s)
    if not m:
        return float("nan")
    value, unit = float(m.group(1)), m.group(2)
    return value * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0, "h": 3600000.0}[unit]


def parse_bytes(s):
    m = re.match(r"([\d.]+)([KMGT]?B)", s)
    scale = {"B": 1, "KB": 1 << 10, "MB": 1 << 20, "GB": 1 << 30, "TB": 1 << 40}
    return float(m.group(1)) * scale[m.group(2)]


def curl_parallel(url, count, work):
    """`count` simultaneous GETs of `url`; returns (all 200 with full size, seconds)."""
    cfg = os.path.join(work, f"curl-{count}.cfg")
    with open(cfg, "w") as f:
        for _ in range(count):
            f.write(f'url = "{url}"\noutput = "/dev/null"\n')
    started = time.monotonic()
    out = subprocess.run(
        [
            "curl",
            "-s",
            "-Z",
            "--parallel-immediate",
            "--parallel-max",
            str(count),
            "-K",
            cfg,
            "-w",
            "%{http_code} %{size_download}\n",
        ],
        capture_output=True,
        text=True,
    ).stdout
    elapsed = time.monotonic() - started
    lines = [line.split() for line in out.splitlines() if line.strip()]
    ok = sum(1 for code, _ in lines if code == "200")
    return ok, elapsed


def go_download(goproxy, root, work):
    modcache = scratch_dir(work, "modcache-")
    env = dict(os.environ)
    env.update(
        GOPROXY=goproxy,
        GOMODCACHE=modcache,
        GOFLAGS="-mod=mod -modcacherw",
        GOSUMDB="off",
        GONOSUMDB="*",
        GOTOOLCHAIN="local",
        GOPRIVATE="",
        GONOPROXY="",
    )
    # go.sum is written by the command; start from none each time.
    sum_file = os.path.join(root, "go.sum")
    if os.path.exists(sum_file):
        os.remove(sum_file)
    started = time.monotonic()
    subprocess.run(["go", "mod", "download"], cwd=root, env=env, check=True)
    elapsed = time.monotonic() - started
    count = sum(
        1 for _, _, files in os.walk(os.path.join(modcache, "cache", "download"))
        for f in files if f.endswith(".zip")
    )
    return elapsed, count


# ---------------------------------------------------------------- measurements


def warm_cache(proxy_url, paths):
    for p in paths:
        with urllib.request.urlopen(proxy_url + p) as r:
            r.read()


def bench_small(ctx):
    paths = [p for m in ctx["graph"] for p in workload.artifact_paths(m)]
    proxy, ref = [], []
    for _ in range(ctx["rounds"]):
        proxy.append(wrk(ctx["proxy"].url, paths, 64, ctx["duration"], ctx["work"]))
        ref.append(wrk(ctx["nginx_cache"].url, paths, 64, ctx["duration"], ctx["work"]))
    rps_p = statistics.median(r["rps"] for r in proxy)
    rps_r = statistics.median(r["rps"] for r in ref)
    p99_p = statistics.median(r["p99_ms"] for r in proxy)
    p99_r = statistics.median(r["p99_ms"] for r in ref)
    return [
        row(
            f"1. Small-file hits ({len(paths)} `.info`/`.mod`/`list`), 64 keep-alive connections: requests/s",
            f"{rps_p:,.0f} vs {rps_r:,.0f}",
            rps_p / rps_r,
            ">= 1.0x",
            rps_p / rps_r >= 1.0,
        ),
        row(
            "1. Small-file hits, 64 connections: p99 latency",
            f"{p99_p:.2f} ms vs {p99_r:.2f} ms",
            p99_p / p99_r,
            "<= 1.5x",
            p99_p / p99_r <= 1.5,
        ),
    ]


def bench_zips(ctx):
    rows = []
    for size in (1, 20):
        path = workload.zip_path(ctx["zips"][size])
        proxy, ref = [], []
        for _ in range(ctx["rounds"]):
            proxy.append(wrk(ctx["proxy"].url, [path], 16, ctx["duration"], ctx["work"])["bytes_s"])
            ref.append(wrk(ctx["nginx_cache"].url, [path], 16, ctx["duration"], ctx["work"])["bytes_s"])
        p, r = statistics.median(proxy), statistics.median(ref)
        rows.append(
            row(
                f"2. {size} MB zip hits, 16 connections: throughput",
                f"{p / (1 << 20):,.0f} vs {r / (1 << 20):,.0f} MiB/s",
                p / r,
                ">= 0.8x",
                p / r >= 0.8,
            )
        )
    return rows


def bench_go(ctx, warm):
    proxy_t, direct_t, nginx_proxy_t = [], [], []
    counts = set()
    if warm:
        # The hit benchmarks' cache holds the small files but not the graph's
        # zips: one untimed download fills it, so every timed round is all hits.
        go_download(ctx["proxy"].url, ctx["root"], ctx["work"])
    for i in range(ctx["rounds"]):
        if warm:
            url = ctx["proxy"].url
            t, n = go_download(url, ctx["root"], ctx["work"])
        else:
            proxy = Proxy(scratch_dir(ctx["work"], "cold-cache-"), ctx["nginx_up"].url)
            t, n = go_download(proxy.url, ctx["root"], ctx["work"])
            proxy.stop()
            # The same two hops with nginx as the caching proxy: what the
            # practical ceiling achieves for a cold cache on this machine.
            store = scratch_dir(ctx["work"], "nginx-store-")
            nginx_proxy = Nginx(ctx["work"], store, fill_from=ctx["nginx_up"].url)
            u, m = go_download(nginx_proxy.url, ctx["root"], ctx["work"])
            nginx_proxy.stop()
            nginx_proxy_t.append(u)
            counts.add(m)
        proxy_t.append(t)
        counts.add(n)
        t, n = go_download(ctx["nginx_up"].url, ctx["root"], ctx["work"])
        direct_t.append(t)
        counts.add(n)
    p, d = statistics.median(proxy_t), statistics.median(direct_t)
    limit = 1.05 if warm else 1.15
    kind = "Warm (proxy cache full)" if warm else "Cold (proxy cache empty)"
    rows = [
        row(
            f"{4 if warm else 3}. {kind} `go mod download` of {len(ctx['graph'])} modules vs straight from nginx",
            f"{p:.2f} s vs {d:.2f} s ({sorted(counts)} zips)",
            p / d,
            f"<= {limit}x",
            p / d <= limit,
        )
    ]
    if nginx_proxy_t:
        n = statistics.median(nginx_proxy_t)
        rows.append(
            row(
                "3. Reference: the same cold download through nginx as a caching proxy (`proxy_store`) vs straight from nginx",
                f"{n:.2f} s vs {d:.2f} s (the proxy: {p / n:.2f}x nginx's time)",
                n / d,
                "-",
                None,
            )
        )
    return rows


def bench_far(ctx):
    """The cold download again, with the upstream as far away as a public
    proxy usually is: the relay holds each request for UPSTREAM_DELAY_MS."""
    delay = SETTINGS["UPSTREAM_DELAY_MS"]
    relay = Relay(ctx["nginx_up"].port, delay)
    plain, ahead, direct = [], [], []
    try:
        for _ in range(ctx["rounds"]):
            for out, extra in ((plain, ()), (ahead, ("--prefetch", "on"))):
                proxy = Proxy(scratch_dir(ctx["work"], "far-cache-"), relay.url, extra=extra)
                t, _ = go_download(proxy.url, ctx["root"], ctx["work"])
                proxy.stop()
                out.append(t)
            t, _ = go_download(relay.url, ctx["root"], ctx["work"])
            direct.append(t)
    finally:
        relay.stop()
    p, a, d = (statistics.median(x) for x in (plain, ahead, direct))
    return [
        row(
            f"3. The same cold download with the upstream {delay} ms away (a relay delays each request) vs straight from it",
            f"{p:.2f} s vs {d:.2f} s",
            p / d,
            "<= 1.15x",
            p / d <= 1.15,
        ),
        row(
            f"3. The same, upstream {delay} ms away, with `prefetch: on`",
            f"{a:.2f} s vs {d:.2f} s",
            a / d,
            "-",
            None,
        ),
    ]


def upstream_fetches(access_log, path):
    """Bytes the upstream sent for `path`, and the number of requests."""
    sent, requests = 0, 0
    with open(access_log) as f:
        for line in f:
            parts = line.split()
            if parts and parts[0] == path:
                requests += 1
                sent += int(parts[-1])
    return sent, requests


def bench_herd(ctx):
    module = ctx["zips"][120]
    path = workload.zip_path(module)
    size = os.path.getsize(os.path.join(ctx["upstream"], module, "@v", f"{workload.VERSION}.zip"))
    cache = ctx["herd_cache"]
    before, req_before = upstream_fetches(ctx["access_log"], path)
    proxy = Proxy(cache, ctx["nginx_up"].url)
    ok, elapsed = curl_parallel(proxy.url + path, ctx["herd"], ctx["work"])
    peak = rss_kb(proxy.proc.pid, "VmHWM")
    proxy.stop()
    time.sleep(0.2)
    sent, requests = upstream_fetches(ctx["access_log"], path)
    copies = (sent - before) / size
    return [
        row(
            f"5. Thundering herd: {ctx['herd']} concurrent requests for one uncached 120 MB zip",
            f"{ok}/{ctx['herd']} complete in {elapsed:.1f} s; upstream sent {copies:.2f} copies "
            f"({requests - req_before} requests, ranged parts included); peak RSS {peak / 1024:.0f} MiB",
            None,
            "1 fetch, all complete, RSS < 100 MB",
            ok == ctx["herd"] and abs(copies - 1.0) < 0.01 and peak < 100 * 1000,
        )
    ]


def bench_memory(ctx):
    path = workload.zip_path(ctx["zips"][120])
    proxy = Proxy(ctx["herd_cache"], ctx["nginx_up"].url)
    # Serves from cache: fill it first if the herd step did not run.
    warm_cache(proxy.url, [path])
    proxy.stop()
    proxy = Proxy(ctx["herd_cache"], ctx["nginx_up"].url)
    time.sleep(0.5)
    idle = rss_kb(proxy.proc.pid, "VmRSS")
    ok, elapsed = curl_parallel(proxy.url + path, ctx["mem_clients"], ctx["work"])
    peak = rss_kb(proxy.proc.pid, "VmHWM")
    proxy.stop()
    return [
        row("6. Idle RSS", f"{idle / 1024:.1f} MiB", None, "< 20 MB", idle < 20 * 1000),
        row(
            f"6. Peak RSS serving {ctx['mem_clients']} concurrent 120 MB zips (cached)",
            f"{peak / 1024:.1f} MiB ({ok}/{ctx['mem_clients']} complete in {elapsed:.1f} s)",
            None,
            "< 64 MB",
            peak < 64 * 1000 and ok == ctx["mem_clients"],
        ),
    ]


def bench_startup(ctx):
    modules, versions = ctx["startup_modules"], ctx["startup_versions"]
    cache = os.path.join(ctx["work"], "startup-cache")
    empty = scratch_dir(ctx["work"], "empty-cache-")
    if not os.path.isdir(cache):
        log(f"writing a cache of {modules * versions} module versions")
        workload.generate_startup_cache(cache, modules, versions)
    # The first start indexes the cache in the background; wait for that so
    # the timed starts see the steady state (a usage database that is current).
    first = Proxy(cache, ctx["nginx_up"].url)
    time.sleep(float(os.environ.get("STARTUP_SETTLE", "20")))
    first.stop()
    full, bare = [], []
    for _ in range(max(5, ctx["rounds"])):
        for target, out in ((cache, full), (empty, bare)):
            p = Proxy(target, ctx["nginx_up"].url, wait=False)
            out.append(p.wait_ready() * 1000)
            p.stop()
    f, b = statistics.median(full), statistics.median(bare)
    return [
        row(
            f"7. Start-up until `/health` answers, {modules * versions:,} module versions cached (vs empty cache)",
            f"{f:.0f} ms vs {b:.0f} ms",
            None,
            "< 100 ms",
            f < 100,
        )
    ]


def row(name, result, ratio, target, met):
    return {"name": name, "result": result, "ratio": ratio, "target": target, "met": met}


def machine():
    cpu = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
        with open("/proc/meminfo") as f:
            mem_gib = int(f.readline().split()[1]) / (1 << 20)
    except OSError:
        mem_gib = 0
    nginx = subprocess.run(["nginx", "-v"], capture_output=True, text=True).stderr.strip()
    go = subprocess.run(["go", "version"], capture_output=True, text=True).stdout.strip()
    return f"{CORES} cores ({cpu}), {mem_gib:.0f} GiB, {platform.system()} {platform.release()}; {nginx}; {go}"


def main():
    work = SETTINGS["WORKDIR"] or tempfile.mkdtemp(prefix="goproxy-bench-")
    os.makedirs(work, exist_ok=True)
    only = set(SETTINGS["ONLY"].split(","))
    log(f"workload in {work}")
    started = time.monotonic()
    upstream = os.path.join(work, "upstream")
    sizes = [1, 20, 120]
    if not os.path.isdir(upstream):
        graph, zips = workload.generate(work, SETTINGS["DEPS"], sizes, SETTINGS["SEED"])
    else:
        graph = [workload.small_module(i) for i in range(SETTINGS["DEPS"])]
        zips = {s: workload.zip_module(s) for s in sizes}
    log(f"workload ready in {time.monotonic() - started:.1f} s")

    access_log = os.path.join(work, "upstream-access.log")
    nginx_up = Nginx(work, upstream, access_log=access_log)
    cache = scratch_dir(work, "cache-")
    proxy = Proxy(cache, nginx_up.url)
    # The hit benchmarks read a cache the proxy filled itself.
    warm_cache(
        proxy.url,
        [p for m in graph for p in workload.artifact_paths(m)]
        + [workload.zip_path(zips[s]) for s in (1, 20)],
    )
    nginx_cache = Nginx(work, cache)
    ctx = {
        "work": work,
        "upstream": upstream,
        "root": os.path.join(work, "root"),
        "graph": graph,
        "zips": zips,
        "proxy": proxy,
        "nginx_up": nginx_up,
        "nginx_cache": nginx_cache,
        "access_log": access_log,
        "herd_cache": scratch_dir(work, "herd-cache-"),
        "rounds": SETTINGS["ROUNDS"],
        "duration": SETTINGS["DURATION"],
        "herd": SETTINGS["HERD"],
        "mem_clients": SETTINGS["MEM_CLIENTS"],
        "startup_modules": SETTINGS["STARTUP_MODULES"],
        "startup_versions": SETTINGS["STARTUP_VERSIONS"],
    }
    rows = []
    steps = [
        ("small", bench_small),
        ("zip", bench_zips),
        ("cold", lambda c: bench_go(c, warm=False)),
        ("far", bench_far),
        ("warm", lambda c: bench_go(c, warm=True)),
        ("herd", bench_herd),
        ("memory", bench_memory),
        ("startup", bench_startup),
    ]
    try:
        for name, step in steps:
            if name in only:
                log(f"running {name}")
                rows.extend(step(ctx))
    finally:
        proxy.stop()
        nginx_cache.stop()
        nginx_up.stop()
        remove_scratch()
        if not SETTINGS["WORKDIR"]:
            shutil.rmtree(work, ignore_errors=True)

    settings = ", ".join(f"{k}={v}" for k, v in SETTINGS.items() if k not in ("WORKDIR",))
    print(f"Machine: {machine()}")
    print(f"Settings: {settings}; proxy log level {SETTINGS['LOG_LEVEL']} (request log lines written to /dev/null)")
    print()
    print("| Measurement | Proxy vs nginx | Ratio | Target | Met |")
    print("|---|---|---|---|---|")
    for r in rows:
        ratio = f"{r['ratio']:.2f}x" if r["ratio"] is not None else "-"
        print(f"| {r['name']} | {r['result']} | {ratio} | {r['target']} | {'-' if r['met'] is None else 'yes' if r['met'] else 'NO'} |")
    print()
    print(f"Total time: {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    main()

"""Load test: gunicorn (2 workers) serving the dashboard, 20 locust users on cached views.

    python bench/bench_load.py [--seconds 60] [--users 20] [--spawn-rate 5] [--workers 2]
                               [--wait 0.2,1.0]

Starts `gunicorn --config python:app.gunicorn_conf app.main:server` on a free loopback port
with SVDSCOPE_MODELS=deernet,digits-5layer,ilr-biexp-ndnd and a temporary SVDSCOPE_CACHE_DIR
that its workers share, waits for /healthz, warms the result cache (each view of two layers
of each model once, printing how long that first, computing call took), then runs locust
headless (bench/locustfile.py) for --seconds with --users users POSTing those cached view
callbacks, and stops gunicorn (SIGTERM: a graceful shutdown). Prints requests, failures,
median / p95 / p99 milliseconds and throughput per view and overall, from every response
time locust saw (unrounded). Everything runs on this machine: gunicorn and locust share its
cores, so the numbers are for this machine under this load, not for a server alone; the
CPU time locust itself used and the machine's CPU pressure (Linux PSI: time runnable tasks
waited for a core) before and after are printed with them. Exits non-zero (keeping gunicorn's
log and locust's CSV files) if any request failed.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import dash_calls
from machine import cpu_pressure

from app.config import AppConfig
from app.main import create_app

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_healthy(url: str, proc: subprocess.Popen, log: Path, timeout: float) -> float:
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < timeout:
        if proc.poll() is not None:
            raise SystemExit(f"gunicorn exited ({proc.returncode}):\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url + "/healthz", timeout=2) as res:
                if res.status == 200:
                    return time.perf_counter() - t0
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.25)
    raise SystemExit(f"no /healthz answer in {timeout:.0f} s:\n{log.read_text()[-3000:]}")


def _post(url: str, body: bytes) -> tuple[float, int]:
    req = urllib.request.Request(
        url + dash_calls.ROUTE, data=body, headers={"Content-Type": "application/json"}
    )
    t0 = time.perf_counter()
    try:
        with urllib.request.urlopen(req, timeout=300) as res:
            res.read()
            return time.perf_counter() - t0, res.status
    except urllib.error.HTTPError as err:  # 4xx / 5xx
        return time.perf_counter() - t0, err.code


def _stop(proc: subprocess.Popen, grace: float = 40.0) -> str:
    """SIGTERM to the gunicorn master (it stops its workers gracefully); SIGKILL if stuck."""
    if proc.poll() is not None:
        return f"had already exited ({proc.returncode})"
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=grace)
        return f"stopped cleanly (exit {proc.returncode})"
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        return "did not stop in time: killed"


def _row(name: str, times: list[float], failures: int, seconds: float) -> str:
    t = np.asarray(times, dtype=float)
    if t.size:
        med, p95, p99 = np.percentile(t, [50, 95, 99])
        tail = f"{med:>9.1f} {p95:>9.1f} {p99:>9.1f} {t.max():>9.1f}"
    else:
        tail = f"{'-':>9} {'-':>9} {'-':>9} {'-':>9}"
    n = t.size + failures
    return f"{name:>9} {n:>9d} {failures:>8d} {tail} {n / seconds:>7.1f}"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--seconds", type=int, default=60, help="locust run time (default 60)")
    p.add_argument("--users", type=int, default=20)
    p.add_argument("--spawn-rate", type=float, default=5.0)
    p.add_argument("--workers", type=int, default=2, help="gunicorn worker processes")
    p.add_argument("--threads", type=int, default=4, help="gunicorn threads per worker")
    p.add_argument("--wait", default="0.2,1.0", help="user think time, 'min,max' seconds")
    args = p.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="svdscope-load-"))
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "SVDSCOPE_MODELS": ",".join(dash_calls.LOAD_MODELS),
        "SVDSCOPE_CACHE_DIR": str(tmp / "cache"),
        "SVDSCOPE_UPLOAD_DIR": str(tmp / "uploads"),
        "SVDSCOPE_HOST": "127.0.0.1",
        "SVDSCOPE_PORT": str(port),
        "SVDSCOPE_WEB_WORKERS": str(args.workers),
        "SVDSCOPE_WEB_THREADS": str(args.threads),
        "SVDSCOPE_LOG_LEVEL": "warning",
    }
    for name in ("SVDSCOPE_REDIS_URL", "SVDSCOPE_BASIC_AUTH", "SVDSCOPE_BASIC_AUTH_FILE"):
        env.pop(name, None)  # filesystem cache, no authentication: what this test measures

    # The same configuration as the workers (config_from_env), so the callbacks and component
    # ids of the bodies are theirs.
    app = create_app(AppConfig.from_env(env))
    requests = dash_calls.view_bodies(app, dash_calls.LOAD_LAYERS)
    bodies_file, times_file = tmp / "bodies.json", tmp / "times.json"
    bodies_file.write_text(json.dumps(requests))

    gunicorn = Path(sys.executable).with_name("gunicorn")
    log = tmp / "gunicorn.log"
    cmd = [str(gunicorn), "--config", "python:app.gunicorn_conf", "app.main:server"]
    with open(log, "wb") as log_fh:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log_fh, stderr=subprocess.STDOUT)
    try:
        up = _wait_healthy(url, proc, log, timeout=120)
        print(
            f"gunicorn {args.workers} workers x {args.threads} threads on {url} "
            f"(healthy after {up:.1f} s), {os.cpu_count()} CPU cores shared with locust"
        )
        print(f"warming {len(requests)} view calls (first call of each: computes and caches)")
        warm: dict[str, list[float]] = {}
        for req in requests:
            seconds, status = _post(url, req["body"].encode())
            if status != 200:
                raise SystemExit(f"warm-up {req['model']}/{req['layer']} {req['view']}: {status}")
            warm.setdefault(req["view"], []).append(seconds)
        print("  " + ", ".join(f"{v} {max(t):.2f} s max" for v, t in warm.items()))

        locust_env = {
            **env,
            "SVDSCOPE_BENCH_BODIES": str(bodies_file),
            "SVDSCOPE_BENCH_TIMES": str(times_file),
            "SVDSCOPE_BENCH_WAIT": args.wait,
        }
        locust_cmd = [
            sys.executable, "-m", "locust",
            "-f", str(HERE / "locustfile.py"),
            "--headless",
            "-u", str(args.users),
            "-r", str(args.spawn_rate),
            "-t", f"{args.seconds}s",
            "--host", url,
            "--csv", str(tmp / "locust"),
            "--only-summary",
            "--loglevel", "WARNING",
        ]  # fmt: skip
        print(
            f"locust: {args.users} users (spawn {args.spawn_rate}/s), think time {args.wait} s, "
            f"{args.seconds} s, {len(requests)} cached view calls"
        )
        print(f"CPU pressure before: {cpu_pressure()}")
        cpu0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        run = subprocess.run(
            locust_cmd, cwd=ROOT, env=locust_env, capture_output=True, text=True, check=False
        )
        elapsed = time.perf_counter() - t0
        cpu1 = resource.getrusage(resource.RUSAGE_CHILDREN)  # locust only: gunicorn still runs
        locust_cpu = (cpu1.ru_utime + cpu1.ru_stime) - (cpu0.ru_utime + cpu0.ru_stime)
        print(f"CPU pressure after:  {cpu_pressure()}")
        if not times_file.exists():
            raise SystemExit(f"locust failed (exit {run.returncode}):\n{run.stderr[-3000:]}")
        data = json.loads(times_file.read_text())
    except BaseException:
        print(f"gunicorn {_stop(proc)}; its log and the locust files: {tmp}")
        raise
    stopped = _stop(proc)

    times, failures = data["times_ms"], data["failures"]
    head = f"{'view':>9} {'requests':>9} {'failures':>8} {'median ms':>9} {'p95 ms':>9} "
    print(head + f"{'p99 ms':>9} {'max ms':>9} {'req/s':>7}")
    views = [v for v in dash_calls.VIEWS if v in times or v in failures]
    for view in views:
        print(_row(view, times.get(view, []), len(failures.get(view, [])), args.seconds))
    all_times = [t for v in views for t in times.get(v, [])]
    n_failed = sum(len(f) for f in failures.values())
    print(_row("overall", all_times, n_failed, args.seconds))
    print(
        f"locust exit {run.returncode}, ran {elapsed:.0f} s and used {locust_cpu:.0f} CPU s "
        f"({100 * locust_cpu / elapsed:.0f}% of one core) itself; gunicorn {stopped}"
    )
    for view, msgs in failures.items():
        print(f"failures of {view}: {sorted(set(msgs))[:3]}")
    if n_failed or run.returncode != 0:
        raise SystemExit(f"failed requests; gunicorn's log and the locust files: {tmp}")
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()

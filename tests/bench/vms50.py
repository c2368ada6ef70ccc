#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-only
"""vmmsd fleet benchmark: N VMs (ring-3 test guests, tests/guests/spin.c) defined, started and
turned off through a private vmmsd by several concurrent clients, with real sandboxed workers.

Reports VMs started per second (first request to last Running), per-VM start latency
(RequestStateChange sent -> EnabledState Running, median and p95), turn-off time, and vmmsd's
resident memory (now and peak), and compares with Firecracker's published figure of 5 microVMs
per host core per second. Needs root and /dev/kvm.

Usage: tests/bench/vms50.py [--build DIR] [--count 50] [--clients 10] [--json]
"""
import argparse
import json
import os
import pathlib
import shutil
import statistics
import sys
import tempfile
import threading
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "e2e"))
import vmmsd_util as U  # noqa: E402

FIRECRACKER_PER_CORE_PER_S = 5


def rss_kib(pid):
    st = U.proc_status(pid)
    return int(st["VmRSS"].split()[0]), int(st["VmHWM"].split()[0])


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default=os.environ.get("VMMS_BUILD", "build"))
    ap.add_argument("--count", type=int, default=50)
    ap.add_argument("--clients", type=int, default=10)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    os.environ["VMMS_BUILD"] = str(pathlib.Path(a.build).resolve())
    if os.geteuid() != 0 or not os.access("/dev/kvm", os.R_OK | os.W_OK):
        print("vms50: needs root and /dev/kvm", file=sys.stderr)
        return 77
    elf = U.guest_elf("spin")
    if not elf.exists():
        print(f"vms50: {elf} missing: make BUILD={a.build} test-guests", file=sys.stderr)
        return 2
    tmp = tempfile.mkdtemp(prefix="vms50-")
    d = U.Vmmsd(tmp).start()
    names = [f"bench{i:03d}" for i in range(a.count)]
    try:
        c = d.client()
        for n in names:
            U.define(c, U.guest_xml(n, elf, memory_mib=32))
        rss_idle, _ = rss_kib(d.proc.pid)
        watcher = d.client()
        watcher.result("Subscribe", Query=U.CS_EVENTS)
        paths = {n: U.cs_path(c, n) for n in names}
        sent, running, off = {}, {}, {}
        failures = []
        peak_rss = [0]

        def events():
            while len(off) < len(names) and not failures:
                ev = watcher.next_event(timeout=60)
                if ev is None:
                    failures.append("no event for 60 s")
                    return
                t = time.monotonic()
                ti = ev["TargetInstance"]
                if ti["EnabledState"] == U.RUNNING and ti["ElementName"] not in running:
                    running[ti["ElementName"]] = t
                elif ti["EnabledState"] == U.OFF and ti["ElementName"] in running:
                    off[ti["ElementName"]] = t
                    if ti["ErrorDescription"]:
                        failures.append(f"{ti['ElementName']}: {ti['ErrorDescription']}")
                peak_rss[0] = max(peak_rss[0], rss_kib(d.proc.pid)[0])

        ev_thread = threading.Thread(target=events)
        ev_thread.start()

        def starter(mine):
            cl = d.client()
            for n in mine:
                sent[n] = time.monotonic()
                r = cl.call("InvokeMethod", ObjectPath=paths[n], MethodName="RequestStateChange",
                            Parameters={"RequestedState": U.RUNNING})
                if "error" in r or r["result"]["ReturnValue"] != 4096:
                    failures.append(f"{n}: {r}")
            cl.close()

        t0 = time.monotonic()
        threads = [threading.Thread(target=starter, args=(names[i::a.clients],)) for i in range(a.clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        end = time.monotonic() + 120
        while len(running) < len(names) and time.monotonic() < end and not failures:
            time.sleep(0.01)
        t_all_running = time.monotonic()
        rss_running, _ = rss_kib(d.proc.pid)
        workers = [d.worker_pid(n) for n in names if (d.run / "vms" / n / "pid").exists()]

        t1 = time.monotonic()

        def stopper(mine):
            cl = d.client()
            for n in mine:
                r = cl.call("InvokeMethod", ObjectPath=paths[n], MethodName="RequestStateChange",
                            Parameters={"RequestedState": U.OFF})
                if "error" in r:
                    failures.append(f"{n}: {r['error']}")
            cl.close()

        threads = [threading.Thread(target=stopper, args=(names[i::a.clients],)) for i in range(a.clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        ev_thread.join(120)
        t_all_off = time.monotonic()
        _, hwm = rss_kib(d.proc.pid)
        if failures or len(running) < len(names) or len(off) < len(names):
            print(f"vms50: FAILED: {len(running)} running, {len(off)} off; {failures[:5]}", file=sys.stderr)
            print(d.log()[-3000:], file=sys.stderr)
            return 1
        lat = [(running[n] - sent[n]) * 1000 for n in names]
        cores = os.cpu_count() or 1
        res = {
            "vms": len(names),
            "clients": a.clients,
            "host_cores": cores,
            "start_wall_s": round(t_all_running - t0, 3),
            "vms_started_per_s": round(len(names) / (t_all_running - t0), 1),
            "vms_started_per_core_per_s": round(len(names) / (t_all_running - t0) / cores, 1),
            "firecracker_per_core_per_s": FIRECRACKER_PER_CORE_PER_S,
            "start_latency_ms": {"median": round(statistics.median(lat), 1), "p95": round(pct(lat, 95), 1),
                                 "max": round(max(lat), 1)},
            "turn_off_wall_s": round(t_all_off - t1, 3),
            "workers_seen": len(workers),
            "vmmsd_rss_kib": {"idle_50_defined": rss_idle, "50_running": rss_running,
                              "peak_sampled": max(peak_rss[0], rss_running), "hwm": hwm},
        }
        if a.json:
            print(json.dumps(res, indent=2))
        else:
            print(f"{res['vms']} VMs, {res['clients']} clients, {cores} host cores")
            print(f"  started in {res['start_wall_s']} s: {res['vms_started_per_s']} VMs/s "
                  f"= {res['vms_started_per_core_per_s']} per core per s "
                  f"(Firecracker publishes {FIRECRACKER_PER_CORE_PER_S} microVMs per core per s)")
            print(f"  start latency: median {res['start_latency_ms']['median']} ms, p95 {res['start_latency_ms']['p95']} ms, "
                  f"max {res['start_latency_ms']['max']} ms")
            print(f"  all turned off in {res['turn_off_wall_s']} s")
            r = res["vmmsd_rss_kib"]
            print(f"  vmmsd RSS: {r['idle_50_defined']} KiB with {len(names)} defined, {r['50_running']} KiB with all running, "
                  f"peak {r['hwm']} KiB")
        shutil.rmtree(tmp, ignore_errors=True)
        return 0
    finally:
        d.stop()


if __name__ == "__main__":
    sys.exit(main())

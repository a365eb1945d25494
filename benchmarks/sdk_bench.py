"""Side-by-side benchmark of this SDK against rudder-sdk-python, Segment and PostHog.

    bash benchmarks/setup_peers.sh              # once: one venv per SDK in benchmarks/.venvs/
    python benchmarks/sdk_bench.py              # --events 100000 --repeat 3 --sdks ours,rudder,...

Starts the loopback sink (pinned to the second core), measures its capacity, then for each
repetition and each SDK runs the driver's three phases (delivery, burst, memory), each in a
fresh process of that SDK's venv python pinned to the first core. Prints one table of medians
with ratios to rudder-sdk-python and the targets, and writes it to benchmarks/results.md.
Only the standard library is needed to run this file.
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import platform
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

HERE = Path(__file__).resolve().parent
VENVS = HERE / ".venvs"
DRIVER = HERE / "drivers" / "driver.py"
SINK = HERE / "sink.py"
RESULTS_MD = HERE / "results.md"
RAW_JSON = VENVS / "last_run.json"

DEFAULT_SDKS = "ours,rudder,segment,posthog"
BASELINE = "rudder"
PHASES = ("delivery", "burst", "memory", "sustained", "sustained2", "block", "unbounded")
SUSTAINED = {  # harness phase -> (driver --queue, --cpus, ours only)
    "sustained": ("default", "", False),
    "sustained2": ("default", "both", False),
    "block": ("block", "", True),
    "unbounded": ("unbounded", "", True),
}
CAPACITY_FACTOR = 3.0
CAPACITY_DEPTH = 4  # requests in flight in the capacity probe
X = "\u00d7"  # the multiplication sign, for ratios

SDK_LABELS = {
    "ours": "ours (rudder_analytics)",
    "ours-stdlib": "ours, no orjson",
    "rudder": "rudder-sdk-python",
    "segment": "segment-analytics-python",
    "posthog": "posthog",
    "null": "no SDK (harness floor)",
}


class Figure:
    """One row of the table: where its value comes from, how to print it, its target."""

    def __init__(
        self,
        key: str,
        label: str,
        phase: str,
        fmt: Callable[[float], str],
        target: tuple[str, float] | None = None,
        ratio: bool = True,
    ) -> None:
        self.key = key
        self.label = label
        self.phase = phase
        self.fmt = fmt
        self.target = target  # ("<=", 0.12) on the ratio, or ("==", 0) on the absolute value
        self.ratio = ratio

    def target_text(self) -> str:
        """The target as printed in the table."""
        if self.target is None:
            return ""
        op, value = self.target
        if op == "==":
            return f"= {value:g}"
        if op == "abs<=":
            return f"≤ {value:g}"
        return f"{'≤' if op == '<=' else '≥'} {value:.2f}{X}"

    def met(self, value: float, ratio: float | None) -> bool | None:
        """Whether ``value`` (absolute) / ``ratio`` (to the baseline) meets the target."""
        if self.target is None or _nan(value):
            return None
        op, limit = self.target
        if op == "==":
            return value == limit
        if op == "abs<=":
            return value <= limit
        if ratio is None or _nan(ratio):
            return None
        return ratio <= limit if op == "<=" else ratio >= limit


def _nan(x: Any) -> bool:
    return x is None or (isinstance(x, float) and math.isnan(x))


def _us(x: float) -> str:
    return f"{x:.2f} µs" if x < 10 else f"{x:,.1f} µs"


def _rate(x: float) -> str:
    return f"{x:,.0f}/s"


def _ms(x: float) -> str:
    return f"{x:.1f} ms" if x < 100 else f"{x:,.0f} ms"


def _mb(x: float) -> str:
    return f"{x / 2**20:,.1f} MiB"


def _bytes(x: float) -> str:
    return f"{x:,.0f} B"


def _count(x: float) -> str:
    return f"{x:,.0f}"


def _pct(x: float) -> str:
    return f"{x:.2f}%"


def _times(x: float) -> str:
    return f"{x:.2f}{X}"


FIGURES = [
    Figure("caller_mean_us", "caller mean per track()", "delivery", _us, ("<=", 0.06)),
    Figure("caller_p50_us", "caller p50", "delivery", _us),
    Figure("caller_p99_us", "caller p99", "delivery", _us, ("<=", 0.05)),
    Figure("caller_p999_us", "caller p99.9", "delivery", _us),
    Figure("e2e_events_per_s", "end-to-end events/s", "delivery", _rate, (">=", 8.0)),
    Figure("cpu_ms_per_1000", "process CPU per 1,000 events", "delivery", _ms, ("<=", 0.08)),
    Figure("peak_rss", "peak RSS, data plane down", "memory", _mb),
    Figure("bytes_per_event", "bytes per queued event, plane down", "memory", _bytes, ("<=", 0.35)),
    Figure("dropped", "dropped in burst, defaults, healthy", "burst", _count, ("==", 0), False),
    Figure("sustained_events_per_s", "sustained: events/s delivered, backfill loop, 1 core",
           "sustained", _rate, (">=", 5.0)),
    Figure("dropped_pct", "sustained: dropped, 1 core", "sustained", _pct, ("abs<=", 1.0), False),
    Figure("sustained_events_per_s", "sustained: events/s delivered, both cores",
           "sustained2", _rate, (">=", 5.0)),
    Figure("dropped_pct", "sustained: dropped, both cores", "sustained2", _pct, ("abs<=", 1.0),
           False),
    Figure("dropped", "sustained, on_full=\"block\": dropped", "block", _count, ("==", 0), False),
    Figure("block_time_ratio", "sustained, on_full=\"block\": total time ÷ unbounded queue's",
           "block", _times, ("abs<=", 1.2), False),
]


def log(msg: str) -> None:
    """Progress goes to stderr; the table goes to stdout."""
    print(msg, file=sys.stderr, flush=True)


def venv_python(name: str) -> Path:
    """The python of an SDK's venv (``null`` runs in this interpreter)."""
    if name == "null":
        return Path(sys.executable)
    return VENVS / name / "bin" / "python"


def adapter_for(name: str) -> str:
    """The driver adapter for a venv name (``ours-stdlib`` is ``ours`` without orjson)."""
    return "ours" if name.startswith("ours") else name


def cpu_plan(no_pin: bool) -> tuple[int, int, str]:
    """(sdk cpu, sink cpu, note); -1 means not pinned."""
    try:
        cpus = sorted(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return -1, -1, "not pinned: no sched_setaffinity on this platform"
    if no_pin:
        return -1, -1, "not pinned (--no-pin)"
    if len(cpus) < 2:
        return -1, -1, f"not pinned: only cpu {cpus} available"
    return (
        cpus[0],
        cpus[1],
        (
            f"SDK driver processes pinned to cpu {cpus[0]}; sink, capacity probe's server and this "
            f"harness pinned to cpu {cpus[1]}; the capacity probe's client pinned to cpu {cpus[0]}"
        ),
    )


class SinkProcess:
    """The sink as a child process; ``port`` once it listens."""

    def __init__(self, cpu: int, nice: int) -> None:
        self.proc = subprocess.Popen(
            [
                sys.executable,
                str(SINK),
                "--cpu",
                str(cpu),
                "--nice",
                str(nice),
                "--exit-with-parent",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            err = self.proc.stderr.read() if self.proc.stderr else ""
            raise RuntimeError(f"sink did not start: {err}")
        info = json.loads(line)
        self.port: int = info["port"]
        self.pinned: str = info["pinned"]

    def stop(self) -> None:
        """Terminate the sink (this process started it)."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def run_json(cmd: list[str], timeout: float, prefix: str = "") -> tuple[dict[str, Any], str]:
    """Run ``cmd``; return (the JSON on its last ``prefix`` stdout line, error text)."""
    try:
        proc = subprocess.run(
            cmd, capture_output=True, text=True, timeout=timeout, cwd=str(HERE.parent)
        )
    except subprocess.TimeoutExpired:
        return {}, f"timed out after {timeout:.0f}s"
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith(prefix):
            try:
                return json.loads(line[len(prefix) :]), ""
            except ValueError:
                break
    tail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
    return {}, f"exit {proc.returncode}: " + " | ".join(tail)


def measure_capacity(port: int, cpu: int, seconds: float, nice: int) -> dict[str, Any]:
    """Run the sink's capacity probe (a tight loop of pre-built gzip batches of 100)."""
    cmd = [sys.executable, str(SINK), "capacity", "--port", str(port), "--cpu", str(cpu)]
    cmd += ["--seconds", str(seconds), "--nice", str(nice), "--depth", str(CAPACITY_DEPTH)]
    result, err = run_json(cmd, timeout=seconds + 60)
    if err:
        log(f"capacity probe failed: {err}")
    return result


def median(values: list[float]) -> float:
    """Median of the finite values (nan when none)."""
    vals = [v for v in values if not _nan(v)]
    return statistics.median(vals) if vals else math.nan


def spread(values: list[float]) -> str:
    """min-max of the finite values, for the notes."""
    vals = [v for v in values if not _nan(v)]
    if len(vals) < 2:
        return ""
    return f"{min(vals):.4g}-{max(vals):.4g}"


def aggregate(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Median of every figure over the repetitions of one SDK."""
    out: dict[str, Any] = {}
    for r in runs:  # the block run's time relative to the unbounded queue's, same repetition
        if "block" in r and "unbounded" in r and r["unbounded"].get("total_s"):
            r["block"]["block_time_ratio"] = r["block"]["total_s"] / r["unbounded"]["total_s"]
    for fig in FIGURES:
        vals = [r[fig.phase].get(fig.key, math.nan) for r in runs if fig.phase in r]
        out[fig.phase + ":" + fig.key] = median(vals)
        out[fig.phase + ":" + fig.key + ":spread"] = spread(vals)
    for key in ("sink_busy", "rejected", "delivered"):
        out[key] = median([r["delivery"].get(key, math.nan) for r in runs if "delivery" in r])
    return out


def render(
    sdks: list[str],
    medians: dict[str, dict[str, float]],
    info: dict[str, Any],
) -> str:
    """The markdown table plus notes."""
    base = medians.get(BASELINE)
    header = ["figure (median)"] + [SDK_LABELS.get(s, s) for s in sdks]
    header += ["target (ours ÷ rudder)", "ours meets?"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for fig in FIGURES:
        row = [fig.label]
        for sdk in sdks:
            key = fig.phase + ":" + fig.key
            value = medians.get(sdk, {}).get(key, math.nan)
            if _nan(value):
                row.append("n/a")
                continue
            cell = fig.fmt(value)
            if fig.ratio and base and sdk not in (BASELINE, "null"):
                bval = base.get(key, math.nan)
                if not _nan(bval) and bval:
                    cell += f" ({value / bval:.2f}{X})"
            row.append(cell)
        row.append(fig.target_text())
        verdict = ""
        if fig.target and "ours" in medians:
            key = fig.phase + ":" + fig.key
            value = medians["ours"].get(key, math.nan)
            ratio = None
            if base and not _nan(base.get(key)) and base.get(key):
                ratio = value / base[key]
            met = fig.met(value, ratio)
            verdict = "n/a" if met is None else ("yes" if met else "**no**")
        row.append(verdict)
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def _notes_setup(info: dict[str, Any]) -> list[str]:
    """The run's size, pinning, priority and load."""
    return [
        f"- {info['events']:,} events per phase, {info['repeat']} repetition(s), medians shown; "
        f"ratios are to {SDK_LABELS[BASELINE]} measured in the same run.",
        f"- Pinning: {info['pinning']}. Priority: nice {info['nice']} requested for the "
        f"sink and the drivers. Load average {info['load']} (other processes on the "
        f"machine disturb every figure; compare only figures from one run).",
    ]


def _notes_capacity(medians: dict[str, dict[str, float]], info: dict[str, Any]) -> list[str]:
    """The sink's capacity, against the fastest SDK's end-to-end rate."""
    cap = info.get("capacity_events_per_s", math.nan)
    sdk_rates = {
        s: m.get("delivery:e2e_events_per_s", math.nan)
        for s, m in medians.items()
        if s != "null" and not _nan(m.get("delivery:e2e_events_per_s"))
    }
    if sdk_rates and not _nan(cap):
        fastest = max(sdk_rates, key=lambda s: sdk_rates[s])
        factor = cap / sdk_rates[fastest]
        verdict = "OK" if factor >= CAPACITY_FACTOR else f"**below the {CAPACITY_FACTOR:g}{X} bar**"
        return [
            f"- Sink capacity: {cap:,.0f} events/s (lowest of {info['capacity_runs']} probes: one "
            f"keep-alive connection posting a pre-built gzip batch of 100 in a tight loop, "
            f"{CAPACITY_DEPTH} requests in flight; {info['capacity_per_cpu_s']:,.0f} events per "
            f"second of sink CPU) = "
            f"{factor:.1f}{X} the fastest SDK ({SDK_LABELS.get(fastest, fastest)}, "
            f"{sdk_rates[fastest]:,.0f} events/s): {verdict}."
        ]
    if not _nan(cap):
        return [f"- Sink capacity: {cap:,.0f} events/s."]
    return []


def _notes_sink(medians: dict[str, dict[str, float]], info: dict[str, Any]) -> list[str]:
    """How busy the sink was, and the check of its event counting."""
    out = []
    busy = {s: m.get("sink_busy", math.nan) for s, m in medians.items() if s != "null"}
    busy_txt = ", ".join(f"{s} {b:.0%}" for s, b in busy.items() if not _nan(b))
    if busy_txt:
        out.append(f"- Sink CPU busy during the end-to-end runs (CPU / wall time): {busy_txt}.")
    out.append(
        f"- Sink event counting (marker count checked against `len(batch)` on sampled bodies): "
        f"{info['verified']} bodies parsed, {info['mismatches']} mismatches."
    )
    return out


def _notes_stdlib(medians: dict[str, dict[str, float]]) -> list[str]:
    """Ours without orjson against its targets (when both it and the baseline ran)."""
    stdlib, base = medians.get("ours-stdlib"), medians.get(BASELINE)
    if not (stdlib and base):
        return []
    checks = []
    for key, label, limit in (("delivery:caller_mean_us", "caller mean", 0.25),
                              ("delivery:cpu_ms_per_1000", "CPU per 1,000 events", 0.20)):
        if not _nan(stdlib.get(key)) and base.get(key):
            ratio = stdlib[key] / base[key]
            verdict = "yes" if ratio <= limit else "**no**"
            checks.append(f"{label} {ratio:.2f}{X} (target ≤ {limit:.2f}{X}: {verdict})")
    if not checks:
        return []
    return ["- Without orjson (`ours-stdlib`, stdlib json only): " + "; ".join(checks) + "."]


def _notes_spread(sdks: list[str], medians: dict[str, dict[str, float]]) -> list[str]:
    """The min-max of every figure over the repetitions, per SDK."""
    spreads = []
    for sdk in sdks:
        m = medians.get(sdk) or {}
        cells = [f"{fig.label} {m[fig.phase + ':' + fig.key + ':spread']}" for fig in FIGURES
                 if m.get(fig.phase + ":" + fig.key + ":spread")]
        if cells:
            spreads.append(f"{sdk}: " + "; ".join(cells))
    if not spreads:
        return []
    return ["- Spread over the repetitions (min-max): " + " | ".join(spreads) + "."]


def _notes_sustained(info: dict[str, Any]) -> list[str]:
    """What the sustained-load phases run."""
    return [
        f"- Sustained load: {info['sustained_events']:,} calls, each after `json.loads` of a "
        f"~600-byte line, each SDK's default settings (queue included); `1 core`: the driver "
        f"pinned to cpu {info['sdk_cpu']}, `both cores`: the driver may run on either (the "
        f"sink stays on its own). `on_full=\"block\"` runs ours with that option; its time "
        f"is compared with ours with a queue larger than the run (`unbounded`), same repetition."
    ]


def _notes_delivery(
    sdks: list[str], medians: dict[str, dict[str, float]], info: dict[str, Any]
) -> list[str]:
    """Calls rejected and events missing in each SDK's delivery run."""
    out = []
    for sdk in sdks:
        m = medians.get(sdk)
        if not m or sdk == "null":
            continue
        if m.get("rejected"):
            out.append(f"- {sdk}: {m['rejected']:.0f} calls rejected during the delivery run.")
        if not _nan(m.get("delivered")) and m["delivered"] < info["events"]:
            out.append(f"- {sdk}: only {m['delivered']:,.0f} events delivered in the delivery run.")
    return out


def _notes_versions(info: dict[str, Any]) -> list[str]:
    """Each SDK's version, python and settings."""
    out = []
    for sdk, meta in info["sdk_meta"].items():
        if sdk == "null":
            continue
        out.append(
            f"- {sdk}: version {meta.get('version', '?')}, python {meta.get('python', '?')}, "
            f"settings {meta.get('settings', {})} in the delivery run"
            + (f", {meta['down_settings']} plane down" if meta.get("down_settings") else "")
        )
    return out


def _notes_problems(info: dict[str, Any]) -> list[str]:
    """The SDKs skipped and the runs that failed."""
    return [f"- skipped: {msg}" for msg in info["skipped"]] + [
        f"- failed: {msg}" for msg in info["failures"]
    ]


def notes(sdks: list[str], medians: dict[str, dict[str, float]], info: dict[str, Any]) -> str:
    """What was run and the checks that make the figures trustworthy."""
    out = [
        *_notes_setup(info),
        *_notes_capacity(medians, info),
        *_notes_sink(medians, info),
        *_notes_stdlib(medians),
        *_notes_spread(sdks, medians),
        *_notes_sustained(info),
        *_notes_delivery(sdks, medians, info),
        *_notes_versions(info),
        *_notes_problems(info),
    ]
    return "\n".join(out)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command line."""
    parser = argparse.ArgumentParser(description="side-by-side SDK benchmark")
    parser.add_argument("--events", type=int, default=100_000, help="events per phase")
    parser.add_argument("--repeat", type=int, default=3, help="repetitions (medians shown)")
    parser.add_argument("--sdks", default=DEFAULT_SDKS, help=f"comma list (default {DEFAULT_SDKS})")
    parser.add_argument("--phases", default=",".join(PHASES))
    parser.add_argument("--no-floor", action="store_true", help="skip the no-SDK harness floor")
    parser.add_argument("--no-pin", action="store_true", help="do not pin processes to cores")
    parser.add_argument(
        "--nice",
        type=int,
        default=-10,
        help="nice increment for the sink and drivers (root only; 0: leave as is)",
    )
    parser.add_argument("--sustained-events", type=int, default=1_000_000,
                        help="calls in the sustained-load phases")
    parser.add_argument("--capacity-seconds", type=float, default=3.0)
    parser.add_argument("--timeout", type=float, default=120.0, help="bound on each wait")
    parser.add_argument("--results", default=str(RESULTS_MD), help="markdown output file")
    return parser.parse_args(argv)


def _select_sdks(sdks_arg: str, no_floor: bool) -> tuple[list[str], list[str]]:
    """The SDKs to run (those with a venv, plus the no-SDK floor) and why others are skipped."""
    wanted = [s.strip() for s in sdks_arg.split(",") if s.strip()]
    skipped: list[str] = []
    sdks: list[str] = []
    for name in wanted:
        if venv_python(name).exists():
            sdks.append(name)
        else:
            skipped.append(
                f"{name}: no venv at {venv_python(name).parent.parent} "
                f"(run `bash benchmarks/setup_peers.sh {name}`)"
            )
    if not no_floor and "null" not in sdks:
        sdks.append("null")
    return sdks, skipped


def _runs_phase(sdk: str, phase: str) -> bool:
    """Whether ``sdk`` runs ``phase`` (the floor only delivers; some phases are ours only)."""
    if sdk == "null" and phase != "delivery":
        return False
    return not (phase in SUSTAINED and SUSTAINED[phase][2] and not sdk.startswith("ours"))


class _Bench:
    """One benchmark run against a started sink: its settings and what it collects."""

    def __init__(
        self, args: argparse.Namespace, sdk_cpu: int, sink_cpu: int, port: int, sdks: list[str]
    ) -> None:
        self.args = args
        self.sdk_cpu = sdk_cpu
        self.sink_cpu = sink_cpu
        self.port = port
        self.runs: dict[str, list[dict[str, Any]]] = {s: [] for s in sdks}
        self.failures: list[str] = []
        self.sdk_meta: dict[str, dict[str, Any]] = {}
        self.capacities: list[dict[str, Any]] = []

    def probe_capacity(self) -> None:
        """Measure the sink's capacity once and keep the result."""
        args = self.args
        cap = measure_capacity(self.port, self.sdk_cpu, args.capacity_seconds, args.nice)
        if cap:
            self.capacities.append(cap)
            log(f"sink capacity: {cap['events_per_s']:,.0f} events/s ({cap.get('pinned')})")

    def run(self, sdks: list[str], phases: list[str]) -> None:
        """Capacity probe, every repetition of every SDK's phases, capacity probe again."""
        self.probe_capacity()
        for rep in range(self.args.repeat):
            for sdk in sdks:
                result: dict[str, Any] = {}
                for phase in phases:
                    if not _runs_phase(sdk, phase):
                        continue
                    res = self.run_phase(rep, sdk, phase)
                    if res is not None:
                        result[phase] = res
                self.runs[sdk].append(result)
        self.probe_capacity()

    def driver_cmd(self, sdk: str, phase: str) -> list[str]:
        """The driver's command line for one phase of one SDK."""
        args = self.args
        cmd = [str(venv_python(sdk)), str(DRIVER), "--sdk", adapter_for(sdk)]
        events = args.events
        if phase in SUSTAINED:
            queue, cpus, _ = SUSTAINED[phase]
            events = args.sustained_events
            cmd += ["--phase", "sustained", "--queue", queue]
            if cpus and self.sink_cpu >= 0:
                cmd += ["--cpus", f"{self.sdk_cpu},{self.sink_cpu}"]
        else:
            cmd += ["--phase", phase]
        cmd += ["--port", str(self.port), "--cpu", str(self.sdk_cpu)]
        cmd += ["--events", str(events), "--timeout", str(args.timeout)]
        cmd += ["--nice", str(args.nice)]
        return cmd

    def run_phase(self, rep: int, sdk: str, phase: str) -> dict[str, Any] | None:
        """Run one phase in a fresh driver process; its result, or None when it failed."""
        tag = f"[{rep + 1}/{self.args.repeat}] {sdk} {phase}"
        t0 = time.monotonic()
        res, err = run_json(
            self.driver_cmd(sdk, phase), 3 * self.args.timeout + 300, prefix="RESULT "
        )
        took = time.monotonic() - t0
        if err:
            self.failures.append(f"{sdk} {phase} (repeat {rep + 1}): {err}")
            log(f"{tag}: FAILED {err}")
            return None
        self.remember_meta(sdk, phase, res)
        log(f"{tag}: {took:.1f}s {_brief(res)}")
        return res

    def remember_meta(self, sdk: str, phase: str, res: dict[str, Any]) -> None:
        """Keep the SDK's version, python and settings reported by a phase."""
        meta = self.sdk_meta.setdefault(sdk, {})
        meta.update(version=res.get("version"), python=res.get("python"))
        if phase == "delivery":
            meta["settings"] = res.get("settings")
        if phase == "memory":
            meta["down_settings"] = res.get("settings")

    def info(self, pinning: str, load_start: str, skipped: list[str]) -> dict[str, Any]:
        """What was run, for the notes and the raw JSON."""
        args, capacities = self.args, self.capacities
        runs = self.runs
        verified = sum(
            r.get("delivery", {}).get("sink_verified", 0) for rs in runs.values() for r in rs
        )
        mismatches = sum(
            r.get("delivery", {}).get("sink_mismatches", 0) for rs in runs.values() for r in rs
        )
        return {
            "events": args.events,
            "sustained_events": args.sustained_events,
            "sdk_cpu": self.sdk_cpu,
            "repeat": args.repeat,
            "pinning": pinning,
            "nice": args.nice,
            "capacity_events_per_s": min(c["events_per_s"] for c in capacities)
            if capacities
            else math.nan,
            "capacity_per_cpu_s": min(
                c.get("events_per_sink_cpu_s") or math.nan for c in capacities
            )
            if capacities
            else math.nan,
            "load": f"{load_start} at the start, {_loadavg()} at the end",
            "capacity_runs": len(capacities),
            "verified": verified,
            "mismatches": mismatches,
            "sdk_meta": self.sdk_meta,
            "skipped": skipped,
            "failures": self.failures,
        }


def _report(
    argv: list[str] | None,
    started: float,
    sdks: list[str],
    medians: dict[str, dict[str, float]],
    info: dict[str, Any],
) -> str:
    """The whole markdown page: heading, table and notes."""
    table = render(sdks, medians, info)
    body = notes(sdks, medians, info)
    when = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    machine = f"{platform.system()} {platform.machine()}, {os.cpu_count()} cpus, {_cpu_model()}"
    elapsed = time.monotonic() - started
    given = argv if argv is not None else sys.argv[1:]
    command = "python benchmarks/sdk_bench.py " + " ".join(given)
    return (
        f"# SDK benchmark results\n\n`{command.strip()}` — {when}, {machine}, "
        f"took {elapsed:.0f}s.\n\n{table}\n\n{body}\n"
    )


def _write_outputs(results: str, text: str, info: dict[str, Any], runs: dict[str, Any]) -> None:
    """Write the markdown page and the raw JSON of the run."""
    Path(results).write_text(text, encoding="utf-8")
    VENVS.mkdir(exist_ok=True)
    RAW_JSON.write_text(json.dumps({"info": info, "runs": runs}, indent=1, default=str))
    log(f"wrote {results} and {RAW_JSON}")


def main(argv: list[str] | None = None) -> int:
    """Run everything; print and write the table."""
    args = parse_args(argv)
    started = time.monotonic()
    # SIGTERM unwinds like Ctrl-C, so the sink child is stopped by the `finally` below.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(143))
    phases = [p for p in args.phases.split(",") if p]
    sdk_cpu, sink_cpu, pinning = cpu_plan(args.no_pin)
    if sink_cpu >= 0:
        os.sched_setaffinity(0, {sink_cpu})  # keep the harness off the SDK's core

    sdks, skipped = _select_sdks(args.sdks, args.no_floor)
    for msg in skipped:
        log(f"skipping {msg}")

    sink = SinkProcess(sink_cpu, args.nice)
    load_start = _loadavg()
    log(f"sink on 127.0.0.1:{sink.port} ({sink.pinned}); {pinning}")
    bench = _Bench(args, sdk_cpu, sink_cpu, sink.port, sdks)
    try:
        bench.run(sdks, phases)
    finally:
        sink.stop()

    medians = {sdk: aggregate(r) for sdk, r in bench.runs.items() if r}
    info = bench.info(pinning, load_start, skipped)
    text = _report(argv, started, sdks, medians, info)
    print(text)
    _write_outputs(args.results, text, info, bench.runs)
    return 0 if not bench.failures else 1


def _brief(res: dict[str, Any]) -> str:
    keys = (
        "sustained_events_per_s",
        "dropped_pct",
        "total_s",
        "caller_mean_us",
        "caller_p99_us",
        "e2e_events_per_s",
        "cpu_ms_per_1000",
        "dropped",
        "bytes_per_event",
    )
    return " ".join(f"{k}={res[k]:.4g}" for k in keys if isinstance(res.get(k), (int, float)))


def _loadavg() -> str:
    try:
        with open("/proc/loadavg", encoding="ascii") as fh:
            return " ".join(fh.read().split()[:3])
    except OSError:
        return "?"


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown cpu"


if __name__ == "__main__":
    sys.exit(main())

"""An unattended soak of the lab as a user runs it (issue 16 item 7).

A fresh lab home; ``alphaloop serve`` started as a subprocess on a free loopback port; then
``alphaloop daily --date D`` run as a separate subprocess per trading day, one after the other
(as cron would), over ``--days`` consecutive trading days of the market (default: the embedded
synthetic market's last 60 trading days); a scraper thread GETs ``/metrics`` every few seconds
(``--scrape-every``, default a seeded uniform draw in 2-5 s) for the whole run.

Recorded: every daily run's exit status and its summary lines (a non-zero exit, an ``error:``
line or a ``failed:`` step is an error); every scrape's HTTP status (a non-200, a connection
failure or a body ``prometheus_client.parser.text_string_to_metric_families`` cannot parse is an
error); the serve process's memory over time (``VmRSS`` and ``VmHWM`` of ``/proc/<pid>/status``,
sampled at each scrape and at the end of each day); each daily process's peak RSS (GNU
``/usr/bin/time -f %M`` around it when that works, else polling ``psutil``/``/proc`` while it
runs; the summary names the method). ``resource.getrusage(RUSAGE_CHILDREN)`` is not used: its
``ru_maxrss`` is the largest child so far, not each day's.

At the end of every day (no daily running, the stores quiet) one more scrape is compared with
the stores: each account's equity gauge with the ledger's last committed equity, the orders,
fills and rejects totals with the ledger's orders and fills, the committed days per account,
the last committed day and the commit time and age, the pool's genomes by status with the gene
pool's genomes. The expected values are read with the stores' own readers
(:class:`arena.ledger.Ledger`, :class:`evolution.store.GenePoolStore`) by other methods than
the exporter uses (per-day orders and every fill rather than the ``days`` table's counts, the
genome list rather than ``status_counts``) and never through ``alphaloop.metrics`` or
``alphaloop.observe``. The last day's comparison is ``metrics_match_ledger``.

Run: ``python benchmarks/soak.py [--days 60] [--scrape-every 2-5] [--quick]``; progress goes
to stderr, the last stdout line is ``days=.. errors=.. scrapes=.. serve_rss_day10_mb=..
serve_rss_day60_mb=.. daily_peak_rss_day10_mb=.. daily_peak_rss_day60_mb=..
metrics_match_ledger=true|false seconds=..`` (the "day 10"/"day 60" figures are serve's
high-water mark at the end of that day and that day's own daily process's peak, or the last
day's in a shorter run). Exit status 1 on any error or
mismatch. ``tests/alphaloop/test_soak.py`` runs :func:`run_soak` over a few days.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from urllib.error import HTTPError, URLError
from urllib.request import urlopen

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

__all__ = [
    "DayRecord",
    "ScrapeRecord",
    "SoakResult",
    "compare",
    "expected_from_stores",
    "observed_from_text",
    "pick_days",
    "run_soak",
    "summary_line",
]

GNU_TIME = "/usr/bin/time"


# --------------------------------------------------------------------------- records
@dataclass(slots=True)
class ScrapeRecord:
    """One GET of ``/metrics``: when, the HTTP status (0: no answer), whether it parsed."""

    at: float
    status: int
    parsed: bool
    families: int
    seconds: float
    error: str | None = None
    serve_rss_kb: int | None = None

    @property
    def ok(self) -> bool:
        return self.status == 200 and self.parsed and self.error is None


@dataclass(slots=True)
class DayRecord:
    """One ``alphaloop daily --date D`` process."""

    day: date
    returncode: int
    lines: list[str]
    stderr_tail: list[str]
    seconds: float
    peak_rss_kb: int | None
    serve_rss_kb: int | None = None
    serve_hwm_kb: int | None = None
    mismatches: list[str] = field(default_factory=list)

    @property
    def errors(self) -> list[str]:
        found = [] if self.returncode == 0 else [f"exit status {self.returncode}"]
        for line in [*self.lines, *self.stderr_tail]:
            text = line.strip()
            if text.startswith("error:") or ": failed:" in text:
                found.append(text)
        return found


@dataclass(slots=True)
class SoakResult:
    days: list[DayRecord]
    scrapes: list[ScrapeRecord]
    serve_samples: list[tuple[float, int, int]]  # (time, VmRSS kB, VmHWM kB)
    rss_method: str
    serve_errors: list[str]
    final_mismatches: list[str]
    seconds: float

    @property
    def errors(self) -> list[str]:
        out = [f"{d.day}: {e}" for d in self.days for e in d.errors]
        out += [f"scrape at {s.at:.1f}: {s.status} {s.error}" for s in self.scrapes if not s.ok]
        return out + self.serve_errors

    @property
    def metrics_match_ledger(self) -> bool:
        return not self.final_mismatches and bool(self.days)

    def serve_hwm_mb(self, day_number: int) -> float | None:
        """The serve process's VmHWM (MB) at the end of day ``day_number`` (1-based, capped)."""
        if not self.days:
            return None
        value = self.days[min(day_number, len(self.days)) - 1].serve_hwm_kb
        return None if value is None else value / 1024.0

    def daily_peak_mb(self, day_number: int) -> float | None:
        """Day ``day_number``'s own daily process's peak RSS (MB) (1-based, capped): each day
        is a new process, so a high-water mark over days would only repeat the first Friday."""
        if not self.days:
            return None
        value = self.days[min(day_number, len(self.days)) - 1].peak_rss_kb
        return None if value is None else value / 1024.0


# --------------------------------------------------------------------------- days
def pick_days(spec: str | None, n: int, start: date | None = None) -> list[date]:
    """Return ``n`` consecutive trading days of ``spec`` (from ``start``; default the last)."""
    from alphaloop.home import LabHome
    from arena.market import load_arena_data, trading_days

    with tempfile.TemporaryDirectory() as scratch:  # synthetic data writes nothing; a file may
        days = list(trading_days(load_arena_data(spec, LabHome(Path(scratch))).daily))
    usable = days[1:]  # the arena needs a bar before its first day
    if start is None:
        chosen = usable[-n:]
    else:
        chosen = [d for d in usable if d >= start][:n]
    if len(chosen) < n:
        raise SystemExit(f"error: --days {n}: the data has only {len(chosen)} days from there")
    return chosen


# --------------------------------------------------------------------------- memory
def proc_memory(pid: int) -> tuple[int, int] | None:
    """Return ``(VmRSS, VmHWM)`` in kB of a live process, ``None`` once it is gone."""
    try:
        text = Path(f"/proc/{pid}/status").read_text(encoding="ascii")
    except OSError:
        return None
    values: dict[str, int] = {}
    for line in text.splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0])
    if "VmRSS" not in values:
        return None
    return values["VmRSS"], values.get("VmHWM", values["VmRSS"])


def rss_method() -> str:
    """How daily processes' peak RSS is measured: ``gnu-time``, ``psutil`` or ``proc``."""
    if os.access(GNU_TIME, os.X_OK):
        with tempfile.NamedTemporaryFile("r", suffix=".rss") as out:
            probe = subprocess.run(
                [GNU_TIME, "-f", "%M", "-o", out.name, "true"], capture_output=True, check=False
            )
            if probe.returncode == 0 and Path(out.name).read_text().strip().isdigit():
                return "gnu-time"
    try:
        import psutil  # noqa: F401
    except ImportError:
        return "proc"
    return "psutil"


def _poll_peak(process: subprocess.Popen[str], method: str) -> Callable[[], int | None]:
    """Poll the peak RSS of ``process`` (and its children) while it runs; return a getter."""
    peak = [0]

    def tree_rss() -> int:
        if method == "psutil":
            import psutil

            try:
                parent = psutil.Process(process.pid)
                members = [parent, *parent.children(recursive=True)]
            except psutil.Error:
                return 0
            total = 0
            for member in members:
                try:
                    total += int(member.memory_info().rss) // 1024
                except psutil.Error:
                    pass
            return total
        found = proc_memory(process.pid)
        return 0 if found is None else found[1]

    def loop() -> None:
        while process.poll() is None:
            peak[0] = max(peak[0], tree_rss())
            time.sleep(0.2)

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()

    def result() -> int | None:
        thread.join(timeout=5)
        return peak[0] or None

    return result


# --------------------------------------------------------------------------- processes
def _cli() -> list[str]:
    return [sys.executable, "-m", "alphaloop.cli"]


def _env() -> dict[str, str]:
    env = dict(os.environ)
    # The children import this checkout, whatever the caller's working folder.
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [env.get("PYTHONPATH")])])
    return env


def start_serve(home: Path, log: Path) -> tuple[subprocess.Popen[str], str]:
    """Start ``alphaloop serve --port 0`` on ``home``; return it and its base URL."""
    err = log.open("w", encoding="utf-8")
    process = subprocess.Popen(
        [*_cli(), "--home", str(home), "serve", "--port", "0"],
        stdout=subprocess.PIPE, stderr=err, text=True, env=_env(), cwd=ROOT,
    )  # fmt: skip
    err.close()
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line.startswith("serving: http://127.0.0.1:"):
        process.kill()
        process.wait()
        raise RuntimeError(f"serve did not start: {line!r} {log.read_text()[-2000:]}")
    return process, line.split()[1].rsplit("/", 1)[0]


def stop_serve(process: subprocess.Popen[str], timeout: float = 30.0) -> int:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return int(process.returncode)


def run_daily_process(
    home: Path, day: date, daily_args: Sequence[str], method: str, scratch: Path
) -> DayRecord:
    """Run one ``alphaloop daily --date D`` as its own process; return what it did."""
    command = [*_cli(), "--home", str(home), "daily", "--date", day.isoformat(), *daily_args]
    rss_file = scratch / f"rss-{day.isoformat()}.txt"
    if method == "gnu-time":
        command = [GNU_TIME, "-f", "%M", "-o", str(rss_file), *command]
    started = time.monotonic()
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env(), cwd=ROOT
    )
    peak = None if method == "gnu-time" else _poll_peak(process, method)
    out, err = process.communicate()
    seconds = time.monotonic() - started
    if method == "gnu-time":
        text = rss_file.read_text().strip().splitlines() if rss_file.is_file() else []
        # GNU time writes "Command exited with non-zero status N" before the figure.
        peak_kb = int(text[-1]) if text and text[-1].strip().isdigit() else None
    else:
        assert peak is not None
        peak_kb = peak()
    stderr_lines = [ln for ln in err.splitlines() if ln.strip()]
    return DayRecord(
        day=day, returncode=process.returncode, lines=out.splitlines(),
        stderr_tail=stderr_lines[-20:], seconds=seconds, peak_rss_kb=peak_kb,
    )  # fmt: skip


# --------------------------------------------------------------------------- scraping
def scrape(base: str, timeout: float = 30.0) -> tuple[ScrapeRecord, str | None]:
    """GET ``base/metrics`` once and parse it whole; return the record and the text."""
    from prometheus_client.parser import text_string_to_metric_families

    started = time.monotonic()
    at = time.time()
    status, text, error = 0, None, None
    try:
        with urlopen(f"{base}/metrics", timeout=timeout) as response:
            status = int(response.status)
            text = response.read().decode("utf-8")
    except HTTPError as exc:
        status, error = int(exc.code), f"HTTP {exc.code}"
    except (URLError, OSError) as exc:
        error = f"{type(exc).__name__}: {exc}"
    families, parsed = 0, False
    if text is not None:
        try:
            families = len(list(text_string_to_metric_families(text)))
            parsed = True
        except Exception as exc:  # a parse failure is an error of the soak, recorded
            error = f"parse: {type(exc).__name__}: {exc}"
    record = ScrapeRecord(at, status, parsed, families, time.monotonic() - started, error)
    return record, text


class Scraper(threading.Thread):
    """GETs ``/metrics`` every ``every`` seconds (a ``(lo, hi)`` uniform draw) until stopped."""

    def __init__(self, base: str, pid: int, every: tuple[float, float], seed: int = 0) -> None:
        super().__init__(daemon=True, name="soak-scraper")
        self.base, self.pid, self.every = base, pid, every
        self.records: list[ScrapeRecord] = []
        self.samples: list[tuple[float, int, int]] = []
        self._stop_event = threading.Event()
        self._draw = random.Random(seed)
        self._lock = threading.Lock()

    def sample_memory(self) -> tuple[int, int] | None:
        found = proc_memory(self.pid)
        if found is not None:
            with self._lock:
                self.samples.append((time.time(), *found))
        return found

    def run(self) -> None:
        while not self._stop_event.is_set():
            record, _ = scrape(self.base)
            memory = self.sample_memory()
            record.serve_rss_kb = None if memory is None else memory[0]
            with self._lock:
                self.records.append(record)
            lo, hi = self.every
            self._stop_event.wait(lo if hi <= lo else self._draw.uniform(lo, hi))

    def stop(self) -> None:
        self._stop_event.set()
        self.join(timeout=60)


# --------------------------------------------------------------------------- the check
def _midnight(day: date) -> float:
    return datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp()


def _utc(text: str) -> float:
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def expected_from_stores(home: Path) -> dict[str, Any]:
    """What the exporter should say of ``home``, read from the stores (not ``alphaloop.metrics``).

    Per account: the last committed equity (``equity_history``), the committed days, the
    orders of those days (``Ledger.orders`` day by day) and their rejected ones, every fill
    (``Ledger.fills``); the latest committed day and commit time; the gene pool's genomes by
    status (``GenePoolStore.list_genomes``).
    """
    from alphaloop.home import LabHome
    from arena.ledger import Ledger
    from evolution.store import GenePoolStore

    lab = LabHome(home)
    accounts: dict[str, dict[str, Any]] = {}
    with Ledger(lab.ledger_db) as ledger:
        last_day = ledger.last_committed_day()
        commit_times = [str(r["committed_at"]) for r in ledger.table_rows("days")]
        for name in ledger.accounts():
            history = ledger.equity_history(name)
            if not history:
                continue
            days = ledger.committed_days(name)
            orders = [order for day in days for order in ledger.orders(name, day)]
            accounts[name] = {
                "equity": history[-1][1].equity / 10.0 ** ledger.money_digits(name),
                "days": len(days),
                "last_day": _midnight(history[-1][0]),
                "orders": len(orders),
                "fills": len(ledger.fills(name)),
                "rejects": sum(order.status == "rejected" for order in orders),
            }
    pool: Counter[str] = Counter()
    if lab.gene_pool_db.is_file():
        with GenePoolStore(lab.gene_pool_db) as store:
            pool.update(str(row["status"]) for row in store.list_genomes())
    return {
        "accounts": accounts,
        "last_day": None if last_day is None else _midnight(last_day),
        "last_commit": max((_utc(t) for t in commit_times), default=None),
        "pool": dict(pool),
    }


def observed_from_text(text: str) -> dict[str, Any]:
    """The exporter's figures in one exposition text (parsed by ``prometheus_client``)."""
    from prometheus_client.parser import text_string_to_metric_families

    samples: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            key = tuple(sorted(sample.labels.items()))
            samples.setdefault(sample.name, {})[key] = float(sample.value)

    def by(name: str, label: str) -> dict[str, float]:
        return {dict(k)[label]: v for k, v in samples.get(name, {}).items()}

    def single(name: str) -> float | None:
        values = list(samples.get(name, {}).values())
        return values[0] if len(values) == 1 else None

    names = set(by("alphaloop_account_equity", "account"))
    figures = {
        "equity": "alphaloop_account_equity",
        "days": "alphaloop_account_days_total",
        "last_day": "alphaloop_account_last_day_timestamp_seconds",
        "orders": "alphaloop_orders_total",
        "fills": "alphaloop_fills_total",
        "rejects": "alphaloop_order_rejects_total",
    }
    columns = {key: by(metric, "account") for key, metric in figures.items()}
    return {
        "up": single("alphaloop_up"),
        "accounts": {
            name: {key: column.get(name) for key, column in columns.items()} for name in names
        },
        "last_day": single("alphaloop_last_committed_day_timestamp_seconds"),
        "last_commit": single("alphaloop_last_commit_timestamp_seconds"),
        "age": single("alphaloop_last_commit_age_seconds"),
        "pool": by("alphaloop_pool_genomes", "status"),
    }


def compare(
    expected: dict[str, Any], observed: dict[str, Any], *, scraped_at: tuple[float, float]
) -> list[str]:
    """Return every difference between the stores' and the exporter's figures (none: match).

    ``scraped_at`` is the ``(before, after)`` wall-clock interval of the scrape: the commit age
    must lie between ``before - commit`` and ``after - commit`` (1 s slack for rounding).
    """
    out: list[str] = []
    if observed["up"] != 1.0:
        out.append(f"alphaloop_up is {observed['up']}, not 1")
    want, got = expected["accounts"], observed["accounts"]
    if set(want) != set(got):
        out.append(f"accounts: ledger {sorted(want)}, metrics {sorted(got)}")
    for name in sorted(set(want) & set(got)):
        for key, value in want[name].items():
            seen = got[name].get(key)
            if key == "equity":
                same = seen is not None and math.isclose(seen, value, rel_tol=1e-12, abs_tol=1e-9)
            else:
                same = seen == float(value)
            if not same:
                out.append(f"{name} {key}: ledger {value}, metrics {seen}")
    if observed["last_day"] != expected["last_day"]:
        out.append(f"last committed day: ledger {expected['last_day']}, metrics "
                   f"{observed['last_day']}")  # fmt: skip
    commit = expected["last_commit"]
    seen_commit = observed["last_commit"]
    if commit is None or seen_commit is None or not math.isclose(seen_commit, commit, abs_tol=1e-3):
        out.append(f"last commit time: ledger {commit}, metrics {seen_commit}")
    elif observed["age"] is None or not (
        scraped_at[0] - commit - 1.0 <= observed["age"] <= scraped_at[1] - commit + 1.0
    ):
        out.append(
            f"last commit age: metrics {observed['age']}, expected "
            f"{scraped_at[0] - commit:.1f}..{scraped_at[1] - commit:.1f} s"
        )
    pool_seen = {status: n for status, n in observed["pool"].items() if n}
    pool_want = {status: float(n) for status, n in expected["pool"].items() if n}
    if pool_seen != pool_want:
        out.append(f"pool by status: gene pool {pool_want}, metrics {pool_seen}")
    return out


def check_now(base: str, home: Path, against: Path | None = None) -> tuple[list[str], str | None]:
    """Scrape once and compare with the stores of ``against`` (default ``home``)."""
    before = time.time()
    record, text = scrape(base)
    after = time.time()
    if not record.ok or text is None:
        return [f"final scrape failed: {record.status} {record.error}"], text
    expected = expected_from_stores(against or home)
    return compare(expected, observed_from_text(text), scraped_at=(before, after)), text


# --------------------------------------------------------------------------- the soak
def run_soak(
    home: Path,
    days: Sequence[date],
    *,
    daily_args: Sequence[str] = (),
    scrape_every: tuple[float, float] = (2.0, 5.0),
    seed: int = 0,
    progress: Callable[[str], None] | None = None,
    on_day: Callable[[DayRecord, str], None] | None = None,
) -> SoakResult:
    """Run the soak on the fresh home ``home`` (a folder that does not exist yet).

    ``daily_args`` are appended to each ``alphaloop daily --date D`` (``--local``, ``--data``,
    ``--config`` ...). ``on_day(record, base_url)`` is called after each day's check, while
    serve still runs.
    """
    if home.exists() and any(home.iterdir()):
        raise ValueError(f"{home}: not a fresh lab home (the folder has files)")
    say = progress or (lambda text: None)
    started = time.monotonic()
    method = rss_method()
    scratch = Path(tempfile.mkdtemp(prefix="soak-"))
    serve, base = start_serve(home, scratch / "serve.log")
    say(f"soak: serve pid {serve.pid} at {base}; {len(days)} days; daily RSS by {method}")
    scraper = Scraper(base, serve.pid, scrape_every, seed)
    scraper.start()
    records: list[DayRecord] = []
    serve_errors: list[str] = []
    final: list[str] = ["no day ran"]
    try:
        for number, day in enumerate(days, 1):
            record = run_daily_process(home, day, daily_args, method, scratch)
            memory = scraper.sample_memory()
            if memory is None or serve.poll() is not None:
                serve_errors.append(f"serve is gone after {day} (status {serve.poll()})")
            else:
                record.serve_rss_kb, record.serve_hwm_kb = memory
            record.mismatches, _ = check_now(base, home)
            final = record.mismatches
            records.append(record)
            rss = "?" if record.peak_rss_kb is None else f"{record.peak_rss_kb / 1024:.0f}"
            serve_mb = "?" if memory is None else f"{memory[0] / 1024:.0f}/{memory[1] / 1024:.0f}"
            say(
                f"day {number}/{len(days)} {day} exit {record.returncode} "
                f"{record.seconds:.1f}s daily_peak {rss} MB serve rss/hwm {serve_mb} MB "
                f"scrapes {len(scraper.records)} "
                f"errors {len(record.errors)} mismatches {len(record.mismatches)}"
            )
            for line in record.errors + record.mismatches:
                say(f"  {line}")
            if on_day is not None:
                on_day(record, base)
    finally:
        scraper.stop()
        status = stop_serve(serve)
        log = (scratch / "serve.log").read_text(encoding="utf-8", errors="replace")
        if status != 0:
            serve_errors.append(f"serve ended with status {status}: {log[-500:]}")
        if "Traceback" in log:
            serve_errors.append(f"serve logged a traceback: {log[-1000:]}")
        shutil.rmtree(scratch, ignore_errors=True)
    return SoakResult(
        days=records, scrapes=scraper.records, serve_samples=scraper.samples, rss_method=method,
        serve_errors=serve_errors, final_mismatches=final, seconds=time.monotonic() - started,
    )  # fmt: skip


def _mb(value: float | None) -> str:
    return "na" if value is None else f"{value:.1f}"


def summary_line(result: SoakResult) -> str:
    return (
        f"days={len(result.days)} errors={len(result.errors)} scrapes={len(result.scrapes)} "
        f"serve_rss_day10_mb={_mb(result.serve_hwm_mb(10))} "
        f"serve_rss_day60_mb={_mb(result.serve_hwm_mb(60))} "
        f"daily_peak_rss_day10_mb={_mb(result.daily_peak_mb(10))} "
        f"daily_peak_rss_day60_mb={_mb(result.daily_peak_mb(60))} "
        f"metrics_match_ledger={'true' if result.metrics_match_ledger else 'false'} "
        f"seconds={result.seconds:.0f}"
    )


def _interval(text: str) -> tuple[float, float]:
    lo, _, hi = text.partition("-")
    try:
        pair = (float(lo), float(hi or lo))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected SECONDS or LO-HI") from None
    if not 0 < pair[0] <= pair[1]:
        raise argparse.ArgumentTypeError(f"{text!r}: expected 0 < LO <= HI")
    return pair


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--days", type=int, default=60, help="trading days (default 60)")
    parser.add_argument("--quick", action="store_true", help="5 days (one Friday)")
    add = parser.add_argument
    add("--scrape-every", type=_interval, default=(2.0, 5.0), help="S or LO-HI seconds (2-5)")
    add("--start", type=date.fromisoformat, default=None, help="first day (default: the last)")
    add("--data", default=None, help="--data of daily (default: the embedded synthetic market)")
    add("--ray", action="store_true", help="daily without --local (a private Ray per day)")
    add("--no-mlflow", action="store_true", help="daily --no-mlflow")
    add("--home", type=Path, default=None, help="a fresh home to use and keep (default: temp)")
    parser.add_argument("--json", type=Path, default=None, help="write per-day records here")
    args = parser.parse_args(argv)
    n = 5 if args.quick else args.days
    days = pick_days(args.data, n, args.start)
    daily_args = [] if args.ray else ["--local"]
    if args.data:
        daily_args += ["--data", args.data]
    if args.no_mlflow:
        daily_args.append("--no-mlflow")

    def say(text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    temporary = None
    home = args.home
    if home is None:
        temporary = tempfile.mkdtemp(prefix="soak-home-")
        home = Path(temporary) / "home"
    say(f"soak: home {home}; days {days[0]}..{days[-1]}; daily args {daily_args}")
    try:
        result = run_soak(
            home, days, daily_args=daily_args, scrape_every=args.scrape_every, progress=say
        )
    finally:
        if temporary is not None:
            shutil.rmtree(temporary, ignore_errors=True)
    for error in result.errors:
        say(f"error: {error}")
    for mismatch in result.final_mismatches:
        say(f"mismatch: {mismatch}")
    if args.json is not None:
        args.json.write_text(
            json.dumps(
                {
                    "rss_method": result.rss_method,
                    "days": [
                        {
                            "day": d.day.isoformat(),
                            "returncode": d.returncode,
                            "seconds": d.seconds,
                            "peak_rss_kb": d.peak_rss_kb,
                            "serve_rss_kb": d.serve_rss_kb,
                            "serve_hwm_kb": d.serve_hwm_kb,
                            "lines": d.lines,
                            "errors": d.errors,
                            "mismatches": d.mismatches,
                        }
                        for d in result.days
                    ],
                    "scrapes": [
                        {
                            "at": s.at,
                            "status": s.status,
                            "ok": s.ok,
                            "seconds": s.seconds,
                            "serve_rss_kb": s.serve_rss_kb,
                        }
                        for s in result.scrapes
                    ],
                    "errors": result.errors,
                },
                indent=1,
            ),
            encoding="utf-8",
        )
    say(f"soak: daily RSS measured by {result.rss_method}")
    print(summary_line(result), flush=True)
    return 0 if not result.errors and result.metrics_match_ledger else 1


if __name__ == "__main__":
    raise SystemExit(main())

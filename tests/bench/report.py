"""Write docs/benchmarks.md from pytest-benchmark's JSON (./dev bench calls this).

python tests/bench/report.py var/bench.json docs/benchmarks.md
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

# module -> (section title, what it measures and the goal)
SECTIONS: dict[str, tuple[str, str]] = {
    "test_bench_engine": (
        "Rule engine: quote latency",
        "A 50-line basket against an indexed rule set (DESIGN §9: p99 <= 1 ms on CPython; "
        "MicroPython within 5x).  `matching_rules` is how many rules the basket's SKUs and "
        "categories select: the cost follows it, not the size of the rule set.",
    ),
    "test_bench_outbox": (
        "Outbox: sign and durable commit",
        "One `Outbox.commit`: allocate seq, build the payload, Ed25519-sign, insert, update "
        "counters and the member delta, in one SQLite transaction with WAL and "
        "`synchronous=FULL` (an fsync per commit).  `sign_only` is the signature alone.",
    ),
    "test_bench_uplink": (
        "Uplink: draining a backlog after an outage",
        "10,000 records waiting in the outbox when the broker comes back, shipped by the "
        "uplink to a private Mosquitto.  The raw paho figure is plain QoS 1 publishing of "
        "messages of the same size with the same in-flight window, measured in the same run: "
        "the limit the uplink is up against.",
    ),
    "test_bench_reconciler": (
        "Head office: publish to ledger commit to ack",
        "30,000 sale records from 20 terminals through a private Mosquitto into "
        "`python -m cloud_broker serve`: screened (decoded, checked, Ed25519-verified) in a "
        "worker process, applied in batches, acknowledged.  `live`: the records are published "
        "while head office runs (the benchmark's publisher shares the two cores); `backlog`: "
        "head office comes back to all of them queued in the broker.  Timed from the first "
        "publish (live) or the restart (backlog) to the last device's ack.  The raw figure is "
        "a bare paho subscriber receiving the same messages in the same run (same mode).  The "
        "bound is CPU: see docs/ledger.md, Throughput.",
    ),
    "test_bench_console": (
        "Head office's console on a chain's ledger",
        "`member_search_and_page`: 1,000 searches as support agents type them (phones in "
        "Persian, Latin, +98 and 0098 forms, card ids, names being typed) and 1,000 member "
        "pages, on a ledger of 500,000 members and 5,000,000 sale records written by "
        "`tests/bench/ledger_gen.py`; `search_`/`page_p99_ms`: the club function the page "
        "calls; `server_*_p99_ms`: the whole request inside the console process (its "
        "Server-Timing header: session, query, rendering); `http_*_p99_ms`: as the client on "
        "the same machine saw it (goal: server time p99 <= 50 ms).  "
        "`reconciler_beside_a_busy_console`: 10,000 live sale records reconciled alone, then "
        "again while the console serves 8 support agents (a page every quarter second each) "
        "on the same ledger; `ratio` is the second rate over the first (goal >= 0.9).",
    ),
    "test_bench_programme": (
        "The programme's preview",
        "20 sample baskets quoted for a member under the programme in force and under a "
        "draft, then the draft's 30-day estimate (2,000 sampled sales re-quoted and scaled "
        "up), on a ledger of 1,000,000 sales in the last 30 days written by "
        "`tests/bench/ledger_gen.py --days 30`; the functions the console's preview page "
        "calls, timed inside head office (goal: total <= 2 s).",
    ),
    "test_bench_messages": (
        "Messages to members",
        "`planning_a_campaign_to_a_million_members`: a campaign to every member of a ledger of "
        "1,000,000 members (90% with phone numbers): counted and priced, then planned (the "
        "audience fixed and a cursor set; rows are fed behind it as the sender drains them), "
        "next to queueing every row in one statement (goal: plan <= 10 s).  "
        "`sender_throughput_next_to_the_gateway`: 3,000 campaign messages through the sender "
        "(claim, the rules, the template, the Kavenegar adapter, the result written back) to "
        "the local fake of Kavenegar's API answering at once, next to the adapter alone sending "
        "to the same fake one message after another in the same run.",
    ),
    "test_bench_reports": (
        "Reports",
        "`report_pages_and_the_nightly_refresh`: on the console's generated ledger (500,000 "
        "members, 5,000,000 sales over a year, 30% anonymous, seasonal days, drifters), the "
        "nightly RFM and BG/NBD + Gamma-Gamma refresh of every member who bought (goal <= 300 "
        "s), then each report page 60 times over HTTP as marketing, the console's own time "
        "(Server-Timing) p99 and p50: this Jalali month and the last year, by day, week and "
        "month, by store, product group and SKU, one store's dairy, the key figures, the "
        "segments, a year's CSV (goal: every page p99 <= 200 ms).  "
        "`reconciler_with_and_without_the_daily_tables`: 2,000 sales of one to four lines from "
        "20 terminals, ten rounds of the 20 applied as one batch of 200 (the reconciler "
        "service's batches under load go up to 1,000), with the reports' tables kept and with "
        "none (three alternating runs each, the best of each) (goal: ratio >= 0.9).",
    ),
    "test_bench_api": (
        "The public API",
        "`member_lookup_through_the_api`: 1,000 lookups by phone (0912... form) of random "
        "members of the console's generated ledger (500,000 members) through the API process "
        "with a key, after 100 to warm up: the API's own time (Server-Timing) and the round "
        "trip, p99 and p50 (goal: p99 <= 20 ms).  `webhook_deliveries_a_second`: 2,000 queued "
        "deliveries to a local receiver (claim, sign, POST, record), next to posting the "
        "same bodies to it with the same client, in the same run.",
    ),
    "test_bench_tax": (
        "Tax invoices",
        "`invoices_built_signed_and_encrypted_a_second`: 300 invoices of one to six lines "
        "from records (the VAT split, the tax id, the packet), each signed (JWS RS256 with "
        "x5c) and encrypted (JWE RSA-OAEP-256 + A256GCM), next to the raw RSA work alone for "
        "the same sizes (an RS256 signature, an RSA-OAEP-256 key wrap, AES-GCM) in the same run.",
    ),
    "test_bench_checkout": (
        "Terminal agent: checkout, memory, start-up",
        "`checkout_critical_path`: open a 12-line basket, identify by phone, pay: quote, "
        "payment intent, the charge by an in-process bank terminal that approves at once, "
        "sign and durably commit the sale record (DESIGN §9 goal p99 <= 10 ms).  "
        "`agent_memory`: resident memory (VmRSS) of "
        "`python -m edge run` before and after 10,000 checkouts through the POS API, each "
        "identified and paid through the simulated ZVT terminal on a pseudo-terminal "
        "(goal <= 40 MB; the agent signs and verifies Ed25519 with the OpenSSL CPython loads "
        "for hashlib and ssl, edge.protocol.ed25519, not cryptography's Rust extension, a "
        "second OpenSSL of about 8 MB).  `agent_startup`: from the command to the POS API "
        "answering.",
    ),
    "test_bench_blackout": (
        "The national outage: many stores come back at once",
        "`blackout`: 200 terminals in 50 stores (four a store), each with a three-day backlog "
        "(300 sales a day, 180,000 records in all), run as the real uplink in five processes "
        "(four of 50 terminals and one alone, whose peak memory is a terminal's) behind one "
        "1 Mbit/s, 40 ms link per store, reconnecting at random moments within `spread` "
        "seconds, into `python -m cloud_broker serve`.  Timed from the first terminal's start "
        "to every record acknowledged; `publishes_per_record` counts every publish of every "
        "terminal (goal: duplicates <= 5 %).  `burst`: all back within 10 s, so a queue "
        "builds at head office as when thousands of stores return; `ignore-progress`: the "
        "same with terminals that do not follow head office's progress heartbeat.  "
        "`broker_restart`: 50 terminals selling twice a second each through a broker "
        "restart (3 s down, store kept); time from head office's first ack after the "
        "restart, and from the broker's start, to every sale made before the selling "
        "stopped acknowledged (goal: <= 2 s from head office back).",
    ),
    "test_bench_retention": (
        "The terminal over a year",
        "A busy till (840 sales a day, half of them members, one in a hundred refunded) "
        "through the real checkout with a simulated wall clock for 365 days; head office "
        "acknowledges each day's records that night and the retention job runs at midnight "
        "with a 30-day refund window.  Sizes are the database and its WAL; 'without "
        "retention' is the first 30 days' growth kept for a year.",
    ),
    "test_bench_archive": (
        "Ledger months",
        "30,000 sales from 20 terminals over three months of head office's clock, applied "
        "by the reconciler; the ledger is given schema 17's shape and migrated (on "
        "PostgreSQL: the four large tables rebuilt as monthly partitions), then the first "
        "month is archived (the timed part: file written and read back, rows forgotten), "
        "its file verified with every signature, and `ledger check` run.",
    ),
    "test_bench_devices": (
        "Devices through a pseudo-terminal",
        "Card tap to UID for the PN532 (115200 baud) and the RDM6300 (9600 baud), and a "
        "complete approved ZVT authorisation over serial framing with a terminal that "
        "answers at once: the drivers' and protocols' own overhead.",
    ),
}


def _machine() -> list[str]:
    cpu = "unknown"
    try:
        for ln in Path("/proc/cpuinfo").read_text().splitlines():
            if ln.startswith("model name"):
                cpu = ln.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = "unknown"
    try:
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f"{kb / 1024 / 1024:.1f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    mp = "not found"
    mp_bin = Path(sys.executable).parent / "micropython"
    if mp_bin.exists():
        res = subprocess.run(
            [str(mp_bin), "-c", "import sys; print(sys.version)"],
            capture_output=True,
            text=True,
            check=False,
        )
        mp = res.stdout.strip() or mp
    return [
        f"- CPU: {cpu} ({os.cpu_count()} logical cores)",
        f"- Memory: {mem}",
        f"- OS: {platform.platform()}",
        f"- CPython: {platform.python_version()}",
        f"- MicroPython: {mp}",
    ]


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:,.1f}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def _kept_sections(dst: Path, run: set[str]) -> list[tuple[str, list[str]]]:
    """The sections of the previous file whose benchmarks were not run this time (a run
    with ``-k`` must not erase what it did not measure), each marked with its run date."""
    if not dst.exists():
        return []
    text = dst.read_text().split("\n")
    when = next((ln.removeprefix("Run: ") for ln in text if ln.startswith("Run: ")), "?")
    cpu = next((ln.removeprefix("- CPU: ") for ln in text if ln.startswith("- CPU: ")), "")
    if cpu:
        when += f", on {cpu}"  # a re-run may be on another machine: say which one this was
    by_title = {title: module for module, (title, _) in SECTIONS.items()}
    out: list[tuple[str, list[str]]] = []
    current: tuple[str, list[str]] | None = None
    for ln in text:
        if ln.startswith("## "):
            title = ln[3:].strip()
            module = by_title.get(title, title)
            current = None if module in run else (module, [ln])
            if current is not None:
                out.append(current)
        elif current is not None:
            current[1].append(ln)
    for _module, lines in out:
        if not any(x.startswith("_Measured in an earlier run") for x in lines):
            lines.insert(1, f"\n_Measured in an earlier run ({when}); not re-run this time._")
    return out


def main(src: str, dst: str) -> None:
    data = json.loads(Path(src).read_text())
    groups: dict[str, list[dict[str, Any]]] = {}
    for b in data["benchmarks"]:
        module = b["fullname"].split("::")[0].rsplit("/", 1)[-1].removesuffix(".py")
        groups.setdefault(module, []).append(b)
    kept = _kept_sections(Path(dst), set(groups))
    out = [
        "# Benchmarks",
        "",
        "Written by `./dev bench` (pytest-benchmark); do not edit by hand.  Figures are from",
        "one run on the machine below; shared machines are noisy, so read p99 as an order of",
        "magnitude and compare figures measured in the same run.  A run of some benchmarks",
        "only (`./dev bench -k ...`) keeps the other sections, marked with their run's date.",
        "",
        f"Run: {data.get('datetime', '?')}",
        "",
        *_machine(),
        "",
    ]
    for module, benches in groups.items():
        title, text = SECTIONS.get(module, (module, ""))
        out += [f"## {title}", "", text, ""] if text else [f"## {title}", ""]
        out += ["| benchmark | median | max | rounds | measured |", "|---|---:|---:|---:|---|"]
        for b in benches:
            st = b["stats"]
            extra = ", ".join(f"{k}={_fmt(v)}" for k, v in b.get("extra_info", {}).items())
            name = b["name"].removeprefix("test_")
            out.append(
                f"| {name} | {st['median'] * 1e6:,.0f} us | {st['max'] * 1e6:,.0f} us "
                f"| {st['rounds']:,} | {extra} |"
            )
        out.append("")
    for _, lines in kept:
        out += [*lines]
        if out[-1] != "":
            out.append("")
    Path(dst).write_text("\n".join(out))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])

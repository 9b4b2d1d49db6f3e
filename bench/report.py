"""docs/BENCHMARKS.md and its charts (docs/bench/*.svg), from one run's result files.

The prose lives in bench/BENCHMARKS.template.md; the tables and charts come from the JSON,
so ``bin/bench --write-docs`` regenerates everything that is measured.
"""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Callable
from html import escape
from pathlib import Path
from typing import Any

from bench.common import ROOT

DOC = ROOT / "docs" / "BENCHMARKS.md"
CHARTS = ROOT / "docs" / "bench"
TEMPLATE = Path(__file__).with_name("BENCHMARKS.template.md")


def load_run(out: Path, run_id: str) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    summary = json.loads((out / f"{run_id}.summary.json").read_text())
    results = {}
    for path in sorted(out.glob(f"{run_id}.*.json")):
        if path.name.endswith(".summary.json"):
            continue
        data = json.loads(path.read_text())
        results[data["benchmark"]] = data
    return summary, results


def fmt(value: Any, unit: str = "", digits: int = 1) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int | float):
        if abs(value) >= 1000:
            text = f"{value:,.0f}"
        elif abs(value) >= 100:
            text = f"{value:.0f}"
        else:
            text = f"{value:.{digits}f}" if value != int(value) or digits else f"{value}"
        return f"{text}{unit}"
    return str(value)


def met(result: dict[str, Any]) -> str:
    flags = result.get("target_met") or {}
    if not flags:
        return "n/a"
    return "<br>".join(f"{'✅' if ok else '❌'} {cell(name)}" for name, ok in flags.items())


def cell(text: str) -> str:
    """Text for a Markdown table cell."""
    return str(text).replace("|", "\\|").replace("\n", " ")


def rows(results: dict[str, dict[str, Any]]) -> list[tuple[str, str, str, str]]:
    """(#, measured, ratio, met) per benchmark that ran (a skipped one measured nothing)."""
    return [
        (key, *measured(results[key]), met(results[key]))
        for key, measured in _MEASURED.items()
        if key in results and not results[key].get("skipped")
    ]


def _b1(r: dict[str, Any]) -> tuple[str, str]:
    return (
        f"{fmt(r['median']['docs_per_s'])} docs/s, p95 {fmt(r['p95'], ' ms')}, "
        f"{r['errors']} errors; /healthz {fmt(r['baselines']['healthz_req_per_s'])} "
        "req/s",
        f"ingest / healthz = {fmt(r['ratios']['ingest_over_healthz'], '', 3)}",
    )


def _b2(r: dict[str, Any]) -> tuple[str, str]:
    return (
        f"{fmt(r['median']['docs_per_s'])} docs/s (raw ceiling "
        f"{fmt(r['baselines']['raw_ceiling']['docs_per_s'])} docs/s)",
        f"ingest / raw = {fmt(r['ratios']['ingest_over_raw'], '', 3)}; batch / single "
        f"= {fmt(r['ratios']['batch_over_single'], '', 2)}",
    )


def _b3(r: dict[str, Any]) -> tuple[str, str]:
    return (
        f"{fmt(r['median']['docs_per_s'], '', 2)} docs/s "
        f"({fmt(r['median']['mb_per_s'], ' MB/s', 2)}), p95 {fmt(r['p95'], ' ms')}, "
        f"web worker peak {fmt(r['peak_rss_mb'], ' MB')}",
        f"MB/s 2 MB / 20 KB = {fmt(r['ratios']['mb_s_2mb_over_20kb'], '', 2)}",
    )


def _b4(r: dict[str, Any]) -> tuple[str, str]:
    http = r["runs"][-1]["http_latency_ms"]
    parts = ", ".join(f"{name} {fmt(v['p95'], ' ms')}" for name, v in http.items())
    return (
        f"at {r['headline']['sessions']:,} sessions, HTTP p95: {parts}",
        f"deep / first = {fmt(r['ratios']['deep_over_first_http_p95'], '', 2)} (HTTP "
        f"p95), {fmt(r['ratios']['deep_over_first_inproc_p50'], '', 2)} (server p50); "
        f"OFFSET deep / first = {fmt(r['ratios']['offset_deep_over_first'], '', 1)}",
    )


def _b5(r: dict[str, Any]) -> tuple[str, str]:
    browser = r.get("browser") or {}
    dcl = (browser.get("dom_content_loaded_ms") or {}).get("p50")
    return (
        f"page p95 {fmt(r['p95'], ' ms')} warm, cold parse + window "
        f"{fmt(r['headline']['cold_ms'], ' ms')}; Chromium DOMContentLoaded "
        f"{fmt(dcl, ' ms')}, {fmt(browser.get('timeline_rows'))} rows",
        f"10k / 100 = {fmt(r['ratios']['large_over_small_warm_p95'], '', 2)} warm, "
        f"{fmt(r['ratios']['large_over_small_cold'], '', 1)} cold; whole render / paged "
        f"= {fmt(r['ratios']['whole_render_over_paged_render'], '', 0)}",
    )


def _b6(r: dict[str, Any]) -> tuple[str, str]:
    return (
        f"at {r['headline']['sessions']:,} sessions: full rebuild "
        f"{fmt(r['median']['full_rebuild_s'], ' s')}, incremental "
        f"{fmt(r['median']['incremental_s'], ' s', 2)}, one chart (30 d, rollups + "
        f"live edge) p95 {fmt(r['headline']['rollup_chart_p95_ms'], ' ms')}, the whole "
        f"overview (nine figures, 30 d) p95 {fmt(r['p95'], ' ms')}",
        f"full / incremental = {fmt(r['ratios']['full_over_incremental'], '', 1)}",
    )


def _b7(r: dict[str, Any]) -> tuple[str, str]:
    return (
        f"{fmt(r['median']['cleanup_s'], ' s')} for "
        f"{r['headline']['expired']:,} expired + {r['headline']['purged']:,} purged; "
        f"longest write lock {fmt(r['headline']['max_lock_ms'], ' ms')}",
        f"ingest p95 during / idle = {fmt(r['ratios']['p95_during_over_idle'], '', 2)}",
    )


def _pg(r: dict[str, Any]) -> tuple[str, str]:
    return (
        f"single {fmt(r['median']['docs_per_s'])} docs/s, p95 "
        f"{fmt(r['p95'], ' ms')}; batch {fmt(r['median']['batch_docs_per_s'])} docs/s; "
        f"/healthz {fmt(r['median']['healthz_req_per_s'])} req/s",
        f"ingest / healthz = {fmt(r['ratios']['ingest_over_healthz'], '', 3)}; "
        f"PostgreSQL / SQLite (single, same run) = "
        f"{fmt(r['ratios']['pg_over_sqlite_single'], '', 2)}; batch / single = "
        f"{fmt(r['ratios']['batch_over_single'], '', 2)}",
    )


def _b8(r: dict[str, Any]) -> tuple[str, str]:
    return (
        f"web worker {fmt(r['median']['web_worker_peak_mb'], ' MB')} under B3; "
        f"job process {fmt(r['median']['job_peak_mb'], ' MB')}",
        f"rollup RSS large / small N = {fmt(r['ratios']['rollup_rss_large_over_small'], '', 2)}",
    )


# What each benchmark measured and its ratio, in the order of the results table.
def _b9(r: dict[str, Any]) -> tuple[str, str]:
    h = r["headline"]
    cpu = r["median"]
    reads = ", ".join(
        f"v{version} {fmt(ms['store_get'], ' ms', 2)}" for version, ms in cpu["read_p50_ms"].items()
    )
    return (
        f"{h['saves']} saves up to {r['params']['messages']:,} messages: "
        f"{fmt(h['stored_bytes'] / 2**20, ' MB')} stored for a "
        f"{fmt(h['latest_bytes'] / 2**10, ' KB', 0)} latest version; save CPU "
        f"first {fmt(cpu['first_save_cpu_ms'], ' ms')}, "
        f"last {fmt(cpu['last_save_cpu_ms'], ' ms')}, "
        f"all {fmt(h['total_cpu_s'], ' s', 2)}; read back (p50) {reads}",
        f"stored / latest raw = {fmt(r['ratios']['stored_over_latest_raw'], '', 1)}; "
        f"last / first save CPU = {fmt(r['ratios']['last_over_first_save_cpu'], '', 1)}",
    )


def _b10(r: dict[str, Any]) -> tuple[str, str]:
    h = r["headline"]
    p95 = ", ".join(f"{name} {fmt(ms, ' ms')}" for name, ms in r["p95"].items())
    http = h["http_ratios"]
    return (
        f"at {h['sessions']:,} sessions, server p95: {p95}; index {fmt(h['index_mb'], ' MB')}",
        f"HTTP p95 / plain first page: miss {fmt(http['miss'], '', 2)}, hit "
        f"{fmt(http['hit'], '', 2)}; ingest CPU added {fmt(h['ingest_cpu_added'], '', 2)}, "
        f"with the index job's {fmt(h.get('ingest_cpu_added_with_job'), '', 2)} "
        f"(a growing session's saves: {fmt(h.get('growing_ingest_cpu_added'), '', 2)}, "
        f"{fmt(h.get('growing_ingest_cpu_added_with_job'), '', 2)})",
    )


def _b11(r: dict[str, Any]) -> tuple[str, str]:
    m = r["median"]
    per_cpu = [
        run["fold"]["spans_per_cpu_s"] for run in r["runs"] if "spans_per_cpu_s" in run["fold"]
    ]
    return (
        f"{fmt(m['otlp_spans_per_s'])} spans/s acknowledged ({fmt(m['otlp_sessions_per_s'])} "
        f"sessions/s), p95 {fmt(r['p95'], ' ms')} per export; fold "
        f"{fmt(m['fold_spans_per_s'])} spans/s"
        + (f" ({fmt(statistics.median(per_cpu))} per CPU second)" if per_cpu else "")
        + "; the same sessions as documents "
        f"{fmt(m['document_sessions_per_s'])} sessions/s ({fmt(m['document_spans_per_s'])} "
        "spans/s)",
        f"OTLP / documents (spans/s) = {fmt(r['ratios']['otlp_over_documents'], '', 2)}",
    )


def _b12(r: dict[str, Any]) -> tuple[str, str]:
    parts = [
        f"{backend}: median {fmt(point['median_s'], ' s', 2)}, p95 {fmt(point['p95_s'], ' s', 2)}, "
        f"max {fmt(point['max_s'], ' s', 2)} ({point['delivered']}/{point['saves']} delivered)"
        for backend, point in r["runs"].items()
    ]
    return "; ".join(parts), "-"


_MEASURED: dict[str, Callable[[dict[str, Any]], tuple[str, str]]] = {
    "B1": _b1,
    "B2": _b2,
    "B3": _b3,
    "B4": _b4,
    "B5": _b5,
    "B6": _b6,
    "B7": _b7,
    "PG": _pg,
    "B8": _b8,
    "B9": _b9,
    "B10": _b10,
    "B11": _b11,
    "B12": _b12,
}


def results_table(results: dict[str, dict[str, Any]]) -> str:
    lines = [
        "| # | target | measured | ratio | met |",
        "|---|---|---|---|---|",
    ]
    for key, measured, rel, ok in rows(results):
        target = cell(results[key]["target"])
        lines.append(f"| {key} | {target} | {measured} | {rel} | {ok} |")
    return "\n".join(lines)


def run_section(summary: dict[str, Any]) -> str:
    m = summary["machine"]
    git = summary["git"]
    scale = summary["scale"]
    return "\n".join(
        [
            f"- run `{summary['run_id']}`, finished {summary['finished_at']}, took "
            f"{summary['duration_s'] / 60:.1f} min{' (smoke)' if summary['smoke'] else ''}",
            f"- machine: {m['cpu_model']}, {m['cores']} cores, {m['memory_gb']} GB, Linux "
            f"{m['kernel']}, Python {m['python']}, SQLite {m['sqlite']}; load average at start "
            f"{m['load_avg_at_start']}",
            f"- code: commit `{git['commit'][:12]}`"
            + (" plus uncommitted changes" if git["dirty"] else ""),
            f"- scale: {scale['runs']} runs per benchmark; B4/B6 at "
            f"{', '.join(f'{n:,}' for n in scale['sessions'])} sessions; B5 "
            f"{scale['b5_messages']:,} messages; B7 {scale['b7_expired']:,} expired sessions",
            f"- failures: {summary['failures'] or 'none'}",
            *(
                f"- {', '.join(added)} from run `{extra}` (finished {info['finished_at']}, "
                f"{info['scale']['runs']} runs; load average at start "
                f"{info['machine']['load_avg_at_start']})"
                for extra, added, info in summary.get("extra_runs", [])
            ),
        ]
    )


# --- charts ------------------------------------------------------------------------------------


def hbar_svg(
    title: str, items: list[tuple[str, float | None, str]], *, log: bool = False, note: str = ""
) -> str:
    """A horizontal bar chart; bars on a log scale when ``log``."""
    width, label_w, bar_h, gap, top = 760, 290, 22, 8, 48
    height = top + len(items) * (bar_h + gap) + (40 if note else 20)
    values = [v for _, v, _ in items if v]
    high = max(values) if values else 1
    low = min(values) if values else 1

    def scale(v: float) -> float:
        span = width - label_w - 110
        if not log:
            return span * v / high
        lo = math.log10(min(low, 1))
        return span * (math.log10(v) - lo) / ((math.log10(high) - lo) or 1)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="13">',
        f'<rect width="{width}" height="{height}" fill="#ffffff"/>',
        f'<text x="12" y="26" font-size="16" font-weight="bold">{escape(title)}</text>',
    ]
    palette = ["#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1"]
    for i, (label, value, unit) in enumerate(items):
        y = top + i * (bar_h + gap)
        parts.append(
            f'<text x="{label_w - 8}" y="{y + 16}" text-anchor="end">{escape(label)}</text>'
        )
        if value:
            w = max(2.0, scale(value))
            parts.append(
                f'<rect x="{label_w}" y="{y}" width="{w:.1f}" height="{bar_h}" '
                f'fill="{palette[i % len(palette)]}"/>'
            )
            parts.append(
                f'<text x="{label_w + w + 6:.1f}" y="{y + 16}">{fmt(value)}{escape(unit)}</text>'
            )
        else:
            parts.append(f'<text x="{label_w + 4}" y="{y + 16}" fill="#888">n/a</text>')
    if note:
        parts.append(
            f'<text x="12" y="{height - 12}" fill="#555" font-size="11">{escape(note)}</text>'
        )
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def charts(results: dict[str, dict[str, Any]], run_id: str) -> list[tuple[str, str]]:
    out = []
    items = []
    if "B1" in results:
        r = results["B1"]
        items += [
            ("GET /healthz (floor), req/s", r["baselines"]["healthz_req_per_s"], " req/s"),
            ("B1 ingest, 1 doc per request", r["median"]["docs_per_s"], " docs/s"),
        ]
    if "B2" in results:
        r = results["B2"]
        items += [
            ("B2 ingest, 100 per request", r["median"]["docs_per_s"], " docs/s"),
            (
                "raw ceiling: orjson + sqlite3",
                r["baselines"]["raw_ceiling"]["docs_per_s"],
                " docs/s",
            ),
        ]
    if "B3" in results:
        items.append(
            ("B3 ingest, 2 MB documents", results["B3"]["median"]["docs_per_s"], " docs/s")
        )
    if items:
        out.append(
            (
                "ingest.svg",
                hbar_svg(
                    "Ingest throughput against its baselines (log scale)",
                    items,
                    log=True,
                    note=f"run {run_id}; 4 clients over loopback HTTP; targets: B1 800, B2 2,000, "
                    "B3 25 docs/s",
                ),
            )
        )
    if "B4" in results:
        r = results["B4"]
        top = r["runs"][-1]
        inproc = top["inproc_ms"]
        items = [
            ("keyset, first page", inproc["keyset_first_page"]["p50"], " ms"),
            (
                f"keyset, page {top['depth_pages']:,} (as shipped)",
                inproc["keyset_deep"]["p50"],
                " ms",
            ),
            (
                f"keyset, page {top['depth_pages']:,} (seek form)",
                inproc.get("keyset_deep_seek_form", {}).get("p50"),
                " ms",
            ),
            ("OFFSET, first page", inproc["offset_first"]["p50"], " ms"),
            (f"OFFSET, page {top['depth_pages']:,}", inproc["offset_deep"]["p50"], " ms"),
        ]
        out.append(
            (
                "lists.svg",
                hbar_svg(
                    f"Session list at {top['sessions']:,} sessions: server time p50 (log scale)",
                    items,
                    log=True,
                    note=f"run {run_id}; 50 rows per page, newest first",
                ),
            )
        )
    if "B6" in results:
        r = results["B6"]
        top = r["runs"][-1]
        c = top["charts"]["30d"]
        items = [
            ("full rebuild (full scan)", r["median"]["full_rebuild_s"] * 1000, " ms"),
            ("incremental, 1,000 changes", r["median"]["incremental_s"] * 1000, " ms"),
            ("whole overview, 30 d", c["overview_all_charts_ms"]["p50"], " ms"),
            ("one chart, 30 d, index only (naive)", c["sessions_by_status_index_ms"]["p50"], " ms"),
            ("one chart, 30 d, rollups + edge", c["sessions_by_status_rollup_ms"]["p50"], " ms"),
        ]
        out.append(
            (
                "rollups.svg",
                hbar_svg(
                    f"Analytics at {top['sessions']:,} sessions (log scale)",
                    items,
                    log=True,
                    note=f"run {run_id}; targets: rebuild 10 s, incremental 1 s, chart 50 ms",
                ),
            )
        )
    return out


def write_docs(out: Path, run_id: str) -> Path:
    """``run_id`` may name several runs, comma-separated: the first is the main run (its
    summary heads the page); later runs only add benchmarks the earlier ones lack."""
    ids = [x for x in run_id.split(",") if x]
    summary, results = load_run(out, ids[0])
    summary["extra_runs"] = []
    for extra in ids[1:]:
        extra_summary, extra_results = load_run(out, extra)
        added = [k for k in extra_results if k not in results]
        for key in added:
            results[key] = extra_results[key]
        summary["extra_runs"].append((extra, added, extra_summary))
    run_id = ids[0]
    CHARTS.mkdir(parents=True, exist_ok=True)
    chart_links = []
    for name, svg in charts(results, run_id):
        (CHARTS / name).write_text(svg)
        chart_links.append(f"![{name}](bench/{name})")
    text = TEMPLATE.read_text()
    details = json.dumps(
        {k: v.get("headline") for k, v in results.items()}, indent=2, sort_keys=False
    )
    text = (
        text.replace("{{RUN}}", run_section(summary))
        .replace("{{RESULTS}}", results_table(results))
        .replace("{{CHARTS}}", "\n\n".join(chart_links))
        .replace("{{HEADLINES}}", details)
    )
    DOC.write_text(text)
    return DOC


# --- the same benchmarks on two databases ------------------------------------------------------


def _compare_rows(r: dict[str, Any]) -> list[tuple[str, Any, str]]:
    """(figure, value, unit) of a B4, B6 or B7 result, the figures their targets name."""
    key = r["benchmark"]
    if key == "B4":
        http = r["runs"][-1]["http_latency_ms"]
        inproc = r["runs"][-1]["inproc_ms"]
        out: list[tuple[str, Any, str]] = [("sessions", r["headline"]["sessions"], "")]
        out += [(f"{name}, HTTP p95", v["p95"], " ms") for name, v in http.items()]
        out.append(("agent + errors, server p50", inproc["keyset_agent_errors"]["p50"], " ms"))
        return out
    if key == "B6":
        return [
            ("sessions", r["headline"]["sessions"], ""),
            ("full rebuild", r["median"]["full_rebuild_s"], " s"),
            ("incremental after 1,000 changes", r["median"]["incremental_s"], " s"),
            ("full / incremental", r["ratios"]["full_over_incremental"], ""),
            ("one chart, 30 d, p95", r["headline"]["rollup_chart_p95_ms"], " ms"),
        ]
    if key == "B7":
        cleanup = r["runs"]["cleanup"]
        return [
            ("expired + purged", r["headline"]["purged"], ""),
            ("expire + purge", r["median"]["cleanup_s"], " s"),
            ("longest transaction (write lock)", r["headline"]["max_lock_ms"], " ms"),
            ("transactions", cleanup["transactions"], ""),
            ("ingest p95 idle", r["baselines"]["idle_ingest_p95_ms"], " ms"),
            ("ingest p95 during", r["p95"], " ms"),
            ("during / idle", r["ratios"]["p95_during_over_idle"], ""),
        ]
    return []


def compare_databases(out: Path, first: str, second: str) -> str:
    """A Markdown table of B4, B6 and B7 from two runs (``bin/bench --database ...``), side by
    side, with the second / first ratio of each figure."""
    s1, r1 = load_run(out, first)
    s2, r2 = load_run(out, second)
    name1, name2 = s1.get("database", "sqlite"), s2.get("database", "sqlite")
    lines = [
        f"| # | figure | {name1} | {name2} | {name2} / {name1} |",
        "|---|---|---|---|---|",
    ]
    for key in ("B4", "B6", "B7"):
        if key not in r1 or key not in r2:
            continue
        second_rows = {label: value for label, value, _ in _compare_rows(r2[key])}
        for label, value, unit in _compare_rows(r1[key]):
            other = second_rows.get(label)
            rel = None
            if isinstance(value, int | float) and isinstance(other, int | float) and value:
                rel = other / value
            lines.append(
                f"| {key} | {cell(label)} | {_figure(value, unit)} | {_figure(other, unit)} "
                f"| {fmt(rel, '', 2)} |"
            )
        flags1, flags2 = r1[key].get("target_met", {}), r2[key].get("target_met", {})
        for flag in flags1:
            lines.append(
                f"| {key} | target: {cell(flag)} | {'✅' if flags1[flag] else '❌'} "
                f"| {'✅' if flags2.get(flag) else '❌'} | |"
            )
    return "\n".join(lines)


def _figure(value: Any, unit: str) -> str:
    return fmt(value, unit, 0 if isinstance(value, int) else 1)

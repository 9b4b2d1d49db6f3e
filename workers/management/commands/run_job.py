"""manage.py run_job NAME [--dry-run] [--inline] [--param k=v ...] [--timeout SECONDS]

Records a run, enqueues it for a worker (or runs it in this process with --inline), waits for
it (bounded) and prints the recorded run: status, duration, counts, error.
Exit status: 0 succeeded or skipped, 1 failed, 2 still not finished when the wait ran out.
"""

from __future__ import annotations

import json
import time
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from sessions_api.errors import DispatchFailed, InvalidParams, UnknownJob
from workers import dispatch, registry, runs


class Command(BaseCommand):
    help = "Run one background job (enqueued for a worker, or --inline) and print its run."

    def add_arguments(self, parser):
        parser.add_argument("name", help=f"one of: {', '.join(registry.JOB_NAMES)}")
        parser.add_argument(
            "--dry-run", action="store_true", help="report what would change, change nothing"
        )
        parser.add_argument(
            "--inline", action="store_true", help="run in this process instead of a worker"
        )
        parser.add_argument(
            "--param",
            action="append",
            default=[],
            metavar="KEY=VALUE",
            help="a job parameter, e.g. --param batch_size=100 (repeatable)",
        )
        parser.add_argument(
            "--timeout",
            type=float,
            default=300.0,
            help="seconds to wait for a worker to finish the run (default 300)",
        )
        parser.add_argument("--json", action="store_true", help="print the run as JSON")

    def handle(self, *args, name: str, dry_run: bool, inline: bool, param: list[str], **options):
        params: dict[str, str] = {}
        for item in param:
            key, sep, value = item.partition("=")
            if not sep or not key.strip():
                raise CommandError(f"--param {item!r}: expected KEY=VALUE")
            params[key.strip()] = value.strip()
        try:
            run = runs.request_run(job=name, params=params, dry_run=dry_run, triggered_by="cli")
        except (UnknownJob, InvalidParams) as exc:
            raise CommandError(str(exc)) from exc

        if inline:
            self.stderr.write(f"Running {name} (run {run.id}) in this process...")
            try:
                record = runs.execute_run(job=name, run_id=run.id, triggered_by="cli")
            except Exception:
                record = runs.get_run(run_id=run.id)
            self._print(record, options["json"])
            return self._exit(record)

        try:
            dispatch.dispatch_run(run_id=run.id)
        except DispatchFailed as exc:
            self._print(runs.get_run(run_id=run.id), options["json"])
            raise CommandError(f"{exc}. Is the broker up? (--inline runs it here)") from exc
        broker = "Redis" if settings.REDIS_URL else "the embedded broker"
        self.stderr.write(f"Enqueued {name} (run {run.id}) on {broker}; waiting for a worker...")
        record = self._wait(run.id, options["timeout"])
        self._print(record, options["json"])
        if record is None or not record.finished:
            status = record.status if record else "missing"
            raise CommandError(
                f"run {run.id} is still {status} after {options['timeout']:.0f} s. "
                "Is a worker running? Start one with: celery -A workers.celery worker -l info "
                "(or run the job here with --inline). The run stays queued and will be "
                "picked up when a worker starts.",
                returncode=2,
            )
        return self._exit(record)

    def _wait(self, run_id: int, timeout: float) -> runs.RunRecord | None:
        deadline = time.monotonic() + timeout
        delay = 0.1
        record = runs.get_run(run_id=run_id)
        while record is not None and not record.finished and time.monotonic() < deadline:
            time.sleep(min(delay, max(0.0, deadline - time.monotonic())))
            delay = min(delay * 1.5, 2.0)
            record = runs.get_run(run_id=run_id)
        return record

    def _exit(self, record: runs.RunRecord | None) -> None:
        if record is None or record.status == runs.Status.FAILED:
            raise CommandError(f"run {record.id if record else '?'} failed")

    def _print(self, record: runs.RunRecord | None, as_json: bool) -> None:
        if record is None:
            self.stdout.write("(the run row is gone)")
            return
        if as_json:
            self.stdout.write(json.dumps(_as_dict(record), default=str, indent=2))
            return
        duration = f"{record.duration_s:.2f} s" if record.duration_s is not None else "-"
        flag = " (dry run)" if record.dry_run else ""
        self.stdout.write(
            f"run {record.id} {record.job}{flag}: {record.status.upper()} in {duration}"
        )
        queued = record.queued_at.strftime("%Y-%m-%d %H:%M:%S")
        params = json.dumps(record.params) if record.params else "{}"
        self.stdout.write(
            f"  triggered by {record.triggered_by or '-'}, queued {queued} UTC, params {params}"
        )
        for key, value in record.counts.items():
            self.stdout.write(f"  {key}: {value}")
        reason = record.details.get("reason") or record.details.get("note")
        if reason:
            self.stdout.write(f"  note: {reason}")
        for key in ("would_expire", "would_purge", "would_prune", "would_flag"):
            listed = record.details.get(key)
            if listed:
                self.stdout.write(f"  {key.replace('_', ' ')}:")
                for item in listed[:20]:
                    self.stdout.write(f"    {_one_line(item)}")
                more = len(listed) - 20 + int(record.details.get("more", 0))
                if more > 0:
                    self.stdout.write(f"    ... and {more} more")
        if record.error:
            self.stdout.write(f"  error: {record.error}")


def _one_line(item: Any) -> str:
    if isinstance(item, dict):
        return "  ".join(f"{k}={v}" for k, v in item.items())
    return str(item)


def _as_dict(record: runs.RunRecord) -> dict[str, Any]:
    return {
        "id": record.id,
        "job": record.job,
        "status": record.status,
        "dry_run": record.dry_run,
        "params": record.params,
        "triggered_by": record.triggered_by,
        "queued_at": record.queued_at,
        "started_at": record.started_at,
        "finished_at": record.finished_at,
        "duration_s": record.duration_s,
        "counts": record.counts,
        "details": record.details,
        "error": record.error,
    }

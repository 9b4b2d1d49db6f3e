"""manage.py rebuild_rollups [--dry-run]: recompute every analytics bucket from the index.

Runs as a recorded ``rollup_analytics`` run with ``full=true`` under the job's lock, so it never
overlaps a scheduled rollup and shows up on the Jobs page.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from workers import runs


class Command(BaseCommand):
    help = "Rebuild all hourly and daily analytics rollups from the session index."

    def add_arguments(self, parser):
        parser.add_argument("--dry-run", action="store_true", help="compute, write nothing")

    def handle(self, *args, dry_run: bool, **options):
        run = runs.request_run(
            job="rollup_analytics", params={"full": True}, dry_run=dry_run, triggered_by="cli"
        )
        try:
            record = runs.execute_run(job="rollup_analytics", run_id=run.id, triggered_by="cli")
        except Exception as exc:
            raise CommandError(f"rebuild failed (run {run.id}): {exc}") from exc
        if record.status != runs.Status.SUCCEEDED:
            raise CommandError(
                f"run {record.id} {record.status}: {record.details.get('reason', record.error)}"
            )
        counts = ", ".join(f"{k} {v}" for k, v in record.counts.items())
        duration = f"{record.duration_s:.2f} s" if record.duration_s is not None else "-"
        self.stdout.write(f"run {record.id}: rebuilt in {duration} ({counts})")

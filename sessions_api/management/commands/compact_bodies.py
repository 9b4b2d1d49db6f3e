"""manage.py compact_bodies [--dry-run]"""

from __future__ import annotations

from django.core.management.base import BaseCommand
from tqdm import tqdm

from sessions_api.lifecycle import compact


class Command(BaseCommand):
    help = (
        "Convert document bodies stored whole (before the store compacted them) into "
        "compressed snapshots and deltas. Resumable: bodies already compact are skipped."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--dry-run", action="store_true", help="report what would be rewritten and saved"
        )

    def handle(self, *args, dry_run: bool, **options):
        total = compact.count_sessions_to_compact()
        with tqdm(total=total, unit="session", disable=None, file=self.stderr._out) as progress:
            totals = compact.compact_stored_bodies(
                dry_run=dry_run, on_session=lambda _: progress.update()
            )
        verb = "would rewrite" if dry_run else "rewrote"
        self.stdout.write(
            f"{totals.sessions} session(s), {totals.bodies} bodies: {verb} {totals.rewritten}, "
            f"{_mb(totals.bytes_before)} -> {_mb(totals.bytes_after)} "
            f"({_mb(totals.bytes_saved)} saved)"
        )


def _mb(size: int) -> str:
    return f"{size / 1e6:,.1f} MB"

"""The Jobs page: each job's last and next run, failures and history; admins run, retry and
preview (dry run) jobs. Thin: the registry names the jobs, reads and writes go through
workers.runs, and workers.dispatch hands a run to a worker."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import BadRequest, PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from dashboard.forms.common import range_problem
from dashboard.forms.jobs import RunJobForm
from dashboard.forms.query import JobHistoryForm
from dashboard.views.common import is_dashboard_admin
from sessions_api.errors import DispatchFailed, InvalidParams, RunNotFound
from workers import dispatch, registry, runs
from workers.schedule import schedule_info

# Run status -> the pill style the stylesheet already has.
PILLS = {
    "succeeded": "completed",
    "running": "running",
    "failed": "error",
    "skipped": "unknown",
    "queued": "abandoned",
}


@login_required
def jobs_page(request: HttpRequest) -> HttpResponse:
    form = JobHistoryForm(request.GET, job_names=registry.JOB_NAMES)
    form.is_valid()
    if problem := range_problem(form):
        raise BadRequest(problem)
    job = form.cleaned_data.get("job") or None
    history = runs.list_runs(job=job, limit=50, before_id=form.cleaned_data.get("before"))
    return render(
        request,
        "dashboard/jobs.html",
        {
            "nav": "jobs",
            "overview": runs.job_overview(now=timezone.now(), schedule=schedule_info()),
            "runs": history,
            "job_filter": job,
            "job_names": registry.JOB_NAMES,
            "next_before": history[-1].id if len(history) == 50 else None,
            "can_run": is_dashboard_admin(request.user),
            "pills": PILLS,
        },
    )


@login_required
def run_detail(request: HttpRequest, run_id: int) -> HttpResponse:
    run = runs.get_run(run_id=run_id)
    if run is None:
        raise Http404("no such run")
    return render(
        request,
        "dashboard/jobs.html",
        {
            "nav": "jobs",
            "run": run,
            "listings": _listings(run),
            "destructive": run.job in registry.DESTRUCTIVE_JOBS,
            "can_run": is_dashboard_admin(request.user),
            "pills": PILLS,
        },
    )


@login_required
@require_POST
def run_now(request: HttpRequest, name: str) -> HttpResponse:
    _require_admin(request)
    if name not in registry.JOB_NAMES:
        raise Http404("no such job")
    form = RunJobForm(request.POST)
    form.is_valid()
    dry_run = form.is_dry_run
    if name in registry.DESTRUCTIVE_JOBS and not dry_run and not form.is_confirmed:
        messages.error(request, f"Tick “I checked the preview” to run {name} for real.")
        return redirect("dashboard:jobs")
    run = runs.request_run(job=name, dry_run=dry_run, triggered_by=_who(request))
    return _dispatch(request, run, "Preview" if dry_run else "Run")


@login_required
@require_POST
def retry(request: HttpRequest, run_id: int) -> HttpResponse:
    _require_admin(request)
    try:
        run = runs.retry_run(run_id=run_id, triggered_by=_who(request))
    except RunNotFound:
        raise Http404("no such run") from None
    except InvalidParams as exc:
        messages.error(request, str(exc))
        return redirect("dashboard:jobs")
    return _dispatch(request, run, "Retry")


def _dispatch(request: HttpRequest, run: runs.RunRecord, what: str) -> HttpResponse:
    try:
        dispatch.dispatch_run(run_id=run.id)
    except DispatchFailed as exc:
        messages.error(request, f"{what} of {run.job} could not be queued: {exc}")
    else:
        messages.success(
            request, f"{what} of {run.job} queued as run {run.id}; a worker picks it up shortly."
        )
    if run.dry_run:
        return redirect("dashboard:job_run", run_id=run.id)
    return redirect("dashboard:jobs")


# Lists a run's details may carry (see the services' results), with their headings.
LISTINGS = {
    "would_expire": "Would expire",
    "expired": "Expired",
    "would_purge": "Would purge",
    "purged": "Purged",
    "would_prune": "Would prune",
    "pruned": "Pruned",
    "would_flag": "Would flag as stuck",
    "flagged": "Flagged as stuck",
    "missing": "Versions without a stored body",
    "orphans": "Bodies without an index row",
    "failures": "Documents that failed to import",
}


def _listings(run: runs.RunRecord) -> list[tuple[str, list[dict], int]]:
    found = []
    for key, title in LISTINGS.items():
        items = run.details.get(key)
        if isinstance(items, list) and items and all(isinstance(i, dict) for i in items):
            found.append((title, items, int(run.details.get("more", 0) or 0)))
    return found


def _require_admin(request: HttpRequest) -> None:
    if not is_dashboard_admin(request.user):
        raise PermissionDenied("Only admins can run jobs.")


def _who(request: HttpRequest) -> str:
    return f"user:{request.user.get_username()}"[:32]

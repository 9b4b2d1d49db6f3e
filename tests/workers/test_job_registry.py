"""The job registry is the one declaration of each job: the beat schedule, the Celery tasks and
the services they call all agree with it, and the names outside checks rely on never change."""

from __future__ import annotations

import inspect

import pytest
from django.utils.module_loading import import_string

from workers import registry, schedule, tasks
from workers.celery import app

#: The job names run_job, the Jobs page and the broker's messages use: a fixed contract.
CONTRACT_JOB_NAMES = {
    "expire_sessions",
    "purge_sessions",
    "prune_versions",
    "rollup_analytics",
    "sync_mongo_source",
    "reconcile_store",
    "detect_stuck_sessions",
    "close_idle_otel_sessions",
    "fold_otel_spans",
    "index_search",
    "evaluate_alerts",
    "deliver_alerts",
}
#: Per-event alert tasks: sent at commit time, not jobs (no run rows, no schedule).
ALERT_EVENT_TASKS = {"alerts.session_event", "alerts.deliver"}


def registered_task_names() -> set[str]:
    return {name for name in app.tasks if not name.startswith("celery.")}


def test_registry_schedule_and_tasks_name_the_same_jobs(monkeypatch):
    for job in CONTRACT_JOB_NAMES:
        monkeypatch.delenv(f"JOB_SCHEDULE_{job.upper()}", raising=False)
    assert set(registry.JOBS) == CONTRACT_JOB_NAMES
    assert set(schedule.beat_schedule()) == CONTRACT_JOB_NAMES
    assert set(tasks.JOB_TASKS) == CONTRACT_JOB_NAMES
    assert registered_task_names() - {"workers.ping"} - ALERT_EVENT_TASKS == CONTRACT_JOB_NAMES
    assert set(tasks.ALERT_EVENT_TASKS) == ALERT_EVENT_TASKS


def test_celery_task_names_are_pinned():
    # Messages already queued and beat schedules already saved name tasks by these strings.
    assert registered_task_names() == CONTRACT_JOB_NAMES | {"workers.ping"} | ALERT_EVENT_TASKS
    for job in CONTRACT_JOB_NAMES:
        assert tasks.JOB_TASKS[job].name == job
        assert schedule.beat_schedule()[job]["task"] == job


@pytest.mark.parametrize("job", sorted(CONTRACT_JOB_NAMES))
def test_each_task_carries_its_jobs_time_limits(job):
    spec = registry.JOBS[job]
    task = app.tasks[job]
    assert task.soft_time_limit == spec.soft_time_limit.total_seconds()
    assert task.time_limit == spec.time_limit.total_seconds()
    assert spec.soft_time_limit < spec.time_limit


@pytest.mark.parametrize("job", sorted(CONTRACT_JOB_NAMES))
def test_each_service_takes_what_the_job_passes(job):
    spec = registry.JOBS[job]
    service = import_string(spec.service)
    keywords = inspect.signature(service).parameters
    passed = {"now", "dry_run", "checkpoint"} | {
        param.argument or name for name, param in spec.params.items()
    }
    assert passed <= set(keywords)
    assert all(keywords[name].kind is inspect.Parameter.KEYWORD_ONLY for name in passed)


@pytest.mark.parametrize("job", sorted(CONTRACT_JOB_NAMES))
def test_each_param_default_is_of_its_kind(job):
    for name, param in registry.JOBS[job].params.items():
        if param.default is None:
            continue
        assert isinstance(param.default, param.kind), name
        assert registry.clean_params(job, {name: str(param.default)}) == {name: param.default}


def test_every_job_says_what_it_does_and_why_this_often():
    for spec in registry.JOBS.values():
        assert spec.summary and spec.why_this_often
        assert spec.every.total_seconds() > 0

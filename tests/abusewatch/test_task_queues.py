"""Which queue each kind of work waits in: a police report must never wait behind a transcode."""

from __future__ import annotations

from abusewatch.celery import app
from abusewatch.supervisor import process_commands


def queue_of(task_name: str) -> str:
    route = app.amqp.router.route({}, task_name, (), {})
    return str(route["queue"].name)


def test_police_reports_and_transcodes_wait_in_different_queues() -> None:
    # Seen in `make run`: working copies queued for every window of a growing case filled
    # `default` with 30-s transcodes, and the violent case's report waited behind them.
    assert queue_of("reports.report_case") == "default"
    assert queue_of("reports.make_working_copies") == "media"
    assert queue_of("detection.analyse_segment") == "inference"


def test_the_supervisor_serves_every_queue_work_is_routed_to() -> None:
    commands = process_commands("127.0.0.1", 8000)
    served = set()
    for command in commands.values():
        if "worker" in command and "-Q" in command:
            served |= set(command[command.index("-Q") + 1].split(","))
    for task in ("reports.report_case", "reports.make_working_copies", "detection.analyse_segment"):
        assert queue_of(task) in served, task

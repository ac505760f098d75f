"""Background tasks: run off the caller's thread, survive a failing task, and a stop does not wait
out a task that is still busy."""

from __future__ import annotations

import threading

import pytest

from bot.services.background import BackgroundTasks


def test_tasks_run_on_worker_threads_and_a_failure_ends_only_that_task(
    caplog: pytest.LogCaptureFixture,
) -> None:
    tasks = BackgroundTasks(workers=1)
    tasks.start()
    ran: list[str] = []
    done = threading.Event()

    def fail() -> None:
        raise RuntimeError("boom")

    tasks.submit(fail)
    tasks.submit(lambda: ran.append(threading.current_thread().name))
    tasks.submit(done.set)
    assert done.wait(5)
    assert ran == ["netlog-background-0"]
    assert "background: a task failed" in caplog.text
    assert tasks.stop(timeout=5)


def test_a_stop_abandons_a_busy_task_after_its_timeout(caplog: pytest.LogCaptureFixture) -> None:
    tasks = BackgroundTasks(workers=2)
    tasks.start()
    release = threading.Event()
    started = threading.Event()

    def busy() -> None:
        started.set()
        release.wait(10)

    tasks.submit(busy)
    assert started.wait(5)
    assert not tasks.stop(timeout=0.2)
    assert "1 task(s) still running at stop are abandoned" in caplog.text
    release.set()


def test_tasks_submitted_before_the_start_run_once_it_started() -> None:
    tasks = BackgroundTasks(workers=1)
    done = threading.Event()
    tasks.submit(done.set)
    assert not done.wait(0.1)
    tasks.start()
    assert done.wait(5)
    assert tasks.stop(timeout=5)

"""Background jobs: one schedule, Celery on Redis in production, broker-less when embedded."""

import ssl
import threading
import time
import urllib.request

import pytest
from celery.contrib.testing.worker import start_worker
from celery.signals import task_postrun

from enclave.celery import app
from enclave.core import schedule
from enclave.core.models import ControlResult

REDIS_URL = "redis://127.0.0.1:6379/15"


class TestSchedule:
    def test_every_scheduled_job_names_a_registered_task(self):
        app.loader.import_default_modules()
        for job in schedule.SCHEDULE:
            assert job.task in app.tasks, job.task

    def test_beat_schedule_is_built_from_the_one_schedule(self):
        assert set(app.conf.beat_schedule) == {job.name for job in schedule.SCHEDULE}


@pytest.mark.django_db(transaction=True)
class TestCeleryOnRedis:
    def test_worker_runs_control_check_from_a_redis_queue(self):
        """Waits for the worker's "task finished" signal, then reads: polling the table
        while the worker thread writes it raced SQLite's shared-cache table lock ("table
        is locked", seed 8675309)."""
        finished = threading.Event()

        def on_finished(sender=None, **kwargs):
            if getattr(sender, "name", None) == "enclave.core.check_controls":
                finished.set()

        task_postrun.connect(on_finished, weak=False)
        saved = (app.conf.broker_url, app.conf.broker_transport_options)
        app.conf.broker_url = REDIS_URL
        app.conf.broker_transport_options = {}
        try:
            with start_worker(app, pool="solo", perform_ping_check=False, loglevel="WARNING"):
                app.send_task("enclave.core.check_controls")
                assert finished.wait(60), "the worker did not run the control check"
        finally:
            app.conf.broker_url, app.conf.broker_transport_options = saved
            task_postrun.disconnect(on_finished)
        assert ControlResult.objects.filter(control_id="ENV-1", status="pass").exists()


class TestEmbeddedJobs:
    def test_security_page_shows_results_checked_by_the_embedded_worker(self, live_enclave):
        ctx = ssl.create_default_context(cafile=str(live_enclave.ca_file))
        deadline = time.monotonic() + 90
        body = ""
        while time.monotonic() < deadline:
            with urllib.request.urlopen(f"{live_enclave.https_url}/security", context=ctx,  # noqa: S310
                                        timeout=10) as response:
                body = response.read().decode()
            if "Last checked" in body:
                break
            time.sleep(1)
        assert "Last checked" in body

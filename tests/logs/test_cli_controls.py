"""`enclave logs …`, the retention job and the LOG-* controls, on the deployment's store."""

from __future__ import annotations

import datetime as dt
import logging

import pytest

from enclave.cli import main
from enclave.core import clock, controls
from enclave.core.models import AuditEvent, AuditEventType
from enclave.logs.pipeline import flush_stores
from enclave.logs.tasks import expunge_old_logs
from tests.logs.planted import card_number


def run_control(control_id: str) -> controls.Result:
    (result,) = controls.run_all(only={control_id})
    return result


def write_some_logs(text: str = "hello") -> None:
    logging.getLogger("enclave.tests").info(text)
    flush_stores()


@pytest.mark.django_db
class TestCli:
    def test_tail_prints_the_newest_records_and_is_audited(self, store, capsys):
        for i in range(5):
            logging.getLogger("enclave.tests").info("line %d", i)
        assert main(["logs", "tail", "-n", "2"]) == 0
        out = capsys.readouterr().out.splitlines()
        assert [("line 3" in out[0]), ("line 4" in out[1])] == [True, True]
        assert len(out) == 2
        assert AuditEvent.objects.filter(event_type=AuditEventType.LOGS_TAILED).count() == 1

    def test_search_by_trace_id_finds_that_request(self, store, client, capsys):
        trace_id = client.get("/api/v1/health")["X-Trace-Id"]
        client.get("/api/v1/health")
        assert main(["logs", "search", "--trace-id", trace_id, "--since", "1h"]) == 0
        lines = capsys.readouterr().out.splitlines()
        assert len(lines) == 1
        assert trace_id in lines[0]
        event = AuditEvent.objects.get(event_type=AuditEventType.LOGS_SEARCHED)
        assert event.extra_data["trace_id"] == trace_id

    def test_search_by_text_never_shows_a_redacted_value(self, store, capsys):
        card = card_number()
        write_some_logs(f"paid with {card}")
        assert main(["logs", "search", "--grep", "PAID WITH"]) == 0
        out = capsys.readouterr().out
        assert "paid with [REDACTED:card]" in out
        assert card not in out

    def test_search_with_a_reversed_window_is_refused(self, store, capsys):
        assert main(["logs", "search", "--since", "1h", "--until", "2h"]) == 2
        assert capsys.readouterr().err == "enclave: logs: --since is after --until\n"

    def test_bad_trace_id_is_refused_with_one_clear_line(self, capsys):
        with pytest.raises(SystemExit) as exit_info:
            main(["logs", "search", "--trace-id", "nope"])
        assert exit_info.value.code == 2
        assert "a trace id is 32 hex characters" in capsys.readouterr().err

    def test_verify_reports_a_tampered_segment_and_exits_non_zero(self, store, capsys):
        write_some_logs()
        _, path = store.segments()[-1]
        data = bytearray(path.read_bytes())
        data[-45] ^= 1
        path.write_bytes(bytes(data))
        assert main(["logs", "verify"]) == 1
        err = capsys.readouterr().err
        assert f"enclave: logs: {path.name}: frame" in err
        event = AuditEvent.objects.get(event_type=AuditEventType.LOGS_VERIFIED)
        assert event.extra_data["ok"] is False

    def test_verify_passes_on_an_intact_store(self, store, capsys):
        write_some_logs()
        assert main(["logs", "verify"]) == 0
        assert capsys.readouterr().out.startswith("ok: 1 segment(s)")


@pytest.mark.django_db
class TestRetentionJob:
    def test_job_expunges_logs_older_than_retention_over_120_days(self, store):
        with clock.frozen(clock.now()):
            for _ in range(4):
                write_some_logs("daily")
                clock.advance(dt.timedelta(days=40))
            assert run_control("LOG-3").status == controls.FAIL
            result = expunge_old_logs()
            assert len(result["expunged"]) == 2
            assert run_control("LOG-3").status == controls.PASS
            assert run_control("LOG-4").status == controls.PASS
            event = AuditEvent.objects.get(event_type=AuditEventType.LOGS_EXPUNGED)
            assert event.extra_data["segments"] == 2


def hide_pytest_handlers(monkeypatch) -> None:
    """pytest attaches its capture handlers to every non-propagating logger; LOG-1 is
    about the deployment's handlers, so a test looks past pytest's own (call inside the
    test body: pytest attaches them after fixtures are set up)."""
    loggers = [logging.getLogger(), *(obj for obj in logging.root.manager.loggerDict.values()
                                      if isinstance(obj, logging.Logger))]
    for logger in loggers:
        monkeypatch.setattr(logger, "handlers", [
            h for h in logger.handlers if type(h).__module__ != "_pytest.logging"])


@pytest.mark.django_db
class TestControls:
    def test_log1_passes_with_redaction_on_every_handler(self, monkeypatch):
        hide_pytest_handlers(monkeypatch)
        result = run_control("LOG-1")
        assert result.status == controls.PASS, result.evidence

    def test_log1_fails_naming_a_handler_without_redaction(self, monkeypatch):
        hide_pytest_handlers(monkeypatch)
        logger = logging.getLogger("enclave.tests.plain")
        monkeypatch.setattr(logger, "handlers", [logging.StreamHandler()])
        result = run_control("LOG-1")
        assert result.status == controls.FAIL
        assert "enclave.tests.plain: StreamHandler" in result.evidence

    def test_log2_passes_for_encrypted_segments(self, store):
        write_some_logs()
        assert run_control("LOG-2").status == controls.PASS

    def test_log2_fails_when_a_segment_holds_plaintext(self, store):
        write_some_logs()
        _, path = store.segments()[-1]
        with path.open("ab") as fh:
            fh.write(b'{"event": "plain"}')
        result = run_control("LOG-2")
        assert result.status == controls.FAIL
        assert path.name in result.evidence

    def test_log4_fails_when_a_segment_is_deleted(self, store):
        with clock.frozen(clock.now()):
            for _ in range(3):
                write_some_logs()
                clock.advance(dt.timedelta(hours=2))
        store.path(2).unlink()
        result = run_control("LOG-4")
        assert result.status == controls.FAIL
        assert "segment-0000000003.elog: previous segment(s) missing" in result.evidence

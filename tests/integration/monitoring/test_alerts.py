"""Alert rules and channels: the state machine on typed monitor results, and real deliveries to a local
HTTP receiver and a local SMTP server; the CLI's answers to good and bad input."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from email.policy import default
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import typer
from prometheus_client import CollectorRegistry, generate_latest

from liveml import Registry
from liveml.cli import main as cli_main
from liveml.cli.alerts import alerts_app
from liveml.errors import Invalid, NotFound
from liveml.monitoring.alerts import AlertRule, AlertStore, notice_for, parse_duration
from liveml.monitoring.channels import SIGNATURE_HEADER, TIMESTAMP_HEADER, SmtpConfig
from liveml.monitoring.notifier import Notifier, alert_metrics, export_gauges
from liveml.monitoring.results import (
    DatasetDrift,
    FeatureDrift,
    MetricValue,
    MonitorResult,
    Performance,
)
from liveml.serving.metrics import ServingMetrics
from tests.conftest import Cli, CliResult, run_cli
from tests.live_server import free_port

T0 = datetime(2026, 11, 2, 12, 0, tzinfo=UTC)
FAST = (0.01, 0.01)  # retry waits for the tests: 3 tries in all


# -- helpers -----------------------------------------------------------------------------------------
def result(
    share: float | None = 0.42,
    rows: int = 2315,
    *,
    end: datetime = T0,
    feature_score: float | None = None,
    accuracy: tuple[float, int] | None = None,
) -> MonitorResult:
    features = (
        (
            FeatureDrift(
                column="petal_length",
                kind="numeric",
                test="psi",
                score=feature_score,
                threshold=0.1,
                score_is_p_value=False,
                drift=feature_score > 0.1,
                reference_rows=150,
                current_rows=rows - 15,
            ),
        )
        if feature_score is not None
        else ()
    )
    realized = (
        Performance(
            kind="realized",
            task="classification",
            metrics=(MetricValue(name="accuracy", value=accuracy[0], rows=accuracy[1]),),
            labelled_rows=accuracy[1],
        )
        if accuracy
        else None
    )
    dataset = (
        DatasetDrift(share=share, drifted_columns=round(share * 4), columns=4, drift=share >= 0.5)
        if share is not None
        else None
    )
    return MonitorResult(
        model="churn",
        versions=(1,),
        reference_version=1,
        start=end - timedelta(hours=24),
        end=end,
        rows=rows,
        min_rows=0,
        enough_rows=True,
        features=features,
        dataset=dataset,
        realized=realized,
    )


@dataclass
class Receiver:
    """A real HTTP server on 127.0.0.1 that records POSTs and answers with scripted statuses."""

    statuses: list[int] = field(default_factory=list)
    hold: threading.Event | None = None
    requests: list[tuple[str, dict[str, str], bytes]] = field(default_factory=list)
    got: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append((self.path, dict(self.headers.items()), body))
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                receiver.got.set()
                if receiver.hold is not None:
                    receiver.hold.wait(30)
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def close(self) -> None:
        if self.hold is not None:
            self.hold.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Callable[..., Receiver]]:
    made: list[Receiver] = []

    def make(**kwargs: Any) -> Receiver:
        made.append(Receiver(**kwargs))
        return made[-1]

    yield make
    for r in made:
        r.close()


@pytest.fixture
def store(registry: Registry, model_files: dict[str, Path]) -> AlertStore:
    registry.push("churn", model_files["logistic"], reference=model_files["reference"])
    return AlertStore(registry)


def delivery(store: AlertStore, rule: AlertRule, index: int = 0) -> dict[str, Any]:
    return store.events(rule.id)[0].deliveries[index]


# -- the state machine ---------------------------------------------------------------------------------
def test_fire_stay_resolve_and_cooldown(store: AlertStore) -> None:
    rule = store.add("churn", "drift_share", above=0.3, min_rows=500, cooldown="6h")
    fired = store.evaluate(None, result(0.42), T0)
    assert [n.kind for n in fired] == ["fired"]
    assert fired[0].message == "churn: drift_share 0.42 above 0.30 (2,315 rows, last 24h) — warning"
    assert fired[0].event_id is not None and (fired[0].value, fired[0].rows) == (0.42, 2315)
    now = store.get(rule.id)
    assert (now.state, now.last_value, now.last_rows, now.last_fired_at) == ("firing", 0.42, 2315, T0)

    assert store.evaluate(None, result(0.5), T0 + timedelta(hours=1)) == []  # still firing: no second notice
    assert store.get(rule.id).state == "firing"

    resolved = store.evaluate(None, result(0.1), T0 + timedelta(hours=2))
    assert [n.kind for n in resolved] == ["resolved"]
    assert (
        resolved[0].message
        == "churn: drift_share 0.10 no longer above 0.30 (2,315 rows, last 24h) — resolved"
    )
    assert store.get(rule.id).state == "ok" and store.get(rule.id).last_resolved_at == T0 + timedelta(hours=2)

    # fires again 3h after the last fired notice: inside the 6h cooldown, so tracked but not sent
    assert store.evaluate(None, result(0.4), T0 + timedelta(hours=3)) == []
    assert store.get(rule.id).state == "firing" and store.get(rule.id).last_fired_at == T0
    assert store.evaluate(None, result(0.1), T0 + timedelta(hours=4)) == []  # nothing notified to resolve
    assert store.get(rule.id).state == "ok"
    assert store.evaluate(None, result(0.4), T0 + timedelta(hours=5)) == []
    later = store.evaluate(None, result(0.45), T0 + timedelta(hours=6))  # cooldown over, still firing
    assert [n.kind for n in later] == ["fired"]

    events = store.events(rule.id)
    assert [(e.kind, e.at) for e in events] == [
        ("fired", T0 + timedelta(hours=6)),
        ("resolved", T0 + timedelta(hours=2)),
        ("fired", T0),
    ]
    assert events[0].deliveries == []  # no channels: Prometheus only


def test_no_data_below_min_rows_or_without_the_metric(store: AlertStore) -> None:
    rule = store.add("churn", "drift_share", above=0.3, min_rows=500, cooldown=0)
    assert store.evaluate(None, result(0.9, rows=499), T0) == []
    got = store.get(rule.id)
    assert (got.state, got.last_rows, got.last_fired_at) == ("no_data", 499, None)
    assert store.evaluate(None, result(None), T0) == []
    assert store.get(rule.id).state == "no_data" and store.get(rule.id).last_value is None

    assert [n.kind for n in store.evaluate(None, result(0.9), T0 + timedelta(hours=1))] == ["fired"]
    assert store.evaluate(None, result(0.1, rows=10), T0 + timedelta(hours=2)) == []  # unknown: not resolved
    assert store.get(rule.id).state == "no_data"
    back = store.evaluate(None, result(0.1), T0 + timedelta(hours=3))
    assert [n.kind for n in back] == ["resolved"]

    traffic = store.add("churn", "rows", below=100, min_rows=500)  # min rows cannot hide a traffic drop
    (dropped,) = store.evaluate([traffic], result(0.1, rows=40), T0)
    assert dropped.message == "churn: rows 40 below 100 (40 rows, last 24h) — warning"


def test_below_rules_count_labelled_rows_and_features_score(store: AlertStore) -> None:
    accuracy = store.add("churn", "accuracy", below=0.8, min_rows=1000, severity="critical")
    feature = store.add("churn", "feature:petal_length", above=0.25, min_rows=100)
    other = store.add("churn", "error_rate", above=0.5)
    store.disable(other.id)
    notices = store.evaluate(None, result(0.1, rows=5000, feature_score=0.3, accuracy=(0.7, 600)), T0)
    assert [n.rule_id for n in notices] == [feature.id]  # 600 labelled rows < 1000: accuracy has no data
    assert store.get(accuracy.id).state == "no_data" and store.get(accuracy.id).last_rows == 600
    assert store.get(other.id).last_evaluated_at is None  # disabled rules are not evaluated

    notices = store.evaluate([accuracy], result(0.1, rows=5000, accuracy=(0.7, 1200)), T0)
    assert [n.message for n in notices] == [
        "churn: accuracy 0.70 below 0.80 (1,200 rows, last 24h) — critical"
    ]
    assert store.get(feature.id).state == "firing"  # not among the rules passed: untouched


def test_bad_rules_are_refused_with_the_fix(store: AlertStore) -> None:
    cases: list[tuple[dict[str, Any], str]] = [
        ({"metric": "drift"}, "unknown metric 'drift': use drift_share, feature:<input column>"),
        (
            {"metric": "feature:nope"},
            "feature:nope names no input column of the model; its inputs are sepal_length",
        ),
        ({"metric": "rmse"}, "'rmse' does not apply to a classification model"),
        ({"below": 0.1}, "give exactly one of --above X or --below X"),
        ({"above": None}, "give exactly one of --above X or --below X"),
        ({"window": "6 hours"}, "invalid window '6 hours': expected a number and a unit"),
        ({"cooldown": "-1h"}, "invalid cooldown '-1h'"),
        ({"window": "0"}, "window '0' must be longer than 0"),
        ({"severity": "page"}, "unknown severity 'page': use one of info, warning, critical"),
        ({"min_rows": -5}, "min rows -5 must be a whole number"),
        ({"channels": [{"type": "webhook", "url": "ftp://x.example"}]}, "must be an http:// or https:// URL"),
        ({"channels": [{"type": "slack", "url": "hooks.slack.com/x"}]}, "must be an http:// or https:// URL"),
        ({"channels": [{"type": "email", "to": ["oncall@example.com"]}]}, "set LIVEML_SMTP_HOST"),
        (
            {"channels": [{"type": "email", "to": ["nobody"]}], "smtp_configured": True},
            "is not an e-mail address",
        ),
        ({"channels": [{"type": "pager"}]}, "unknown channel type 'pager'"),
    ]
    for change, message in cases:
        args: dict[str, Any] = {"metric": "drift_share", "above": 0.3, **change}
        with pytest.raises(Invalid) as caught:
            store.add("churn", **args)
        assert message in str(caught.value), (change, str(caught.value))
    with pytest.raises(NotFound, match="'fraud'"):
        store.add("fraud", "drift_share", above=0.3)
    with pytest.raises(NotFound, match="no alert rule 99"):
        store.get(99)
    assert store.list() == []


def test_parse_duration() -> None:
    assert parse_duration("30m") == timedelta(minutes=30)
    assert parse_duration("1h30m") == timedelta(minutes=90)
    assert parse_duration("7d") == timedelta(days=7)
    assert parse_duration(" 2w ") == timedelta(weeks=2)
    assert parse_duration("0") == timedelta(0)
    assert parse_duration(90) == timedelta(seconds=90)
    for bad in ("", "6", "h", "6 hours", "1x", "-2h", "1h-30m"):
        with pytest.raises(Invalid, match="expected a number and a unit"):
            parse_duration(bad)


# -- deliveries ----------------------------------------------------------------------------------------
def test_webhook_is_signed_and_slack_gets_a_line(
    store: AlertStore, receiver: Callable[..., Receiver]
) -> None:
    hook = receiver()
    rule = store.add(
        "churn",
        "drift_share",
        above=0.3,
        channels=[
            {"type": "webhook", "url": hook.url("/hook?token=abc"), "secret": "s3cret"},
            {"type": "slack", "url": hook.url("/services/T0/B0/XYZ")},
        ],
    )
    assert store.list()[0].model_dump(mode="json")["channels"] == [
        {"type": "webhook", "url": hook.url("/hook?token=***"), "secret": "***"},
        {"type": "slack", "url": hook.url("/services/***")},
    ]
    (notice,) = store.evaluate(None, result(0.42), T0)
    with Notifier(store.registry, retry_delays=FAST) as notifier:
        assert notifier.notify(notice) is True
        assert notifier.flush(30)
    by_path = {path: (headers, body) for path, headers, body in hook.requests}
    headers, body = by_path["/hook?token=abc"]
    expected = "sha256=" + hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(headers[SIGNATURE_HEADER], expected)
    assert int(headers[TIMESTAMP_HEADER]) > 0 and headers["Content-Type"] == "application/json"
    sent = json.loads(body)
    assert sent == {
        "event_id": notice.event_id,
        "rule": rule.id,
        "kind": "fired",
        "model": "churn",
        "metric": "drift_share",
        "op": "above",
        "value": 0.42,
        "threshold": 0.3,
        "severity": "warning",
        "rows": 2315,
        "window": {
            "seconds": 86400,
            "start": "2026-11-01T12:00:00+00:00",
            "end": "2026-11-02T12:00:00+00:00",
        },
        "message": "churn: drift_share 0.42 above 0.30 (2,315 rows, last 24h) — warning",
        "at": "2026-11-02T12:00:00+00:00",
    }
    _, slack_body = by_path["/services/T0/B0/XYZ"]
    assert json.loads(slack_body) == {"text": ":warning: " + notice.message}
    deliveries = store.events(rule.id)[0].deliveries
    assert [(d["status"], d["attempts"], d["error"]) for d in deliveries] == [("delivered", 1, None)] * 2
    assert deliveries[0]["channel"] == f"webhook {hook.url('/hook?token=***')}"


def test_a_failing_receiver_is_retried_until_it_answers(
    store: AlertStore, receiver: Callable[..., Receiver]
) -> None:
    flaky = receiver(statuses=[500, 503])
    rule = store.add("churn", "drift_share", above=0.3, channels=[{"type": "webhook", "url": flaky.url()}])
    metrics = alert_metrics(CollectorRegistry())
    with Notifier(store.registry, retry_delays=FAST, metrics=metrics) as notifier:
        assert notifier.notify(store.evaluate(None, result(0.42), T0)[0])
        assert notifier.flush(30)
    assert len(flaky.requests) == 3
    assert delivery(store, rule) | {"at": None} == {
        "channel": f"webhook {flaky.url()}",
        "type": "webhook",
        "status": "delivered",
        "attempts": 3,
        "error": None,
        "at": None,
    }
    assert metrics.deliveries.labels("webhook", "delivered")._value.get() == 1


def test_a_dead_receiver_fails_after_retries_without_blocking(store: AlertStore) -> None:
    dead = f"http://127.0.0.1:{free_port()}/hook"
    rule = store.add("churn", "drift_share", above=0.3, channels=[{"type": "webhook", "url": dead}])
    (notice,) = store.evaluate(None, result(0.42), T0)
    assert delivery(store, rule)["status"] == "pending"
    with Notifier(store.registry, retry_delays=FAST) as notifier:
        assert notifier.notify(notice) is True
        assert notifier.flush(30)
    got = delivery(store, rule)
    assert (got["status"], got["attempts"]) == ("failed", 3)
    assert "ConnectError" in got["error"]


def test_notify_returns_while_a_receiver_hangs_and_drops_when_full(
    store: AlertStore, receiver: Callable[..., Receiver]
) -> None:
    gate = threading.Event()
    slow = receiver(hold=gate)
    rule = store.add(
        "churn", "drift_share", above=0.3, cooldown=0, channels=[{"type": "webhook", "url": slow.url()}]
    )
    metrics = alert_metrics(CollectorRegistry())
    with Notifier(store.registry, retry_delays=FAST, max_pending=1, workers=1, metrics=metrics) as notifier:
        (first,) = store.evaluate(None, result(0.42), T0)
        assert notifier.notify(first) is True
        assert slow.got.wait(30)  # the receiver holds the request: notify has returned all the same
        store.evaluate(None, result(0.1), T0 + timedelta(hours=1))  # resolved notice recorded...
        (second,) = store.evaluate(None, result(0.5), T0 + timedelta(hours=2))
        assert notifier.notify(second) is False  # ...and the queue (1 delivery) is full: dropped
        assert notifier.dropped == 1
        assert delivery(store, rule)["status"] == "pending"
        gate.set()
        assert notifier.flush(30)
    events = {e.id: e.deliveries[0] for e in store.events(rule.id)}
    assert events[first.event_id]["status"] == "delivered"  # type: ignore[index]
    assert events[second.event_id]["status"] == "dropped"  # type: ignore[index]
    assert metrics.deliveries.labels("webhook", "dropped")._value.get() == 1


def test_email_reaches_a_real_smtp_server(monkeypatch: pytest.MonkeyPatch) -> None:
    from aiosmtpd.controller import Controller

    class Inbox:
        def __init__(self) -> None:
            self.envelopes: list[Any] = []

        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            self.envelopes.append(envelope)
            return "250 OK"

    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        env = {
            "LIVEML_SMTP_HOST": "127.0.0.1",
            "LIVEML_SMTP_PORT": str(port),
            "LIVEML_SMTP_FROM": "ml@example.com",
        }
        smtp = SmtpConfig.load(None, env)
        assert smtp == SmtpConfig(host="127.0.0.1", port=port, sender="ml@example.com")
        assert SmtpConfig.load(None, {}) is None
        rule = AlertRule(
            id=7,
            model="churn",
            metric="error_rate",
            op="above",
            threshold=0.05,
            severity="critical",
            window_s=3600,
            min_rows=10,
            cooldown_s=0,
            channels=({"type": "email", "to": ["oncall@example.com", "ml@example.com"]},),
            enabled=True,
            state="ok",
            created_by="tester",
            created_at=T0,
        )
        notice = notice_for(rule, "fired", 0.12, 800, T0 - timedelta(hours=1), T0, T0)
        with Notifier(smtp=smtp, retry_delays=FAST) as notifier:
            (outcome,) = notifier.send_now(notice)
        assert (outcome.status, outcome.attempts, outcome.channel) == (
            "delivered",
            1,
            "email oncall@example.com, ml@example.com",
        )
    finally:
        controller.stop()
    (envelope,) = inbox.envelopes
    assert envelope.mail_from == "ml@example.com"
    assert envelope.rcpt_tos == ["oncall@example.com", "ml@example.com"]
    mail = message_from_bytes(envelope.content, policy=default)
    subject = " ".join(str(mail["Subject"]).split())  # unfolding a long encoded header may double a space
    assert subject == "[liveml] churn: error_rate 0.12 above 0.05 (800 rows, last 1h) — critical"
    assert mail["To"] == "oncall@example.com, ml@example.com"
    body = mail.get_content()
    assert (
        "value: 0.12" in body
        and "rule: 7" in body
        and "window: 2026-11-02 11:00 to 2026-11-02 12:00 UTC" in body
    )


def test_prometheus_series_for_alertmanager(store: AlertStore) -> None:
    firing = store.add("churn", "drift_share", above=0.3, severity="critical")
    calm = store.add("churn", "feature:petal_length", above=0.5)
    store.evaluate(None, result(0.42, feature_score=0.2), T0)
    serving = ServingMetrics()  # the registry /metrics serves
    export_gauges(store.list(), [result(0.42, feature_score=0.2)], serving.registry)
    text = generate_latest(serving.registry).decode()
    assert 'liveml_monitor_value{metric="drift_share",model="churn"} 0.42' in text
    assert 'liveml_monitor_value{metric="feature:petal_length",model="churn"} 0.2' in text
    assert (
        f'liveml_alert_firing{{metric="drift_share",model="churn",rule="{firing.id}",severity="critical"}} 1.0'
        in text
    )
    assert f'rule="{calm.id}",severity="warning"}} 0.0' in text

    store.delete(calm.id)  # a deleted rule and a metric no longer measured leave the output
    export_gauges(store.list(), [result(0.42)], serving.registry)
    text = generate_latest(serving.registry).decode()
    assert f'rule="{calm.id}"' not in text and "feature:petal_length" not in text
    assert "# TYPE liveml_alert_deliveries_total counter" in text


# -- the CLI ---------------------------------------------------------------------------------------------
def _alerts_cli(
    store: AlertStore, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Cli:
    """``liveml alerts ...`` through the real entry point (its error handling included) on this registry."""
    settings = store.registry.settings
    monkeypatch.setenv("LIVEML_HOME", str(settings.home))
    monkeypatch.setenv("LIVEML_USER", "tester")
    if settings.database_url:
        monkeypatch.setenv("LIVEML_DATABASE_URL", settings.database_url)
    for name in ("HOST", "PORT", "FROM", "USER", "PASSWORD", "STARTTLS", "SSL"):
        monkeypatch.delenv(f"LIVEML_SMTP_{name}", raising=False)
    app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
    app.callback()(cli_main.root)
    app.add_typer(alerts_app, name="alerts")
    monkeypatch.setattr(cli_main, "app", app)

    def run(*args: str) -> CliResult:
        return run_cli(capsys, "alerts", *args)

    return run


@pytest.fixture
def alerts_cli(store: AlertStore, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Cli:
    return _alerts_cli(store, monkeypatch, capsys)


@pytest.fixture(scope="module")
def refusing_store(module_registry: Registry, model_files: dict[str, Path]) -> AlertStore:
    """``churn`` for the whole module, for rules that must be refused (so none is ever stored)."""
    module_registry.push("churn", model_files["logistic"], reference=model_files["reference"])
    return AlertStore(module_registry)


@pytest.fixture
def refusing_cli(
    refusing_store: AlertStore, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Cli:
    return _alerts_cli(refusing_store, monkeypatch, capsys)


def test_cli_add_list_events_test_and_delete(
    alerts_cli: Cli, receiver: Callable[..., Receiver], store: AlertStore
) -> None:
    hook = receiver()
    added = alerts_cli(
        "add", "churn", "--metric", "drift_share", "--above", "0.3", "--min-rows", "500",
        "--cooldown", "6h", "--webhook", hook.url("/hook?key=zzz"), "--secret", "topsecret",
    )  # fmt: skip
    assert added.code == 0, added.err
    assert (
        "alert rule 1: churn drift_share above 0.30 (warning; window 24h, min 500 rows, cooldown 6h)"
        in added.out
    )
    assert "zzz" not in added.out and "topsecret" not in added.out

    listed = alerts_cli()
    assert listed.code == 0
    for text in ("drift_share", "above 0.30", "warning", "24h", "500", "6h", "ok", "never", "key=***"):
        assert text in listed.out, text
    assert "topsecret" not in listed.out and "zzz" not in listed.out
    (rule,) = json.loads(alerts_cli("--json").out)
    assert (rule["metric"], rule["op"], rule["threshold"], rule["cooldown_s"], rule["min_rows"]) == (
        "drift_share", "above", 0.3, 21600, 500,
    )  # fmt: skip
    assert rule["channels"][0]["secret"] == "***"
    assert json.loads(alerts_cli("list", "--model", "other", "--json").out) == []

    store.evaluate(None, result(0.42), T0)
    with Notifier(store.registry, retry_delays=FAST) as notifier:
        for notice in store.evaluate(None, result(0.1), T0 + timedelta(hours=1)):
            notifier.notify(notice)
        notifier.flush(30)
    shown = alerts_cli("events", "1")
    assert shown.code == 0 and "resolved" in shown.out and "delivered (1 try)" in shown.out
    assert "pending" in shown.out  # the fired notice was never handed to a notifier
    assert [e["kind"] for e in json.loads(alerts_cli("events", "1", "--json").out)] == ["resolved", "fired"]

    tested = alerts_cli("test", "1")
    assert tested.code == 0 and "delivered" in tested.out
    assert json.loads(hook.requests[-1][2])["kind"] == "test"

    assert "disabled" in alerts_cli("disable", "1").out and "disabled" in alerts_cli().out
    assert alerts_cli("enable", "1").code == 0
    assert "deleted" in alerts_cli("delete", "1").out
    assert "no alert rules yet" in alerts_cli().out


def test_cli_test_reports_a_dead_channel(alerts_cli: Cli) -> None:
    dead = f"http://127.0.0.1:{free_port()}/hook"
    assert alerts_cli("add", "churn", "--metric", "error_rate", "--above", "0.1", "--slack", dead).code == 0
    tested = alerts_cli("test", "1")
    assert tested.code == 1
    assert "slack http://127.0.0.1" in tested.out and "FAILED: ConnectError" in tested.out
    assert "1 of 1 channel(s) of alert rule 1 failed" in tested.err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--metric", "drifty", "--above", "0.3"], "unknown metric 'drifty'"),
        (
            ["--metric", "drift_share", "--above", "0.3", "--below", "0.1"],
            "give either --above or --below, not both",
        ),
        (["--metric", "drift_share"], "give the threshold with --above X or --below X"),
        (["--metric", "drift_share", "--above", "0.3", "--cooldown", "6hours"], "invalid cooldown '6hours'"),
        (
            ["--metric", "drift_share", "--above", "0.3", "--webhook", "example.com/hook"],
            "must be an http:// or https:// URL",
        ),
        (["--metric", "drift_share", "--above", "0.3", "--email", "a@example.com"], "set LIVEML_SMTP_HOST"),
        (["--metric", "drift_share", "--above", "0.3", "--secret", "x"], "give --webhook URL too"),
    ],
)
def test_cli_bad_input_is_one_clear_line(
    refusing_cli: Cli, refusing_store: AlertStore, args: list[str], message: str
) -> None:
    ran = refusing_cli("add", "churn", *args)
    assert ran.code == 2 and message in ran.err and "Traceback" not in ran.err, ran.err
    assert len(ran.err.strip().splitlines()) == 1
    assert refusing_store.list() == []  # and no rule was stored


def test_cli_unknown_model_and_rule(alerts_cli: Cli) -> None:
    ran = alerts_cli("add", "fraud", "--metric", "drift_share", "--above", "0.3")
    assert ran.code == 1 and "fraud" in ran.err and "Traceback" not in ran.err
    gone = alerts_cli("delete", "42")
    assert gone.code == 1 and "no alert rule 42" in gone.err

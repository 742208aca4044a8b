"""``liveml alerts``: alert rules on monitoring metrics — list (default), add, delete, enable, disable,
events, and test (send a test notice through a rule's channels now)."""

from __future__ import annotations

from typing import Annotated

import typer

from liveml.cli.context import open_registry, settings_of
from liveml.cli.render import console, print_json, table, when
from liveml.errors import Invalid, Unavailable
from liveml.monitoring.alerts import AlertRule, AlertStore, format_duration, format_value, notice_for
from liveml.monitoring.channels import SmtpConfig, channel_label
from liveml.monitoring.notifier import Notifier
from liveml.registry.schema import utcnow

alerts_app = typer.Typer(
    help="Alert rules on monitoring metrics: list (default), add, delete, enable, disable, events, test.",
    invoke_without_command=True,
)

JsonOut = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]
RuleId = Annotated[int, typer.Argument(help="Rule id (see `liveml alerts`).")]
ModelFilter = Annotated[str | None, typer.Option("--model", help="Only this model's rules.")]


def describe(rule: AlertRule) -> str:
    channels = ", ".join(channel_label(c) for c in rule.channels) or "Prometheus only"
    return (
        f"alert rule {rule.id}: {rule.model} {rule.condition} ({rule.severity}; window "
        f"{format_duration(rule.window_s)}, min {rule.min_rows:,} rows, cooldown "
        f"{format_duration(rule.cooldown_s)}) → {channels}"
    )


@alerts_app.callback()
def alerts_root(ctx: typer.Context, json_out: JsonOut = False, model: ModelFilter = None) -> None:
    """Alert rules: what they watch, their state, when they last fired."""
    if ctx.invoked_subcommand is None:
        list_rules(ctx, json_out, model)


@alerts_app.command("list")
def list_rules(ctx: typer.Context, json_out: JsonOut = False, model: ModelFilter = None) -> None:
    """Every rule with its condition, channels (secrets hidden), state, last value and last firing."""
    with open_registry(ctx) as registry:
        rules = AlertStore(registry).list(model)
    if json_out:
        print_json(rules)
        return
    if not rules:
        console().print(
            "no alert rules yet: add one with `liveml alerts add churn --metric drift_share --above 0.3 "
            "--webhook https://example.com/hook`",
            markup=False,
        )
        return
    table(
        None,
        [
            "id",
            "model",
            "metric",
            "condition",
            "severity",
            "window",
            "min rows",
            "cooldown",
            "channels",
            "state",
            "last value",
            "last fired",
        ],
        [
            (
                r.id,
                r.model,
                r.metric,
                f"{r.op} {format_value(r.threshold)}",
                r.severity,
                format_duration(r.window_s),
                f"{r.min_rows:,}",
                format_duration(r.cooldown_s),
                "\n".join(channel_label(c) for c in r.channels) or "Prometheus only",
                r.state if r.enabled else "disabled",
                "" if r.last_value is None else format_value(r.last_value),
                when(r.last_fired_at) if r.last_fired_at else "never",
            )
            for r in rules
        ],
    )


@alerts_app.command("add")
def add(
    ctx: typer.Context,
    model: Annotated[str, typer.Argument(help="Model name.")],
    metric: Annotated[
        str,
        typer.Option(
            "--metric",
            help="drift_share, feature:<column>, prediction_drift, multivariate, accuracy (or another realized "
            "metric), estimated_accuracy, error_rate, latency_p95_ms or rows.",
        ),
    ],
    above: Annotated[float | None, typer.Option("--above", help="Fire when the value is above this.")] = None,
    below: Annotated[float | None, typer.Option("--below", help="Fire when the value is below this.")] = None,
    severity: Annotated[str, typer.Option("--severity", help="info, warning or critical.")] = "warning",
    window: Annotated[str, typer.Option("--window", help="Prediction-log window the metric covers.")] = "24h",
    min_rows: Annotated[
        int, typer.Option("--min-rows", help="Fewer rows in the window: no data, no alert.")
    ] = 100,
    cooldown: Annotated[
        str, typer.Option("--cooldown", help="Least time between two fired notices of this rule.")
    ] = "1h",
    webhook: Annotated[
        list[str] | None, typer.Option("--webhook", help="POST signed JSON here (repeatable).")
    ] = None,
    secret: Annotated[
        str | None, typer.Option("--secret", help="HMAC-SHA256 key signing the --webhook bodies.")
    ] = None,
    slack: Annotated[
        list[str] | None, typer.Option("--slack", help="Slack-compatible incoming webhook URL (repeatable).")
    ] = None,
    email: Annotated[
        list[str] | None, typer.Option("--email", help="Send e-mail to this address (repeatable).")
    ] = None,
    json_out: JsonOut = False,
) -> None:
    """Add a rule: `liveml alerts add churn --metric drift_share --above 0.3 --min-rows 500 --cooldown 6h
    --webhook https://…`. Rules are checked each time the model's monitor runs."""
    if above is not None and below is not None:
        raise Invalid("give either --above or --below, not both")
    if above is None and below is None:
        raise Invalid("give the threshold with --above X or --below X")
    if secret and not webhook:
        raise Invalid("--secret signs webhook bodies; give --webhook URL too")
    channels: list[dict[str, object]] = [
        {"type": "webhook", "url": u, "secret": secret} for u in webhook or []
    ]
    channels += [{"type": "slack", "url": u} for u in slack or []]
    if email:
        channels.append({"type": "email", "to": list(email)})
    smtp = SmtpConfig.load(settings_of(ctx))
    with open_registry(ctx) as registry:
        rule = AlertStore(registry).add(
            model,
            metric,
            above=above,
            below=below,
            severity=severity,
            window=window,
            min_rows=min_rows,
            cooldown=cooldown,
            channels=channels,
            smtp_configured=smtp is not None,
        )
    if json_out:
        print_json(rule)
        return
    console().print(describe(rule), markup=False)


@alerts_app.command("delete")
def delete(ctx: typer.Context, rule_id: RuleId) -> None:
    """Remove a rule and its event history."""
    with open_registry(ctx) as registry:
        gone = AlertStore(registry).delete(rule_id)
    console().print(f"alert rule {gone.id} deleted ({gone.model} {gone.condition})", markup=False)


@alerts_app.command("disable")
def disable(ctx: typer.Context, rule_id: RuleId) -> None:
    """Stop evaluating a rule (kept, with its history) until enabled again."""
    with open_registry(ctx) as registry:
        rule = AlertStore(registry).disable(rule_id)
    console().print(f"alert rule {rule.id} disabled; `liveml alerts enable {rule.id}` turns it back on")


@alerts_app.command("enable")
def enable(ctx: typer.Context, rule_id: RuleId) -> None:
    """Evaluate a disabled rule again from the monitor's next run."""
    with open_registry(ctx) as registry:
        rule = AlertStore(registry).enable(rule_id)
    console().print(f"alert rule {rule.id} enabled ({rule.model} {rule.condition})", markup=False)


@alerts_app.command("events")
def events(
    ctx: typer.Context,
    rule_id: RuleId,
    limit: Annotated[int, typer.Option("--limit", min=1, help="Show at most this many events.")] = 50,
    json_out: JsonOut = False,
) -> None:
    """A rule's fired and resolved notices, newest first, with how each channel's delivery went."""
    with open_registry(ctx) as registry:
        found = AlertStore(registry).events(rule_id, limit)
    if json_out:
        print_json(found)
        return
    if not found:
        console().print(f"alert rule {rule_id} has not fired yet")
        return
    table(
        None,
        ["when", "kind", "value", "rows", "message", "deliveries"],
        [
            (
                when(e.at),
                e.kind,
                format_value(e.value),
                "" if e.rows is None else f"{e.rows:,}",
                e.message,
                "\n".join(_delivery(d) for d in e.deliveries) or "Prometheus only",
            )
            for e in found
        ],
    )


def _delivery(d: dict[str, object]) -> str:
    tries = d.get("attempts") or 0
    text = f"{d.get('channel')}: {d.get('status')}"
    if tries:
        text += f" ({tries} {'try' if tries == 1 else 'tries'})"
    return text + (f" — {d['error']}" if d.get("error") and d.get("status") != "delivered" else "")


@alerts_app.command("test")
def test(ctx: typer.Context, rule_id: RuleId, json_out: JsonOut = False) -> None:
    """Send a test notice (kind "test") through the rule's channels now and print each one's outcome."""
    settings = settings_of(ctx)
    with open_registry(ctx) as registry:
        rule = AlertStore(registry).get(rule_id)
    if not rule.channels:
        console().print(f"alert rule {rule.id} has no channels: it shows only in Prometheus (/metrics)")
        return
    notice = notice_for(rule, "test", rule.last_value, rule.last_rows, None, None, utcnow())
    with Notifier(smtp=SmtpConfig.load(settings), retry_delays=()) as notifier:
        outcomes = notifier.send_now(notice)
    if json_out:
        print_json(outcomes)
    else:
        for o in outcomes:
            mark = "delivered" if o.status == "delivered" else f"FAILED: {o.error}"
            console().print(f"{o.channel}: {mark}", markup=False)
    failed = [o for o in outcomes if o.status != "delivered"]
    if failed:
        raise Unavailable(f"{len(failed)} of {len(outcomes)} channel(s) of alert rule {rule.id} failed")


__all__ = ["alerts_app"]

"""``liveml audit``: the audit trail — list (default), verify the hash chain, export, and the head to keep
elsewhere (a ticket, WORM storage) so that even a rewrite of the whole chain is caught."""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Annotated, Any

import typer

from liveml.cli.context import open_registry
from liveml.cli.render import console, error_console, print_json, table, when
from liveml.errors import Invalid
from liveml.security import audit
from liveml.security.chain import AuditEntry

audit_app = typer.Typer(
    help="The audit trail of every change: list (default), verify, export, head.",
    invoke_without_command=True,
)

JsonOut = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]
Since = Annotated[
    str | None,
    typer.Option("--since", help="From this time on: an ISO date or time, or a duration back from now (7d)."),
]
Until = Annotated[
    str | None, typer.Option("--until", help="Before this time: an ISO date or time, or a duration (1h).")
]
Action = Annotated[
    str | None,
    typer.Option("--action", help="Only this action (alias.set), or a group of them (alias)."),
]
ActorOption = Annotated[
    str | None, typer.Option("--actor", help="Only this actor (user:alice, key:ab12cd34...).")
]
Limit = Annotated[int, typer.Option("--limit", min=1, help="How many, newest first.")]
Head = Annotated[
    str | None,
    typer.Option(
        "--head", help="SEQ:HASH kept elsewhere (`liveml audit head`): that entry must still carry that hash."
    ),
]


def _change(entry: AuditEntry) -> str:
    """``before → after`` in one short line: the keys that changed, or the whole side that exists."""
    before, after = entry.before or {}, entry.after or {}
    if entry.before is not None and entry.after is not None:
        keys = [k for k in dict.fromkeys([*before, *after]) if before.get(k) != after.get(k)]
        return (
            ", ".join(f"{k}: {_short(before.get(k))} → {_short(after.get(k))}" for k in keys) or "no change"
        )
    side, arrow = (after, "+") if entry.after is not None else (before, "-")
    return arrow + " " + ", ".join(f"{k}={_short(v)}" for k, v in side.items() if v not in (None, "", [], {}))


def _short(value: Any, width: int = 40) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= width else text[: width - 1] + "…"


@audit_app.callback()
def audit_root(
    ctx: typer.Context,
    since: Since = None,
    until: Until = None,
    action: Action = None,
    actor: ActorOption = None,
    limit: Limit = 50,
    json_out: JsonOut = False,
) -> None:
    """Who changed what, when, from where: newest first."""
    if ctx.invoked_subcommand is None:
        list_entries(ctx, since, until, action, actor, limit, json_out)


@audit_app.command("list")
def list_entries(
    ctx: typer.Context,
    since: Since = None,
    until: Until = None,
    action: Action = None,
    actor: ActorOption = None,
    limit: Limit = 50,
    json_out: JsonOut = False,
) -> None:
    """Entries newest first: seq, time, actor, address, action, target and what changed."""
    start = audit.parse_time(since, field="--since") if since else None
    end = audit.parse_time(until, field="--until") if until else None
    with open_registry(ctx) as registry:
        found = list(
            audit.entries(
                registry.db,
                since=start,
                until=end,
                action=action,
                actor=actor,
                limit=limit,
                newest_first=True,
            )
        )
    if json_out:
        print_json([audit.entry_record(e) for e in found])
        return
    if not found:
        console().print("no audit entries" + (" match" if since or until or action or actor else " yet"))
        return
    table(
        None,
        ["seq", "when", "actor", "address", "action", "target", "change"],
        [(e.seq, when(e.at), e.actor, e.address, e.action, e.target, _change(e)) for e in found],
    )


@audit_app.command("verify")
def verify(ctx: typer.Context, head: Head = None, json_out: JsonOut = False) -> None:
    """Check the hash chain: exit 0 when intact, 1 naming each edited, deleted, inserted or reordered entry."""
    anchor = audit.parse_anchor(head) if head else None
    with open_registry(ctx) as registry:
        report = audit.verify(registry.db, anchor=anchor)
    if json_out:
        print_json(report)
    elif report.ok:
        if report.head_seq is None:
            console().print("audit log intact: no entries yet")
        else:
            console().print(
                f"audit log intact: {report.entries_checked:,} entries, head {report.head_seq}:{report.head_hash}"
            )
    else:
        out = error_console()
        for problem in report.problems:
            out.print(
                f"entry {problem.seq}: {problem.kind}: {problem.message}", markup=False, highlight=False
            )
        if report.undiagnosed:
            out.print(f"... and {report.undiagnosed:,} more damaged entries", markup=False)
        out.print(
            f"audit log TAMPERED: {len(report.problems)} problem(s) in {report.entries_checked:,} entries",
            markup=False,
        )
    if not report.ok:
        raise typer.Exit(1)


@audit_app.command("head")
def show_head(ctx: typer.Context, json_out: JsonOut = False) -> None:
    """The newest entry's SEQ:HASH: keep it outside the database, later pass it to `verify --head`."""
    with open_registry(ctx) as registry:
        last = audit.head(registry.db)
    if json_out:
        print_json(None if last is None else {"seq": last.seq, "hash": last.hash, "at": last.at.isoformat()})
        return
    if last is None:
        console().print("no audit entries yet")
        return
    console().print(f"{last.seq}:{last.hash}", markup=False)


@audit_app.command("export")
def export(
    ctx: typer.Context,
    since: Since = None,
    until: Until = None,
    action: Action = None,
    actor: ActorOption = None,
    format: Annotated[str, typer.Option("--format", help="jsonl or csv.")] = "jsonl",
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write to this file (default: stdout).")
    ] = None,
) -> None:
    """Every entry in the range, oldest first, hashes included; streamed, so any size fits."""
    if format not in audit.EXPORT_FORMATS:
        raise Invalid(f"unknown export format {format!r}: use --format jsonl or --format csv")
    filters: dict[str, Any] = {
        "since": audit.parse_time(since, field="--since") if since else None,
        "until": audit.parse_time(until, field="--until") if until else None,
        "action": action,
        "actor": actor,
    }
    with open_registry(ctx) as registry:
        if output is None:
            audit.export(registry.db, sys.stdout, format=format, **filters)
            return
        target = output.expanduser().absolute()
        if not target.parent.is_dir():
            raise Invalid(f"--output {output}: the folder {target.parent} does not exist")
        # written next to the target and renamed: a failed export never leaves half a file under its name
        fd, partial = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
                count = audit.export(registry.db, handle, format=format, **filters)
            os.replace(partial, target)
        except BaseException:
            Path(partial).unlink(missing_ok=True)
            raise
    error_console().print(f"exported {count:,} audit entries to {target}", markup=False)

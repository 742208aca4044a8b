"""Commands over models and versions: init, push, models, versions, show, delete, formats."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from liveml.cli.context import key_values, open_registry, option_values, settings_of
from liveml.cli.render import console, print_json, size, table, when
from liveml.errors import Invalid
from liveml.registry.names import parse_ref
from liveml.registry.prepare import load_signature_file
from liveml.registry.types import ModelVersion
from liveml.runtimes import runtimes

JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON for scripts instead of a table.")]


def init(ctx: typer.Context) -> None:
    """Create the data home and registry database, and the first admin API key (safe to run again)."""
    from liveml.cli.keys import ensure_admin_key

    settings = settings_of(ctx)
    with open_registry(ctx, create=True) as registry:
        console().print(f"liveml home: {settings.home_path}")
        console().print(f"database:    {registry.db.display_url}")
        console().print(f"artifacts:   {registry.store.root}")
        admin = ensure_admin_key(registry, settings)
    where = settings.resolved_credentials_file
    if admin is None:
        console().print(f"API keys:    an admin key exists already (the CLI sends the key in {where})")
        return
    console().print(f"admin key:   {admin.secret}", markup=False)
    console().print(
        f"             shown this once; saved to {where} (readable by you only), which the CLI and "
        "liveml.Client send. Keep it secret; `liveml keys create --role predictor` makes keys for clients.",
        markup=False,
    )


def push(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Model name, e.g. churn.")],
    path: Annotated[
        Path,
        typer.Argument(
            help="Model file (.joblib, .pkl, .skops, .onnx, .pt, .pt2, .json, .ubj, .txt, .py) or folder."
        ),
    ],
    alias: Annotated[
        list[str] | None,
        typer.Option("--alias", "-a", help="Alias to point at the new version (repeatable)."),
    ] = None,
    reference: Annotated[
        str | None, typer.Option(help="Training/reference data (CSV, Parquet, JSON lines) to profile.")
    ] = None,
    example: Annotated[
        str | None,
        typer.Option(help="A few input rows (CSV, Parquet, JSON lines) kept as the input example."),
    ] = None,
    signature: Annotated[
        Path | None, typer.Option(help="JSON file with the input signature, overriding inference.")
    ] = None,
    description: Annotated[str, typer.Option(help="What this version is.")] = "",
    tag: Annotated[list[str] | None, typer.Option(help="KEY=VALUE tag (repeatable).")] = None,
    metric: Annotated[list[str] | None, typer.Option(help="NAME=NUMBER metric (repeatable).")] = None,
    format: Annotated[
        str | None,
        typer.Option("--format", help="Skip detection and use this format (see `liveml formats`)."),
    ] = None,
    runtime_option: Annotated[
        list[str] | None, typer.Option(help="KEY=VALUE passed to the runtime (repeatable).")
    ] = None,
    data_hash: Annotated[str | None, typer.Option(help="Lineage: hash or id of the training data.")] = None,
    code_commit: Annotated[str | None, typer.Option(help="Lineage: commit of the training code.")] = None,
    parent: Annotated[
        int | None, typer.Option("--parent", help="Lineage: the version this one was derived from.")
    ] = None,
    compile: Annotated[
        bool,
        typer.Option(
            "--compile/--no-compile",
            help="Also store a faster compiled form (ONNX), served when checked equal.",
        ),
    ] = True,
    json_out: JsonFlag = False,
) -> None:
    """Register a model file as a new version."""
    with open_registry(ctx) as registry:
        version = registry.push(
            name,
            path,
            aliases=alias or [],
            reference=reference,
            example=example,
            signature=load_signature_file(signature) if signature is not None else None,
            description=description,
            tags=key_values(tag, what="tag", example="--tag team=risk"),
            metrics=key_values(metric, what="metric", example="--metric auc=0.91"),  # type: ignore[arg-type]
            format=format,
            runtime_options=option_values(runtime_option),
            data_hash=data_hash,
            code_commit=code_commit,
            parent_version=parent,
            compile=compile,
        )
    if json_out:
        print_json(version)
        return
    aliases = f", aliases: {', '.join(version.aliases)}" if version.aliases else ""
    console().print(
        f"pushed {version.ref} ({version.format}, {version.task}, {size(version.size)}, sha256 "
        f"{version.sha256[:12]}){aliases}"
    )


def models(ctx: typer.Context, json_out: JsonFlag = False) -> None:
    """List models: name, latest version, aliases, format, last update."""
    with open_registry(ctx) as registry:
        found = registry.models()
    if json_out:
        print_json(found)
        return
    if not found:
        console().print("no models yet; push one with `liveml push NAME FILE`")
        return
    table(
        None,
        ["name", "latest", "versions", "aliases", "format", "updated"],
        [
            (m.name, m.latest_version, m.versions, _aliases(m.aliases), m.format, when(m.updated_at))
            for m in found
        ],
    )


def versions(
    ctx: typer.Context, name: Annotated[str, typer.Argument(help="Model name.")], json_out: JsonFlag = False
) -> None:
    """List every version of a model with its aliases, format, sha256, and who pushed it when."""
    with open_registry(ctx) as registry:
        found = registry.versions(name)
    if json_out:
        print_json(found)
        return
    table(
        None,
        ["version", "aliases", "format", "task", "sha256", "size", "pushed by", "pushed at"],
        [
            (
                v.version,
                ", ".join(v.aliases),
                v.format,
                v.task,
                v.sha256[:12],
                size(v.size),
                v.lineage.pushed_by,
                when(v.lineage.pushed_at),
            )
            for v in found
        ],
    )


def show(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(help="NAME, NAME:VERSION or NAME@ALIAS.")],
    json_out: JsonFlag = False,
) -> None:
    """Show one version: signature, metrics, tags, lineage and the reference profile summary."""
    with open_registry(ctx) as registry:
        version = registry.get(ref)
        profile = registry.reference_profile(parse_ref(version.ref))
    if json_out:
        data = version.model_dump(mode="json")
        data["name"] = data["model"]
        data["reference_profile"] = profile.model_dump(mode="json") if profile is not None else None
        print_json(data)
        return
    _show_version(version)
    if profile is not None:
        table(
            f"reference profile ({profile.rows} rows)",
            ["column", "role", "kind", "missing", "summary"],
            [(r.column, r.role, r.kind, f"{r.missing_share:.1%}", r.text) for r in profile.summary()],
        )
    else:
        console().print("reference profile: none (push with --reference to record one)")


def _show_version(v: ModelVersion) -> None:
    out = console()
    out.print(
        f"[bold]{v.model}[/] version {v.version}"
        + (f"  aliases: {', '.join(v.aliases)}" if v.aliases else "")
    )
    lines = [
        ("format", f"{v.format} ({v.framework})"),
        ("task", v.task + (f", classes {list(v.classes)}" if v.classes else "")),
        ("description", v.description or "-"),
        ("sha256", v.sha256),
        ("size", size(v.size)),
        ("file", v.lineage.file_name),
        ("pushed", f"{when(v.lineage.pushed_at)} by {v.lineage.pushed_by}"),
        ("data hash", v.lineage.data_hash or "-"),
        ("code commit", v.lineage.code_commit or "-"),
        ("parent", str(v.lineage.parent_version) if v.lineage.parent_version else "-"),
        ("tags", ", ".join(f"{k}={val}" for k, val in v.tags.items()) or "-"),
        ("metrics", ", ".join(f"{k}={val:g}" for k, val in v.metrics.items()) or "-"),
        ("compiled", _compiled(v)),
    ]
    for key, value in lines:
        out.print(f"  {key:<12} {value}", markup=False)
    table(
        f"signature (from {v.signature.source})",
        ["", "column", "type"],
        [("in", c.name, c.type) for c in v.signature.inputs]
        + [("out", c.name, c.type) for c in v.signature.outputs],
    )


def delete(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(help="NAME:VERSION to delete.")],
    force: Annotated[
        bool, typer.Option("--force", help="Delete even if aliases point at it (they are removed).")
    ] = False,
) -> None:
    """Delete one version (refused while an alias points at it, unless --force)."""
    parsed = parse_ref(ref)
    if parsed.version is None:
        raise Invalid(f"say which version to delete: NAME:VERSION (e.g. {parsed.name}:3)")
    with open_registry(ctx) as registry:
        deleted = registry.delete_version(parsed.name, parsed.version, force=force)
    dropped = f"; removed aliases: {', '.join(deleted.aliases)}" if deleted.aliases else ""
    console().print(f"deleted {deleted.ref}{dropped}")


def formats(json_out: JsonFlag = False) -> None:
    """List the model formats this installation can load."""
    rows: list[dict[str, Any]] = [
        {"format": name, "label": cls.label, "extensions": list(cls.extensions), "extra": cls.extra}
        for name, cls in runtimes().items()
    ]
    if json_out:
        print_json(rows)
        return
    table(
        None,
        ["format", "what", "extensions", "install"],
        [
            (
                r["format"],
                r["label"],
                " ".join(r["extensions"]) or "folder",
                escape(f"liveml[{r['extra']}]") if r["extra"] else "built in",
            )
            for r in rows
        ],
    )


def _compiled(v: ModelVersion) -> str:
    report = v.compile_report or {}
    if v.compiled is not None:
        return f"{v.compiled.format}, {size(v.compiled.size)}, served in place of the original ({report.get('reason', '')})"
    return f"no ({report['reason']})" if report.get("reason") else "no"


def _aliases(aliases: dict[str, int]) -> str:
    return ", ".join(f"{a}→{v}" for a, v in sorted(aliases.items()))

"""``liveml keys``: create, list and revoke API keys (and the admin key ``liveml init`` makes)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

import typer

from liveml.cli.context import open_registry, settings_of
from liveml.cli.render import console, error_console, print_json, table, when
from liveml.registry import Registry
from liveml.security.credentials import write_credentials
from liveml.security.identity import Actor, acting_as
from liveml.security.keys import ROLES, ApiKey, KeyStore, NewKey, parse_duration
from liveml.settings import Settings

keys_app = typer.Typer(help="API keys: who may call the server, with which role.", no_args_is_help=True)
JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON for scripts instead of a table.")]


def local_user(settings: Settings) -> str:
    return f"user:{settings.user}"


@contextmanager
def key_store(ctx: typer.Context) -> Iterator[KeyStore]:
    """The registry's keys, changed as the local user acting as admin (what the audit trail records)."""
    settings = settings_of(ctx)
    with open_registry(ctx) as registry, acting_as(Actor(local_user(settings), "admin", None)):
        yield KeyStore(registry.db)


@keys_app.command("create")
def create(
    ctx: typer.Context,
    role: Annotated[str, typer.Option("--role", help=f"One of: {', '.join(ROLES)}.")],
    models: Annotated[
        str | None,
        typer.Option(
            "--models", help="Predictor keys: only these models, comma-separated (e.g. churn,fraud)."
        ),
    ] = None,
    expires: Annotated[
        str | None, typer.Option("--expires", help="Lifetime, e.g. 90d, 12h, 2w, 1y (default: never).")
    ] = None,
    description: Annotated[str, typer.Option("--description", help="What or who the key is for.")] = "",
    json_out: JsonFlag = False,
) -> None:
    """Create a key and print it, once: only its hash is kept. Stdout is the key alone (or --json)."""
    lifetime = parse_duration(expires) if expires else None
    names = [m.strip() for m in models.split(",") if m.strip()] if models else None
    settings = settings_of(ctx)
    with key_store(ctx) as store:
        new = store.create(
            role,
            created_by=local_user(settings),
            models=names,
            expires_in=lifetime,
            description=description,
        )
    if json_out:
        print_json({"key": new.secret, **new.key.to_json()})
    else:
        typer.echo(new.secret)
    error_console().print(
        f"created API key {new.key.id} ({_summary(new.key)}). This is the only time the key is shown: "
        "store it now (a secret manager, or LIVEML_API_KEY); `liveml keys revoke "
        f"{new.key.id}` ends it.",
        highlight=False,
        markup=False,
    )


@keys_app.command("list")
def list_keys(ctx: typer.Context, json_out: JsonFlag = False) -> None:
    """Every key: id, role, models, created, expires, last used, status (never the key itself)."""
    with key_store(ctx) as store:
        keys = store.list()
    if json_out:
        print_json([k.to_json() for k in keys])
        return
    if not keys:
        console().print("no API keys yet: `liveml init` creates the admin key, `liveml keys create` others")
        return
    table(
        None,
        ["id", "role", "models", "status", "created", "expires", "last used", "by", "description"],
        [
            (
                k.id,
                k.role,
                ",".join(k.models) if k.models is not None else "all",
                k.status,
                when(k.created_at),
                when(k.expires_at) if k.expires_at else "never",
                when(k.last_used_at) if k.last_used_at else "",
                k.created_by,
                k.description,
            )
            for k in keys
        ],
    )


@keys_app.command("revoke")
def revoke(
    ctx: typer.Context, key_id: Annotated[str, typer.Argument(help="The key's id (`liveml keys list`).")]
) -> None:
    """Revoke a key: running servers refuse it within seconds."""
    settings = settings_of(ctx)
    with key_store(ctx) as store:
        key = store.revoke(key_id, by=local_user(settings))
    console().print(f"revoked API key {key.id} ({key.role}); servers refuse it within a few seconds")


def ensure_admin_key(registry: Registry, settings: Settings) -> NewKey | None:
    """``liveml init``'s part: the first admin key, written to the credentials file (0600) and
    returned to be shown once; None when an active admin key exists already."""
    with acting_as(Actor(local_user(settings), "admin", None)):
        new = KeyStore(registry.db).ensure_admin(created_by=local_user(settings))
    if new is not None:
        write_credentials(settings.resolved_credentials_file, new.secret)
    return new


def _summary(key: ApiKey) -> str:
    models = f", models {', '.join(key.models)}" if key.models else ""
    expires = f", expires {when(key.expires_at)}" if key.expires_at else ", never expires"
    return f"role {key.role}{models}{expires}"


__all__ = ["ensure_admin_key", "keys_app"]

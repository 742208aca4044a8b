"""Alembic environment: runs on the connection liveml hands it (see ``liveml.registry.db``)."""

from __future__ import annotations

from alembic import context

from liveml.registry.schema import Base

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - liveml always passes its own connection
    raise RuntimeError("liveml migrations run through liveml.registry.db.Database.upgrade()")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()

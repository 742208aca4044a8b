"""The model registry: models, immutable versions, movable aliases with history, and their artifacts."""

from __future__ import annotations

import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from liveml.errors import Conflict, Invalid, LivemlError, NotFound, Unavailable
from liveml.registry.compile import Compiled
from liveml.registry.db import Database
from liveml.registry.names import (
    DEFAULT_ALIAS,
    LATEST,
    ModelRef,
    parse_ref,
    parse_version,
    validate_alias,
    validate_name,
    validate_tag,
)
from liveml.registry.schema import AliasEventRow, AliasRow, ModelRow, VersionRow, utcnow
from liveml.registry.store import ArtifactStore, hash_file
from liveml.registry.types import AliasEvent, CompiledForm, Lineage, ModelSummary, ModelVersion
from liveml.security import audit
from liveml.settings import Settings
from liveml.signature import Signature

if TYPE_CHECKING:  # pushing and profiles load on use: opening a registry to run a job needs neither
    from liveml.registry.profile import ReferenceProfile

PUSH_ATTEMPTS = 20


class Registry:
    """The catalogue of models. ``Registry()`` opens the data home of the current settings."""

    def __init__(self, settings: Settings | None = None, *, create: bool = False) -> None:
        self.settings = settings or Settings()
        self.db = Database(self.settings)
        if create:
            self.settings.home_path.mkdir(parents=True, exist_ok=True)
            self.db.upgrade()
        else:
            self.db.ensure_ready()
        self.store = ArtifactStore(
            self.settings.resolved_artifact_root,
            cache_dir=self.settings.cache_dir,
            storage_options=self.settings.artifact_storage_options,
        )

    @classmethod
    def init(cls, settings: Settings | None = None) -> Registry:
        """Create the data home and database (or bring them up to date); safe to run again."""
        return cls(settings, create=True)

    def close(self) -> None:
        self.db.dispose()

    def __enter__(self) -> Registry:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # -- push ------------------------------------------------------------------------------
    def push(
        self,
        name: str,
        path: str | Path,
        *,
        aliases: Sequence[str] = (),
        reference: str | Path | None = None,
        example: str | Path | None = None,
        signature: Signature | None = None,
        description: str = "",
        tags: Mapping[str, str] | None = None,
        metrics: Mapping[str, float] | None = None,
        format: str | None = None,
        runtime_options: Mapping[str, Any] | None = None,
        compile: bool = True,
        data_hash: str | None = None,
        code_commit: str | None = None,
        parent_version: int | None = None,
        profile: ReferenceProfile | None = None,
        precompiled: Compiled | None = None,
    ) -> ModelVersion:
        """Check, store and record a new version; all of it happens, or none of it does. ``profile``
        carries a reference profile computed elsewhere (a model bundle) when no ``reference`` data is given;
        ``precompiled`` a compiled form already checked against this artifact (a bundle's), kept as it is."""
        name = validate_name(name)
        aliases = [validate_alias(a) for a in dict.fromkeys(aliases)]
        clean_tags = dict(validate_tag(str(k), str(v)) for k, v in (tags or {}).items())
        clean_metrics = _metrics(metrics or {})
        if parent_version is not None:
            parent_version = parse_version(parent_version)
        from liveml.registry.prepare import prepare

        with tempfile.TemporaryDirectory(prefix="liveml-push-") as workdir:
            prepared = prepare(
                Path(path),
                workdir=Path(workdir),
                format=format,
                runtime_options=dict(runtime_options or {}),
                reference=reference,
                example=example,
                signature=signature,
                compile=compile,
                pickle_policy=self.settings.pickle_policy,
                precompiled=precompiled,
            )
            if parent_version is not None:
                self._check_parent(name, parent_version)
            sha256, size = hash_file(prepared.file)
            created = self.store.put(prepared.file, sha256)
            compiled = prepared.compiled
            compiled_sha: str | None = None
            compiled_size: int | None = None
            compiled_created = False
            if compiled is not None and compiled.path is not None:
                compiled_sha, compiled_size = hash_file(compiled.path)
                try:
                    compiled_created = self.store.put(compiled.path, compiled_sha)
                except BaseException:
                    self._discard_blob(sha256, created)
                    raise
            described = prepared.description
            try:
                for attempt in range(PUSH_ATTEMPTS):
                    try:
                        with self.db.session() as session:
                            self.db.lock_key(session, f"artifact:{sha256}")
                            if compiled_sha:
                                self.db.lock_key(session, f"artifact:{compiled_sha}")
                            model = self._model_for_push(session, name)
                            highest = session.scalar(
                                select(func.max(VersionRow.version)).where(VersionRow.model_id == model.id)
                            )
                            number = max(model.last_version or 0, highest or 0) + 1
                            model.last_version = number
                            now = utcnow()
                            row = VersionRow(
                                model_id=model.id,
                                version=number,
                                format=prepared.runtime.name,
                                task=described.task,
                                framework=described.framework,
                                sha256=sha256,
                                size=size,
                                file_name=prepared.file_name,
                                description=description,
                                signature=prepared.signature.model_dump(mode="json"),
                                input_example=prepared.input_example,
                                reference_profile=prepared.profile_json
                                or (profile.to_json() if profile is not None else None),
                                metrics=clean_metrics,
                                tags=clean_tags,
                                runtime_options=dict(runtime_options or {}),
                                classes=list(described.classes) if described.classes is not None else None,
                                created_by=self.settings.user,
                                created_at=now,
                                data_hash=data_hash,
                                code_commit=code_commit,
                                parent_version=parent_version,
                                compiled_format=compiled.report.format if compiled and compiled_sha else None,
                                compiled_sha256=compiled_sha,
                                compiled_size=compiled_size,
                                compile_report=compiled.report.model_dump(mode="json") if compiled else None,
                            )
                            session.add(row)
                            session.flush()
                            model.updated_at = now
                            audit.record_change(
                                self, session, "model.push", f"{name}:{number}", after=_pushed(row, aliases)
                            )
                            for alias in aliases:
                                self._move_alias(session, model, alias, row, action="set")
                        break
                    except IntegrityError:
                        # another process took this version number (or created the model) first: retry
                        if attempt == PUSH_ATTEMPTS - 1:
                            raise
            except BaseException:
                self._discard_blob(sha256, created)
                if compiled_sha:
                    self._discard_blob(compiled_sha, compiled_created)
                raise
            # a delete of the last other version using this content may have removed it meanwhile
            # (even when this push stored it: a failed push of the same content may have removed it)
            if not self.store.exists(sha256):
                self.store.put(prepared.file, sha256)
            compiled_path = compiled.path if compiled is not None else None
            if compiled_sha and compiled_path and not self.store.exists(compiled_sha):
                self.store.put(compiled_path, compiled_sha)
        return self.get(ModelRef(name, version=number))

    def _model_for_push(self, session: Session, name: str) -> ModelRow:
        model = session.scalar(select(ModelRow).where(ModelRow.name == name).with_for_update())
        if model is None:
            now = utcnow()
            model = ModelRow(name=name, last_version=0, created_at=now, updated_at=now)
            session.add(model)
            session.flush()
        return model

    def _check_parent(self, name: str, parent: int) -> None:
        try:
            self.get(ModelRef(name, version=parent))
        except NotFound:
            raise Invalid(
                f"parent version {parent} of {name!r} does not exist; give an existing version"
            ) from None

    def _discard_blob(self, sha256: str, created: bool) -> None:
        """Remove a blob this push stored when its metadata never landed (best effort: an orphan is harmless)."""
        if not created:
            return
        try:
            self._collect_blob(sha256)
        except Unavailable:
            # the database is locked (why the push failed): a read-only check still answers
            try:
                if not self._sha_in_use(sha256):
                    self.store.delete(sha256)
            except LivemlError:
                pass

    def _collect_blob(self, sha256: str) -> None:
        """Delete a blob no version uses. Under the artifact's lock, so a push of the same content that
        commits meanwhile either is counted here or finds the blob gone and stores it again."""
        with self.db.session() as session:
            self.db.lock_key(session, f"artifact:{sha256}")
            if session.scalar(select(func.count()).where(_uses(sha256))) == 0:
                self.store.delete(sha256)

    def _sha_in_use(self, sha256: str) -> bool:
        # read-only: must not wait for (or fail on) the write lock a failed push ran into
        with self.db.read_session() as session:
            return session.scalar(select(func.count()).where(_uses(sha256))) != 0

    # -- reading ---------------------------------------------------------------------------
    def models(self) -> list[ModelSummary]:
        with self.db.read_session() as session:
            rows = session.scalars(select(ModelRow).order_by(ModelRow.name)).all()
            out = []
            for model in rows:
                versions = session.scalars(
                    select(VersionRow).where(VersionRow.model_id == model.id).order_by(VersionRow.version)
                ).all()
                if not versions:
                    continue
                out.append(
                    ModelSummary(
                        name=model.name,
                        latest_version=versions[-1].version,
                        versions=len(versions),
                        aliases=self._aliases_of(session, model.id),
                        format=versions[-1].format,
                        updated_at=model.updated_at,
                    )
                )
            return out

    def model_names(self) -> list[str]:
        """Names of the models that have versions (cheap: the serving host asks every second)."""
        with self.db.read_session() as session:
            query = select(ModelRow.name).where(
                select(VersionRow.id).where(VersionRow.model_id == ModelRow.id).exists()
            )
            return list(session.scalars(query.order_by(ModelRow.name)).all())

    def versions(self, name: str) -> list[ModelVersion]:
        with self.db.read_session() as session:
            model = self._model(session, validate_name(name))
            rows = session.scalars(
                select(VersionRow).where(VersionRow.model_id == model.id).order_by(VersionRow.version)
            ).all()
            aliases = _by_version(self._aliases_of(session, model.id))
            return [_version(model.name, row, aliases.get(row.version, ())) for row in rows]

    def get(self, ref: str | ModelRef) -> ModelVersion:
        """Resolve ``NAME`` (alias production, else latest), ``NAME:VERSION`` or ``NAME@ALIAS``."""
        parsed = parse_ref(ref)
        with self.db.read_session() as session:
            model = self._model(session, parsed.name)
            row = self._resolve(session, model, parsed)
            aliases = _by_version(self._aliases_of(session, model.id))
            return _version(model.name, row, aliases.get(row.version, ()))

    def reference_profile(self, ref: str | ModelRef) -> ReferenceProfile | None:
        parsed = parse_ref(ref)
        with self.db.read_session() as session:
            row = self._resolve(session, self._model(session, parsed.name), parsed)
            text = row.reference_profile
        if not text:
            return None
        from liveml.registry.profile import ReferenceProfile

        return ReferenceProfile.from_json(text)

    def artifact_path(self, version: ModelVersion, *, compiled: bool = False) -> Path:
        """A local copy of the version's artifact (or its compiled form), verified against its sha256."""
        if compiled:
            if version.compiled is None:
                raise NotFound(f"{version.ref} has no compiled form")
            return self.store.fetch(version.compiled.sha256, label=f"{version.ref} (compiled)")
        return self.store.fetch(version.sha256, label=version.ref)

    def _model(self, session: Session, name: str, *, lock: bool = False) -> ModelRow:
        """The model row; ``lock`` serializes writers of one model (PostgreSQL: SELECT ... FOR UPDATE)."""
        query = select(ModelRow).where(ModelRow.name == validate_name(name))
        model = session.scalar(query.with_for_update() if lock else query)
        if model is None:
            known = session.scalars(select(ModelRow.name).order_by(ModelRow.name).limit(20)).all()
            hint = (
                f"; models: {', '.join(known)}"
                if known
                else "; the registry is empty: push one with `liveml push`"
            )
            raise NotFound(f"no model named {name!r}{hint}")
        return model

    def _resolve(self, session: Session, model: ModelRow, ref: ModelRef) -> VersionRow:
        query = select(VersionRow).where(VersionRow.model_id == model.id)
        if ref.version is not None:
            row = session.scalar(query.where(VersionRow.version == ref.version))
            if row is None:
                numbers = session.scalars(
                    select(VersionRow.version).where(VersionRow.model_id == model.id)
                ).all()
                raise NotFound(
                    f"model {model.name!r} has no version {ref.version}; versions: {_ranges(sorted(numbers))}"
                )
            return row
        if ref.alias is not None and ref.alias != LATEST:
            alias = session.get(AliasRow, (model.id, ref.alias))
            if alias is None:
                names = sorted(self._aliases_of(session, model.id))
                listed = ", ".join(names) if names else "none yet (set one with `liveml alias set`)"
                raise NotFound(f"model {model.name!r} has no alias {ref.alias!r}; aliases: {listed}")
            target = session.get(VersionRow, alias.version_id)
            assert target is not None
            return target
        if ref.alias is None:
            alias = session.get(AliasRow, (model.id, DEFAULT_ALIAS))
            if alias is not None:
                target = session.get(VersionRow, alias.version_id)
                assert target is not None
                return target
        row = session.scalar(query.order_by(VersionRow.version.desc()).limit(1))
        if row is None:
            raise NotFound(f"model {model.name!r} has no versions")
        return row

    def _aliases_of(self, session: Session, model_id: int) -> dict[str, int]:
        rows = session.execute(
            select(AliasRow.name, VersionRow.version)
            .join(VersionRow, VersionRow.id == AliasRow.version_id)
            .where(AliasRow.model_id == model_id)
            .order_by(AliasRow.name)
        ).all()
        return {name: version for name, version in rows}

    # -- aliases ---------------------------------------------------------------------------
    def set_alias(self, name: str, alias: str, version: int | str) -> AliasEvent:
        alias = validate_alias(alias)
        number = parse_version(version)
        with self.db.session() as session:
            model = self._model(session, validate_name(name), lock=True)
            row = self._resolve(session, model, ModelRef(model.name, version=number))
            return self._move_alias(session, model, alias, row, action="set")

    def delete_alias(self, name: str, alias: str) -> AliasEvent:
        alias = validate_alias(alias)
        with self.db.session() as session:
            model = self._model(session, validate_name(name), lock=True)
            current = session.get(AliasRow, (model.id, alias))
            if current is None:
                raise NotFound(
                    f"model {model.name!r} has no alias {alias!r}; aliases: {', '.join(self._aliases_of(session, model.id)) or 'none'}"
                )
            return self._move_alias(session, model, alias, None, action="delete")

    def rollback(self, name: str, alias: str = DEFAULT_ALIAS) -> AliasEvent:
        """Point ``alias`` back at the version it held before its last move (twice: forward again)."""
        alias = validate_alias(alias)
        with self.db.session() as session:
            model = self._model(session, validate_name(name), lock=True)
            last = session.scalar(
                select(AliasEventRow)
                .where(AliasEventRow.model_id == model.id, AliasEventRow.alias == alias)
                .order_by(AliasEventRow.id.desc())
                .limit(1)
            )
            if last is None:
                raise NotFound(
                    f"alias {alias!r} of model {model.name!r} has never been set; nothing to roll back"
                )
            if last.from_version is None:
                raise Conflict(
                    f"alias {alias!r} of {model.name!r} held no version before it was set to {last.to_version}; "
                    f"nothing to roll back to (move it with `liveml alias set {model.name} {alias} VERSION`)"
                )
            target = session.scalar(
                select(VersionRow).where(
                    VersionRow.model_id == model.id, VersionRow.version == last.from_version
                )
            )
            if target is None:
                raise Conflict(
                    f"alias {alias!r} of {model.name!r} last held version {last.from_version}, which was deleted; "
                    f"move it with `liveml alias set {model.name} {alias} VERSION`"
                )
            return self._move_alias(session, model, alias, target, action="rollback")

    def alias_history(self, name: str, alias: str | None = None) -> list[AliasEvent]:
        with self.db.read_session() as session:
            model = self._model(session, validate_name(name))
            query = select(AliasEventRow).where(AliasEventRow.model_id == model.id)
            if alias is not None:
                query = query.where(AliasEventRow.alias == validate_alias(alias))
            rows = session.scalars(query.order_by(AliasEventRow.id)).all()
            return [_alias_event(model.name, r) for r in rows]

    def _move_alias(
        self, session: Session, model: ModelRow, alias: str, target: VersionRow | None, *, action: str
    ) -> AliasEvent:
        now = utcnow()
        current = session.get(AliasRow, (model.id, alias))
        before = session.get(VersionRow, current.version_id).version if current is not None else None  # type: ignore[union-attr]
        if target is None:
            if current is not None:
                session.delete(current)
        elif current is None:
            session.add(
                AliasRow(
                    model_id=model.id,
                    name=alias,
                    version_id=target.id,
                    updated_by=self.settings.user,
                    updated_at=now,
                )
            )
        else:
            current.version_id = target.id
            current.updated_by = self.settings.user
            current.updated_at = now
        after = target.version if target is not None else None
        event = AliasEventRow(
            model_id=model.id,
            alias=alias,
            action=action,
            from_version=before,
            to_version=after,
            actor=self.settings.user,
            at=now,
        )
        session.add(event)
        model.updated_at = now
        audit.record_change(
            self,
            session,
            f"alias.{action}",
            f"{model.name}@{alias}",
            before={"version": before} if current is not None else None,
            after={"version": after} if target is not None else None,
        )
        return _alias_event(model.name, event)

    # -- delete ----------------------------------------------------------------------------
    def delete_version(self, name: str, version: int | str, *, force: bool = False) -> ModelVersion:
        """Delete a version; refused while an alias points at it unless ``force`` (which drops those aliases)."""
        number = parse_version(version)
        with self.db.session() as session:
            model = self._model(session, validate_name(name), lock=True)
            row = self._resolve(session, model, ModelRef(model.name, version=number))
            holding = [a for a, v in self._aliases_of(session, model.id).items() if v == number]
            if holding and not force:
                raise Conflict(
                    f"version {number} of {model.name!r} is what alias(es) {', '.join(holding)} point at; move them "
                    "first (`liveml alias set`) or delete with --force, which removes those aliases too"
                )
            deleted = _version(model.name, row, tuple(holding))
            before = {**_pushed(row, holding), "forced": bool(holding)}
            for alias in holding:
                self._move_alias(session, model, alias, None, action="delete")
            session.flush()
            session.delete(row)
            audit.record_change(self, session, "version.delete", deleted.ref, before=before)
            # the model row stays even without versions: its alias history is kept for ever
        self._collect_blob(deleted.sha256)
        if deleted.compiled is not None:
            self._collect_blob(deleted.compiled.sha256)
        return deleted


def _alias_event(model: str, row: AliasEventRow) -> AliasEvent:
    return AliasEvent(
        model=model,
        alias=row.alias,
        action=row.action,
        from_version=row.from_version,
        to_version=row.to_version,
        actor=row.actor,
        at=row.at,
    )


def _pushed(row: VersionRow, aliases: Sequence[str]) -> dict[str, Any]:
    """What the audit trail keeps of a version: enough to tell it apart, not its whole metadata."""
    return {
        "version": row.version,
        "format": row.format,
        "task": row.task,
        "sha256": row.sha256,
        "size": row.size,
        "file_name": row.file_name,
        "aliases": list(aliases),
        "description": row.description,
        "tags": dict(row.tags),
        "metrics": dict(row.metrics),
        "parent_version": row.parent_version,
        "data_hash": row.data_hash,
        "code_commit": row.code_commit,
        "compiled_sha256": row.compiled_sha256,
    }


def _uses(sha256: str) -> Any:
    """Versions whose original or compiled artifact is this blob."""
    return or_(VersionRow.sha256 == sha256, VersionRow.compiled_sha256 == sha256)


def _metrics(metrics: Mapping[str, Any]) -> dict[str, float]:
    clean = {}
    for key, value in metrics.items():
        validate_tag(str(key), "")
        try:
            clean[str(key)] = float(value)
        except (TypeError, ValueError):
            raise Invalid(
                f"metric {key!r} must be a number, got {value!r} (e.g. --metric auc=0.91)"
            ) from None
    return clean


def _by_version(aliases: Mapping[str, int]) -> dict[int, tuple[str, ...]]:
    out: dict[int, list[str]] = {}
    for alias, version in aliases.items():
        out.setdefault(version, []).append(alias)
    return {v: tuple(sorted(a)) for v, a in out.items()}


def _ranges(numbers: Sequence[int]) -> str:
    if not numbers:
        return "none"
    if len(numbers) > 12:
        return f"{numbers[0]}..{numbers[-1]} ({len(numbers)} in all)"
    return ", ".join(map(str, numbers))


def _version(model: str, row: VersionRow, aliases: tuple[str, ...]) -> ModelVersion:
    return ModelVersion(
        model=model,
        version=row.version,
        aliases=aliases,
        format=row.format,
        task=row.task,
        framework=row.framework,
        sha256=row.sha256,
        size=row.size,
        description=row.description,
        tags=dict(row.tags),
        metrics=dict(row.metrics),
        signature=Signature.model_validate(row.signature),
        classes=tuple(row.classes) if row.classes is not None else None,
        input_example=row.input_example,
        runtime_options=dict(row.runtime_options),
        has_reference=row.reference_profile is not None,
        lineage=Lineage(
            pushed_by=row.created_by,
            pushed_at=row.created_at,
            file_name=row.file_name,
            sha256=row.sha256,
            size=row.size,
            data_hash=row.data_hash,
            code_commit=row.code_commit,
            parent_version=row.parent_version,
        ),
        compiled=CompiledForm(
            format=row.compiled_format, sha256=row.compiled_sha256, size=row.compiled_size or 0
        )
        if row.compiled_sha256 and row.compiled_format
        else None,
        compile_report=row.compile_report,
    )


__all__ = ["Registry"]

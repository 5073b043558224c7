"""The registries in the console: counts and expiries, the persons of a registry, enrolment from uploaded
photos, changes of conditions, erasure, and bulk imports from a ZIP with progress and a per-photo report.

Registrars see and change only the registries their user names (admins all of them); another registry's
name, or a person of another registry, is a 404 like an unknown one. Enrolment refuses a photo for the
same reasons as ``gridwatch registry enroll`` (422 with the per-photo reasons, nothing enrolled); an
upload above the bounds is a 413 before anything is decoded. Embeddings are never served. Every read and
change goes through ``Registries``, which audits it under the signed-in user's name.

An entry of a ``kind: corrections`` registry is enrolled with its approval record (form fields
``approval_doc``, ``approver``, ``situation_code``, ``start``, ``end``): without it, or with one longer than
92 days, the answer is a 422 and nothing is enrolled. ``.../approvals`` lists an entry's approval records
(GET, audited) and records an extension (POST: a new record, never an edit of the old one's end).
"""

# No ``from __future__ import annotations``: FastAPI reads the route signatures at run time, and they
# use aliases local to ``registries_router``.
import asyncio
import datetime as dt
import itertools
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, HTTPException, UploadFile
from fastapi import Path as PathParam
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from gridwatch.core.config.root import GridwatchConfig
from gridwatch.core.persons import check_case_ref
from gridwatch.wiring import RecognitionParts, ReferencePhotos
from recognition.approvals import Approval, ApprovalError, ApprovalRecord, approval_from, check_fits
from recognition.bulk_import import ArchiveReader, BulkImport, ImportArchiveError, ImportRow
from recognition.enroll import EnrollmentError, enrollment_sample
from recognition.registries import UnknownPersonError
from recognition.store import Person

REGISTRY_ROLES = ("registrar", "admin")
MAX_PHOTOS = 10
MAX_PHOTO_BYTES = 10 * 1024 * 1024
MAX_ARCHIVE_BYTES = 200 * 1024 * 1024
EXPIRING_DAYS = 30
MAX_IMPORTS_KEPT = 100  # finished imports remembered for their report, oldest forgotten first


class EnrolmentRefusedError(Exception):
    """A photo of an enrolment was refused; nothing was enrolled."""

    def __init__(self, refusals: list[dict[str, str]]) -> None:
        super().__init__("nothing enrolled: a photo was refused")
        self.refusals = refusals


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ConditionsBody(_Strict):
    """A change of conditions: a given list replaces the current one; ``null`` clears hours or case number."""

    home_sources: list[str] | None = Field(default=None, max_length=100)
    allowed_zones: list[str] | None = Field(default=None, max_length=100)
    allowed_hours: str | None = Field(default=None, max_length=64)
    case_ref: str | None = Field(default=None, max_length=64)
    clear_allowed_hours: bool = False
    clear_case_ref: bool = False


class ApprovalBody(_Strict):
    """An approval record of a corrections entry (Community Corrections Law art. 29)."""

    approval_doc: str = Field(min_length=1, max_length=200)
    approver: str = Field(min_length=1, max_length=200)
    situation_code: int = Field(ge=1, le=5)
    start: str = Field(min_length=10, max_length=40, description="ISO 8601 with offset, or a date (00:00 UTC).")
    end: str = Field(min_length=10, max_length=40, description="At most 92 days after start.")


@dataclass
class RegistryAccess:
    """What the registry routes need of the service: the recognition parts and the live config."""

    parts: RecognitionParts  # analyzer, quality gate, registries, store
    config: Callable[[], GridwatchConfig]
    reference_photos: ReferencePhotos | None = None  # keeps the first photo where a registry asks for it


@dataclass
class _Import:
    registry: str
    job: BulkImport
    task: asyncio.Task[Any]


def person_item(person: Person) -> dict[str, Any]:
    """A registry entry as the console shows it: never an embedding, never a photo."""
    return {
        "person_id": person.person_id,
        "registry": person.registry,
        "name": person.display_name,
        "enrolled_at": _iso(person.enrolled_at),
        "expires_at": _iso(person.expires_at),
        "photos": person.embeddings,
        "home_sources": list(person.home_sources),
        "allowed_zones": list(person.allowed_zones),
        "allowed_hours": person.allowed_hours,
        "case_ref": person.case_ref,
    }


def approval_item(record: ApprovalRecord) -> dict[str, Any]:
    approval = record.approval
    return {
        "approval_id": record.approval_id,
        "approval_doc": approval.approval_doc,
        "approver": approval.approver,
        "situation_code": approval.situation_code,
        "start": _iso(approval.start),
        "end": _iso(approval.end),
        "supersedes": record.supersedes,
        "recorded_at": _iso(record.recorded_at),
        "recorded_by": record.recorded_by,
    }


def registries_router(
    access: RegistryAccess,
    registrar: Callable[..., Awaitable[Any]],
) -> APIRouter:
    """The routes; ``registrar`` is the console's dependency that admits the registrar and admin roles and
    returns the principal (with ``.user.name``, ``.user.role``, ``.user.registries``)."""
    router = APIRouter()
    imports: dict[str, _Import] = {}
    sequence = itertools.count(1)
    Who = Annotated[Any, Depends(registrar)]
    Name = Annotated[str, PathParam(min_length=1, max_length=64)]
    PersonId = Annotated[str, PathParam(min_length=1, max_length=64)]

    def allowed(who: Any, registry: str) -> None:
        if registry not in access.parts.registries.configs:
            raise HTTPException(404, "no such registry")
        if who.user.role != "admin" and registry not in who.user.registries:
            raise HTTPException(404, "no such registry")  # another registry's name: the same answer

    def person_in(who: Any, registry: str, person_id: str) -> Person:
        allowed(who, registry)
        person = access.parts.store.get(person_id)
        if person is None or person.registry != registry:
            raise HTTPException(404, "no such person")
        return person

    @router.get("/api/registries")
    async def list_registries(who: Who) -> dict[str, Any]:
        now = dt.datetime.now(dt.UTC)
        soon = now + dt.timedelta(days=EXPIRING_DAYS)
        out = []
        for name, config in access.parts.registries.configs.items():
            if who.user.role != "admin" and name not in who.user.registries:
                continue
            persons = await asyncio.to_thread(access.parts.store.list_persons, name)  # counts only: not audited
            out.append(
                {
                    "name": name,
                    "purpose": config.purpose,
                    "persons": len(persons),
                    "expiring_30d": sum(1 for p in persons if p.expires_at <= soon),
                    "evidence": config.evidence.keep,
                }
            )
        return {"registries": out}

    @router.get("/api/registries/{name}/persons")
    async def list_persons(name: Name, who: Who) -> dict[str, Any]:
        allowed(who, name)
        persons = await asyncio.to_thread(access.parts.registries.list_persons, name, actor=who.user.name)
        return {"persons": [person_item(p) for p in persons]}

    @router.post("/api/registries/{name}/persons", status_code=201)
    async def enrol(
        name: Name,
        who: Who,
        display_name: Annotated[str, Form(alias="name", min_length=1, max_length=200)],
        photos: Annotated[list[UploadFile], File(description="One to ten photos of the person, one face each.")],
        approval_doc: Annotated[str | None, Form(max_length=200)] = None,
        approver: Annotated[str | None, Form(max_length=200)] = None,
        situation_code: Annotated[str | None, Form(max_length=8)] = None,
        start: Annotated[str | None, Form(max_length=40)] = None,
        end: Annotated[str | None, Form(max_length=40)] = None,
    ) -> Any:
        allowed(who, name)
        if not 1 <= len(photos) <= MAX_PHOTOS:
            raise HTTPException(422, f"give 1 to {MAX_PHOTOS} photos")
        fields = {"approval_doc": approval_doc, "approver": approver, "situation_code": situation_code}
        try:
            approval = approval_from({**fields, "start": start, "end": end})
            check_fits(access.parts.registries.configs[name], approval)  # before any photo is decoded
        except ApprovalError as exc:
            raise HTTPException(422, str(exc)) from None
        contents = [await _bounded(photo, MAX_PHOTO_BYTES) for photo in photos]
        labels = [photo.filename or f"photo {i + 1}" for i, photo in enumerate(photos)]
        try:
            person = await asyncio.to_thread(
                _enrol, access, name, display_name, labels, contents, who.user.name, approval
            )
        except EnrolmentRefusedError as exc:
            return JSONResponse({"detail": str(exc), "refusals": exc.refusals}, status_code=422)
        except ApprovalError as exc:
            raise HTTPException(422, str(exc)) from None
        return person_item(person)

    @router.get("/api/registries/{name}/persons/{person_id}/approvals")
    async def approvals(name: Name, person_id: PersonId, who: Who) -> dict[str, Any]:
        person_in(who, name, person_id)
        try:
            records = await asyncio.to_thread(access.parts.registries.approvals, person_id, actor=who.user.name)
        except UnknownPersonError:
            raise HTTPException(404, "no such person") from None
        return {"approvals": [approval_item(r) for r in records]}

    @router.post("/api/registries/{name}/persons/{person_id}/approvals", status_code=201)
    async def extend(name: Name, person_id: PersonId, body: ApprovalBody, who: Who) -> dict[str, Any]:
        person_in(who, name, person_id)
        try:
            approval = approval_from(body.model_dump())
            assert approval is not None  # every field is required by the body
            record = await asyncio.to_thread(
                access.parts.registries.extend_approval, person_id, approval, actor=who.user.name
            )
        except UnknownPersonError:
            raise HTTPException(404, "no such person") from None
        except ApprovalError as exc:
            raise HTTPException(422, str(exc)) from None
        return approval_item(record)

    @router.patch("/api/registries/{name}/persons/{person_id}")
    async def update(name: Name, person_id: PersonId, body: ConditionsBody, who: Who) -> dict[str, Any]:
        person_in(who, name, person_id)
        problem = _conditions_problem(access.config(), body)
        if problem is not None:
            raise HTTPException(422, problem)
        try:
            change = await asyncio.to_thread(
                access.parts.registries.update_conditions,
                person_id,
                actor=who.user.name,
                home_sources=body.home_sources,
                allowed_zones=body.allowed_zones,
                allowed_hours=body.allowed_hours,
                case_ref=body.case_ref,
                clear_allowed_hours=body.clear_allowed_hours,
                clear_case_ref=body.clear_case_ref,
            )
        except UnknownPersonError:
            raise HTTPException(404, "no such person") from None
        except ValueError as exc:
            raise HTTPException(422, str(exc)) from None
        updated = await asyncio.to_thread(access.parts.store.get, change.after.person_id)
        if updated is None:
            raise HTTPException(404, "no such person")  # erased meanwhile
        return person_item(updated)

    @router.delete("/api/registries/{name}/persons/{person_id}", status_code=204)
    async def remove(name: Name, person_id: PersonId, who: Who) -> None:
        person_in(who, name, person_id)
        try:
            await asyncio.to_thread(access.parts.registries.remove, person_id, actor=who.user.name)
        except UnknownPersonError:
            raise HTTPException(404, "no such person") from None

    @router.post("/api/registries/{name}/imports", status_code=202)
    async def start_import(
        name: Name,
        who: Who,
        archive: Annotated[UploadFile, File(description="A ZIP of photos, or persons.csv + photos.")],
    ) -> dict[str, Any]:
        allowed(who, name)
        data = await _bounded(archive, MAX_ARCHIVE_BYTES)
        try:
            reader = await asyncio.to_thread(ArchiveReader, data)
            config = access.config()
            references = access.reference_photos
            job = await asyncio.to_thread(
                BulkImport,
                access.parts.registries,
                access.parts.analyzer,
                access.parts.gate,
                name,
                reader,
                actor=who.user.name,
                known=lambda row: _row_problem(config, row),
                on_enrolled=None
                if references is None
                else (lambda person_id, photo: references.keep(name, person_id, photo)),
            )
        except ImportArchiveError as exc:
            raise HTTPException(422, str(exc)) from None
        import_id = f"imp_{next(sequence)}_{secrets.token_hex(6)}"
        task = asyncio.create_task(asyncio.to_thread(job.run), name=f"console.import.{import_id}")
        task.add_done_callback(lambda t: t.exception() if not t.cancelled() else None)  # kept in the report
        imports[import_id] = _Import(name, job, task)
        while len(imports) > MAX_IMPORTS_KEPT:
            oldest = next(iter(imports))
            if not imports[oldest].task.done():
                break
            del imports[oldest]
        return {"import_id": import_id, **job.snapshot()}

    @router.get("/api/registries/{name}/imports/{import_id}")
    async def import_status(
        name: Name, import_id: Annotated[str, PathParam(max_length=64)], who: Who
    ) -> dict[str, Any]:
        allowed(who, name)
        found = imports.get(import_id)
        if found is None or found.registry != name:
            raise HTTPException(404, "no such import")
        return {"import_id": import_id, **found.job.snapshot()}

    return router


def _enrol(
    access: RegistryAccess,
    registry: str,
    name: str,
    labels: list[str],
    contents: list[bytes],
    actor: str,
    approval: Approval | None = None,
) -> Person:
    samples, refusals = [], []
    for label, data in zip(labels, contents, strict=True):
        try:
            samples.append(enrollment_sample(access.parts.analyzer, access.parts.gate, data, what=label))
        except EnrollmentError as exc:
            refusals.append({"photo": label, "reason": str(exc)})
    if refusals:
        raise EnrolmentRefusedError(refusals)
    person = access.parts.registries.enroll(
        registry, name, [(s.photo_sha256, s.embedding) for s in samples], actor=actor, approval=approval
    )
    if access.reference_photos is not None:
        access.reference_photos.keep(registry, person.person_id, samples[0].reference(contents[0]))
    return person


async def _bounded(upload: UploadFile, limit: int) -> bytes:
    data = await upload.read(limit + 1)
    if len(data) > limit:
        raise HTTPException(413, f"{upload.filename or 'upload'}: larger than {limit // (1024 * 1024)} MB")
    return data


def _row_problem(config: GridwatchConfig, row: ImportRow) -> str | None:
    body = ConditionsBody(
        home_sources=list(row.home_sources),
        allowed_zones=list(row.allowed_zones),
        allowed_hours=row.allowed_hours,
        case_ref=row.case_ref,
    )
    return _conditions_problem(config, body)


def _conditions_problem(config: GridwatchConfig, body: ConditionsBody) -> str | None:
    """Why conditions are refused (ids the config lacks, a malformed case number), or None."""
    checks = [
        ("source", body.home_sources or [], config.source_ids()),
        ("zone", body.allowed_zones or [], config.zone_ids()),
        ("schedule", [] if body.allowed_hours is None else [body.allowed_hours], config.schedule_ids()),
    ]
    for what, names, known in checks:
        for name in names:
            if name not in known:
                return f"unknown {what} {name!r}"
    if body.case_ref is not None:
        try:
            check_case_ref(body.case_ref)
        except ValueError as exc:
            return str(exc)
    return None


def _iso(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")

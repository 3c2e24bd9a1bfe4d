"""Analysis without keeping anything: health, analyse a text or a file, indicators of
compromise. The work runs in the server's worker pool (`Workspace.run`), bounded in size and
time: it is given the request's `Deadline` and stops itself there.
"""

from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Response, UploadFile
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from mitremap import __version__
from mitremap.deadline import Deadline
from mitremap.documents import Document, read_bytes
from mitremap.export import FORMATS
from mitremap.web.routers.deps import Reader, Workspace, WorkspaceDep, check_size, clean
from mitremap.web.workspace.errors import BadRequestError

router = APIRouter(prefix="/api", tags=["analysis"])


class AnalyzeIn(BaseModel):
    text: str = Field(..., description="The report text.")
    title: str = Field("", max_length=300)
    threshold: float = Field(0.6, ge=0.0, le=1.0, allow_inf_nan=False)
    window: int = Field(3, ge=1, le=50)
    explain: bool = False
    iocs: bool = True
    format: str = Field("json", max_length=20, description=f"One of {', '.join(FORMATS)}.")


class IocIn(BaseModel):
    text: str
    types: list[str] | None = Field(None, max_length=50)


@router.get("/health")
def health(ws: WorkspaceDep) -> dict[str, Any]:
    """The version, the active model's card and the kind of database."""
    card = getattr(ws.registry.current, "card", None)
    return {
        "status": "ok",
        "version": __version__,
        "model": dict(card) if isinstance(card, dict) else None,
        "database": ws.database,
    }


@router.post("/analyze")
async def analyze(body: AnalyzeIn, _: Reader, ws: WorkspaceDep) -> Response:
    """Analyse a text and answer the CLI's JSON, or any export format; nothing is kept."""
    text = clean(body.text)
    check_size(len(text.encode("utf-8")), ws.max_bytes)
    document = Document(text, title=clean(body.title) or "text", origin="api")
    options = body.model_dump(exclude={"text", "title"})
    return await ws.run(_answer, ws, document, options)


@router.post("/analyze/file")
async def analyze_file(
    file: Annotated[UploadFile, File()],
    _: Reader,
    ws: WorkspaceDep,
    threshold: Annotated[float, Form(ge=0.0, le=1.0)] = 0.6,
    window: Annotated[int, Form(ge=1, le=50)] = 3,
    explain: Annotated[bool, Form()] = False,
    iocs: Annotated[bool, Form()] = True,
    format: Annotated[str, Form(max_length=20)] = "json",
) -> Response:
    """The same for an uploaded file (PDF, DOCX, HTML, Markdown, text)."""
    data = await file.read(ws.max_bytes + 1)
    check_size(len(data), ws.max_bytes)
    name = clean(file.filename or "upload")
    options = {
        "threshold": threshold,
        "window": window,
        "explain": explain,
        "iocs": iocs,
        "format": format,
    }

    def work(deadline: Deadline) -> Response:
        document = read_bytes(data, name=name, origin=name, deadline=deadline)
        return _answer(ws, document, options, deadline)

    return await ws.run(work)


@router.post("/iocs")
async def iocs(body: IocIn, _: Reader, ws: WorkspaceDep) -> dict[str, Any]:
    """Indicators of compromise in a text (refanged, with offsets); past the first
    `MAX_INDICATORS`, a note in `warnings` says the rest were left out."""
    from mitremap.iocs import extract_iocs
    from mitremap.iocs.extract import MAX_INDICATORS as most

    text = clean(body.text)
    check_size(len(text.encode("utf-8")), ws.max_bytes)
    found = await ws.run(
        lambda deadline: extract_iocs(text, body.types, deadline=deadline, limit=most + 1)
    )
    notes = {"warnings": [f"only the first {most:,} indicators are listed"]}
    return {
        "indicators": [i.to_dict() for i in found[:most]],
        **(notes if found[most:] else {}),
    }


def _answer(
    ws: Workspace, document: Document, options: dict[str, Any], deadline: Deadline
) -> Response:
    """`POST /api/analyze`'s answer: the CLI's JSON or another export format."""
    from mitremap.export import export_format

    exporter = export_format(options["format"])
    if not document.text.strip():
        raise BadRequestError("the input is empty")
    memory = ws.memory.current(ws.registry.general()[0])
    model, _ = ws.registry.for_text(document.text, memory)
    result = model.analyze(
        document,
        threshold=options["threshold"],
        window=options["window"],
        explain=options["explain"],
        iocs=options["iocs"],
        memory=memory,
        deadline=deadline,
    )
    if options["format"] == "json":
        return JSONResponse(result.to_dict())
    return Response(exporter.render(result, options["iocs"]), media_type=exporter.content_type)

"""The HTTP API and the page: ``create_app()`` builds the FastAPI app, ``run()`` serves it with
uvicorn. Every error is JSON ``{"error": <the CLI's one-line message>, "type", "status"}`` with
a status that says whose fault it is; a request that fails leaves the server serving."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Sequence

from fastapi import FastAPI, File, Form, Query, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from .. import errors
from ..tasks.galleries import Shelf
from ..spaces.mcr import split_pin
from ..version import __version__
from .items import item_media, modality_of
from .jobs import Jobs
from .uploads import MAX_UPLOAD, BodyLimit, UnsupportedMediaError, UploadTooLargeError, check_upload, saved

STATIC = Path(__file__).parent / "static"
DEFAULT_K = 12
MAX_K = 200
MAX_TEXT = 2_000  # characters of a text query

# most specific first: the first class an error is an instance of gives its status
STATUS: list[tuple[type, int]] = [
    (errors.UnknownGalleryError, 404),
    (errors.UnknownMCRError, 404),
    (UploadTooLargeError, 413),
    (UnsupportedMediaError, 415),
    (errors.NoPathError, 409),
    (errors.AmbiguousPathError, 409),
    (errors.ConnectorMismatchError, 409),
    (errors.UnknownModalityError, 400),
    (errors.DataError, 400),
    (errors.ConfigError, 400),
    (errors.DownloadError, 503),
]


def status_of(e: Exception) -> int:
    return next((code for cls, code in STATUS if isinstance(e, cls)), 500)


def error_body(e: Exception) -> dict[str, Any]:
    """The JSON of an error: the CLI's message (``internal error: ...`` for a bug), its type,
    and for a missing path the connects that would make one."""
    if isinstance(e, errors.MCRGraphError):
        body: dict[str, Any] = {"error": str(e), "type": type(e).__name__, "status": status_of(e)}
    else:
        body = {"error": f"internal error: {type(e).__name__}: {e}", "type": "InternalError", "status": 500}
    if isinstance(e, errors.NoPathError):
        body["steps"] = list(e.steps)
        if getattr(e, "between", None):  # a search's query and gallery modalities, for the page's connect button
            body["between"] = list(e.between)
    if isinstance(e, errors.AmbiguousPathError):
        body["pins"] = [list(p) for p in e.pins]
    return body


def _json_error(e: Exception) -> JSONResponse:
    body = error_body(e)
    return JSONResponse(body, status_code=body["status"])


def create_app(galleries: Sequence[str] | None = None, *, index: str = "exact", max_upload: int = MAX_UPLOAD, wrap: bool = True):
    """The app serving ``galleries`` (None: every stored and built-in one). With ``wrap`` (the
    default) it comes inside ``BodyLimit``, which refuses bodies over ``max_upload`` bytes."""
    from ..planning.graph import graph, summary
    from ..planning.picture import layout

    shelf = Shelf(galleries, index=index)
    shelf.names()  # an unknown --gallery fails at start, not at the first search
    jobs = Jobs()
    app = FastAPI(title="mcrgraph", version=__version__,
                  description="Search galleries of images, sounds, point clouds and texts with a query of any modality, "
                              "through the graph of spaces (the planner picks where the two modalities meet).")
    app.state.shelf, app.state.jobs, app.state.max_upload = shelf, jobs, max_upload

    @app.exception_handler(errors.MCRGraphError)
    async def _domain(request: Request, e: errors.MCRGraphError):
        return _json_error(e)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, e: RequestValidationError):
        first = e.errors()[0] if e.errors() else {"loc": (), "msg": "invalid request"}
        where = ".".join(str(x) for x in first.get("loc", ()) if x not in ("body", "query", "path", "form"))
        return JSONResponse({"error": f"{where + ': ' if where else ''}{first['msg']}", "type": "RequestError", "status": 422},
                            status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, e: StarletteHTTPException):
        return JSONResponse({"error": str(e.detail), "type": "HTTPError", "status": e.status_code}, status_code=e.status_code)

    @app.exception_handler(Exception)
    async def _bug(request: Request, e: Exception):
        return _json_error(e)

    @app.get("/", include_in_schema=False)
    def page():
        return FileResponse(STATIC / "index.html", media_type="text/html")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/galleries", summary="The galleries this server searches")
    def list_galleries() -> list[dict[str, Any]]:
        out = []
        for name in shelf.names():
            card = shelf.card(name)
            out.append({"name": name, "modality": card.modality, "items": len(card.items), "builtin": card.builtin,
                        "about": card.about, "spaces": sorted({r.space for r in card.rows})})
        return out

    @app.get("/galleries/{name}/items/{index}", summary="A gallery item: the image, the sound, the rendered point cloud or the text")
    def gallery_item(name: str, index: int, view: bool = Query(False, description="a PNG picture of it (thumbnail / rendered view)")):
        card = shelf.card(name)
        if not 0 <= index < len(card.items):
            raise StarletteHTTPException(404, f"gallery {name!r} has items 0 to {len(card.items) - 1}, not {index}")
        data, media_type = item_media(card, index, view=view)
        return Response(data, media_type=media_type, headers={"Cache-Control": "max-age=3600"})

    @app.get("/graph", summary="The graph of spaces: spaces, overlaps and a layout to draw it")
    def get_graph() -> dict[str, Any]:
        g = graph().nx
        pic = layout(g)
        out = summary(g)
        for s in out["spaces"]:
            s["weights_present"] = g.nodes[s["name"]]["mcr"].weights_present() if s["kind"] == "plugin" else None
        out["picture"] = {"nodes": [{"kind": k, "name": n, "x": x, "y": y} for (k, n), (x, y) in pic.pos.items()],
                          "holds": [list(h) for h in pic.holds], "joins": [list(j) for j in pic.joins]}
        return out

    @app.get("/plan", summary="Where two modalities meet (e.g. audio and image@mini-clip); 409 with the connects that would join them")
    def get_plan(a: str, b: str) -> dict[str, Any]:
        g = graph()
        return _path_view(g, g.plan(a, b))

    @app.get("/spaces/{name}/retention", summary="What a connected space keeps of its parents' own retrieval (measured once)")
    def get_retention(name: str) -> dict[str, Any]:
        from .retention import retention

        return retention(graph().mcr(name))

    @app.post("/search", summary="Search a gallery with an uploaded item or a text")
    def search(gallery: str = Form(..., description="a name from GET /galleries"),
               text: str | None = Form(None, description="a text query (or upload a file)"),
               file: UploadFile | None = File(None, description="a sound, an image or a point cloud (.npy, .ply); judged by content"),
               modality: str | None = Form(None, description="the query's modality, optionally pinned (audio@mini-clap); default: "
                                                            "text for text, else told from the file's content"),
               k: int = Form(DEFAULT_K, ge=1, le=MAX_K, description="how many results")) -> dict[str, Any]:
        t0 = time.perf_counter()
        if (text is None or not text.strip()) == (file is None):
            raise errors.DataError("give exactly one query: a text (text=...) or a file (file=@sound.wav)")
        g = graph()
        if file is not None:
            data = file.file.read(max_upload + 1)
            kind = check_upload(data, max_upload)
            asked = modality or kind.modality
            if split_pin(asked)[0] != kind.modality:
                raise UnsupportedMediaError(f"the upload is {_article(kind.modality)} file by its content, not {asked}")
            query = {"modality": asked, "kind": "file", "name": file.filename or "", "format": kind.suffix[1:], "bytes": len(data)}
        else:
            if len(text) > MAX_TEXT:
                raise errors.DataError(f"the text query has {len(text):,} characters; at most {MAX_TEXT:,}")
            asked = modality or "text"
            if split_pin(asked)[0] != "text":
                raise errors.DataError(f"a text query has modality text, not {asked}")
            query = {"modality": asked, "kind": "text", "text": text.strip()}
        try:
            if file is not None:
                with saved(data, kind) as path:
                    found = shelf.search(asked, str(path), gallery, k, graph=g)
            else:
                found = shelf.search(asked, text.strip(), gallery, k, graph=g)
        except errors.NoPathError as e:
            e.between = (asked, shelf.card(gallery).modality)  # for the page's connect button
            raise
        card = found.gallery
        base = f"/galleries/{card.name}/items"
        visual = modality_of(card) in ("image", "3d")
        return {
            "query": query,
            "gallery": {"name": card.name, "modality": card.modality, "items": len(card.items)},
            "path": _path_view(g, found.path),
            "results": [{"rank": r, "index": h.index, "label": h.label, "score": round(h.score, 6), "url": f"{base}/{h.index}",
                         "view": f"{base}/{h.index}?view=1" if visual else None} for r, h in enumerate(found.hits, 1)],
            "seconds": {**{k_: round(v, 6) for k_, v in found.seconds.items()}, "total": round(time.perf_counter() - t0, 6)},
        }

    @app.post("/connect", status_code=202, summary="Start the connects that would join two modalities (one job at a time)")
    def start_connect(a: str = Form(...), b: str = Form(...), epochs: int | None = Form(None, ge=1, le=1000)) -> dict[str, Any]:
        job = jobs.start(a, b, {"epochs": epochs} if epochs else None)
        return job.view()

    @app.get("/jobs/{job_id}", summary="A connect job: its steps, the one running, its progress, the path once done")
    def get_job(job_id: str) -> dict[str, Any]:
        return jobs.get(job_id).view()

    return BodyLimit(app, max_upload) if wrap else app


def _article(modality: str) -> str:
    return {"audio": "a sound", "image": "an image", "3d": "a point cloud"}.get(modality, f"a {modality}")


def _path_view(g, path) -> dict[str, Any]:
    node = g.nx.nodes[path.node] if path.node in g.nx else {}
    return {"text": path.describe(), "node": path.node, "target_node": path.target_node, "source": path.source, "target": path.target,
            "kind": node.get("kind"), "method": node.get("method"), "retention": f"/spaces/{path.node}/retention"}


def run(host: str = "127.0.0.1", port: int = 8765, galleries: Sequence[str] | None = None, index: str = "exact",
        on_ready=None) -> None:
    """Serve until interrupted. ``on_ready(url)`` is called once the socket listens."""
    import uvicorn

    app = create_app(galleries, index=index)
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    if on_ready is not None:
        started = server.startup

        async def startup(sockets=None):
            await started(sockets=sockets)
            if server.started:  # the port bound, which --port 0 leaves to the system
                bound = next((sock.getsockname()[1] for srv in server.servers for sock in srv.sockets), port)
                on_ready(f"http://{_host_for_url(host)}:{bound}/")

        server.startup = startup
    server.run()


def _host_for_url(host: str) -> str:
    return f"[{host}]" if ":" in host else host

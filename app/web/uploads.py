"""The upload endpoints (model files and datasets) and the session cookie hooks.

The browser (assets/upload.js) POSTs the raw file as the request body with its name in the
``X-Filename`` header (URI-encoded); a dataset may name its label column / array in
``X-Labels``. The body is streamed into the session's `UploadStore` (app/storage/uploads.py),
which checks the size limit while it streams, then the file is opened once by the services:
a file svdcore refuses is deleted and answered with svdcore's sentence (422).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

import flask

from app.storage.session import SESSION_COOKIE, ensure_session_id
from app.storage.uploads import StoredUpload, UploadError, UploadStore

if TYPE_CHECKING:
    from app.services import Services

__all__ = ["LABELS_HEADER", "PAGE_CLIENT_HEADER", "register_upload_routes"]

LABELS_HEADER = "X-Labels"
PAGE_CLIENT_HEADER = "X-Svdscope-Client"


def register_upload_routes(
    server: flask.Flask,
    services: Services,
    *,
    route: str = "/upload",
    dataset_route: str | None = None,
) -> Callable[..., flask.Response]:
    """Add the session cookie hook, the POST `route` endpoint for model files and (when
    given) the POST `dataset_route` endpoint for datasets to `server`."""

    @server.before_request
    def _issue_session() -> None:
        ensure_session_id()

    @server.after_request
    def _set_session_cookie(response: flask.Response) -> flask.Response:
        issued = flask.g.get("svdscope_new_session")
        if issued:
            response.set_cookie(  # not readable by scripts; HTTPS-only behind HTTPS
                SESSION_COOKIE,
                issued,
                httponly=True,
                samesite="Lax",
                secure=flask.request.is_secure,
                max_age=30 * 24 * 3600,
            )
        return response

    def _answer(answer: flask.Response, status: int) -> tuple[flask.Response, int]:
        if flask.request.headers.get(PAGE_CLIENT_HEADER) == "page":
            # the page reads the outcome from the body; a 4xx would also be logged as a
            # console error by the browser
            return answer, 200
        return answer, status

    def _receive(store: UploadStore, *, labels: bool) -> tuple[str, StoredUpload | None, Any]:
        """(session, stored file or None, error answer) for the current request."""
        session = ensure_session_id()
        request = flask.request
        if request.mimetype.startswith("multipart/"):
            return (
                session,
                None,
                _error(
                    415,
                    "Send the file itself as the request body (not a form), "
                    "with its name in the X-Filename header.",
                ),
            )
        name = unquote(request.headers.get("X-Filename") or request.args.get("name", ""))
        label_name = None
        if labels:
            label_name = unquote(request.headers.get(LABELS_HEADER) or "").strip() or None
        try:
            stored = store.save_stream(
                session, name, request.stream, request.content_length, labels=label_name
            )
        except UploadError as err:
            return session, None, _error(err.status, err.message)
        return session, stored, None

    def _accept(
        store: UploadStore,
        open_file: Callable[[str, str], Any],
        reply: Callable[[Any], dict[str, Any]],
        *,
        labels: bool,
    ) -> tuple[flask.Response, int]:
        """Store the request's file in `store`, open it with `open_file(session, file_id)`
        and answer `reply(opened)` with ok and the size; a file it refuses is deleted."""
        session, stored, error = _receive(store, labels=labels)
        if stored is None:
            return _answer(*error)
        try:
            opened = open_file(session, stored.file_id)
        except Exception as err:  # every failure to open becomes a message, not a 500
            store.delete(session, stored.file_id)
            return _answer(*_error(422, services.error_message(err)))
        return _answer(flask.jsonify(ok=True, **reply(opened), size=stored.size), 200)

    def upload() -> tuple[flask.Response, int]:
        return _accept(services.uploads, services.registry.open_upload, _model, labels=False)

    def upload_dataset() -> tuple[flask.Response, int]:
        return _accept(
            services.dataset_uploads, services.datasets.check_upload, _dataset, labels=True
        )

    server.add_url_rule(route, "svdscope_upload", upload, methods=["POST"])
    if dataset_route:
        server.add_url_rule(
            dataset_route, "svdscope_upload_dataset", upload_dataset, methods=["POST"]
        )
    return upload


def _model(entry: Any) -> dict[str, Any]:
    """What the model upload answers about the opened model (besides ok and size)."""
    return {"model_id": entry.id, "name": entry.label}


def _dataset(entry: Any) -> dict[str, Any]:
    """What the dataset upload answers about the checked dataset (besides ok and size)."""
    return {"dataset_id": entry.id, "name": entry.name}


def _error(status: int, message: str) -> tuple[flask.Response, int]:
    return flask.jsonify(ok=False, status=status, message=message), status

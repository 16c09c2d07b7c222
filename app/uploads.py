"""Streaming model uploads: per-session storage, size limits, the POST endpoint.

The browser (assets/upload.js) POSTs the raw file as the request body with its name in the
``X-Filename`` header (URI-encoded). The body is copied to disk in chunks and the size limit
is checked while it streams. Each browser session is an unguessable random id kept in a
cookie; its files live in ``<upload_dir>/<session id>/<random file id><allowed suffix>``.
The user's file name is kept only as display text in a side file: it never becomes a path.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import time
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING
from urllib.parse import unquote

import flask

if TYPE_CHECKING:
    from app.services import Services

__all__ = [
    "ALLOWED_SUFFIXES",
    "SESSION_COOKIE",
    "StoredUpload",
    "UploadError",
    "UploadStore",
    "allowed_suffix",
    "current_session_id",
    "display_name",
    "ensure_session_id",
    "register_upload_routes",
    "session_from_cookies",
]

SESSION_COOKIE = "svdscope_session"
ALLOWED_SUFFIXES = (".safetensors", ".pt2", ".pth", ".pt", ".bin", ".json")
CHUNK_BYTES = 1 << 20
PAGE_CLIENT_HEADER = "X-Svdscope-Client"
_SESSION_RE = re.compile(r"^[A-Za-z0-9_-]{40,64}$")
_FILE_ID_RE = re.compile(r"^[0-9a-f]{24}$")


class UploadError(Exception):
    """An upload refused before the model was opened; `status` is the HTTP status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class StoredUpload:
    file_id: str
    name: str  # display name only
    suffix: str
    size: int
    created: float
    path: Path


def allowed_suffix(name: str) -> str | None:
    """The allowed suffix `name` ends with (lower-cased), or None."""
    lowered = name.strip().lower()
    for suffix in ALLOWED_SUFFIXES:
        if lowered.endswith(suffix) and len(lowered) > len(suffix):
            return suffix
    return None


def display_name(name: str) -> str:
    """The last path component of a user-supplied name, printable, at most 120 characters."""
    base = re.split(r"[\\/]", name)[-1]
    clean = "".join(c for c in base if unicodedata.category(c)[0] != "C").strip()
    return (clean or "upload")[:120]


def _fmt_bytes(n: int) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} bytes"  # pragma: no cover


class UploadStore:
    """Files of each session under `root`; every method validates the ids it is given."""

    def __init__(self, root: Path, *, max_bytes: int, max_files: int = 32) -> None:
        self.root = Path(root)
        self.max_bytes = int(max_bytes)
        self.max_files = int(max_files)

    def session_dir(self, session: str, *, create: bool = False) -> Path:
        if not isinstance(session, str) or not _SESSION_RE.match(session):
            raise UploadError(400, "This browser session is not valid; reload the page.")
        folder = self.root / session
        if create:
            self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
            folder.mkdir(exist_ok=True, mode=0o700)
        return folder

    def save_stream(
        self, session: str, name: str, stream: IO[bytes], content_length: int | None = None
    ) -> StoredUpload:
        """Copy `stream` to a new file of `session`, refusing it once it passes the limit."""
        suffix = allowed_suffix(name)
        if suffix is None:
            allowed = ", ".join(ALLOWED_SUFFIXES)
            raise UploadError(
                415, f"'{display_name(name)}' is not a supported model file; use one of {allowed}."
            )
        limit = self.max_bytes
        too_big = (
            f"'{display_name(name)}' is larger than the upload limit of {_fmt_bytes(limit)}; "
            "open it from the command line (svdscope serve PATH) instead."
        )
        if content_length is not None and content_length > limit:
            raise UploadError(413, too_big)
        folder = self.session_dir(session, create=True)
        if len(self.list(session)) >= self.max_files:
            raise UploadError(
                429,
                f"This session already holds {self.max_files} uploaded models; "
                "reload the page in a new browser session to upload more.",
            )
        file_id = secrets.token_hex(12)
        part = folder / f"{file_id}.part"
        size = 0
        try:
            with open(part, "wb") as out:
                while True:
                    chunk = stream.read(CHUNK_BYTES)
                    if not chunk:
                        break
                    size += len(chunk)
                    if size > limit:
                        raise UploadError(413, too_big)
                    out.write(chunk)
            if size == 0:
                raise UploadError(400, f"'{display_name(name)}' is empty.")
            final = folder / f"{file_id}{suffix}"
            os.replace(part, final)
        except BaseException:
            part.unlink(missing_ok=True)
            raise
        meta = {"name": display_name(name), "suffix": suffix, "size": size, "created": time.time()}
        (folder / f"{file_id}.meta").write_text(json.dumps(meta))
        return StoredUpload(file_id, meta["name"], suffix, size, meta["created"], final)

    def get(self, session: str, file_id: str) -> StoredUpload | None:
        if not _FILE_ID_RE.match(file_id or ""):
            return None
        try:
            folder = self.session_dir(session)
        except UploadError:
            return None
        try:
            meta = json.loads((folder / f"{file_id}.meta").read_text())
        except (OSError, ValueError):
            return None
        suffix = meta.get("suffix")
        if suffix not in ALLOWED_SUFFIXES:
            return None
        path = folder / f"{file_id}{suffix}"
        if not path.is_file():
            return None
        return StoredUpload(
            file_id,
            str(meta.get("name", "upload")),
            suffix,
            int(meta.get("size", 0)),
            float(meta.get("created", 0.0)),
            path,
        )

    def list(self, session: str | None) -> list[StoredUpload]:
        if session is None:
            return []
        try:
            folder = self.session_dir(session)
        except UploadError:
            return []
        if not folder.is_dir():
            return []
        found = (self.get(session, p.stem) for p in folder.glob("*.meta"))
        return sorted((u for u in found if u is not None), key=lambda u: u.created)

    def delete(self, session: str, file_id: str) -> None:
        upload = self.get(session, file_id)
        if upload is None:
            return
        upload.path.unlink(missing_ok=True)
        (upload.path.parent / f"{file_id}.meta").unlink(missing_ok=True)


def current_session_id() -> str | None:
    """The valid session id of the current request (cookie, or one issued during it)."""
    if not flask.has_request_context():
        return None
    issued = flask.g.get("svdscope_new_session")
    if issued:
        return issued
    value = flask.request.cookies.get(SESSION_COOKIE, "")
    return value if _SESSION_RE.match(value) else None


def session_from_cookies(cookies: dict[str, str] | None) -> str | None:
    """The valid session id in a cookie mapping (e.g. `dash.callback_context.cookies` in a
    background job, which has no Flask request), else None."""
    value = (cookies or {}).get(SESSION_COOKIE, "")
    return value if isinstance(value, str) and _SESSION_RE.match(value) else None


def ensure_session_id() -> str:
    """The current session id, issuing a new one (sent back as a cookie) when missing."""
    session = current_session_id()
    if session is None:
        session = secrets.token_urlsafe(32)
        flask.g.svdscope_new_session = session
    return session


def register_upload_routes(
    server: flask.Flask, services: Services, *, route: str = "/upload"
) -> Callable[..., flask.Response]:
    """Add the session cookie hook and the POST `route` endpoint to `server`."""

    @server.before_request
    def _issue_session() -> None:
        ensure_session_id()

    @server.after_request
    def _set_session_cookie(response: flask.Response) -> flask.Response:
        issued = flask.g.get("svdscope_new_session")
        if issued:
            response.set_cookie(
                SESSION_COOKIE, issued, httponly=True, samesite="Lax", max_age=30 * 24 * 3600
            )
        return response

    def upload() -> tuple[flask.Response, int]:
        answer, status = _upload()
        if flask.request.headers.get(PAGE_CLIENT_HEADER) == "page":
            # the page reads the outcome from the body; a 4xx would also be logged as a
            # console error by the browser
            return answer, 200
        return answer, status

    def _upload() -> tuple[flask.Response, int]:
        session = ensure_session_id()
        request = flask.request
        if request.mimetype.startswith("multipart/"):
            return flask.jsonify(
                ok=False,
                status=415,
                message="Send the file itself as the request body (not a form), "
                "with its name in the X-Filename header.",
            ), 415
        raw_name = request.headers.get("X-Filename") or request.args.get("name", "")
        name = unquote(raw_name)
        try:
            stored = services.uploads.save_stream(
                session, name, request.stream, request.content_length
            )
        except UploadError as err:
            return flask.jsonify(ok=False, status=err.status, message=err.message), err.status
        try:
            entry = services.open_upload(session, stored.file_id)
        except Exception as err:  # every failure to open becomes a message, not a 500
            services.uploads.delete(session, stored.file_id)
            message = services.error_message(err)
            return flask.jsonify(ok=False, status=422, message=message), 422
        return flask.jsonify(ok=True, model_id=entry.id, name=entry.label, size=stored.size), 200

    server.add_url_rule(route, "svdscope_upload", upload, methods=["POST"])
    return upload

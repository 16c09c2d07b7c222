"""Upload storage (model files and datasets): per-session folders, size limits, expiry.

`UploadStore.save_stream` copies a request body to disk in chunks and checks the size limit
while it streams (the endpoints are in app/web/uploads.py). Each browser session
(app/storage/session.py) has its own folder; its files live in
``<upload_dir>/<session id>/<random file id><allowed suffix>``.
The user's file name is kept only as display text in a side file: it never becomes a path.
Models and datasets live in two stores (`UploadStore`) with their own suffixes; datasets
under ``<upload_dir>/datasets/<session id>/``.

Ids are unguessable: session ids are ``secrets.token_urlsafe(32)`` (256 bits), file ids
``secrets.token_hex(16)`` (128 bits). Uploads expire ``ttl_s`` seconds after they were
sent (`AppConfig.upload_ttl_s`, ``SVDSCOPE_UPLOAD_TTL``): the data is deleted on the next
access or sweep (`UploadStore.sweep`, run at most every `SWEEP_EVERY_S` by uploads), and a
small tombstone keeps the display name for a while so the page can say the file expired.
A failed write (a full disk, ENOSPC) leaves nothing behind and answers 507.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import secrets
import time
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from app.storage.session import is_session_id

__all__ = [
    "ALLOWED_SUFFIXES",
    "DATASET_SUFFIXES",
    "StoredUpload",
    "UploadError",
    "UploadStore",
    "allowed_suffix",
    "display_name",
    "format_duration",
]

ALLOWED_SUFFIXES = (".safetensors", ".pt2", ".pth", ".pt", ".bin", ".onnx", ".json")
# svdcore.io.datasets.DATASET_SUFFIXES (kept here so that this module imports no svdcore)
DATASET_SUFFIXES = (".npy", ".npz", ".csv", ".pt", ".pth", ".zip")
MODEL_TOO_BIG_HINT = "open it from the command line (svdscope serve PATH) instead"
CHUNK_BYTES = 1 << 20
_FILE_ID_RE = re.compile(r"^[0-9a-f]{32}$")
FILE_ID_BYTES = 16  # 128 bits from secrets.token_hex
SWEEP_EVERY_S = 60.0  # uploads sweep expired files of every session at most this often
_DISK_FULL = (errno.ENOSPC, errno.EDQUOT)


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
    labels: str | None = None  # datasets: the label column / array named at upload


def allowed_suffix(name: str, suffixes: tuple[str, ...] = ALLOWED_SUFFIXES) -> str | None:
    """The allowed suffix `name` ends with (lower-cased), or None."""
    lowered = name.strip().lower()
    for suffix in suffixes:
        if lowered.endswith(suffix) and len(lowered) > len(suffix):
            return suffix
    return None


def display_name(name: str) -> str:
    """The last path component of a user-supplied name, printable, at most 120 characters."""
    base = re.split(r"[\\/]", name)[-1]
    clean = "".join(c for c in base if unicodedata.category(c)[0] != "C").strip()
    return (clean or "upload")[:120]


def format_duration(seconds: float) -> str:
    """ "45 s", "10 min", "24 h", "3 days": a duration for messages."""
    for unit, size in (("days", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size and (seconds % size == 0 or seconds >= 10 * size):
            value = seconds / size
            return f"{value:.0f} {unit}" if unit != "days" or value != 1 else "1 day"
    return f"{seconds:g} s"


def _fmt_bytes(n: int) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} bytes"  # pragma: no cover


class UploadStore:
    """Files of each session under `root`; every method validates the ids it is given.

    `suffixes` are the accepted file types, `what` names them in messages ("model file",
    "dataset") and `too_big_hint` says what to do with a file over the size limit. Files
    older than `ttl_s` seconds are deleted (None: kept until the folder is cleaned).
    """

    def __init__(
        self,
        root: Path,
        *,
        max_bytes: int,
        max_files: int = 32,
        suffixes: tuple[str, ...] = ALLOWED_SUFFIXES,
        what: str = "model file",
        too_big_hint: str = MODEL_TOO_BIG_HINT,
        ttl_s: float | None = None,
    ) -> None:
        self.root = Path(root)
        self.max_bytes = int(max_bytes)
        self.max_files = int(max_files)
        self.suffixes = tuple(suffixes)
        self.what = what
        self.too_big_hint = too_big_hint
        self.ttl_s = None if ttl_s is None else float(ttl_s)
        self._last_sweep = 0.0

    def session_dir(self, session: str, *, create: bool = False) -> Path:
        if not is_session_id(session):
            raise UploadError(400, "This browser session is not valid; reload the page.")
        folder = self.root / session
        if create:
            self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
            folder.mkdir(exist_ok=True, mode=0o700)
        return folder

    def save_stream(
        self,
        session: str,
        name: str,
        stream: IO[bytes],
        content_length: int | None = None,
        *,
        labels: str | None = None,
    ) -> StoredUpload:
        """Copy `stream` to a new file of `session`, refusing it once it passes the limit.
        `labels` (datasets) is kept beside the file as plain text."""
        suffix = allowed_suffix(name, self.suffixes)
        if suffix is None:
            allowed = ", ".join(self.suffixes)
            raise UploadError(
                415, f"'{display_name(name)}' is not a supported {self.what}; use one of {allowed}."
            )
        limit = self.max_bytes
        too_big = (
            f"'{display_name(name)}' is larger than the upload limit of {_fmt_bytes(limit)}; "
            f"{self.too_big_hint}."
        )
        if content_length is not None and content_length > limit:
            raise UploadError(413, too_big)
        self.maybe_sweep()
        try:
            folder = self.session_dir(session, create=True)
        except OSError as err:
            raise _storage_error(err, name) from err
        if len(self.list(session)) >= self.max_files:
            raise UploadError(
                429,
                f"This session already holds {self.max_files} uploaded {self.what}s; "
                "reload the page in a new browser session to upload more.",
            )
        file_id = secrets.token_hex(FILE_ID_BYTES)
        part = folder / f"{file_id}.part"
        final = folder / f"{file_id}{suffix}"
        meta_path = folder / f"{file_id}.meta"
        meta = {"name": display_name(name), "suffix": suffix, "size": 0, "created": time.time()}
        if labels:  # a column / array name: printable text only
            printable = (c for c in str(labels) if unicodedata.category(c)[0] != "C")
            meta["labels"] = "".join(printable)[:200]
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
            meta["size"] = size
            meta_path.write_text(json.dumps(meta))  # before the data: never data without meta
            os.replace(part, final)
        except BaseException as err:
            for leftover in (part, final, meta_path):  # nothing partial stays behind
                leftover.unlink(missing_ok=True)
            if isinstance(err, OSError):
                raise _storage_error(err, name) from err
            raise
        return StoredUpload(
            file_id, meta["name"], suffix, size, meta["created"], final, meta.get("labels")
        )

    def get(self, session: str, file_id: str) -> StoredUpload | None:
        if not _FILE_ID_RE.match(file_id or ""):
            return None
        try:
            folder = self.session_dir(session)
        except UploadError:
            return None
        meta = _read_meta(folder / f"{file_id}.meta")
        if meta is None or meta.get("expired"):
            return None
        suffix = meta.get("suffix")
        if suffix not in self.suffixes:
            return None
        path = folder / f"{file_id}{suffix}"
        if self._is_stale(meta, time.time()):
            self._expire(folder, file_id, meta)
            return None
        if not path.is_file():
            return None
        return StoredUpload(
            file_id,
            str(meta.get("name", "upload")),
            suffix,
            int(meta.get("size", 0)),
            float(meta.get("created", 0.0)),
            path,
            str(meta["labels"]) if meta.get("labels") else None,
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

    # ------------------------------------------------------------------ expiry
    def _is_stale(self, meta: dict[str, Any], now: float) -> bool:
        if self.ttl_s is None:
            return False
        try:
            return now - float(meta.get("created", 0.0)) > self.ttl_s
        except (TypeError, ValueError):
            return True

    def _expire(self, folder: Path, file_id: str, meta: dict[str, Any]) -> None:
        """Delete the data of an expired upload; keep its display name as a tombstone."""
        suffix = meta.get("suffix")
        if suffix in self.suffixes:
            (folder / f"{file_id}{suffix}").unlink(missing_ok=True)
        tomb = {"name": str(meta.get("name", "upload")), "expired": time.time()}
        try:
            (folder / f"{file_id}.meta").write_text(json.dumps(tomb))
        except OSError:  # a full disk: drop the tombstone rather than keep the data
            (folder / f"{file_id}.meta").unlink(missing_ok=True)

    def expired(self, session: str | None, file_id: str) -> str | None:
        """The display name of `session`'s upload `file_id` when it expired (and was
        deleted), else None."""
        if session is None or not _FILE_ID_RE.match(file_id or ""):
            return None
        try:
            folder = self.session_dir(session)
        except UploadError:
            return None
        self.get(session, file_id)  # expires it now if it is due
        meta = _read_meta(folder / f"{file_id}.meta")
        return str(meta.get("name", "upload")) if meta and meta.get("expired") else None

    def sweep(self, now: float | None = None) -> int:
        """Delete every session's expired uploads, tombstones older than `ttl_s`, stray
        ``.part`` files and empty session folders; returns the number of files deleted."""
        if self.ttl_s is None or not self.root.is_dir():
            return 0
        now = time.time() if now is None else now
        deleted = 0
        for folder in self.root.iterdir():
            if not (is_session_id(folder.name) and folder.is_dir()):
                continue
            for path in list(folder.iterdir()):
                try:
                    if path.suffix == ".part":
                        if now - path.stat().st_mtime > self.ttl_s:
                            path.unlink(missing_ok=True)
                            deleted += 1
                        continue
                    if path.suffix != ".meta" or not _FILE_ID_RE.match(path.stem):
                        continue
                    meta = _read_meta(path)
                    if meta is None:
                        continue
                    if meta.get("expired"):
                        if now - float(meta["expired"]) > self.ttl_s:
                            path.unlink(missing_ok=True)
                            deleted += 1
                    elif self._is_stale(meta, now):
                        self._expire(folder, path.stem, meta)
                        deleted += 1
                except (OSError, TypeError, ValueError):
                    continue
            with contextlib.suppress(OSError):
                folder.rmdir()  # only when empty
        self._last_sweep = now
        return deleted

    def maybe_sweep(self) -> None:
        """`sweep`, at most every `SWEEP_EVERY_S` seconds (called by each upload)."""
        if self.ttl_s is not None and time.time() - self._last_sweep >= SWEEP_EVERY_S:
            self.sweep()


def _read_meta(path: Path) -> dict[str, Any] | None:
    try:
        meta = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return meta if isinstance(meta, dict) else None


def _storage_error(err: OSError, name: str) -> UploadError:
    """The answer to a failed write: 507 for a full disk (or quota), else 500."""
    shown = display_name(name)
    if err.errno in _DISK_FULL:
        return UploadError(
            507,
            f"The server's disk is full, so '{shown}' was not stored (nothing of it was "
            "kept); try again later, or ask the administrator to free space.",
        )
    return UploadError(
        500,
        f"'{shown}' could not be stored on the server ({err.strerror or type(err).__name__}); "
        "nothing of it was kept. Try again.",
    )

"""The browser session: an unguessable random id kept in a cookie.

Session ids are ``secrets.token_urlsafe(32)`` (256 bits). `ensure_session_id` issues one
during a request that has none (app/web/uploads.py sends it back as an HttpOnly cookie);
`session_from_cookies` reads it from a cookie mapping in a background job.
"""

from __future__ import annotations

import re
import secrets

__all__ = [
    "SESSION_COOKIE",
    "current_session_id",
    "ensure_session_id",
    "is_session_id",
    "session_from_cookies",
]

SESSION_COOKIE = "svdscope_session"
_SESSION_RE = re.compile(r"^[A-Za-z0-9_-]{40,64}$")


def is_session_id(value: object) -> bool:
    """True for a well-formed session id (what `ensure_session_id` issues)."""
    return isinstance(value, str) and bool(_SESSION_RE.match(value))


def current_session_id() -> str | None:
    """The valid session id of the current request (cookie, or one issued during it)."""
    import flask  # here, so that storage (and the CLI above it) loads no web framework

    if not flask.has_request_context():
        return None
    issued = flask.g.get("svdscope_new_session")
    if issued:
        return issued
    value = flask.request.cookies.get(SESSION_COOKIE, "")
    return value if is_session_id(value) else None


def session_from_cookies(cookies: dict[str, str] | None) -> str | None:
    """The valid session id in a cookie mapping (e.g. `dash.callback_context.cookies` in a
    background job, which has no Flask request), else None."""
    value = (cookies or {}).get(SESSION_COOKIE, "")
    return value if is_session_id(value) else None


def ensure_session_id() -> str:
    """The current session id, issuing a new one (sent back as a cookie) when missing."""
    import flask

    session = current_session_id()
    if session is None:
        session = secrets.token_urlsafe(32)
        flask.g.svdscope_new_session = session
    return session

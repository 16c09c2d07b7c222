"""All configuration of one dashboard instance, parsed in one place.

`AppConfig` holds the options of `create_app`; `AppConfig.from_env` reads them from the
environment (the gunicorn image, `svdscope worker`), and the CLI (app/cli) builds one from
its arguments on top of that. Settings from the environment:

    SVDSCOPE_MODELS            comma-separated zoo names / model paths (default: the zoo)
    SVDSCOPE_UPLOAD_DIR        where uploads are stored (default: a per-user temp folder)
    SVDSCOPE_CACHE_DIR         the filesystem result cache (default: ~/.cache/svdscope/results)
    SVDSCOPE_MAX_UPLOAD_BYTES  the largest accepted upload
    SVDSCOPE_UPLOAD_TTL        seconds an upload is kept (default 86400; 0 or "none": kept)
    SVDSCOPE_REDIS_URL         redis://[:password@]host:port/db  (unset: filesystem + diskcache)
    SVDSCOPE_REDIS_REQUIRED=1  refuse to start when that Redis cannot be reached (otherwise:
                               one warning in the log, then the filesystem/diskcache fallback)
    SVDSCOPE_BASIC_AUTH        "user:password" (several pairs: one per line or comma-separated)
    SVDSCOPE_BASIC_AUTH_FILE   a file holding such lines (e.g. a Docker secret)

A password may also be a werkzeug hash (``scrypt:...`` / ``pbkdf2:...``, from
``werkzeug.security.generate_password_hash``).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from svdcore.exceptions import SvdscopeError

__all__ = [
    "AppConfig",
    "DeploymentError",
    "default_cache_dir",
    "default_models",
    "default_upload_dir",
    "deploy_options_from_env",
    "parse_credentials",
    "redact_url",
    "truthy",
    "upload_ttl_from_env",
]

GIB = 1024**3
DEFAULT_UPLOAD_TTL_S = 24 * 3600.0


class DeploymentError(SvdscopeError):
    """A deployment setting that prevents the app from starting (message says which)."""


def default_models() -> list[str]:
    """All example networks of the zoo, or an empty list when the zoo cannot be read."""
    try:
        import svdcore as sc

        return list(sc.zoo.names())
    except Exception:  # the zoo is optional for the page to start
        return []


def default_upload_dir() -> Path:
    """A per-user folder under the system temp dir (uploads are transient)."""
    uid = os.getuid() if hasattr(os, "getuid") else os.getpid()
    return Path(tempfile.gettempdir()) / f"svdscope-uploads-{uid}"


def default_cache_dir() -> Path:
    """The per-user filesystem result cache ($XDG_CACHE_HOME or ~/.cache, /svdscope/results),
    shared by every process of one user on this host (gunicorn workers, `svdscope serve`)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "svdscope" / "results"


def truthy(value: str | None) -> bool:
    """ "1", "true", "yes", "on" (any case) -> True; anything else, or None -> False."""
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


def redact_url(url: str) -> str:
    """`url` with its password (if any) replaced by ***, for log lines and messages."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparsable URL>"
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = f"{parts.username}:" if parts.username else ":"
    return urlunsplit(parts._replace(netloc=f"{user}***@{netloc}"))


def upload_ttl_from_env(value: str) -> float | None:
    """SVDSCOPE_UPLOAD_TTL -> seconds (float), None for "0" / "none" / "never"."""
    text = value.strip().lower()
    if text in ("0", "none", "never", "off"):
        return None
    try:
        seconds = float(text)
    except ValueError:
        seconds = float("nan")
    if not seconds > 0 or seconds == float("inf"):
        raise DeploymentError(
            f"SVDSCOPE_UPLOAD_TTL must be a number of seconds (e.g. 86400), or 0 to keep "
            f"uploads; got {value!r}."
        )
    return seconds


def parse_credentials(text: str) -> dict[str, str]:
    """ "user:password" pairs (one per line, or comma-separated) -> {user: password}."""
    found: dict[str, str] = {}
    for item in text.replace(",", "\n").splitlines():
        item = item.strip()
        if not item or item.startswith("#"):
            continue
        user, sep, password = item.partition(":")
        if not sep or not user or not password:
            raise DeploymentError(
                "SVDSCOPE_BASIC_AUTH must hold user:password pairs (one per line); "
                f"one entry has {'no password' if user else 'no user name'}."
            )
        found[user] = password
    if not found:
        raise DeploymentError("SVDSCOPE_BASIC_AUTH is set but names no user:password pair.")
    return found


def deploy_options_from_env(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """AppConfig keyword options from SVDSCOPE_REDIS_URL, SVDSCOPE_REDIS_REQUIRED,
    SVDSCOPE_BASIC_AUTH, SVDSCOPE_BASIC_AUTH_FILE and SVDSCOPE_UPLOAD_TTL (unset ones are
    left out)."""
    env = os.environ if environ is None else environ
    options: dict[str, Any] = {}
    if env.get("SVDSCOPE_UPLOAD_TTL", "").strip():
        options["upload_ttl_s"] = upload_ttl_from_env(env["SVDSCOPE_UPLOAD_TTL"])
    if env.get("SVDSCOPE_REDIS_URL", "").strip():
        options["redis_url"] = env["SVDSCOPE_REDIS_URL"].strip()
    if truthy(env.get("SVDSCOPE_REDIS_REQUIRED")):
        options["redis_required"] = True
    auth = env.get("SVDSCOPE_BASIC_AUTH", "").strip()
    auth_file = env.get("SVDSCOPE_BASIC_AUTH_FILE", "").strip()
    if auth_file:
        try:
            auth = "\n".join(filter(None, (auth, Path(auth_file).read_text().strip())))
        except OSError as err:
            raise DeploymentError(
                f"SVDSCOPE_BASIC_AUTH_FILE names {auth_file!r}, which cannot be read "
                f"({err.strerror or err}); fix the path or unset the variable."
            ) from err
    if auth:
        parse_credentials(auth)  # fail at start-up, not at the first request
        options["basic_auth"] = auth
    return options


@dataclass(kw_only=True)
class AppConfig:
    """Keyword options of `create_app`.

    models: zoo names and/or model file paths shown in the model picker (default: the zoo).
    upload_dir: where each browser session's uploads are stored, one folder per session.
    max_upload_bytes: largest accepted upload; enforced while the body streams in.
    max_uploads_per_session: further uploads are refused with a message.
    upload_ttl_s: uploads are deleted this many seconds after they were sent (the page
        then says the file expired); None keeps them (SVDSCOPE_UPLOAD_TTL; 0 or "none").
    cache_dir: None keeps analysis results in memory; a folder uses a filesystem cache.
    cache_threshold: most entries either cache keeps before evicting.
    title: browser tab and page heading.
    redis_url: a Redis for results, cancel flags and the Celery job queue (app/web/deploy.py);
        None keeps them on this host (cache_dir or memory; diskcache background jobs).
    redis_required: refuse to start when redis_url cannot be reached (else: log, fall back).
    basic_auth: "user:password" lines; when set, every route but /healthz asks for them.
    datasets: dataset files offered to every session beside its uploads (`svdscope serve
        --data`, `svdscope.show(model, dataset=...)`): a path, or "path::labels" naming the
        label column / array of a .csv / .npz / .pt.
    """

    models: list[str] = field(default_factory=default_models)
    upload_dir: Path = field(default_factory=default_upload_dir)
    max_upload_bytes: int = 2 * GIB
    max_uploads_per_session: int = 32
    upload_ttl_s: float | None = DEFAULT_UPLOAD_TTL_S
    cache_dir: Path | None = None
    cache_threshold: int = 512
    title: str = "svdscope"
    redis_url: str | None = None
    redis_required: bool = False
    basic_auth: str | None = None
    datasets: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.models = [str(m) for m in self.models]
        self.datasets = [str(d) for d in self.datasets]
        self.upload_dir = Path(self.upload_dir)
        if self.cache_dir is not None:
            self.cache_dir = Path(self.cache_dir)
        if self.max_upload_bytes <= 0:
            raise ValueError("max_upload_bytes must be positive")
        if self.upload_ttl_s is not None and not self.upload_ttl_s > 0:
            raise ValueError("upload_ttl_s must be a positive number of seconds, or None")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> AppConfig:
        """AppConfig from the SVDSCOPE_* variables (see the module docstring); unset ones keep
        their defaults, except the cache: `default_cache_dir()` on disk, which every gunicorn
        worker of one host shares (results, cancel flags, the job queue). `overrides` (the
        command line) win over the environment."""
        env = os.environ if environ is None else environ
        kwargs: dict[str, Any] = {"cache_dir": default_cache_dir()}
        if env.get("SVDSCOPE_MODELS"):
            kwargs["models"] = [m.strip() for m in env["SVDSCOPE_MODELS"].split(",") if m.strip()]
        if env.get("SVDSCOPE_UPLOAD_DIR"):
            kwargs["upload_dir"] = Path(env["SVDSCOPE_UPLOAD_DIR"])
        if env.get("SVDSCOPE_CACHE_DIR"):
            kwargs["cache_dir"] = Path(env["SVDSCOPE_CACHE_DIR"])
        if env.get("SVDSCOPE_MAX_UPLOAD_BYTES"):
            kwargs["max_upload_bytes"] = int(env["SVDSCOPE_MAX_UPLOAD_BYTES"])
        kwargs.update(deploy_options_from_env(env))
        kwargs.update(overrides)
        return cls(**kwargs)

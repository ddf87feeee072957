"""Alibaba Cloud credentials for the ECI client: an AccessKey pair, optionally with an STS token (RAM role).

Owns reading them from the environment or from a mounted directory (a Kubernetes Secret volume) holding files named
like the variables, re-read when the files change (rotation). It must never log, format or repr a secret value;
errors name the variable or file, not its content.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from vnode.errors import ConfigError

ACCESS_KEY_ID = "ALIBABA_CLOUD_ACCESS_KEY_ID"
ACCESS_KEY_SECRET = "ALIBABA_CLOUD_ACCESS_KEY_SECRET"
SECURITY_TOKEN = "ALIBABA_CLOUD_SECURITY_TOKEN"
NAMES = (ACCESS_KEY_ID, ACCESS_KEY_SECRET, SECURITY_TOKEN)


@dataclass(frozen=True, repr=False)
class Credentials:
    access_key_id: str = field(repr=False)
    access_key_secret: str = field(repr=False)
    security_token: str | None = field(default=None, repr=False)

    def __repr__(self) -> str:
        kind = "sts" if self.security_token else "access-key"
        return f"Credentials(kind={kind}, values hidden)"

    __str__ = __repr__


class CredentialSource(Protocol):
    def current(self) -> Credentials:
        """The credentials to sign the next request with; may touch the filesystem (call it off the event loop)."""
        ...

    def describe(self) -> str:
        """Where credentials come from, for error messages (names, never values)."""
        ...


def _from_values(values: Mapping[str, str], where: str) -> Credentials:
    key_id, secret = values.get(ACCESS_KEY_ID, "").strip(), values.get(ACCESS_KEY_SECRET, "").strip()
    missing = [name for name, value in ((ACCESS_KEY_ID, key_id), (ACCESS_KEY_SECRET, secret)) if not value]
    if missing:
        raise ConfigError(f"ECI credentials: {' and '.join(missing)} not set in {where}")
    return Credentials(key_id, secret, values.get(SECURITY_TOKEN, "").strip() or None)


class StaticCredentials:
    def __init__(self, credentials: Credentials, where: str = "the configuration") -> None:
        self._credentials = credentials
        self._where = where

    def current(self) -> Credentials:
        return self._credentials

    def describe(self) -> str:
        return f"{ACCESS_KEY_ID}/{ACCESS_KEY_SECRET} from {self._where}"

    def __repr__(self) -> str:
        return f"StaticCredentials({self._where})"


class EnvCredentials(StaticCredentials):
    """Read once: a process's environment does not change under it."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        super().__init__(_from_values(os.environ if environ is None else environ, "the environment"),
                         "the environment")


class FileCredentials:
    """`<directory>/ALIBABA_CLOUD_ACCESS_KEY_ID` etc., re-read whenever a file's inode, mtime or size changes.

    Kubernetes updates a Secret volume by swapping a `..data` symlink, so the files' resolved inodes change; an
    in-place write changes mtime and size.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._lock = threading.Lock()  # current() runs on the client's worker threads
        self._stamp: tuple[tuple[int, int, int], ...] | None = None
        self._credentials: Credentials | None = None

    def _stat(self) -> tuple[tuple[int, int, int], ...]:
        stamps = []
        for name in NAMES:
            try:
                st = (self.directory / name).stat()
            except FileNotFoundError:
                stamps.append((0, 0, -1))
                continue
            except OSError as exc:
                raise ConfigError(f"ECI credentials: cannot read {self.directory / name}: {exc.strerror}") from exc
            stamps.append((st.st_ino, st.st_mtime_ns, st.st_size))
        return tuple(stamps)

    def current(self) -> Credentials:
        with self._lock:
            stamp = self._stat()
            if self._credentials is None or stamp != self._stamp:
                values = {}
                for name in NAMES:
                    path = self.directory / name
                    try:
                        values[name] = path.read_text(encoding="utf-8")
                    except FileNotFoundError:
                        continue
                    except OSError as exc:
                        raise ConfigError(f"ECI credentials: cannot read {path}: {exc.strerror}") from exc
                self._credentials = _from_values(values, str(self.directory))
                self._stamp = stamp
            return self._credentials

    def describe(self) -> str:
        return f"the files {ACCESS_KEY_ID}/{ACCESS_KEY_SECRET} in {self.directory}"

    def __repr__(self) -> str:
        return f"FileCredentials({self.directory})"


def credential_source(directory: Path | None = None, environ: Mapping[str, str] | None = None) -> CredentialSource:
    """A mounted directory when given, else the environment."""
    return FileCredentials(directory) if directory is not None else EnvCredentials(environ)

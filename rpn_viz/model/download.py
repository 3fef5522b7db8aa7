"""Downloading an official weights file: one streamed, hash-checked transfer per file, shared by everyone.

:func:`start_download` streams the file in chunks into a temporary ``*.partial`` file beside its
final name in torchvision's hub cache, with progress (bytes done, total, speed) for whoever waits on
it, a timeout of a few seconds on name resolution, connecting and every read (an offline machine
fails fast), and the full sha256 computed on the way; only the exact official bytes are renamed to
the final name, anything else is deleted. Several callers asking for the same file at once share one
transfer (process-wide single flight). A failure to connect is remembered for
:data:`OFFLINE_MEMORY_S` so that new sessions do not each wait for the timeout again; ``retry=True``
tries anyway. :func:`download` waits for it, handing each :class:`Progress` (numbers only) to a callback:
the words of a progress line are the callers' (``rpn_viz.commands.commandline.progress_text``: the CLI's
and the Python API's line on stderr, the app's progress bar).

Finding, verifying and loading the files is :mod:`rpn_viz.model.weights`; :func:`find_official` (here, so
that weights never imports this module back) takes a verified copy from disk, else calls :func:`download`.
"""

from __future__ import annotations

import hashlib
import os
import socket
import threading
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Callable
from urllib.error import HTTPError, URLError

from .weights import (
    OfficialFile,
    PartialFile,
    WeightsError,
    candidate_paths,
    hub_checkpoint_dir,
    missing_message,
    remember_sha256,
    verify_official,
)

TIMEOUT_S = 5.0  # name resolution, connecting, and each read: an offline machine fails this fast
CHUNK_BYTES = 1 << 16
OFFLINE_MEMORY_S = 60.0  # how long a failure to connect is remembered (new sessions do not wait again)
MB = 1e6


@dataclass(frozen=True)
class Progress:
    """How far one download is: the file, bytes received, the total (``None`` when the server does not say),
    seconds since it started, and whether it has finished (every byte there and the sha256 checked)."""

    filename: str
    done: int
    total: int | None
    elapsed_s: float
    finished: bool = False

    @property
    def speed(self) -> float:
        """Mean bytes per second since the transfer started."""
        return self.done / self.elapsed_s if self.elapsed_s > 0 else 0.0

    @property
    def fraction(self) -> float | None:
        """Share of the file received (0..1), or ``None`` when the total is unknown."""
        return min(1.0, self.done / self.total) if self.total else None


class DownloadError(RuntimeError):
    """A download failed; ``reason`` says why in a few words (e.g. "offline or unreachable: …")."""

    def __init__(self, reason: str, offline: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.offline = offline  # no connection at all (as opposed to a broken or wrong transfer)


def _cause(exc: BaseException) -> str:
    """``"URLError: [Errno 111] Connection refused"``: the exception's type and first line, short."""
    detail = exc.reason if isinstance(exc, URLError) and not isinstance(exc, HTTPError) else exc
    text = (str(detail).strip().splitlines() or [""])[0][:160]
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _resolve(host: str, port: int, timeout: float) -> None:
    """Look ``host`` up within ``timeout`` seconds (the system resolver alone may wait far longer)."""
    outcome: dict[str, BaseException] = {}

    def lookup() -> None:
        try:
            socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except OSError as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=lookup, name=f"resolve {host}", daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        raise URLError(f"looking up {host} took more than {timeout:g} s")
    if "error" in outcome:
        raise URLError(outcome["error"])


def open_url(url: str, timeout: float = TIMEOUT_S):
    """GET ``url`` with ``timeout`` on name resolution, connecting and every read; the HTTP response.

    Looked up at call time by the downloader, so tests can keep every request on the loopback.
    """
    parts = urllib.parse.urlsplit(url)
    proxied = parts.scheme in urllib.request.getproxies() and not urllib.request.proxy_bypass(parts.hostname or "")
    if parts.hostname and not proxied:  # through a proxy, the proxy resolves the name
        _resolve(parts.hostname, parts.port or (443 if parts.scheme == "https" else 80), timeout)
    request = urllib.request.Request(url, headers={"User-Agent": "rpn_viz"})
    return urllib.request.urlopen(request, timeout=timeout)


def _transfer(official: OfficialFile, target: Path, report: Callable[[Progress], None]) -> Path:
    """Stream ``official`` into ``target`` through a :class:`~rpn_viz.model.weights.PartialFile`; rename only the exact bytes."""
    started = time.monotonic()
    try:
        response = open_url(official.url, TIMEOUT_S)
    except Exception as exc:  # DNS, refused, timeout, HTTP status: nothing was received
        offline = not isinstance(exc, HTTPError)
        raise DownloadError(f"{'offline or unreachable: ' if offline else ''}{_cause(exc)}", offline) from None
    with response:
        length = response.headers.get("Content-Length")
        total = int(length) if length and length.isdigit() else None
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            partial = PartialFile(target)
        except OSError as exc:
            raise DownloadError(f"cannot write to {target.parent}: {exc.strerror or exc}") from None
        digest, done = hashlib.sha256(), 0
        with partial as out:  # renamed onto target only if the block ends without an error
            report(Progress(official.filename, 0, total, time.monotonic() - started))
            while True:
                try:
                    chunk = response.read(CHUNK_BYTES)
                except Exception as exc:  # timeout or reset in the middle of the body
                    raise DownloadError(f"the transfer broke off after {done / MB:.1f} MB ({_cause(exc)})") from None
                if not chunk:
                    break
                try:
                    out.write(chunk)
                except OSError as exc:
                    raise DownloadError(f"cannot write to {target.parent}: {exc.strerror or exc}") from None
                digest.update(chunk)
                done += len(chunk)
                report(Progress(official.filename, done, total, time.monotonic() - started))
            if total is not None and done != total:
                raise DownloadError(f"the transfer broke off after {done / MB:.1f} of {total / MB:.1f} MB")
            actual = digest.hexdigest()
            if actual != official.sha256:
                raise DownloadError(
                    f"the downloaded bytes are not the official file (sha256 {actual[:16]}…, expected "
                    f"{official.sha256[:16]}…: truncated, corrupted or another file) and were deleted"
                )
        report(Progress(official.filename, done, total, time.monotonic() - started, finished=True))
    remember_sha256(target, official.sha256)  # the hash is known: loading does not read the file twice
    return target


class Download:
    """One transfer of an official file into the hub cache, running in its own thread.

    Everyone who asks for the same file while it runs gets this object (:func:`start_download`):
    they read :attr:`progress`, :meth:`follow` it, or :meth:`result` it. A caller that stops
    waiting (e.g. an app session that reruns) does not stop the transfer.
    """

    def __init__(self, official: OfficialFile, target: Path) -> None:
        self.official = official
        self.target = target
        self._changed = threading.Condition()
        self._progress: Progress | None = None  # None until the server answers
        self._path: Path | None = None
        self._error: DownloadError | None = None
        self._finished = False

    @classmethod
    def finished_with(cls, official: OfficialFile, target: Path, path: Path | None = None,
                      error: DownloadError | None = None) -> "Download":
        """A download that needs no transfer: the file is already there, or a recent failure is remembered."""
        job = cls(official, target)
        job._finish(path, error)
        return job

    @property
    def progress(self) -> Progress | None:
        return self._progress

    @property
    def finished(self) -> bool:
        return self._finished

    @property
    def error(self) -> DownloadError | None:
        return self._error

    def _report(self, progress: Progress) -> None:
        with self._changed:
            self._progress = progress
            self._changed.notify_all()

    def _finish(self, path: Path | None, error: DownloadError | None) -> None:
        with self._changed:
            self._path, self._error, self._finished = path, error, True
            self._changed.notify_all()

    def _run(self) -> None:
        path, error = None, None
        try:
            path = _transfer(self.official, self.target, self._report)
        except DownloadError as exc:
            error = exc
        except Exception as exc:  # anything unforeseen still ends the download with a reason
            error = DownloadError(_cause(exc))
        with _LOCK:
            if _ACTIVE.get(self.target) is self:
                del _ACTIVE[self.target]
            if error is not None and error.offline:
                _FAILURES[self.official.url] = (time.monotonic(), error)
        self._finish(path, error)

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until the download has finished (at most ``timeout`` seconds); whether it has."""
        with self._changed:
            return self._changed.wait_for(lambda: self._finished, timeout)

    def result(self) -> Path:
        """The verified file, once the download has finished; :class:`DownloadError` if it failed."""
        self.wait()
        if self._error is not None:
            raise self._error
        assert self._path is not None
        return self._path

    def follow(self, callback: Callable[[Progress], None], interval: float = 0.0) -> Path:
        """Call ``callback(progress)`` as bytes arrive (at most every ``interval`` s, and once at the
        end), then return :meth:`result`. The values the callback sees only grow."""
        shown: Progress | None = None
        shown_at = -float("inf")
        while True:
            with self._changed:
                if shown is not None and interval > 0:
                    self._changed.wait_for(lambda: self._finished, max(0.0, shown_at + interval - time.monotonic()))
                self._changed.wait_for(lambda: self._finished or self._progress is not shown)
                progress, finished = self._progress, self._finished
            if progress is not None and progress is not shown:
                callback(progress)
                shown, shown_at = progress, time.monotonic()
            if finished:
                return self.result()


_LOCK = threading.Lock()
_ACTIVE: dict[Path, Download] = {}  # target -> the transfer running for it
_FAILURES: dict[str, tuple[float, DownloadError]] = {}  # url -> (when, why) of the last failure to connect


def forget_failures() -> None:
    """Forget every remembered failure to connect (the next download of any file tries again)."""
    with _LOCK:
        _FAILURES.clear()


def start_download(official: OfficialFile, *, retry: bool = False) -> Download:
    """The download of ``official`` into the hub cache: the one already running, else a new one.

    Returns at once. With a failure to connect less than :data:`OFFLINE_MEMORY_S` ago, the returned
    download has already failed with that reason (no new wait for the timeout) unless ``retry``.
    A file already under the final name is not downloaded again.
    """
    target = hub_checkpoint_dir() / official.filename
    with _LOCK:
        running = _ACTIVE.get(target)
        if running is not None:
            return running
        if retry:
            _FAILURES.pop(official.url, None)
        when, error = _FAILURES.get(official.url, (0.0, None))
        if error is not None and time.monotonic() - when < OFFLINE_MEMORY_S:
            ago = time.monotonic() - when
            return Download.finished_with(official, target, error=DownloadError(
                f"{error.reason}; tried {ago:.0f} s ago", offline=True))
        if target.is_file():
            return Download.finished_with(official, target, path=target)
        job = Download(official, target)
        _ACTIVE[target] = job
    threading.Thread(target=job._run, name=f"download {official.filename}", daemon=True).start()
    return job


def download(official: OfficialFile, progress: Callable[[Progress], None] | None = None, retry: bool = False) -> Path:
    """Download ``official`` into the hub cache and wait for it (sharing a transfer already running).

    ``progress`` receives each :class:`Progress` (its last one ``finished`` when the file is verified);
    ``None`` shows nothing: this module prints nothing. Raises :class:`DownloadError` when it fails.
    """
    job = start_download(official, retry=retry)
    return job.result() if progress is None else job.follow(progress)


def find_official(
    official: OfficialFile,
    weights_dir: str | os.PathLike | None = None,
    allow_download: bool = True,
    downloader: Callable[..., Path] | None = None,
    progress: Callable[[Progress], None] | None = None,
) -> Path:
    """Path of a verified copy of ``official``, downloading it if allowed; else :class:`WeightsError`.

    ``progress`` receives the download's :class:`Progress` (see :func:`download`); ``None``: silent.

    A present file with the wrong hash is an error, not a reason to look further: a user who put a
    file somewhere should learn that it is broken.
    """
    for path in candidate_paths(official, weights_dir):
        if path.is_file():
            verify_official(path, official)
            return path
    if not allow_download:
        raise WeightsError(missing_message(official, weights_dir, "download not allowed"))
    try:
        return (downloader or download)(official, progress=progress)  # looked up now: tests replace download()
    except WeightsError:
        raise
    except DownloadError as exc:
        raise WeightsError(missing_message(official, weights_dir, exc.reason)) from None
    except Exception as exc:  # offline, DNS, HTTP, disk: all mean "not available here"
        raise WeightsError(missing_message(official, weights_dir, f"{type(exc).__name__}: {exc}")) from None

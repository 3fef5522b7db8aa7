"""Downloading an official checkpoint (issue 12, part A), from a file server on 127.0.0.1.

The served file is a Faster R-CNN checkpoint the tests make (``rpn_viz.testing``'s random checkpoint,
saved with torch.save), or a few MB of random tensors where only the transfer matters; the
registry's URL and sha256 are patched to point at it. Checked: progress that only grows and ends at
the total, then the loaded model traces like the same checkpoint loaded directly; one transfer for
several callers; offline (closed port, unresolvable name, a resolver or server that never answers)
fails within seconds with one line; truncated, wrong and interrupted transfers leave no file under
the final name (and no ``.partial``); a failed download can be retried.
"""

from __future__ import annotations

import hashlib
import io
import socket
import threading
import time
from dataclasses import replace
from pathlib import Path
from urllib.error import URLError

import pytest
import torch

import rpn_viz
from loopback import FileServer, Hold
from rpn_viz.model import download
from rpn_viz.model.models import DEFAULT_MODEL, MODELS, load_model
from rpn_viz.model.download import DownloadError
from rpn_viz.model.download import find_official
from rpn_viz.commands import commandline
from rpn_viz.commands.commandline import progress_text
from rpn_viz.model.weights import OfficialFile, WeightsError, sha256_of

ROOT = Path(__file__).resolve().parent.parent
SPEC = MODELS[DEFAULT_MODEL]
PATH = f"/models/{SPEC.official.filename}"
FAST_S = download.TIMEOUT_S + 2.0  # "fails fast": the timeout plus slack for a busy machine


@pytest.fixture()
def hub(no_weights_folder) -> Path:
    """An empty torch hub cache and no weights folder: every official file must be downloaded."""
    return no_weights_folder


@pytest.fixture()
def server():
    with FileServer() as running:
        yield running


@pytest.fixture(scope="module")
def blob() -> bytes:
    """A 3 MB checkpoint of random tensors (enough chunks to watch progress)."""
    generator = torch.Generator().manual_seed(0)
    buffer = io.BytesIO()
    torch.save({"weight": torch.randn(750_000, generator=generator)}, buffer)
    return buffer.getvalue()


def serve(server: FileServer, data: bytes, path: str = "/files/blob-0123abcd.pth") -> OfficialFile:
    server.files[path] = data
    return OfficialFile(server.url(path), hashlib.sha256(data).hexdigest())


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # nobody listens there once the socket is closed


# --------------------------------------------------------------------------------------------------
# a good download
# --------------------------------------------------------------------------------------------------


def test_load_model_downloads_the_coco_file_with_progress_then_traces_it(
    hub, server, monkeypatch, capfd, scrambled_checkpoint
) -> None:
    """The Python API's path (the CLI's too): rpn_viz.load_model() fetches the file, prints progress on
    stderr (the commands' progress line), loads it."""
    data = scrambled_checkpoint.read_bytes()
    monkeypatch.setitem(MODELS, DEFAULT_MODEL, replace(SPEC, official=serve(server, data, PATH)))
    loaded = rpn_viz.load_model(device="cpu")
    err = capfd.readouterr().err
    total = f"{len(data) / 1e6:.1f}"
    assert f"Downloading {SPEC.official.filename}: {total} / {total} MB · " in err
    assert err.endswith("\n") and err.count("\n") == 1 and "Traceback" not in err
    assert server.gets(PATH) == 1
    assert leftovers(hub) == [SPEC.official.filename]  # no .partial left behind
    assert (hub / SPEC.official.filename).read_bytes() == data
    assert loaded.weights.kind == "official" and loaded.weights.path == str(hub / SPEC.official.filename)

    downloaded = rpn_viz.trace(loaded, ROOT / "assets" / "cat.jpg")
    direct = rpn_viz.trace(load_model(checkpoint=scrambled_checkpoint, device="cpu"), ROOT / "assets" / "cat.jpg")
    assert torch.equal(downloaded.result.boxes, direct.result.boxes)
    assert torch.equal(downloaded.result.scores, direct.result.scores)
    assert downloaded.result.scores.std() > 0.01  # varied scores: the equality means something

    again = load_model(device="cpu")  # now found in the cache: no second transfer
    assert server.gets(PATH) == 1 and again.weights.path == loaded.weights.path


def test_progress_only_grows_and_ends_at_the_total(hub, server, blob, capfd) -> None:
    official = serve(server, blob)
    # the body stops after 4 chunks until the caller has seen them: a progress report half-way is certain
    hold = server.holds["/files/blob-0123abcd.pth"] = Hold(at=4 * download.CHUNK_BYTES)
    seen: list[download.Progress] = []

    def watch(step: download.Progress) -> None:
        seen.append(step)
        if step.done >= hold.at:
            hold.release.set()

    path = download.download(official, progress=watch)
    assert path == hub / official.filename and path.read_bytes() == blob
    assert len(seen) >= 2  # reports are coalesced when the caller is slower than the transfer
    assert all(p.total == len(blob) for p in seen)
    assert [p.done for p in seen] == sorted(p.done for p in seen)
    assert [p.elapsed_s for p in seen] == sorted(p.elapsed_s for p in seen)
    assert seen[0].done <= hold.at < seen[-1].done == len(blob) and seen[-1].fraction == 1.0
    assert seen[-1].speed > 0 and seen[-1].finished and not any(p.finished for p in seen[:-1])
    assert {p.filename for p in seen} == {official.filename}
    text = progress_text(seen[-1])  # the words are the commands', shared with the app's progress bar
    assert text.startswith(f"{len(blob) / 1e6:.1f} / {len(blob) / 1e6:.1f} MB · ") and text.endswith(" MB/s")
    assert sha256_of(path) == official.sha256
    assert capfd.readouterr().err == ""  # the package itself prints nothing


def test_several_callers_share_one_transfer(hub, server, blob) -> None:
    official = serve(server, blob)
    hold = server.holds["/files/blob-0123abcd.pth"] = Hold(at=16 * download.CHUNK_BYTES)  # whole chunks
    results: dict[str, Path | BaseException] = {}
    progress: dict[str, list[download.Progress]] = {"first": [], "second": [], "third": []}

    half_way = threading.Event()

    def fetch(name: str) -> None:
        def seen(step: download.Progress) -> None:
            progress[name].append(step)
            if step.done >= hold.at:
                half_way.set()

        try:
            results[name] = download.download(official, progress=seen)
        except BaseException as exc:  # noqa: BLE001 - reported by the assertions below
            results[name] = exc

    first = threading.Thread(target=fetch, args=("first",))
    first.start()
    assert hold.reached.wait(30) and half_way.wait(30)  # the transfer is half-way and waiting
    job = download.start_download(official)
    others = [threading.Thread(target=fetch, args=(name,)) for name in ("second", "third")]
    for thread in others:
        thread.start()
    assert job.progress is not None and job.progress.done == hold.at  # they can read it too
    hold.release.set()
    for thread in (first, *others):
        thread.join(60)
    assert results == {name: hub / official.filename for name in ("first", "second", "third")}
    assert server.gets("/files/blob-0123abcd.pth") == 1  # one GET for three callers
    for seen in progress.values():
        assert seen[-1].done == len(blob)
    assert job.result() == hub / official.filename


# --------------------------------------------------------------------------------------------------
# offline: fast, one line, nothing left behind
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("where", ["closed port", "unresolvable host"])
def test_offline_fails_fast_with_one_line(hub, where) -> None:
    host = f"127.0.0.1:{closed_port()}" if where == "closed port" else "rpn-viz-download-test.invalid"
    official = OfficialFile(f"http://{host}/models/offline-0123abcd.pth", "0" * 64)
    started = time.monotonic()
    with pytest.raises(WeightsError) as info:
        find_official(official)
    assert time.monotonic() - started < FAST_S
    message = str(info.value)
    assert "\n" not in message
    assert "offline or unreachable" in message and official.filename in message and official.url in message
    assert f"put it in {hub}/" in message
    assert leftovers(hub) == []


def test_a_server_that_never_answers_times_out(hub, server, monkeypatch) -> None:
    monkeypatch.setattr(download, "TIMEOUT_S", 1.0)
    server.silent.add("/files/silent-0123abcd.pth")
    official = OfficialFile(server.url("/files/silent-0123abcd.pth"), "0" * 64)
    started = time.monotonic()
    with pytest.raises(WeightsError, match="offline or unreachable.*timed out"):
        find_official(official)
    assert time.monotonic() - started < 3.0


def test_a_resolver_that_never_answers_times_out(hub, monkeypatch) -> None:
    """Name resolution has its own bound: the system resolver may wait far longer than TIMEOUT_S."""
    monkeypatch.setattr(download, "TIMEOUT_S", 1.0)
    never = threading.Event()
    real = socket.getaddrinfo
    monkeypatch.setattr(socket, "getaddrinfo",
                        lambda host, *a, **k: never.wait(30) if host.endswith(".invalid") else real(host, *a, **k))
    official = OfficialFile("http://slow-resolver.invalid/models/x-0123abcd.pth", "0" * 64)
    started = time.monotonic()
    try:
        with pytest.raises(WeightsError, match="looking up slow-resolver.invalid took more than 1 s"):
            find_official(official)
        assert time.monotonic() - started < 3.0
    finally:
        never.set()


def test_a_recent_offline_failure_is_remembered_and_retry_tries_again(hub, server, blob, monkeypatch) -> None:
    official = serve(server, blob)
    attempts: list[str] = []
    real_open = download.open_url
    online = {"now": False}

    def flaky(url, *args, **kwargs):
        attempts.append(url)
        if not online["now"]:
            raise URLError("[Errno 101] Network is unreachable")
        return real_open(url, *args, **kwargs)

    monkeypatch.setattr(download, "open_url", flaky)
    with pytest.raises(DownloadError, match="Network is unreachable"):
        download.download(official, progress=None)
    online["now"] = True
    started = time.monotonic()
    with pytest.raises(DownloadError, match=r"Network is unreachable; tried \d+ s ago") as info:
        download.download(official, progress=None)  # a new session: no new wait, the reason is remembered
    assert info.value.offline and time.monotonic() - started < 1.0
    assert len(attempts) == 1
    assert download.download(official, progress=None, retry=True) == hub / official.filename
    assert len(attempts) == 2 and server.gets("/files/blob-0123abcd.pth") == 1

    (hub / official.filename).unlink()
    online["now"] = False
    monkeypatch.setattr(download, "OFFLINE_MEMORY_S", 0.0)  # the memory lasts only a while
    with pytest.raises(DownloadError):
        download.download(official, progress=None)
    online["now"] = True
    assert download.download(official, progress=None) == hub / official.filename
    assert len(attempts) == 4


# --------------------------------------------------------------------------------------------------
# bad transfers: refused, deleted, retried
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("damage", ["truncated", "wrong bytes", "html page"])
def test_a_wrong_file_is_refused_and_deleted(hub, server, blob, damage) -> None:
    official = serve(server, blob)
    served = {"truncated": blob[: len(blob) // 2], "wrong bytes": blob[:-1] + bytes([blob[-1] ^ 1]),
              "html page": b"<html>captive portal: please log in</html>"}[damage]
    server.files["/files/blob-0123abcd.pth"] = served  # a complete response with the wrong body
    with pytest.raises(WeightsError) as info:
        find_official(official)
    message = str(info.value)
    assert "not the official file" in message and official.sha256[:16] in message
    assert hashlib.sha256(served).hexdigest()[:16] in message and "\n" not in message
    assert leftovers(hub) == []  # neither the final name nor a .partial


def test_an_interrupted_transfer_leaves_no_file(hub, server, blob) -> None:
    official = serve(server, blob)
    server.cut_after["/files/blob-0123abcd.pth"] = len(blob) // 3  # the server closes mid-body
    seen: list[download.Progress] = []
    with pytest.raises(DownloadError, match=r"broke off after 1\.0 of 3\.0 MB"):
        download.download(official, progress=seen.append)
    assert seen and seen[-1].done == len(blob) // 3
    assert leftovers(hub) == []


def test_the_cli_progress_line_is_ended_before_the_error_line(hub, server, blob, capfd) -> None:
    """The commands' stderr line (``commandline.STDERR_PROGRESS``) during a transfer that breaks off: the
    one-line error that follows starts on a line of its own."""
    official = serve(server, blob)
    server.cut_after["/files/blob-0123abcd.pth"] = len(blob) // 3
    with pytest.raises(DownloadError) as info:
        download.download(official, progress=commandline.STDERR_PROGRESS)
    commandline.print_error("rpn-viz fetch", info.value.reason)
    lines = capfd.readouterr().err.split("\n")
    assert lines[0].startswith(f"\rDownloading {official.filename}: ") and lines[0].endswith(" MB/s")
    assert lines[1:] == ["rpn-viz fetch: error: the transfer broke off after 1.0 of 3.0 MB", ""]


def test_the_cli_progress_line_shows_one_file_per_line_across_threads(capfd) -> None:
    """Downloads in several threads share the process's progress line: each line on stderr is one
    file's, ended before another file's starts (the line's lock)."""
    from concurrent.futures import ThreadPoolExecutor

    line = commandline.ProgressLine(every_s=0)

    def transfer(name: str) -> None:
        for done in range(1, 201):
            line(download.Progress(name, done * 1_000_000, 200_000_000, 1.0, finished=done == 200))

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(transfer, [f"file{i}.pth" for i in range(4)]))
    lines = [text for text in capfd.readouterr().err.split("\n") if text]
    for text in lines:
        names = {part.split(":", 1)[0] for part in text.split("\rDownloading ")[1:]}
        assert len(names) == 1 and text.startswith("\rDownloading "), text[:200]
    finished = [text for text in lines if text.endswith(" MB/s") and "200.0 / 200.0" in text.rsplit("\r", 1)[-1]]
    assert len(finished) >= 4


def test_a_failed_download_can_be_retried(hub, server, blob) -> None:
    official = serve(server, blob)
    server.cut_after["/files/blob-0123abcd.pth"] = 1000
    with pytest.raises(WeightsError, match="broke off"):
        find_official(official)
    del server.cut_after["/files/blob-0123abcd.pth"]
    assert find_official(official) == hub / official.filename  # not remembered: it was not "offline"
    assert server.gets("/files/blob-0123abcd.pth") == 2
    assert leftovers(hub) == [official.filename]

"""The life of a model directory: one writer at a time, and readers that see a finished whole or nothing.

A writer (``seqrnn train``, ``model.save``, ``detector.save``) holds an
exclusive lock on ``.lock`` in the directory (``flock``: the kernel drops it
when the holder dies, so a lock is never stale; the file's text, the holder's
process, host, boot and start time, only describes it, and a text that does
not describe the holder, copied in with the directory, is called stale when
a second writer is refused) and, before it changes any
file, writes ``status.json`` saying what it is doing::

    {"state": "training", "pid": 1234, ...}   # training, or stopped by kill -9
    {"state": "stopped", "reason": "..."}      # Ctrl-C, SIGTERM, a diverged loss, an error
    {"state": "model", "files": {...}}         # a finished model, no detector (yet)
    {"state": "complete", "files": {...}}      # a finished model and its detector

The last two are written last, once every file is in place, with the
SHA-256 of each file and a token of their own. A reader (:func:`read`)
loads only a directory in a finished state, reads ``status.json`` before
and after loading, and checks the files it loaded against the recorded
hashes: a writer that started in between changed ``status.json`` first, so
the reader tries again or says who is writing; a file changed by other
means (copied in from another run, edited) is refused.

A directory written before ``status.json`` existed loads as before when it
is complete: its detector was learned for its weights, or it has no
training checkpoint (a model saved by ``model.save``).
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import os
import re
import socket
import stat
import sys
import threading
import time
import uuid
from contextlib import contextmanager

from . import artifacts
from .errors import InputError, ModelFileError

STATUS = "status.json"
LOCK = ".lock"
FINAL = ("model", "complete")
#: The files a finished directory's status records (those present), in the order they are hashed.
RECORDED = (artifacts.CONFIG, artifacts.WEIGHTS, "detector.json", "detector.safetensors")
DETECTOR = "detector.json"
DETECTOR_FILES = (DETECTOR, "detector.safetensors")
LOCK_WAIT = 2.0  # seconds a writer waits for a reader's brief probe of the lock before it gives up
READ_TRIES = 3  # times a reader starts again when a writer changed the directory while it read

_held: dict[str, "_Session"] = {}  # the directories this process writes, by real path
_reading = threading.local()


class _Session:
    def __init__(self, fd: int):
        self.fd, self.depth, self.created = fd, 0, False
        self.begun = self.finished = self.stopped = False  # this process's write: begun, finished, stopped


def _key(model_dir: str) -> str:
    return os.path.realpath(model_dir)


def _holder_text(model_dir: str) -> str:
    """Who holds the lock of ``model_dir`` (it is held), as the lock file says when that is true.

    The lock file's text is what its writer wrote; a file copied in with the directory (from another
    machine, or over the lock file of a writer running now) names a process that does not hold the
    lock. The text is trusted only when the process it names is alive on this machine (same host,
    same boot, same start time) and, where the kernel's lock table can be read, holds this lock."""
    path = os.path.join(model_dir, LOCK)
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            info = json.loads(fh.read(1 << 16) or "{}")
        pid = int(info["pid"])
        named = f"process {pid}" + (f" ({info['command']}, since {info['since']})" if info.get("command") else "")
    except (OSError, ValueError, KeyError, TypeError, RecursionError):
        info, pid, named = {}, None, None
    holders = _lock_holders(path)  # None: the kernel's table cannot be read
    stale = None
    if pid is not None:
        host = info.get("host")
        if host is not None and host != _HOST:
            stale = f"names {named} on host {host}, another machine"
        elif not _alive(pid, info):
            stale = f"names {named}, which is not running on this machine"
        elif holders is not None and holders and pid not in holders:
            stale = f"names {named}, which does not hold the lock"
    if stale is None and named is not None:
        return named
    real = (f"process {', '.join(map(str, sorted(holders)))}" if holders
            else "a process (find it with: fuser -v " + path + ")")
    what = (f"its lock file {stale}: a stale text, copied with the directory?" if stale
            else "its lock file names no process")
    return (f"{real} ({what}; the lock is held all the same: wait for that process to end, or stop it; "
            f"remove {path} only once no process holds it)")


_HOST = socket.gethostname()


def _boot_id() -> str | None:
    try:
        with open("/proc/sys/kernel/random/boot_id", encoding="ascii") as fh:
            return fh.read().strip()
    except OSError:
        return None


def _start_time(pid: int) -> str | None:
    """When process ``pid`` started (clock ticks since boot, from /proc), or None."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
            return fh.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def _alive(pid: int, info: dict) -> bool:
    """Whether the lock file's ``pid`` is the live process that wrote it (same boot and start time where
    the file records them)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # (no permission: it exists)
        pass
    if info.get("boot") is not None and info["boot"] != _boot_id():
        return False
    return info.get("start") is None or info["start"] == _start_time(pid)


def _lock_holders(path: str) -> set[int] | None:
    """The processes holding a lock on the file ``path``, from the kernel's table (/proc/locks), or None."""
    try:
        st = os.stat(path)
        with open("/proc/locks", encoding="ascii", errors="replace") as fh:
            table = fh.read(1 << 22)
    except OSError:
        return None
    where = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
    holders = set()
    for row in table.splitlines():
        fields = row.split()
        if "->" not in fields and len(fields) >= 6 and fields[5] == where and fields[4].isdigit():
            holders.add(int(fields[4]))
    return holders


def holder(model_dir: str) -> str | None:
    """Who writes ``model_dir`` now (``"process 1234 (...)"``), or ``None`` if nobody does."""
    if _key(model_dir) in _held:
        return f"process {os.getpid()} (this one)"
    try:
        fd = os.open(os.path.join(model_dir, LOCK), os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError as exc:
        if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            return _holder_text(model_dir)
        return None
    finally:
        os.close(fd)  # closing drops the shared lock, if it was taken
    return None


def _command() -> str:
    name = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else "python"
    if name in ("__main__.py", "-m", "-c") or name.startswith("seqrnn"):
        name = "seqrnn"
    words = [name, *sys.argv[1:3]] if name == "seqrnn" else [name]
    return " ".join(words)[:120]


@contextmanager
def writing(model_dir: str | None, param: str = "model_dir"):
    """Hold the exclusive write lock of ``model_dir`` (created if missing) for the block; re-entrant.

    A second writer is refused with an :class:`~seqrnn.errors.InputError` naming the holder's process;
    a path that is a file is refused at once. On an error inside a block that began writing (see
    :func:`begin`) and did not finish, ``status.json`` says the writing stopped and why.
    """
    if model_dir is None:
        yield None
        return
    if os.path.exists(model_dir) and not os.path.isdir(model_dir):
        raise InputError(f"{param} {model_dir} is a file, not a model directory", params=param)
    key = _key(model_dir)
    session = _held.get(key)
    if session is None:
        refuse_foreign(model_dir)
        session = _held[key] = _acquire(model_dir, param)
    session.depth += 1
    try:
        yield session
    except BaseException as exc:
        if session.begun and not session.finished and not session.stopped:  # the innermost block says why
            session.stopped = True
            _stopped(model_dir, exc)
        raise
    finally:
        session.depth -= 1
        if session.depth == 0:
            del _held[key]
            _release(model_dir, session)


#: The names a writer replaces in a model directory (what refuse_foreign guards).
WRITTEN = (artifacts.CONFIG, artifacts.WEIGHTS, *DETECTOR_FILES, artifacts.HISTORY, artifacts.CHECKPOINT, STATUS)


def refuse_foreign(model_dir: str) -> None:
    """Refuse to write into a folder that holds a file of a model directory's names (``config.json``,
    ``model.safetensors``...) but is not a seqrnn model directory (no status or config of seqrnn's):
    another tool's settings, another framework's model folder, which a writer would replace; and into a
    folder of data that seqrnn parse or encode wrote."""
    if not os.path.isdir(model_dir):
        return
    for marker, writer in artifacts.DATA_FOLDERS:
        if os.path.lexists(os.path.join(model_dir, marker)) and not _is_ours(model_dir):  # data, not a model
            raise InputError(f"is a folder written by {writer} (data to train on): write the model into a new or "
                             "empty folder", model_dir)
    present = [n for n in WRITTEN if os.path.lexists(os.path.join(model_dir, n))]
    if not present or _is_ours(model_dir):
        return
    raise InputError("seqrnn did not write this file, which a model directory holds: the folder is not a seqrnn "
                     "model directory (no status.json or config.json of seqrnn's); write the model into a new "
                     "or empty folder, or move the file away", os.path.join(model_dir, present[0]))


def _is_ours(model_dir: str) -> bool:
    """Whether a seqrnn writer left ``model_dir``: a status it wrote, or a config.json of its format."""
    try:
        raw = _status_bytes(model_dir)
        if raw is not None:
            _parse(model_dir, raw)
            return True
    except ModelFileError:
        pass
    try:
        config = artifacts.read_json(os.path.join(model_dir, artifacts.CONFIG))
    except (OSError, ModelFileError):
        return False
    return isinstance(config, dict) and config.get("format") in artifacts.KINDS  # a model or a classifier


def _acquire(model_dir: str, param: str) -> _Session:
    created = not os.path.isdir(model_dir)
    path = os.path.join(model_dir, LOCK)
    deadline = time.monotonic() + LOCK_WAIT
    while True:
        os.makedirs(model_dir, exist_ok=True)
        try:  # never through a link: the lock's text would overwrite whatever file it points to
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NONBLOCK | os.O_NOFOLLOW, 0o644)
        except OSError as exc:
            if exc.errno != errno.ELOOP:
                raise
            raise ModelFileError("is a symbolic link, not the lock file of a model directory (copied in with "
                                 "the directory?): remove the link", path) from None
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise ModelFileError("is not a regular file (the lock file of a model directory)", path)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise
            if time.monotonic() > deadline:
                raise InputError(f"{param} {model_dir} is being written by {_holder_text(model_dir)}: wait for it "
                                 f"to finish, or use another {param}", params=param) from None
            time.sleep(0.05)
            continue
        try:  # the lock file must still be the one in the directory (a writer that gave up removes its own)
            same = os.stat(path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)
    info = {"pid": os.getpid(), "host": _HOST, "boot": _boot_id(), "start": _start_time(os.getpid()),
            "command": _command(), "since": time.strftime("%Y-%m-%d %H:%M:%S")}
    os.ftruncate(fd, 0)
    os.pwrite(fd, json.dumps(info).encode(), 0)
    _clean_temporaries(model_dir)
    session = _Session(fd)
    session.created = created
    return session


def _release(model_dir: str, session: _Session) -> None:
    """Drop the lock; a directory this writer created and left empty (it failed before writing) goes too."""
    try:
        if session.created and os.listdir(model_dir) == [LOCK]:
            os.unlink(os.path.join(model_dir, LOCK))
            os.rmdir(model_dir)
    except OSError:
        pass
    finally:
        os.close(session.fd)


_TEMPORARY = re.compile(r"^\.(%s)\..+" % "|".join(re.escape(n) for n in (
    *RECORDED, STATUS, artifacts.HISTORY, "checkpoint.safetensors", "state.json", "state.safetensors")))


def _clean_temporaries(model_dir: str) -> None:
    """Remove the half-written temporary files a killed writer left (only ever by the lock's holder)."""
    for folder in (model_dir, os.path.join(model_dir, artifacts.CHECKPOINT)):
        try:
            names = os.listdir(folder)
        except OSError:
            continue
        for name in names:
            if _TEMPORARY.match(name):
                try:
                    os.unlink(os.path.join(folder, name))
                except OSError:
                    pass


def _write_status(model_dir: str, status: dict) -> None:
    artifacts.write_json(os.path.join(model_dir, STATUS), {**status, "token": uuid.uuid4().hex})


def begin(model_dir: str | None, state: str = "training") -> None:
    """Say in ``status.json`` that the directory is being written (before the first file changes)."""
    if model_dir is None:
        return
    session = _held.get(_key(model_dir))
    if session is not None:
        session.begun, session.finished, session.stopped = True, False, False
    _write_status(model_dir, {"state": state, "pid": os.getpid(), "host": _HOST, "command": _command(),
                              "since": time.strftime("%Y-%m-%d %H:%M:%S")})


def drop_detector(model_dir: str | None) -> None:
    """Remove the detector files (a training changes the weights they were learned for): a training
    into a directory that held a model leaves no detector of the earlier weights for :func:`finish` to
    record as part of a complete directory."""
    if model_dir is None:
        return
    for name in DETECTOR_FILES:
        path = os.path.join(model_dir, name)
        if os.path.isfile(path) or os.path.islink(path):
            os.unlink(path)


TRAINING_STATE = ("checkpoint.safetensors", "state.safetensors", "state.json")  # checkpoint/'s files, old and new


def drop_training(model_dir: str | None, history: bool = True) -> None:
    """Remove what a training left for ``--resume`` (``checkpoint/``) and, with ``history``, its
    ``history.csv``: a new training, or a model saved over the one they belong to, would otherwise
    leave them beside weights they do not describe (``--resume`` would go back to the earlier run)."""
    if model_dir is None:
        return
    folder = os.path.join(model_dir, artifacts.CHECKPOINT)
    for name in TRAINING_STATE:
        path = os.path.join(folder, name)
        if os.path.isfile(path) or os.path.islink(path):
            os.unlink(path)
    try:
        os.rmdir(folder)  # only once empty: files of the user's own stay
    except OSError:
        pass
    path = os.path.join(model_dir, artifacts.HISTORY)
    if history and (os.path.isfile(path) or os.path.islink(path)):
        os.unlink(path)


def training_now(model_dir: str) -> bool:
    """Whether this process is training into ``model_dir`` (begun, not yet finished): a save that ends a
    training, whose checkpoint and history belong to the weights saved."""
    session = _held.get(_key(model_dir))
    return session is not None and session.begun and not session.finished and not session.stopped


def saved_kind(model_dir: str):
    """The kind of model ``config.json`` names (None: no readable config)."""
    return _kind(model_dir)


def finish(model_dir: str) -> dict:
    """Record the finished directory: ``complete`` with a detector file, ``model`` without; every
    recorded file's SHA-256. Written last, atomically."""
    files = {name: _sha256(os.path.join(model_dir, name)) for name in RECORDED
             if os.path.isfile(os.path.join(model_dir, name))}
    state = "complete" if DETECTOR in files else "model"
    session = _held.get(_key(model_dir))
    if session is not None:
        session.finished = True
    status = {"state": state, "files": files, "finished": time.strftime("%Y-%m-%d %H:%M:%S")}
    _write_status(model_dir, status)
    return status


@contextmanager
def saving(model_dir: str):
    """``writing`` + ``begin`` + ``finish``: for a save that writes its files in one go."""
    with writing(model_dir):
        session = _held[_key(model_dir)]
        training = session.begun and not session.finished
        begin(model_dir, "training" if training else "saving")
        yield
        finish(model_dir)


def _stopped(model_dir: str, exc: BaseException) -> None:
    from .errors import Terminated

    signum = exc.signum if isinstance(exc, Terminated) else getattr(exc, "signal", None)  # TrainingInterrupted's
    if isinstance(exc, KeyboardInterrupt) or signum is not None:
        reason = "stopped by SIGTERM" if signum == 15 else "interrupted (Ctrl-C)"
    else:
        reason = str(exc).split("\n")[0][:300] or type(exc).__name__
    kind = getattr(exc, "stopped_state", None) or "stopped"
    checkpoint = os.path.join(model_dir, artifacts.CHECKPOINT)
    try:
        _write_status(model_dir, {"state": kind, "reason": reason, "pid": os.getpid(),
                                  "checkpoint": any(n.endswith(".safetensors") for n in os.listdir(checkpoint))
                                  if os.path.isdir(checkpoint) else False,
                                  "stopped": time.strftime("%Y-%m-%d %H:%M:%S")})
    except OSError:  # the disk that failed the writer may fail this too: "training" stays, which is refused
        pass


def _sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


# --- readers -------------------------------------------------------------------------------------
def _status_bytes(model_dir: str) -> bytes | None:
    path = os.path.join(model_dir, STATUS)
    if not os.path.lexists(path):
        return None
    if not os.path.isfile(path):  # a folder, a FIFO (which would block), a dangling link
        raise ModelFileError("not a regular file", path)
    try:
        with open(path, "rb") as fh:
            return fh.read(1 << 20)
    except FileNotFoundError:
        return None


def _parse(model_dir: str, raw: bytes) -> dict:
    try:
        status = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):  # (crafted: nested without end)
        raise ModelFileError(f"{STATUS} is truncated or not JSON", os.path.join(model_dir, STATUS)) from None
    if not isinstance(status, dict) or not isinstance(status.get("state"), str):
        raise ModelFileError(f"{STATUS} holds no \"state\"", os.path.join(model_dir, STATUS))
    return status


RESUME_HINT = "seqrnn train ... --model-dir {dir} --resume (the same data and settings)"
CALIBRATE_HINT = "seqrnn calibrate {dir} NORMAL... (or in Python: Detector(model).fit(X).save(dir))"


def _refuse_unfinished(model_dir: str, status: dict, need: str) -> None:
    state = status["state"]
    if state in FINAL:
        if need == "detector" and state != "complete" and _kind(model_dir) != "classifier":  # (its loader says)
            raise ModelFileError("the model has no detector (its training finished, its calibration did not): "
                                 f"calibrate it with {CALIBRATE_HINT.format(dir=model_dir)}", model_dir)
        if not isinstance(status.get("files"), dict):
            raise ModelFileError(f"{STATUS} of a finished directory lists no files", model_dir)
        return
    who = holder(model_dir)
    if who is not None:
        raise ModelFileError(f"is being written by {who}: wait for it to finish", model_dir)
    resume = RESUME_HINT.format(dir=model_dir)
    if state == "diverged":
        raise ModelFileError(f"its training diverged ({status.get('reason', 'a loss that is not finite')}); "
                             f"it has no usable model: continue from the last good checkpoint with a lower "
                             f"--lr ({resume}), or train again", model_dir)
    if state == "stopped":
        raise ModelFileError(f"its training did not finish ({status.get('reason', 'stopped')}): continue it with "
                             f"{resume}, or train again", model_dir)
    # status.json may be hand-edited: a process named only where it names one
    proc = f"process {status['pid']}" if isinstance(status.get("pid"), int) else "its process"
    if state == "training":
        where = f" on host {status['host']}" if status.get("host") not in (None, _HOST) else ""
        raise ModelFileError(f"its training did not finish ({proc}{where} ended without "
                             f"finishing: killed?): continue it with {resume}, or train again", model_dir)
    raise ModelFileError(f"a write that did not finish ({state}, {proc}): write it again "
                         f"(for a training: {resume})", model_dir)


def _kind(model_dir: str):
    try:
        config = artifacts.read_json(os.path.join(model_dir, artifacts.CONFIG))
    except (OSError, ModelFileError):
        return None
    return config.get("kind") if isinstance(config, dict) else None


def check_status(model_dir: str, need: str = "model") -> dict | None:
    """The status of a directory that holds what ``need`` asks ("model" or "detector"), or a
    :class:`~seqrnn.errors.ModelFileError` saying why not and how to finish it; ``None`` for a
    directory written before ``status.json`` existed."""
    raw = _status_bytes(model_dir)
    if raw is None:
        return None
    status = _parse(model_dir, raw)
    _refuse_unfinished(model_dir, status, need)
    return status


def read(model_dir: str, load, need: str = "model"):
    """``load()``'s result, with ``model_dir`` in a finished state and unchanged while it was read.

    ``need``: ``"model"`` (a finished model) or ``"detector"`` (a model with its detector).
    """
    if getattr(_reading, "dirs", None) is None:
        _reading.dirs = set()
    key = _key(model_dir)
    if key in _reading.dirs or key in _held:  # an outer read checks (or this process writes it)
        return load()
    _reading.dirs.add(key)
    try:
        for _ in range(READ_TRIES):
            before = _status_bytes(model_dir) if os.path.isdir(model_dir) else None
            status = _parse(model_dir, before) if before is not None else None
            if status is not None:
                _refuse_unfinished(model_dir, status, need)
            try:
                obj = load()
                # a model's reader leaves the detector files to the detector's (Detector.load checks them):
                # a damaged detector does not hide the model, nor stop seqrnn calibrate from replacing it
                changed = _changed_files(model_dir, status, skip=DETECTOR_FILES if need == "model" else ())
            except (ModelFileError, InputError, OSError):
                if _status_bytes(model_dir) != before:
                    time.sleep(0.1)
                    continue
                raise
            if _status_bytes(model_dir) != before:  # a writer began meanwhile: what was read may be mixed
                time.sleep(0.1)
                continue
            if changed:
                raise _changed_error(model_dir, changed)
            _check_finite(model_dir, obj)
            if status is None:
                _check_legacy(model_dir, obj, need)
            return obj
        who = holder(model_dir)
        raise ModelFileError(f"kept changing while it was read ({who or 'another process'} is writing it): "
                             "try again when it has finished", model_dir)
    finally:
        _reading.dirs.discard(key)


def _changed_error(model_dir: str, changed: list[str]) -> ModelFileError:
    again = (f"calibrate it again with {CALIBRATE_HINT.format(dir=model_dir)}" if set(changed) <= set(DETECTOR_FILES)
             else "train again")
    return ModelFileError(f"{', '.join(changed)} changed after the directory was written (not the file {STATUS} "
                          f"records: copied in from elsewhere, or edited); {again}, or remove {STATUS} to "
                          "load the files as they are", model_dir)


def check_detector_files(model_dir: str) -> None:
    """A :class:`~seqrnn.errors.ModelFileError` when the detector files differ from those ``status.json``
    records (a model's reader, :func:`read` with ``need="model"``, leaves them to the detector's loader)."""
    raw = _status_bytes(model_dir)
    if raw is None:
        return
    status = _parse(model_dir, raw)
    changed = _changed_files(model_dir, status, only=DETECTOR_FILES)
    if changed:
        raise _changed_error(model_dir, changed)


def _changed_files(model_dir: str, status: dict | None, skip: tuple[str, ...] = (),
                   only: tuple[str, ...] | None = None) -> list[str]:
    if status is None:
        return []
    files = status.get("files") or {}
    changed = []
    for name, digest in files.items():
        if name in skip or (only is not None and name not in only):
            continue
        path = os.path.join(model_dir, str(name))
        if os.path.basename(str(name)) != name or not os.path.isfile(path) or _sha256(path) != digest:
            changed.append(str(name))
    return changed


def _check_legacy(model_dir: str, obj, need: str) -> None:
    """A directory without ``status.json``: complete when its detector fits its model, or when it
    was saved without a training (no checkpoint); a training that stopped left neither."""
    model = getattr(obj, "model", obj)
    if not hasattr(model, "vocab_") or getattr(model, "kind", None) == "classifier":
        return
    path = os.path.join(model_dir, DETECTOR)
    if os.path.lexists(path) and not os.path.isfile(path):
        return  # a folder, a FIFO, a dangling link: damaged, not stale (the detector's loader says so)
    if os.path.isfile(path):
        from .detect import model_fingerprint

        try:
            saved = artifacts.read_json(path)
        except ModelFileError:  # damaged, not stale: the detector's loader says so, the model loads
            return
        if not isinstance(saved, dict) or saved.get("model_fingerprint") == model_fingerprint(model):
            return
    else:
        config = artifacts.read_config(model_dir)
        if config.get("calibration") or not os.path.isdir(os.path.join(model_dir, artifacts.CHECKPOINT)):
            return
    raise ModelFileError("its training did not finish (written by an earlier seqrnn: no detector learned for "
                         f"these weights): continue it with {RESUME_HINT.format(dir=model_dir)}, or train again",
                         model_dir)


def _check_finite(model_dir: str, obj) -> None:
    """Weights that hold NaN or infinity (a diverged training saved by an earlier seqrnn) are refused."""
    import numpy as np

    model = getattr(obj, "model", obj)
    tensors = model._tensors() if hasattr(model, "_tensors") else {}
    if not tensors and hasattr(model, "net_"):
        tensors = dict(model.net_.state_dict())
    # a baseline's log-probabilities may be -inf (a count of zero); never NaN. (The class is asked first:
    # an RNNModel's net_ builds its torch network, which scoring does not need.)
    neural = isinstance(getattr(type(model), "net_", None), property) or hasattr(model, "net_")
    for name, value in artifacts.as_arrays(tensors).items():
        if value.dtype.kind in "fc" and (not np.isfinite(value).all() if neural else np.isnan(value).any()):
            raise ModelFileError(f"weight {name} holds NaN or infinite values (a training that diverged): "
                                 "train again with a lower --lr", os.path.join(model_dir, artifacts.WEIGHTS))
    threshold = getattr(model, "threshold_", None)
    if isinstance(threshold, float) and not np.isfinite(threshold):
        raise ModelFileError(f"the decision threshold is {threshold} (a training that diverged): train again",
                             os.path.join(model_dir, artifacts.CONFIG))

"""Content-addressed copies of imported scans: ``files/ab/abcdef....dcm`` under the records folder.

The scan is copied in, so a USB stick pulled after the import loses nothing. A copy is written to a
temporary name in the target folder, fsynced, renamed into place (atomic on one file system) and the
folder fsynced; only then does the caller insert the database row that references it. A process killed
mid-copy leaves at most a stray temporary file (swept later), never a referenced half file. A file renamed
in place whose row was never committed is harmless: the next import of the same bytes reuses it.
"""
from __future__ import annotations

import hashlib
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

from workstation.records.database import RecordsError, secure_dir

FILES_DIR = "files"
_TEMP_PREFIX = ".partial-"
_STALE_TEMP_S = 3600.0  # an import still copying after an hour is dead; its temporary file can go
_CHUNK = 1 << 20

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StoredFile:
    sha256: str
    relpath: str  # relative to the records folder, with forward slashes
    size_bytes: int


def stored_relpath(sha256: str, suffix: str) -> str:
    return f"{FILES_DIR}/{sha256[:2]}/{sha256}{suffix.lower()}"


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def store_copy(source: Path, root: Path, expected_sha256: str) -> StoredFile:
    """Copy ``source`` into ``root``'s file store under its content hash; 0600 file in 0700 folders.

    ``expected_sha256`` is the hash the caller checked for duplicates; the bytes actually copied are hashed
    again, so a file that changed (or a stick pulled) during the copy is refused rather than misfiled.
    """
    relpath = stored_relpath(expected_sha256, source.suffix)
    target = root / relpath
    secure_dir(root / FILES_DIR)
    secure_dir(target.parent)
    if target.exists():  # renamed in place earlier: complete by construction
        return StoredFile(expected_sha256, relpath, target.stat().st_size)
    temp = target.parent / f"{_TEMP_PREFIX}{os.getpid()}-{time.monotonic_ns()}"
    digest, size = hashlib.sha256(), 0
    try:
        fd = os.open(temp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
        with open(source, "rb") as src, os.fdopen(fd, "wb") as dst:
            for block in iter(lambda: src.read(_CHUNK), b""):
                digest.update(block)
                dst.write(block)
                size += len(block)
            dst.flush()
            os.fsync(dst.fileno())
        if digest.hexdigest() != expected_sha256:
            raise RecordsError(f"{source.name}: the file changed while it was being copied; import it again")
        os.replace(temp, target)
        _fsync_dir(target.parent)
    except OSError as exc:
        raise RecordsError(f"{source.name}: could not be copied into the records ({exc.strerror or exc})") from None
    finally:
        temp.unlink(missing_ok=True)
    return StoredFile(expected_sha256, relpath, size)


def sweep_stale_temporaries(root: Path, older_than_s: float = _STALE_TEMP_S) -> int:
    """Delete temporary copies left by killed imports; returns how many went. One that cannot be deleted (a
    read-only disk or mount, an archived copy of the records) is left where it is and logged: it is never referenced,
    and the records must still open (read-only records are viewed)."""
    folder = root / FILES_DIR
    if not folder.is_dir():
        return 0
    removed = 0
    cutoff = time.time() - older_than_s
    for temp in folder.glob(f"*/{_TEMP_PREFIX}*"):
        try:
            if temp.stat().st_mtime < cutoff:
                temp.unlink()
                removed += 1
        except FileNotFoundError:  # another process swept it first
            pass
        except OSError as exc:  # EROFS, EACCES, ...: left for a later sweep where the folder can be written
            log.warning("a stale temporary file of an import could not be removed (%s): %s", temp, exc)
    return removed

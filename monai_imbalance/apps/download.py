"""Downloading and extracting the public archives, through MONAI's ``download_url`` and ``extractall``.

Each archive is a :class:`Resource`: its official URL, the file name to store it under, an optional SHA-256 and
where that checksum comes from. MONAI checks the hash after the download (``monai.apps.utils.download_url``, which
downloads into a temporary file and moves it into place, so a half-downloaded archive never has the final name) and
extracts zip files safely (``monai.apps.utils.extractall``, no path traversal).

An extraction cannot half-succeed: the archive is extracted into a temporary folder beside the target
(``.<folder>.partial-<pid>-<random>``), the result is checked (the archive's base folder and the resource's
``expected`` entries exist), a marker file (:data:`EXTRACTED_MARKER`) is written into it, and only then is it renamed
into place in one step. The marker, not a non-empty folder, says an extraction is done: a killed or rejected
extraction leaves no target folder, so the next call extracts again (and removes the leftovers of dead processes).
A folder without the marker was put there by hand (the documented way round a failed download): it is used as it
is, with a warning, and the dataset's layout checks (``prepare``) decide whether it is complete.

Nothing here reaches the network in the tests: the machines that run them have no internet.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Resource", "download_resources", "extract_resource", "DownloadError", "EXTRACTED_MARKER"]

#: written into an extracted folder when its extraction and checks succeeded
EXTRACTED_MARKER = ".monai_imbalance_extracted"
_PARTIAL = ".partial-"
logger = logging.getLogger(__name__)


class DownloadError(ValueError):
    """A download or extraction failed; the message says what to fetch by hand and where to put it."""


@dataclass(frozen=True)
class Resource:
    """One downloadable archive.

    Attributes:
        url: the official download URL.
        filename: name to store the archive under in the root folder; it also names the folder the archive
            extracts to (``Kvasir-SEG.zip`` -> ``Kvasir-SEG/``).
        sha256: expected SHA-256 of the archive, or ``None`` when no checksum could be confirmed.
        checksum_source: where ``sha256`` comes from (the maintainers do not publish all of them).
        page: the human-readable page of the dataset (licence, registration, manual download).
        expected: paths, relative to the extracted folder, that a complete extraction holds (checked before the
            folder is put in place).
    """

    url: str
    filename: str
    sha256: str | None = None
    checksum_source: str = ""
    page: str = ""
    expected: tuple[str, ...] = ()

    @property
    def folder(self) -> str:
        return self.filename.split(".")[0]


def _is_finished(target: Path) -> bool:
    return (target / EXTRACTED_MARKER).is_file()


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):  # exists but not ours, or a platform without signals: keep its folder
        return True
    return True


def _remove_dead_partials(root: Path, folder: str) -> None:
    """Remove ``.<folder>.partial-<pid>-*`` folders left by processes that no longer run."""
    for partial in root.glob(f".{folder}{_PARTIAL}*"):
        pid = partial.name[len(f".{folder}{_PARTIAL}"):].split("-")[0]
        if pid.isdigit() and int(pid) != os.getpid() and not _pid_alive(int(pid)):
            logger.warning("removing %s, left by an interrupted extraction (process %s)", partial, pid)
            shutil.rmtree(partial, ignore_errors=True)


def extract_resource(res: Resource, archive: str | os.PathLike, root: str | os.PathLike) -> Path:
    """Extract ``archive`` (the file of ``res``) into ``root/res.folder`` so that the folder appears complete or not
    at all; return the folder. A folder already finished (with :data:`EXTRACTED_MARKER`) is returned as it is.

    Raises:
        DownloadError: the archive is not a readable zip, or its contents lack the base folder ``res.folder`` or an
            entry of ``res.expected``; nothing is put in place then.
    """
    from monai.apps.utils import extractall

    root, archive = Path(root), Path(archive)
    target = root / res.folder
    if _is_finished(target):
        return target
    _remove_dead_partials(root, res.folder)
    partial = Path(tempfile.mkdtemp(prefix=f".{res.folder}{_PARTIAL}{os.getpid()}-", dir=root))
    try:
        try:
            extractall(archive, output_dir=partial, file_type="zip", has_base=True)
        except Exception as err:  # BadZipFile, OSError (disk full), RuntimeError
            raise DownloadError(f"could not extract {archive}: {type(err).__name__}: {err}") from err
        extracted = partial / res.folder
        if not extracted.is_dir():
            found = sorted(p.name for p in partial.iterdir())[:5]
            raise DownloadError(
                f"{archive} does not hold the folder {res.folder}/ (it holds {found}); is it the right archive?")
        missing = [entry for entry in res.expected if not (extracted / entry).exists()]
        if missing:
            raise DownloadError(f"{archive} extracted without {missing} in {res.folder}/: the archive is incomplete; "
                                f"delete it and download again")
        (extracted / EXTRACTED_MARKER).write_text(f"extracted from {archive.name}\n")
        if target.is_dir() and not any(target.iterdir()):
            target.rmdir()  # an empty folder (made by hand, or by an older version) is replaced
        try:
            os.replace(extracted, target)
        except OSError:
            if not _is_finished(target):  # another process finished first: its folder is as good as ours
                raise
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return target


def download_resources(resources: Sequence[Resource], root: str | os.PathLike, progress: bool = True) -> list[Path]:
    """Download and extract ``resources`` into ``root``; return the extracted folders.

    A resource whose folder is finished (extracted by this function: it holds :data:`EXTRACTED_MARKER`) is neither
    downloaded nor extracted again; a non-empty folder without the marker is taken as placed by hand (a warning
    says so); anything else is downloaded (MONAI skips an archive already present with the right hash) and
    extracted with :func:`extract_resource`.

    Raises:
        DownloadError: a network, permission, checksum or extraction failure, with the URL and the page to get the
            archive from by hand (put the archive or its extracted folder into ``root`` and run again).
    """
    from monai.apps.utils import download_url

    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    folders = []
    for res in resources:
        target = root / res.folder
        if _is_finished(target):
            folders.append(target)
            continue
        if target.is_dir() and any(target.iterdir()):
            logger.warning(
                "%s exists but was not extracted by monai-imbalance (no %s marker): taken as put there by hand; the "
                "dataset checks decide whether it is complete. Delete it to download and extract it again.",
                target, EXTRACTED_MARKER)
            folders.append(target)
            continue
        archive = root / res.filename
        try:
            download_url(res.url, filepath=archive, hash_val=res.sha256, hash_type="sha256", progress=progress)
            extract_resource(res, archive, root)
        except Exception as err:  # URLError, HTTPError, HashCheckError, OSError, BadZipFile, DownloadError
            hint = f" (dataset page: {res.page})" if res.page else ""
            raise DownloadError(
                f"could not download/extract {res.url} into {root}: {type(err).__name__}: {err}. Download it by hand"
                f"{hint}, put {res.filename} or its extracted folder {res.folder}/ into {root} and run again."
            ) from err
        folders.append(target)
    return folders

"""Downloading and extracting the public archives, through MONAI's ``download_url`` and ``extractall``.

Each archive is a :class:`Resource`: its official URL, the file name to store it under, an optional SHA-256 and
where that checksum comes from. MONAI checks the hash after the download (``monai.apps.utils.download_url``) and
extracts zip files safely (``monai.apps.utils.extractall``, no path traversal). An archive whose extracted folder
already exists is neither downloaded nor extracted again, so ``--download`` can be repeated.

Nothing here runs in the tests: the machines that run them have no internet.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Resource", "download_resources", "DownloadError"]


class DownloadError(ValueError):
    """A download or extraction failed; the message says what to fetch by hand and where to put it."""


@dataclass(frozen=True)
class Resource:
    """One downloadable archive.

    Attributes:
        url: the official download URL.
        filename: name to store the archive under in the root folder; it also names the folder the archive
            extracts to (``Kvasir-SEG.zip`` -> ``Kvasir-SEG/``), which is how a finished extraction is recognised.
        sha256: expected SHA-256 of the archive, or ``None`` when no checksum could be confirmed.
        checksum_source: where ``sha256`` comes from (the maintainers do not publish all of them).
        page: the human-readable page of the dataset (licence, registration, manual download).
    """

    url: str
    filename: str
    sha256: str | None = None
    checksum_source: str = ""
    page: str = ""

    @property
    def folder(self) -> str:
        return self.filename.split(".")[0]


def download_resources(resources: Sequence[Resource], root: str | os.PathLike, progress: bool = True) -> list[Path]:
    """Download and extract ``resources`` into ``root``; return the extracted folders.

    Raises:
        DownloadError: a network, permission or checksum failure, with the URL and the page to get the archive
            from by hand (put the archive or its extracted folder into ``root`` and run again).
    """
    from monai.apps.utils import download_url, extractall

    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    folders = []
    for res in resources:
        target = root / res.folder
        if target.is_dir() and any(target.iterdir()):
            folders.append(target)
            continue
        archive = root / res.filename
        try:
            download_url(res.url, filepath=archive, hash_val=res.sha256, hash_type="sha256", progress=progress)
            extractall(archive, output_dir=root, file_type="zip", has_base=True)
        except Exception as err:  # URLError, HTTPError, HashCheckError, OSError, BadZipFile, RuntimeError
            hint = f" (dataset page: {res.page})" if res.page else ""
            raise DownloadError(
                f"could not download/extract {res.url} into {root}: {type(err).__name__}: {err}. Download it by hand"
                f"{hint}, put {res.filename} or its extracted folder {res.folder}/ into {root} and run again."
            ) from err
        folders.append(target)
    return folders

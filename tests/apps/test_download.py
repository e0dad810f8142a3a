"""Extraction that cannot half-succeed: a marker, not a non-empty folder, says an archive was extracted."""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import sys
import zipfile

import pytest

from monai_imbalance.apps.download import (
    EXTRACTED_MARKER,
    DownloadError,
    Resource,
    download_resources,
    extract_resource,
)

RES = Resource(url="https://example.invalid/Data.zip", filename="Data.zip", expected=("images", "masks"))


def _zip(path, members):
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def _good_zip(root):
    return _zip(root / "Data.zip", {f"Data/{kind}/{i}.txt": f"{kind}{i}" for kind in ("images", "masks")
                                    for i in range(3)})


@pytest.fixture
def no_network(monkeypatch):
    calls = []

    def fake_download(url, filepath, hash_val, hash_type, progress):
        calls.append(url)
        if not filepath.exists():
            raise OSError("network unreachable")

    monkeypatch.setattr("monai.apps.utils.download_url", fake_download)
    return calls


def test_extraction_puts_a_complete_folder_with_its_marker_and_is_not_repeated(tmp_path, no_network):
    _good_zip(tmp_path)
    (folder,) = download_resources([RES], tmp_path)
    assert folder == tmp_path / "Data"
    assert sorted(p.name for p in (folder / "images").iterdir()) == ["0.txt", "1.txt", "2.txt"]
    assert (folder / EXTRACTED_MARKER).is_file()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no partial folder left
    download_resources([RES], tmp_path)
    assert len(no_network) == 1  # finished: neither downloaded nor extracted again


def test_an_extraction_that_fails_midway_leaves_nothing_the_next_call_accepts(tmp_path, no_network, monkeypatch):
    _good_zip(tmp_path)
    from monai.apps import utils

    real = utils.extractall

    def dies_midway(filepath, output_dir, **kwargs):
        (output_dir / "Data" / "images").mkdir(parents=True)
        (output_dir / "Data" / "images" / "0.txt").write_text("half")
        raise OSError("No space left on device")

    monkeypatch.setattr(utils, "extractall", dies_midway)
    with pytest.raises(DownloadError, match="No space left on device"):
        download_resources([RES], tmp_path)
    assert not (tmp_path / "Data").exists()  # the old code left Data/images/0.txt, and the next call took it as done
    monkeypatch.setattr(utils, "extractall", real)
    (folder,) = download_resources([RES], tmp_path)
    assert len(list((folder / "masks").iterdir())) == 3


def _extract_and_get_killed(archive, root):
    from monai.apps import utils

    def killed_midway(filepath, output_dir, **kwargs):
        (output_dir / "Data" / "images").mkdir(parents=True)
        (output_dir / "Data" / "images" / "0.txt").write_text("half")
        os.kill(os.getpid(), signal.SIGKILL)

    utils.extractall = killed_midway
    extract_resource(RES, archive, root)


@pytest.mark.skipif(sys.platform == "win32" or "fork" not in multiprocessing.get_all_start_methods(),
                    reason="needs fork and SIGKILL")
def test_a_killed_extraction_is_redone_and_its_leftovers_removed(tmp_path, caplog):
    archive = _good_zip(tmp_path)
    child = multiprocessing.get_context("fork").Process(target=_extract_and_get_killed, args=(archive, tmp_path))
    child.start()
    child.join(60)
    assert child.exitcode == -signal.SIGKILL
    leftovers = [p for p in tmp_path.iterdir() if p.name.startswith(".Data.partial-")]
    assert len(leftovers) == 1 and not (tmp_path / "Data").exists()
    with caplog.at_level(logging.WARNING, logger="monai_imbalance.apps.download"):
        folder = extract_resource(RES, archive, tmp_path)
    assert "interrupted extraction" in caplog.text
    assert not leftovers[0].exists()
    assert (folder / "images" / "0.txt").read_text() == "images0"  # the full file, not the half-written one


@pytest.mark.parametrize(
    "members, message",
    [
        ({"Other/images/0.txt": "x"}, r"does not hold the folder Data/ \(it holds \['Other'\]\)"),
        ({"Data/images/0.txt": "x"}, r"extracted without \['masks'\] in Data/"),
    ],
)
def test_an_archive_that_fails_the_checks_is_not_put_in_place(tmp_path, no_network, members, message):
    _zip(tmp_path / "Data.zip", members)
    with pytest.raises(DownloadError, match=message):
        download_resources([RES], tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["Data.zip"]


def test_a_corrupt_archive_gives_a_clear_error_and_no_folder(tmp_path, no_network):
    (tmp_path / "Data.zip").write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(DownloadError, match=r"could not extract .*Data\.zip.*by hand"):
        download_resources([RES], tmp_path)
    assert not (tmp_path / "Data").exists()


def test_a_folder_put_there_by_hand_is_used_with_a_warning(tmp_path, no_network, caplog):
    (tmp_path / "Data" / "images").mkdir(parents=True)
    (tmp_path / "Data" / "images" / "0.txt").write_text("mine")
    with caplog.at_level(logging.WARNING, logger="monai_imbalance.apps.download"):
        (folder,) = download_resources([RES], tmp_path)
    assert folder == tmp_path / "Data" and no_network == []
    assert "not extracted by monai-imbalance" in caplog.text and "by hand" in caplog.text
    assert (folder / "images" / "0.txt").read_text() == "mine"


def test_an_empty_folder_is_replaced_by_the_extraction(tmp_path, no_network):
    _good_zip(tmp_path)
    (tmp_path / "Data").mkdir()
    (folder,) = download_resources([RES], tmp_path)
    assert (folder / EXTRACTED_MARKER).is_file() and len(list((folder / "images").iterdir())) == 3

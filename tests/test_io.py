"""se_lib.io: atomic files and folders - complete or absent, the usual mode, no temporaries left."""

from __future__ import annotations

import os
import stat

import pytest

from se_lib.io import atomic_dir, atomic_file, copy_file_atomic, read_json_object, write_text_atomic


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


def _mode(p) -> int:
    return stat.S_IMODE(os.stat(p).st_mode)


def test_text_and_copy_get_the_usual_mode(tmp_path, umask_022):
    write_text_atomic(tmp_path / "a" / "b.txt", "hello\n")
    assert (tmp_path / "a" / "b.txt").read_text() == "hello\n" and _mode(tmp_path / "a" / "b.txt") == 0o644
    src = tmp_path / "src.bin"
    src.write_bytes(b"\x00\x01" * 100)
    os.chmod(src, 0o600)
    copy_file_atomic(src, tmp_path / "dst.bin")
    assert (tmp_path / "dst.bin").read_bytes() == src.read_bytes() and _mode(tmp_path / "dst.bin") == 0o644
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "dst.bin", "src.bin"]


def test_failed_file_keeps_the_old_one(tmp_path):
    dest = tmp_path / "x.txt"
    dest.write_text("old")
    with pytest.raises(RuntimeError, match="boom"):
        with atomic_file(dest) as tmp:
            tmp.write_text("half")
            raise RuntimeError("boom")
    assert dest.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["x.txt"]


def test_dir_replaces_a_previous_folder_whole(tmp_path, umask_022):
    out = tmp_path / "out"
    out.mkdir()
    (out / "stale.txt").write_text("stale")
    with atomic_dir(out) as tmp:
        assert not out.joinpath("new.txt").exists() and tmp.parent == tmp_path and tmp.name.startswith(".out.")
        (tmp / "new.txt").write_text("new")
    assert sorted(p.name for p in out.iterdir()) == ["new.txt"]
    assert _mode(out) == 0o755  # not mkdtemp's 0700
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_failed_dir_leaves_the_previous_folder(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("keep")
    with pytest.raises(KeyboardInterrupt):
        with atomic_dir(out) as tmp:
            (tmp / "partial.txt").write_text("partial")
            raise KeyboardInterrupt
    assert sorted(p.name for p in out.iterdir()) == ["keep.txt"]
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_dir_replaces_a_file_or_link(tmp_path):
    target = tmp_path / "elsewhere"
    target.mkdir()
    link = tmp_path / "out"
    link.symlink_to(target, target_is_directory=True)
    with atomic_dir(link) as tmp:
        (tmp / "f").write_text("1")
    assert link.is_dir() and not link.is_symlink() and target.exists()  # the link's target is not deleted


def test_read_json_object_names_the_file(tmp_path):

    good = tmp_path / "run.json"
    good.write_text('{"run_id": "abc"}')
    assert read_json_object(good) == {"run_id": "abc"}
    with pytest.raises(FileNotFoundError, match=r"training record .*missing\.json not found \(run the train rule"):
        read_json_object(tmp_path / "missing.json", "training record", hint="run the train rule first")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ValueError, match=r"bad\.json: stats is not valid JSON"):
        read_json_object(tmp_path / "bad.json", "stats")
    (tmp_path / "list.json").write_text("[1, 2]")
    with pytest.raises(ValueError, match=r"list\.json: .* must be a JSON object, got list"):
        read_json_object(tmp_path / "list.json")

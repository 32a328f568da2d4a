"""The corpus downloader (se_lib/data/corpora/download.py) against a real HTTP server on 127.0.0.1, and the
recipes in config/corpora/.

The server (http.server in a thread) serves archives built here, answers Range requests with 206 like a
publisher's server, and can instead ignore Range (200 with the whole file), cut the first transfer of a file
halfway (the connection closes), or answer with an HTML page. It records every request's Range header, so the
tests see what the client asked for. Downloads run with ``retries=0`` (no waiting) and no progress bar.
"""

from __future__ import annotations

import hashlib
import io
import tarfile
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

from se_lib.data.corpora import download as dl

REPO = Path(__file__).resolve().parent.parent
RECIPES = REPO / "config" / "corpora"
FAST = {"progress": False, "retries": 0, "timeout": 10.0}


# ------------------------------------------------------------------------------------------- the server ----


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, *args):  # quiet
        pass

    def do_GET(self):  # noqa: N802 - http.server's name
        srv = self.server
        name = self.path.lstrip("/")
        rng = self.headers.get("Range")
        srv.requests.append((name, rng))
        if srv.mode == "html":
            body = b"<html><body>Please accept the terms first</body></html>"
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        data = srv.files.get(name)
        if data is None:
            self.send_error(404)
            return
        start = 0
        if rng and srv.mode != "ignore_range":
            start = int(rng.removeprefix("bytes=").split("-")[0])
            if start >= len(data):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
        body = data[start:]
        self.send_response(206 if start else 200)
        self.send_header("Content-Type", "application/zip")
        self.send_header("Content-Length", str(len(body)))
        if start:
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        self.end_headers()
        if srv.mode == "cut_once" and name not in srv.cut:
            srv.cut.add(name)
            self.wfile.write(body[: len(body) // 2])  # then the connection closes: an interrupted transfer
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(body)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.files: dict[str, bytes] = {}
        self.requests: list[tuple[str, str | None]] = []
        self.mode = "normal"  # normal | ignore_range | cut_once | html
        self.cut: set[str] = set()

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/{name}"


@pytest.fixture
def server():
    srv = _Server()
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()
    thread.join()


# ------------------------------------------------------------------------------------------ the corpus ----


def _wav_bytes(i: int) -> bytes:
    return b"RIFF" + i.to_bytes(4, "little") + b"WAVEfmt " + bytes(range(256)) * 40  # content only, not decoded


def _zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        for name, data in members.items():
            zf.writestr(zipfile.ZipInfo(name, (2020, 1, 1, 0, 0, 0)), data)
    return buf.getvalue()


def _targz(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _folder_members(folder: str, n: int) -> dict[str, bytes]:
    return {f"{folder}/p232_{i:03d}.wav": _wav_bytes(i) for i in range(n)}


def _write_recipe(path: Path, archives: list[dict], counts: dict, **extra) -> Path:
    recipe = {
        "corpus": path.stem,
        "title": "Test corpus",
        "publisher": "https://example.org/corpus",
        "citation": "Someone (2020). Test corpus.",
        "licence": "CC BY 4.0",
        "requires": None,
        "sample_rate": 16000,
        "archives": archives,
        "counts": counts,
        **extra,
    }
    path.write_text(yaml.safe_dump(recipe, sort_keys=False), encoding="utf-8")
    return path


def _serve(server: _Server, name: str, data: bytes, **checks) -> dict:
    server.files[name] = data
    folder = name.split(".")[0]
    return {"file": name, "url": server.url(name), "unpacks_to": folder, **checks}


def _leftovers(root: Path) -> list[str]:
    """Download leftovers in ROOT/.download (scratch folders, parts, archives, marks) other than the lock."""
    return sorted(p.name for p in (root / dl.DOWNLOAD_DIR).iterdir() if p.name != "lock")


# --------------------------------------------------------------------------------------------- the tests ----


@pytest.mark.parametrize(
    ("name", "pack", "algo"),
    [("clean_testset_wav.zip", _zip, "md5"), ("clean_testset_wav.tar.gz", _targz, "sha256")],
)
def test_good_checksum_unpacks_and_counts(tmp_path, server, name, pack, algo):
    data = pack(_folder_members("clean_testset_wav", 7))
    archive = _serve(server, name, data, **{algo: hashlib.new(algo, data).hexdigest(), "size": len(data)})
    recipe = dl.load_recipe(_write_recipe(tmp_path / "toy.yaml", [archive], {"clean_testset_wav": 7}))
    root = tmp_path / "root"
    lines = []
    dl.fetch_corpus(recipe, root, log=lines.append, **FAST)

    assert len(list((root / "clean_testset_wav").glob("*.wav"))) == 7
    assert (root / "clean_testset_wav" / "p232_003.wav").read_bytes() == _wav_bytes(3)
    done = root / dl.DOWNLOAD_DIR / f"{name}.done"
    assert done.read_text().split() == [algo, hashlib.new(algo, data).hexdigest()]
    assert _leftovers(root) == [done.name]  # archive deleted after unpacking, no part, no scratch
    assert server.requests == [(name, None)]
    assert any("clean_testset_wav: 7 .wav files" in line for line in lines)


def test_no_published_checksum_prints_the_sha256_to_pin(tmp_path, server):
    data = _zip(_folder_members("noisy_testset_wav", 3))
    archive = _serve(server, "noisy_testset_wav.zip", data, md5=None)
    recipe = dl.load_recipe(_write_recipe(tmp_path / "toy.yaml", [archive], {"noisy_testset_wav": 3}))
    lines = []
    dl.fetch_corpus(recipe, tmp_path / "root", log=lines.append, **FAST)
    sha = hashlib.sha256(data).hexdigest()
    assert any(f"sha256: {sha}" in line for line in lines)


@pytest.mark.parametrize("bad", ["md5", "size"])
def test_bad_checksum_or_size_fails_and_leaves_nothing_complete(tmp_path, server, bad):
    data = _zip(_folder_members("clean_testset_wav", 4))
    checks = {"md5": hashlib.md5(data).hexdigest(), "size": len(data)}
    checks[bad] = "0" * 32 if bad == "md5" else len(data) + 1
    archive = _serve(server, "clean_testset_wav.zip", data, **checks)
    recipe = dl.load_recipe(_write_recipe(tmp_path / "toy.yaml", [archive], {"clean_testset_wav": 4}))
    root = tmp_path / "root"
    with pytest.raises(dl.ChecksumError) as err:
        dl.fetch_corpus(recipe, root, log=lambda _: None, **FAST)
    msg = str(err.value)
    assert "clean_testset_wav.zip" in msg
    if bad == "md5":
        assert f"expected {'0' * 32}, got {hashlib.md5(data).hexdigest()}" in msg
    else:
        assert f"expected {len(data) + 1} bytes, got {len(data)}" in msg
    assert _leftovers(root) == []  # no .done, no archive, no part
    assert not (root / "clean_testset_wav").exists()


def test_interrupted_download_resumes_with_a_range_request(tmp_path, server):
    data = _zip(_folder_members("clean_testset_wav", 9))
    name = "clean_testset_wav.zip"
    archive = _serve(server, name, data, sha256=hashlib.sha256(data).hexdigest(), size=len(data))
    recipe = dl.load_recipe(_write_recipe(tmp_path / "toy.yaml", [archive], {"clean_testset_wav": 9}))
    root = tmp_path / "root"
    server.mode = "cut_once"

    with pytest.raises(dl.DownloadError, match="interrupted .* rerun to resume"):
        dl.fetch_corpus(recipe, root, log=lambda _: None, **FAST)
    part = root / dl.DOWNLOAD_DIR / f"{name}.part"
    half = len(data) // 2
    assert part.stat().st_size == half
    assert not (root / dl.DOWNLOAD_DIR / f"{name}.done").exists()

    dl.fetch_corpus(recipe, root, log=lambda _: None, **FAST)
    assert server.requests == [(name, None), (name, f"bytes={half}-")]
    assert (root / dl.DOWNLOAD_DIR / f"{name}.done").read_text().split() == ["sha256", hashlib.sha256(data).hexdigest()]
    assert len(list((root / "clean_testset_wav").glob("*.wav"))) == 9
    assert not part.exists()


def test_server_that_ignores_range_restarts_from_byte_zero(tmp_path, server):
    data = _zip(_folder_members("clean_testset_wav", 5))
    name = "clean_testset_wav.zip"
    archive = _serve(server, name, data, md5=hashlib.md5(data).hexdigest())
    recipe = dl.load_recipe(_write_recipe(tmp_path / "toy.yaml", [archive], {"clean_testset_wav": 5}))
    root = tmp_path / "root"
    part = root / dl.DOWNLOAD_DIR / f"{name}.part"
    part.parent.mkdir(parents=True)
    part.write_bytes(b"x" * 100)  # a stale part that does not match: appending to it would break the checksum
    server.mode = "ignore_range"
    lines = []
    dl.fetch_corpus(recipe, root, log=lines.append, **FAST)
    assert server.requests == [(name, "bytes=100-")]  # asked to resume, got a 200 with the whole file
    assert any("restarting" in line for line in lines)
    assert len(list((root / "clean_testset_wav").glob("*.wav"))) == 5


def test_complete_part_is_not_downloaded_again(tmp_path, server):
    """A run that stopped between the last byte and the rename: the server answers 416 to the Range request
    (nothing left), and the part is checked and used as it is."""
    data = _zip(_folder_members("clean_testset_wav", 3))
    name = "clean_testset_wav.zip"
    archive = _serve(server, name, data, md5=hashlib.md5(data).hexdigest())  # no size: the server must say
    recipe = dl.load_recipe(_write_recipe(tmp_path / "toy.yaml", [archive], {"clean_testset_wav": 3}))
    root = tmp_path / "root"
    part = root / dl.DOWNLOAD_DIR / f"{name}.part"
    part.parent.mkdir(parents=True)
    part.write_bytes(data)
    dl.fetch_corpus(recipe, root, log=lambda _: None, **FAST)
    assert server.requests == [(name, f"bytes={len(data)}-")]
    assert len(list((root / "clean_testset_wav").glob("*.wav"))) == 3


def test_rerun_skips_a_finished_archive(tmp_path, server):
    data = _zip(_folder_members("clean_testset_wav", 2))
    archive = _serve(server, "clean_testset_wav.zip", data, md5=hashlib.md5(data).hexdigest())
    recipe = dl.load_recipe(_write_recipe(tmp_path / "toy.yaml", [archive], {"clean_testset_wav": 2}))
    root = tmp_path / "root"
    dl.fetch_corpus(recipe, root, log=lambda _: None, **FAST)
    lines = []
    dl.fetch_corpus(recipe, root, log=lines.append, **FAST)
    assert len(server.requests) == 1
    assert any("skipped" in line for line in lines)
    # the unpacked folder gone: the next run downloads again instead of trusting the mark
    (root / "clean_testset_wav").rename(tmp_path / "moved")
    dl.fetch_corpus(recipe, root, log=lambda _: None, **FAST)
    assert len(server.requests) == 2


@pytest.mark.parametrize(
    ("name", "pack", "member"),
    [
        ("clean_testset_wav.zip", _zip, "../evil.wav"),
        ("clean_testset_wav.zip", _zip, "/tmp/evil.wav"),
        ("clean_testset_wav.tar.gz", _targz, "clean_testset_wav/../../evil.wav"),
    ],
)
def test_member_outside_root_is_refused(tmp_path, server, name, pack, member):
    data = pack({**_folder_members("clean_testset_wav", 2), member: b"pwned"})
    archive = _serve(server, name, data, md5=hashlib.md5(data).hexdigest())
    recipe = dl.load_recipe(_write_recipe(tmp_path / "toy.yaml", [archive], {"clean_testset_wav": 2}))
    root = tmp_path / "a" / "root"
    with pytest.raises(dl.UnpackError, match="outside ROOT") as err:
        dl.fetch_corpus(recipe, root, log=lambda _: None, **FAST)
    assert repr(member) in str(err.value)
    assert not (tmp_path / "a" / "evil.wav").exists() and not (tmp_path / "evil.wav").exists()
    assert not (root / "clean_testset_wav").exists()
    assert not (root / dl.DOWNLOAD_DIR / f"{name}.done").exists()
    assert not [p for p in (root / dl.DOWNLOAD_DIR).iterdir() if p.name.startswith(".unpack-")]


def test_tar_symlink_out_of_the_archive_is_refused(tmp_path, server):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        link = tarfile.TarInfo("clean_testset_wav/link.wav")
        link.type, link.linkname = tarfile.SYMTYPE, "../../../etc/passwd"
        tf.addfile(link)
    archive = _serve(server, "clean_testset_wav.tar", buf.getvalue())
    recipe = dl.load_recipe(_write_recipe(tmp_path / "toy.yaml", [archive], {"clean_testset_wav": 0}))
    with pytest.raises(dl.UnpackError, match="links to '../../../etc/passwd'"):
        dl.fetch_corpus(recipe, tmp_path / "root", log=lambda _: None, **FAST)


def test_archive_without_its_folder_names_what_it_holds(tmp_path, server):
    data = _zip(_folder_members("something_else", 1))
    archive = _serve(server, "clean_testset_wav.zip", data)
    recipe = dl.load_recipe(_write_recipe(tmp_path / "toy.yaml", [archive], {"clean_testset_wav": 1}))
    with pytest.raises(dl.UnpackError, match=r"does not create clean_testset_wav/ \(its top level: something_else\)"):
        dl.fetch_corpus(recipe, tmp_path / "root", log=lambda _: None, **FAST)


def test_html_page_instead_of_the_archive_is_an_error(tmp_path, server):
    archive = _serve(server, "clean_testset_wav.zip", b"unused")
    recipe = dl.load_recipe(_write_recipe(tmp_path / "toy.yaml", [archive], {"clean_testset_wav": 1}))
    server.mode = "html"
    root = tmp_path / "root"
    with pytest.raises(dl.DownloadError, match="web page .* download it by hand"):
        dl.fetch_corpus(recipe, root, log=lambda _: None, **FAST)
    assert _leftovers(root) == []


def test_verify_counts_per_folder_and_per_subfolder(tmp_path):
    """DNS-like: the counted folders lie in ROOT/datasets/test_set (counts_in); synthetic/no_reverb holds its
    clips in clean/ and noisy/ (each counted), real_recordings directly."""
    root = tmp_path / "root"
    test_set = root / "datasets" / "test_set"
    for sub, n in (("synthetic/no_reverb/clean", 3), ("synthetic/no_reverb/noisy", 2), ("real_recordings", 4)):
        (test_set / sub).mkdir(parents=True)
        for i in range(n):
            (test_set / sub / f"f{i}.wav").write_bytes(b"")
    recipe = dl.load_recipe(
        _write_recipe(
            tmp_path / "dns_toy.yaml",
            [],
            {"synthetic/no_reverb": 3, "synthetic/with_reverb": 3, "real_recordings": 4},
            requires="a git-lfs copy",
            counts_in="datasets/test_set",
        )
    )
    with pytest.raises(dl.VerifyError) as err:
        dl.fetch_corpus(recipe, root, log=lambda _: None)
    msg = str(err.value)
    assert f"{test_set / 'synthetic/no_reverb/noisy'}: 2 .wav files, the recipe expects 3" in msg
    assert f"{test_set / 'synthetic/with_reverb'}: folder missing" in msg
    assert "real_recordings" not in msg and "no_reverb/clean" not in msg

    (test_set / "synthetic/no_reverb/noisy/f2.wav").write_bytes(b"")
    for i in range(3):
        (test_set / "synthetic/with_reverb/noisy").mkdir(parents=True, exist_ok=True)
        (test_set / f"synthetic/with_reverb/noisy/f{i}.wav").write_bytes(b"")
    lines = []
    dl.fetch_corpus(recipe, root, log=lines.append)
    assert "synthetic/no_reverb: 3 .wav files in each of clean, noisy" in lines
    assert "real_recordings: 4 .wav files" in lines


def test_recipe_that_requires_a_licence_downloads_nothing_and_verifies_root(tmp_path, capsys):
    path = _write_recipe(
        tmp_path / "licensed.yaml",
        [],
        {"tr05_simu": 7138},
        requires="CORPUS-X from the LDC, licensed",
        count_unit="utterances",
        folders=["data/audio"],
    )
    root = tmp_path / "root"
    (root / "data" / "audio").mkdir(parents=True)
    assert dl.main(["--recipe", str(path), "--root", str(root)]) == 0
    out = capsys.readouterr().out
    assert "nothing to download: CORPUS-X from the LDC, licensed" in out and "licence: CC BY 4.0" in out
    assert not (root / dl.DOWNLOAD_DIR).exists()

    (root / "data" / "audio").rmdir()
    assert dl.main(["--recipe", str(path), "--root", str(root), "--verify-only"]) == 1
    assert f"{root / 'data/audio'}: folder missing" in capsys.readouterr().err


def test_cli_verify_only_names_the_missing_folder(tmp_path, capsys):
    archive = {"file": "clean_testset_wav.zip", "url": "https://example.org/x.zip", "unpacks_to": "clean_testset_wav"}
    path = _write_recipe(tmp_path / "toy.yaml", [archive], {"clean_testset_wav": 824})
    (tmp_path / "root").mkdir()
    assert dl.main(["--recipe", str(path), "--root", str(tmp_path / "root"), "--verify-only"]) == 1
    err = capsys.readouterr().err
    assert "clean_testset_wav: folder missing (archive clean_testset_wav.zip creates it)" in err
    assert dl.main(["--recipe", str(tmp_path / "nope.yaml"), "--root", str(tmp_path)]) == 2
    assert "recipe" in capsys.readouterr().err


def test_a_second_run_on_the_same_root_is_refused(tmp_path):
    with dl.root_lock(tmp_path), pytest.raises(dl.DownloadError, match="another download is running"):
        with dl.root_lock(tmp_path):
            pass


_GOOD_ARCHIVE = {"file": "a.zip", "url": "https://example.org/a.zip", "md5": None, "size": None, "unpacks_to": "a"}


@pytest.mark.parametrize(
    ("change", "key"),
    [
        ({"licence": None}, "licence"),
        ({"sample_rate": "48k"}, "sample_rate"),
        ({"corpus": "other"}, "corpus"),
        ({"publisher": "datashare"}, "publisher"),
        ({"licens": "CC BY"}, "licens: unknown key"),
        ({"counts": {"a": -1}}, "counts.a"),
        ({"counts": {"../a": 1}}, "counts.../a"),
        ({"count_unit": "hours"}, "count_unit"),
        ({"counts_in": "../up"}, "counts_in"),
        ({"archives": [{**_GOOD_ARCHIVE, "md5": "abc"}]}, "archives[0].md5"),
        ({"archives": [{**_GOOD_ARCHIVE, "sha256": "0" * 63}]}, "archives[0].sha256"),
        ({"archives": [{**_GOOD_ARCHIVE, "size": 0}]}, "archives[0].size"),
        ({"archives": [{**_GOOD_ARCHIVE, "file": "a.rar"}]}, "archives[0].file"),
        ({"archives": [{**_GOOD_ARCHIVE, "unpacks_to": "/abs"}]}, "archives[0].unpacks_to"),
        ({"archives": [{**_GOOD_ARCHIVE, "url": "ftp://x/a.zip"}]}, "archives[0].url"),
        ({"archives": [{k: v for k, v in _GOOD_ARCHIVE.items() if k != "url"}]}, "archives[0].url: missing key"),
        ({"archives": [_GOOD_ARCHIVE, _GOOD_ARCHIVE]}, "a.zip listed more than once"),
    ],
)
def test_recipe_validation_names_file_and_key(tmp_path, change, key):
    path = _write_recipe(tmp_path / "toy.yaml", [_GOOD_ARCHIVE], {"a": 1})
    data = yaml.safe_load(path.read_text())
    data.update(change)
    if "licence" in change and change["licence"] is None:
        del data["licence"]
        key = "licence: missing key"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    with pytest.raises(dl.RecipeError) as err:
        dl.load_recipe(path)
    assert str(err.value).startswith(f"{path}: ")
    assert key in str(err.value)


def test_recipe_validation_accepts_the_good_toy(tmp_path):
    recipe = dl.load_recipe(_write_recipe(tmp_path / "toy.yaml", [_GOOD_ARCHIVE], {"a": 1}))
    assert recipe.archives[0].checksums == {} and recipe.downloadable


@pytest.mark.parametrize("name", ["voicebank_demand", "dns2020", "chime4"])
def test_the_real_recipes_load_and_validate(name):
    recipe = dl.load_recipe(RECIPES / f"{name}.yaml")
    assert recipe.corpus == name
    assert recipe.publisher.startswith("https://")
    expected_keys = {
        "voicebank_demand": {
            "clean_trainset_28spk_wav",
            "noisy_trainset_28spk_wav",
            "clean_trainset_56spk_wav",
            "noisy_trainset_56spk_wav",
            "clean_testset_wav",
            "noisy_testset_wav",
        },
        "dns2020": {"synthetic/no_reverb", "synthetic/with_reverb", "real_recordings"},
        "chime4": {f"{s}_{k}" for s in ("tr05", "dt05", "et05") for k in ("simu", "real")},
    }[name]
    assert set(recipe.counts) == expected_keys
    if name == "voicebank_demand":
        assert recipe.downloadable and recipe.sample_rate == 48000
        folders = {a.unpacks_to for a in recipe.archives}
        assert expected_keys <= folders  # every counted folder comes from an archive
        assert all(a.url.endswith("/10283/2791/" + a.file) for a in recipe.archives)
    else:
        assert not recipe.downloadable and recipe.requires and recipe.sample_rate == 16000
    if name == "chime4":
        assert recipe.count_unit == "utterances" and recipe.folders  # the adapter counts; ROOT's folders checked
    if name == "dns2020":
        assert recipe.counts_in == "datasets/test_set"  # ROOT: a clone of the repository, as the adapter reads it

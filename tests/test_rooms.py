"""Rooms: geometry constraints, RIR files, target definitions, presets, measured RIRs, atomicity."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from se_lib.config import load_config
from se_lib.data import rooms as rm
from se_lib.data.audio import write_wav_atomic

REPO = Path(__file__).resolve().parent.parent
SR = 16000


def cfg(**rooms) -> dict:
    base = {
        "count": {"train": 2, "val": 1, "test": 1},
        "rt60_range": [0.15, 0.3],
        "max_rir_seconds": 0.25,
        "dims_min": [3.0, 3.0, 2.4],
        "dims_max": [5.0, 4.0, 3.0],
    }
    base.update(rooms)
    return load_config(REPO / "config/config.yaml", {"seed": 11, "sample_rate": SR, "rooms": base})


def quiet(_msg: str) -> None:
    pass


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    out = tmp_path_factory.mktemp("rooms") / "rooms"
    config = cfg()
    stats = rm.build_rooms(config, out, log=quiet)
    return config, out, stats


def _load(out: Path) -> tuple[list[dict], dict[str, dict]]:
    rows = rm.read_rooms(out)
    arrays = {}
    for r in rows:
        with np.load(out / "rirs" / f"{r['rid']}.npz") as z:
            arrays[r["rid"]] = {k: z[k] for k in z.files}
    return rows, arrays


def test_tsv_and_npz_contract(built):
    _config, out, stats = built
    assert stats["per_split"] == {"train": 2, "val": 1, "test": 1} and stats["channels"] == 4
    with open(out / "rooms.tsv", newline="") as fh:
        header = next(csv.reader(fh, delimiter="\t"))
    assert header[:9] == ["rid", "split", "dims", "rt60", "mics", "src_pos", "ref_mic", "target", "rir_path"]
    rows, arrays = _load(out)
    assert len({r["rid"] for r in rows}) == 4
    L = int(0.25 * SR)
    for r in rows:
        a = arrays[r["rid"]]
        assert a["rir"].shape == (3, 4, L) and a["rir"].dtype == np.float32
        assert a["target_rir"].shape == (L,) and a["target_rir"].dtype == np.float32
        assert int(a["sr"]) == SR and int(a["ref_mic"]) == 0
        assert Path(r["rir_path"]).resolve() == (out / "rirs" / f"{r['rid']}.npz").resolve()
        assert 0.15 <= r["rt60"] <= 0.3
        assert np.all(np.isfinite(a["rir"])) and np.abs(a["rir"]).max() > 0


def test_geometry_constraints(built):
    _, out, _ = built
    for r in rm.read_rooms(out):
        dims, mics, src = np.array(r["dims"]), np.array(r["mics"]), np.array(r["src_pos"])
        assert np.all((np.array([3.0, 3.0, 2.4]) <= dims) & (dims <= np.array([5.0, 4.0, 3.0])))
        assert np.all(mics > 0) and np.all(mics < dims)
        assert np.all(src >= rm.WALL_MARGIN - 1e-9) and np.all(src <= dims - rm.WALL_MARGIN + 1e-9)
        centre = mics.mean(axis=0)
        assert np.all(np.linalg.norm(src - centre, axis=1) >= rm.ARRAY_MIN_DIST)
        for i in range(3):
            for j in range(i + 1, 3):
                assert np.linalg.norm(src[i] - src[j]) >= rm.SOURCE_MIN_DIST
        # circular4: 4 mics at the configured radius around the centre
        np.testing.assert_allclose(np.linalg.norm(mics - centre, axis=1), 0.05, atol=1e-9)


def test_direct_path_and_target_definitions(built, tmp_path):
    _config, out, _ = built
    rows, arrays = _load(out)
    c = 343.0
    for r in rows:
        a = arrays[r["rid"]]
        d = float(np.linalg.norm(np.array(r["src_pos"][0]) - np.array(r["mics"][0])))
        delay = d / c * SR + 40  # pyroomacoustics adds half its 81-tap fractional-delay filter
        assert abs(float(a["direct_delay"]) - delay) < 1e-6
        assert abs(int(np.argmax(np.abs(a["rir"][0, 0]))) - delay) <= 1.0
        # early (default config): equals the RIR up to the fade, zero after peak + 50 ms
        h, t = a["rir"][0, 0], a["target_rir"]
        n_end = int(np.ceil(delay + 0.050 * SR))
        fade_start = int(np.floor(delay + 0.045 * SR))
        np.testing.assert_allclose(t[:fade_start], h[:fade_start], atol=1e-7)
        assert np.all(t[n_end + 1 :] == 0)
        assert np.all(np.abs(t[fade_start:n_end]) <= np.abs(h[fade_start:n_end]) + 1e-7)
    # dry and direct for the same rooms (same seed -> same geometry)
    for kind in ("dry", "direct"):
        o = tmp_path / kind
        rm.build_rooms(cfg(target=kind), o, log=quiet)
        rows_k, arrays_k = _load(o)
        for r in rows_k:
            a = arrays_k[r["rid"]]
            np.testing.assert_array_equal(a["rir"], arrays[r["rid"]]["rir"])
            d = float(np.linalg.norm(np.array(r["src_pos"][0]) - np.array(r["mics"][0])))
            t = a["target_rir"]
            if kind == "dry":
                assert np.count_nonzero(t) == 1 and t[0] > 0
                assert abs(t[0] - 1.0 / d) / (1.0 / d) < 0.05  # pyroomacoustics' 1/r direct-path gain
            else:
                peak = float(a["direct_delay"])
                assert abs(int(np.argmax(np.abs(t))) - peak) <= 1.0
                far = np.abs(np.arange(len(t)) - peak) > 41
                assert np.abs(t[far]).max() < 0.05 * np.abs(t).max()  # only the order-0 sinc
                assert abs(np.sqrt(np.sum(t**2)) - 1.0 / d) / (1.0 / d) < 0.05


def test_deterministic_and_seeded(built, tmp_path):
    config, out, _ = built
    _, a = _load(out)
    rm.build_rooms(config, tmp_path / "again", log=quiet, workers=2)  # parallel build, same result
    _, b = _load(tmp_path / "again")
    for rid in a:
        for k in a[rid]:
            np.testing.assert_array_equal(a[rid][k], b[rid][k])
    other = dict(config, seed=12)
    rm.build_rooms(other, tmp_path / "other", log=quiet)
    _, c = _load(tmp_path / "other")
    assert not np.array_equal(a["train000"]["rir"], c["train000"]["rir"])


def test_presets(tmp_path):
    rooms = rm.build_rooms(
        cfg(count={"train": 1, "val": 1, "test": 1}, mic_array={"preset": "chime3_tablet", "reference_mic": 4}),
        tmp_path / "chime",
        log=quiet,
    )
    assert rooms["channels"] == 6
    r = rm.read_rooms(tmp_path / "chime")[0]
    mics = np.array(r["mics"])
    dist = np.linalg.norm(mics[:, None] - mics[None], axis=-1)
    assert abs(dist[0, 2] - 0.20) < 1e-9 and abs(dist[0, 3] - 0.19) < 1e-9
    assert abs(dist[1, 4] - np.hypot(0.19, 0.02)) < 1e-9  # mic 2 sits 2 cm behind the others
    with np.load(tmp_path / "chime/rirs" / f"{r['rid']}.npz") as z:
        assert z["rir"].shape[1] == 6 and int(z["ref_mic"]) == 4
    coords = [[0.0, 0.0, 0.0], [0.1, 0.0, 0.0], [0.0, 0.1, 0.0]]
    rm.build_rooms(
        cfg(count={"train": 1, "val": 1, "test": 1}, mic_array={"preset": "custom", "coords": coords}),
        tmp_path / "custom",
        log=quiet,
    )
    mics = np.array(rm.read_rooms(tmp_path / "custom")[0]["mics"])
    np.testing.assert_allclose(np.linalg.norm(mics[1] - mics[0]), 0.1, atol=1e-9)
    np.testing.assert_allclose(np.linalg.norm(mics[2] - mics[0]), 0.1, atol=1e-9)
    with pytest.raises(rm.RoomError, match="reference_mic"):
        rm.simulate_room(cfg(mic_array={"preset": "custom", "coords": coords, "reference_mic": 3}), "train", 0)


def test_failed_build_keeps_previous_output(built, tmp_path, monkeypatch):
    config, _, _ = built
    out = tmp_path / "rooms"
    rm.build_rooms(config, out, log=quiet)
    before = (out / "rooms.tsv").read_text()
    real = rm.simulate_room

    def flaky(config, split, index):
        if split == "val":
            raise RuntimeError("simulated crash")
        return real(config, split, index)

    monkeypatch.setattr(rm, "simulate_room", flaky)
    with pytest.raises(RuntimeError, match="simulated crash"):
        rm.build_rooms(dict(config, seed=5), out, log=quiet)
    assert (out / "rooms.tsv").read_text() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rooms"]  # no temp dirs left


def test_impossible_config_is_named():
    with pytest.raises(rm.RoomError, match="rooms.rt60_range"):
        rm.simulate_room(cfg(rt60_range=[0.01, 0.02]), "train", 0)


def test_measured_rirs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(3)
    rows = []
    for i in range(10):  # 3 rooms + 1 leftover file
        n = int(0.3 * 8000)
        h = rng.standard_normal((2, n)) * np.exp(-np.arange(n) / (0.05 * 8000)) * 0.05
        h[:, 30 + i] += 0.8  # direct path
        path = f"data/rirs/r{i:02d}.wav"
        write_wav_atomic(path, h.astype(np.float32), 8000)  # resampled to 16 kHz on load
        rows.append([f"m{i:02d}", path, 2, 8000])
    corpus = tmp_path / "results/corpus"
    corpus.mkdir(parents=True)
    with open(corpus / "rirs.tsv", "w", newline="") as fh:
        w = csv.writer(fh, delimiter="\t", lineterminator="\n")
        w.writerow(["ririd", "path", "channels", "sr"])
        w.writerows(rows)
    config = load_config(
        REPO / "config/config.yaml",
        {
            "seed": 1,
            "sample_rate": SR,
            "corpus": {
                "kind": "files",
                "files": {"speech_glob": "x/*.wav", "noise_glob": "y/*.wav", "rir_glob": "data/rirs/*.wav"},
            },
            "rooms": {"max_rir_seconds": 0.25},
        },
    )
    messages = []
    stats = rm.build_rooms(config, "results/rooms", "results/corpus", log=messages.append)
    assert stats["rooms"] == 3 and stats["channels"] == 2 and stats["origin"] == "measured"
    assert any("leftover" in m for m in messages)
    rooms = rm.read_rooms("results/rooms")
    assert [r["rid"] for r in rooms] == ["m00", "m03", "m06"] and [r["split"] for r in rooms] == [
        "train",
        "val",
        "test",
    ]
    assert rooms[0]["rir_path"] == "results/rooms/rirs/m00.npz" and rooms[0]["dims"] is None
    assert all(r["rt60"] is None or 0.05 < r["rt60"] < 1.0 for r in rooms)  # Schroeder estimate
    with np.load("results/rooms/rirs/m03.npz") as z:
        rir, t = z["rir"], z["target_rir"]
    assert rir.shape == (3, 2, 4000)
    peak = int(np.argmax(np.abs(rir[0, 0])))
    assert abs(peak - 2 * 33) <= 2  # file m03: direct path at 33 samples @ 8 kHz
    assert np.all(t[peak + 800 + 1 :] == 0) and np.abs(t[peak]) > 0  # early: 50 ms = 800 samples
    with open(corpus / "rirs.tsv", "w") as fh:
        fh.write("ririd\tpath\tchannels\tsr\n" + "".join(f"m{i}\t{rows[i][1]}\t2\t8000\n" for i in range(5)))
    with pytest.raises(rm.RoomError, match="rirs.tsv"):
        rm.build_rooms(config, "results/rooms2", "results/corpus", log=quiet)

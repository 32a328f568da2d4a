"""Mixture DB: determinism, splits, unique keys, atomic builds, summary, readers, CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from se_lib.data import db as dbm
from se_lib.data.naming import ID_RE
from se_lib.data.rooms import build_rooms
from worlds import interrupt_build_after, rebuild, tiny_config, write_corpus

REPO = Path(__file__).resolve().parent.parent


# -------------------------------------------------------------------------------------- tests
def test_digest_deterministic_and_seed_sensitive(world, tmp_path):
    root, config, url = world
    d1 = dbm.digest(url)
    url2 = f"sqlite:///{tmp_path / 'again.sqlite'}"
    assert rebuild(root, config, url2) == d1
    assert dbm.digest(url2) == d1
    other = dict(config, seed=config["seed"] + 1)
    url3 = f"sqlite:///{tmp_path / 'other.sqlite'}"
    assert rebuild(root, other, url3) != d1
    # the build timestamp does not enter the digest
    engine = sa.create_engine(url2)
    with engine.begin() as conn:
        conn.execute(sa.update(dbm.Meta).where(dbm.Meta.key == "created_at").values(value="1999"))
    engine.dispose()
    dbm._ENGINES.clear()
    assert dbm.digest(url2) == d1


def test_splits_consistent_and_keys_unique(world):
    _, config, url = world
    engine = sa.create_engine(url)
    with engine.connect() as c:
        rows = c.execute(
            sa.text(
                "SELECT m.mid, m.split, s.split, n1.split, n2.split, r.split, m.nid1, m.nid2, m.sid, m.rid,"
                " m.snr_db, m.snr_tenths, m.length, m.speech_offset, m.speech_start, s.frames"
                " FROM mixture m JOIN speech s ON s.sid = m.sid JOIN noise n1 ON n1.nid = m.nid1"
                " JOIN noise n2 ON n2.nid = m.nid2 JOIN room r ON r.rid = m.rid"
            )
        ).all()
        counts = dict(c.execute(sa.text("SELECT split, COUNT(*) FROM mixture GROUP BY split")).all())
        room_splits = c.execute(sa.text("SELECT rid, split FROM room")).all()
    engine.dispose()
    assert counts == config["mixtures"]["count"]
    lo, hi = config["mixtures"]["snr_range"]
    keys = set()
    for (
        mid,
        split,
        s_split,
        n1_split,
        n2_split,
        r_split,
        nid1,
        nid2,
        sid,
        rid,
        snr,
        tenths,
        length,
        s_off,
        s_start,
        s_frames,
    ) in rows:
        assert split == s_split == n1_split == n2_split == r_split
        assert nid1 != nid2
        assert ID_RE.match(mid)
        assert lo <= snr <= hi and round(snr, 1) == snr and tenths == round(snr * 10)
        assert length == int(config["mixtures"]["seconds"] * config["sample_rate"])
        assert (s_start == 0 and s_off + length <= s_frames) or (s_off == 0 and s_start + s_frames <= length)
        keys.add((sid, nid1, nid2, rid, tenths))
    assert len(keys) == len(rows)
    assert len({rid for rid, _ in room_splits}) == len(room_splits)


def test_collisions_are_redrawn(tmp_path):
    """A tiny key space forces collisions; every key is still unique and counts are met."""
    root = tmp_path / "w"
    write_corpus(root, speech_per_split=1, noise_per_split=2)
    config = tiny_config(root, snr_range=[0.0, 0.4], count={"train": 8, "val": 4, "test": 4})
    config["rooms"]["count"] = {"train": 2, "val": 1, "test": 1}
    build_rooms(config, root / "results/rooms", root / "results/corpus", log=lambda m: None, root=root)
    url = config["db"]["url"]
    # train: 1 speech * 2 ordered noise pairs * 2 rooms * 5 SNR values = 20 keys for 8 rows
    rebuild(root, config, url, chunk_size=3)
    engine = sa.create_engine(url)
    with engine.connect() as c:
        n, distinct = c.execute(
            sa.text(
                "SELECT COUNT(*), COUNT(DISTINCT sid || '|' || nid1 || '|' || nid2 || '|' || rid || '|' || snr_tenths)"
                " FROM mixture"
            )
        ).one()
    engine.dispose()
    assert n == distinct == 16
    too_many = tiny_config(root, snr_range=[0.0, 0.4], count={"train": 21, "val": 4, "test": 4})
    too_many["rooms"]["count"] = config["rooms"]["count"]
    with pytest.raises(dbm.DBError, match="mixtures.count.train"):
        rebuild(root, too_many, f"sqlite:///{tmp_path / 'x.sqlite'}")


def test_draws_independent_of_chunking(tmp_path):
    """A candidate is kept iff its key is new (DB or current chunk): chunk and probe sizes change nothing."""
    root = tmp_path / "w"
    write_corpus(root)
    config = tiny_config(root, count={"train": 1200, "val": 30, "test": 20})
    build_rooms(config, root / "results/rooms", root / "results/corpus", log=lambda m: None, root=root)
    # chunks of 1000 candidates probe the DB in 500-key statements (the last one padded); chunks of 7 in one
    digests = {rebuild(root, config, f"sqlite:///{tmp_path / f'c{n}.sqlite'}", chunk_size=n) for n in (7, 1000)}
    assert len(digests) == 1
    url = f"sqlite:///{tmp_path / 'c1000.sqlite'}"
    rows = list(dbm.iter_mixtures(url))
    present = [(r["sid"], r["nid1"], r["nid2"], r["rid"], r["snr_tenths"]) for r in rows]
    absent = [(s, n1, n2, r, t + 100_000) for s, n1, n2, r, t in present[:700]]
    mixed = [k for pair in zip(present, absent, strict=False) for k in pair] + present[700:] + present[:3]
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        assert dbm.existing_keys(conn, mixed) == set(present)
        assert dbm.existing_keys(conn, absent) == set()
    engine.dispose()


def test_interrupted_build_leaves_previous_db(world, tmp_path, monkeypatch):
    root, config, _ = world
    target = tmp_path / "db" / "mix.sqlite"
    url = f"sqlite:///{target}"
    good = rebuild(root, config, url)

    interrupt_build_after(monkeypatch, 25, KeyboardInterrupt("simulated interruption"))
    with pytest.raises(KeyboardInterrupt):
        rebuild(root, dict(config, seed=99), url, chunk_size=10)
    assert sorted(p.name for p in target.parent.iterdir()) == ["mix.sqlite"]  # no temp left over
    dbm._ENGINES.clear()
    assert dbm.digest(url) == good

    fresh = tmp_path / "fresh" / "mix.sqlite"
    with pytest.raises(KeyboardInterrupt):
        rebuild(root, config, f"sqlite:///{fresh}", chunk_size=10)
    assert not fresh.exists() and list(fresh.parent.iterdir()) == []


def test_summary_and_cli(world):
    root, _config, url = world
    text = dbm.summary(url)
    lines = text.splitlines()
    assert lines[0].split() == ["table", "train", "val", "test", "total"]
    mix = next(line for line in lines if line.startswith("mixture"))
    assert mix.split()[1:] == ["40", "8", "6", "54"]
    bins = [line for line in lines if line.startswith("[")]
    assert bins and all(line.split()[0] in {"[-5,0)", "[0,5)", "[5,10)", "[10,15)"} for line in bins)
    assert sum(int(line.split()[-1]) for line in bins) == 54
    assert lines[-1].split() == ["all", "40", "8", "6", "54"]
    table = dbm.summary_table(url)
    assert list(table.columns) == ["snr_bin", "train", "val", "test", "total"]
    assert table.iloc[-1].tolist() == ["all", 40, 8, 6, 54] and table["total"].iloc[:-1].sum() == 54
    engine = sa.create_engine(url)
    with engine.connect() as c:  # the 5-dB bins agree with the rows
        snrs = [r[0] for r in c.execute(sa.text("SELECT snr_db FROM mixture WHERE split = 'train'"))]
    engine.dispose()
    for rec in table.iloc[:-1].itertuples():
        lo = int(rec.snr_bin[1:].split(",")[0])
        assert rec.train == sum(lo <= x < lo + 5 for x in snrs)
    path = url.removeprefix("sqlite:///")
    out = subprocess.run(
        [sys.executable, "-m", "se_lib.data.db", "digest", path],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == dbm.digest(url)
    out = subprocess.run(
        [sys.executable, "-m", "se_lib.data.db", "summary", str(root / "missing.sqlite")],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert out.returncode == 2 and "missing.sqlite" in out.stderr
    assert not (root / "missing.sqlite").exists()


def test_cli_build(tmp_path):
    """`python -m se_lib.data.db build --config ... --url ...` on a config file."""
    root = tmp_path / "w"
    write_corpus(root, speech_per_split=2, noise_per_split=2)
    config = tiny_config(root, count={"train": 5, "val": 2, "test": 2})
    build_rooms(config, root / "results/rooms", root / "results/corpus", log=lambda m: None, root=root)
    import yaml

    cfg_file = root / "config.yaml"
    cfg_file.write_text(
        yaml.safe_dump({k: config[k] for k in ("experiment", "seed", "sample_rate", "rooms", "mixtures")})
    )
    out = subprocess.run(
        [sys.executable, "-m", "se_lib.data.db", "build", "--config", str(cfg_file), "--url", "sqlite:///out.sqlite"],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == dbm.digest(root / "out.sqlite")


def test_readers(world):
    root, _config, url = world
    rows = list(dbm.iter_mixtures(url, "val"))
    assert [r["mid"] for r in rows] == sorted(r["mid"] for r in rows)
    assert len(rows) == 8 and all(r["split"] == "val" for r in rows)
    assert {"speech_path", "noise1_path", "noise2_path", "rir_path", "ref_mic", "channels"} <= set(rows[0])
    assert all((root / r["speech_path"]).exists() and (root / r["rir_path"]).exists() for r in rows)
    assert all(r["rir_path"].startswith("results/rooms/rirs/") for r in rows)  # relative to the root
    assert len(list(dbm.iter_mixtures(url, limit=5))) == 5
    with dbm.open_session(url) as s:
        m = s.get(dbm.Mixture, rows[0]["mid"])
        assert m.speech_path == rows[0]["speech_path"] and m.rir_path == rows[0]["rir_path"]
    meta = dbm.read_meta(url)
    assert meta["sample_rate"] == "16000" and meta["seed"] == "7" and meta["channels"] == "4"


def test_bad_inputs_named(tmp_path):
    root = tmp_path / "w"
    write_corpus(root, speech_per_split=2, noise_per_split=2)
    config = tiny_config(root)
    with pytest.raises(Exception, match="rooms.tsv"):
        rebuild(root, config, config["db"]["url"])
    build_rooms(config, root / "results/rooms", root / "results/corpus", log=lambda m: None, root=root)
    (root / "results/corpus/noise/val-n01.wav").unlink()
    with pytest.raises(dbm.DBError, match="val-n01.wav"):
        rebuild(root, config, config["db"]["url"])
    assert not Path(config["db"]["url"].removeprefix("sqlite:///")).exists()

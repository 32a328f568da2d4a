"""Mixture database: SQLAlchemy 2 models, deterministic streaming build, digest, summary, readers.

Tables: ``speech``, ``noise``, ``room``, ``mixture`` and ``meta`` (key/value: config digest, seed,
sample rate, creator version, ...). One ``mixture`` row plus the files it names render the same
audio everywhere (:mod:`se_lib.data.render`): it stores the speech/noise/room ids, the SNR (rounded
to 0.1 dB; ``snr_tenths`` is the exact integer key), the speech crop (``speech_offset`` into the
file, ``speech_start`` in the mixture when the utterance is shorter than ``length``), the noise
loop offsets, ``noise2_rel_db`` (level of noise 2 relative to noise 1, drawn uniformly from
``NOISE2_REL_DB_RANGE`` and rounded to 0.1 dB) and a per-row ``seed`` for later random choices
(e.g. training crops).

Build (``build_db``): per split, speech, noises (two distinct) and room come from that split; rows
are drawn from one RNG per split seeded by ``(seed, 'mixtures', split)``. ``(sid, nid1, nid2, rid,
snr_tenths)`` is unique in the DB (a unique constraint; a colliding draw is redrawn) so a
prediction file name maps back to exactly one row (:func:`find_mixture`). Rows are generated lazily
and inserted in chunks (``chunk_size``); collisions are checked against the DB itself by
unique-index lookups (500 keys per query), so memory does not grow with the number of mixtures and
the build time grows linearly with it (``bench/bench_db_scale.py``). A candidate is kept iff its
key is new, so the rows do not depend on ``chunk_size``. Atomicity: SQLite is built into a
temporary file beside the target and ``os.replace``-d; other backends (PostgreSQL:
``postgresql+psycopg://...``) run drop + create + insert in one transaction (PostgreSQL DDL is
transactional), so an interrupted build leaves the previous DB as it was.

Digest (``digest``): sha256 over every row of every table in primary-key order (byte order of the
keys on every backend), each row serialised as compact JSON of its column values; the volatile
meta key ``created_at`` is excluded. Same config + corpus + rooms -> same digest on any backend.

CLI::

    python -m se_lib.data.db build --config config/config.yaml [--url URL]
    python -m se_lib.data.db digest <url-or-sqlite-path>
    python -m se_lib.data.db summary <url-or-sqlite-path>
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import functools
import hashlib
import json
import math
import os
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Engine,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
    and_,
    bindparam,
    create_engine,
    func,
    insert,
    or_,
    select,
)
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.orm import (
    DeclarativeBase,
    Mapped,
    Session,
    aliased,
    mapped_column,
    relationship,
)

from se_lib.data.naming import check_id, parse_mixture_filename, round_snr, snr_tenths
from se_lib.data.rooms import read_rooms
from se_lib.data.splits import SPLITS, derive_rng, derive_seed
from se_lib.io import atomic_file

SCHEMA_VERSION = "1"
NOISE2_REL_DB_RANGE = (-10.0, 0.0)
VOLATILE_META = frozenset({"created_at", "recordings_root"})  # not in the digest: when and where, not what
CHUNK_SIZE = 5000
KEY_COLUMNS = ("sid", "nid1", "nid2", "rid", "snr_tenths")  # the unique mixture key
_KEY_PROBE = 500  # keys per collision query


class DBError(ValueError):
    """Invalid inputs for the mixture DB; the message names the file, split or key."""


class Base(DeclarativeBase):
    pass


class Meta(Base):
    __tablename__ = "meta"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class Speech(Base):
    __tablename__ = "speech"
    sid: Mapped[str] = mapped_column(String(128), primary_key=True)
    path: Mapped[str] = mapped_column(Text)
    speaker: Mapped[str] = mapped_column(String(128))
    split: Mapped[str] = mapped_column(String(8), index=True)
    sr: Mapped[int] = mapped_column(Integer)
    seconds: Mapped[float] = mapped_column(Float)
    frames: Mapped[int] = mapped_column(Integer)
    text: Mapped[str] = mapped_column(Text, default="")


class Noise(Base):
    __tablename__ = "noise"
    nid: Mapped[str] = mapped_column(String(128), primary_key=True)
    path: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(String(64))
    split: Mapped[str] = mapped_column(String(8), index=True)
    sr: Mapped[int] = mapped_column(Integer)
    seconds: Mapped[float] = mapped_column(Float)
    frames: Mapped[int] = mapped_column(Integer)


class Room(Base):
    __tablename__ = "room"
    rid: Mapped[str] = mapped_column(String(128), primary_key=True)
    split: Mapped[str] = mapped_column(String(8), index=True)
    dims: Mapped[str] = mapped_column(Text)  # JSON [x, y, z] m, null for measured rooms
    rt60: Mapped[float | None] = mapped_column(Float, nullable=True)
    mics: Mapped[str] = mapped_column(Text)  # JSON [[x, y, z], ...] absolute mic positions
    src_pos: Mapped[str] = mapped_column(Text)  # JSON [speech, noise 1, noise 2] positions
    ref_mic: Mapped[int] = mapped_column(Integer)
    target: Mapped[str] = mapped_column(String(16))
    rir_path: Mapped[str] = mapped_column(Text)
    channels: Mapped[int] = mapped_column(Integer)
    mic_array: Mapped[str] = mapped_column(String(32))
    origin: Mapped[str] = mapped_column(String(16))


class Mixture(Base):
    __tablename__ = "mixture"
    __table_args__ = (
        UniqueConstraint("sid", "nid1", "nid2", "rid", "snr_tenths", name="uq_mixture_key"),
        CheckConstraint("nid1 <> nid2", name="ck_mixture_distinct_noises"),
    )
    mid: Mapped[str] = mapped_column(String(32), primary_key=True)
    split: Mapped[str] = mapped_column(String(8), index=True)
    sid: Mapped[str] = mapped_column(ForeignKey("speech.sid"))
    nid1: Mapped[str] = mapped_column(ForeignKey("noise.nid"))
    nid2: Mapped[str] = mapped_column(ForeignKey("noise.nid"))
    rid: Mapped[str] = mapped_column(ForeignKey("room.rid"))
    snr_db: Mapped[float] = mapped_column(Float)
    snr_tenths: Mapped[int] = mapped_column(Integer)
    seed: Mapped[int] = mapped_column(BigInteger)
    speech_offset: Mapped[int] = mapped_column(Integer)
    speech_start: Mapped[int] = mapped_column(Integer)
    noise1_offset: Mapped[int] = mapped_column(Integer)
    noise2_offset: Mapped[int] = mapped_column(Integer)
    length: Mapped[int] = mapped_column(Integer)
    noise2_rel_db: Mapped[float] = mapped_column(Float)

    speech: Mapped[Speech] = relationship(foreign_keys=[sid])
    noise1: Mapped[Noise] = relationship(foreign_keys=[nid1])
    noise2: Mapped[Noise] = relationship(foreign_keys=[nid2])
    room: Mapped[Room] = relationship(foreign_keys=[rid])

    # Render-row view (so an ORM object can be passed to Renderer.render directly).
    @property
    def speech_path(self) -> str:
        return self.speech.path

    @property
    def noise1_path(self) -> str:
        return self.noise1.path

    @property
    def noise2_path(self) -> str:
        return self.noise2.path

    @property
    def rir_path(self) -> str:
        return self.room.rir_path


class Recording(Base):
    """A recorded mixture's files (public corpora, :mod:`se_lib.data.corpora`): its ``mixture`` row names no
    render parameters but these. ``noisy``: JSON ``[[path, channel], ...]`` per input channel; ``clean``: JSON
    ``[path, channel]`` or empty; ``sha256``: JSON ``{path: digest}`` of every file (in the DB digest); paths
    relative to ``meta.recordings_root``."""

    __tablename__ = "recording"
    mid: Mapped[str] = mapped_column(ForeignKey("mixture.mid"), primary_key=True)
    corpus: Mapped[str] = mapped_column(String(32))
    noisy: Mapped[str] = mapped_column(Text)
    clean: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(Text)
    sr: Mapped[int] = mapped_column(Integer)
    frames: Mapped[int] = mapped_column(Integer)
    snr_source: Mapped[str] = mapped_column(String(16))


TABLES = (Meta, Speech, Noise, Room, Mixture, Recording)  # digest order


# ----------------------------------------------------------------------------------------- URLs
def resolve_url(url_or_path: str | os.PathLike) -> str:
    """A SQLAlchemy URL as is, or a filesystem path as ``sqlite:///<path>``."""
    text = os.fspath(url_or_path)
    return text if "://" in text else f"sqlite:///{text}"


def _sqlite_path(url: str) -> Path | None:
    u = make_url(url)
    if u.get_backend_name() != "sqlite":
        return None
    if not u.database or u.database == ":memory:":
        raise DBError(f"{url}: an in-memory SQLite DB cannot hold a mixture DB; give a file path")
    return Path(u.database)


_ENGINES: dict[str, Engine] = {}


def get_engine(url_or_path: str | os.PathLike, must_exist: bool = True) -> Engine:
    """Cached engine for an existing DB (a missing SQLite file raises FileNotFoundError)."""
    url = resolve_url(url_or_path)
    path = _sqlite_path(url)
    if must_exist and path is not None and not path.exists():
        raise FileNotFoundError(f"mixture DB not found: {path} (run `python -m se_lib.data.db build`)")
    key = f"{os.getpid()}:{url}"
    if key not in _ENGINES:
        _ENGINES[key] = create_engine(url)
    return _ENGINES[key]


def open_session(url_or_path: str | os.PathLike) -> Session:
    """A new ORM session on the DB (caller closes it, e.g. ``with open_session(url) as s:``)."""
    return Session(get_engine(url_or_path))


# ------------------------------------------------------------------------------------- inputs
@dataclass(frozen=True)
class _Audio:
    id: str
    path: str
    frames: int


def _read_tsv(path: Path, columns: Sequence[str]) -> list[dict[str, str]]:
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh, delimiter="\t")
            missing = [c for c in columns if c not in (reader.fieldnames or [])]
            if missing:
                raise DBError(f"{path}: missing column(s) {missing}")
            return list(reader)
    except FileNotFoundError as exc:
        raise DBError(f"corpus table not found: {path} (run the corpus stage first)") from exc


def _audio_rows(tsv: Path, id_col: str, columns: Sequence[str], sr: int, root: Path) -> list[dict]:
    """Validated rows of speech.tsv / noise.tsv with ``frames`` from the audio headers."""
    from se_lib.data.audio import audio_info

    out = []
    seen: set[str] = set()
    for line, r in enumerate(_read_tsv(tsv, columns), start=2):
        ident = check_id(r[id_col], f"{tsv}:{line}: {id_col}")
        if ident in seen:
            raise DBError(f"{tsv}:{line}: duplicate {id_col} {ident!r}")
        seen.add(ident)
        if r["split"] not in SPLITS:
            raise DBError(f"{tsv}:{line}: split {r['split']!r} is not one of {SPLITS}")
        path = root / r["path"]
        if not path.exists():
            raise DBError(f"{tsv}:{line}: audio file not found: {path}")
        info = audio_info(path)
        frames, file_sr = info.frames, info.sample_rate
        if file_sr != sr or int(r["sr"]) != sr:
            raise DBError(
                f"{tsv}:{line}: {r['path']} has sample rate {file_sr} (tsv {r['sr']}), config sample_rate is {sr}"
            )
        if frames <= 0:
            raise DBError(f"{tsv}:{line}: {r['path']} is empty")
        row = {c: r[c] for c in columns}
        row.update(sr=sr, seconds=float(r["seconds"]), frames=frames)
        out.append(row)
    return out


def _room_rows(rooms_dir: Path, sr: int, root: Path) -> list[dict]:
    rows = []
    channels = None
    for r in read_rooms(rooms_dir):
        check_id(r["rid"], f"{rooms_dir}/rooms.tsv: rid")
        if r["split"] not in SPLITS:
            raise DBError(f"{rooms_dir}/rooms.tsv: room {r['rid']} split {r['split']!r} not in {SPLITS}")
        npz = root / r["rir_path"]
        try:
            with np.load(npz, allow_pickle=False) as z:
                rir_shape, rir_sr = z["rir"].shape, int(z["sr"])
        except FileNotFoundError as exc:
            raise DBError(f"room {r['rid']}: RIR file not found: {npz}") from exc
        if rir_sr != sr:
            raise DBError(f"{npz}: sample rate {rir_sr}, config sample_rate is {sr}")
        if channels is None:
            channels = rir_shape[1]
        if rir_shape[1] != channels:
            raise DBError(f"{npz}: {rir_shape[1]} mic channels, other rooms have {channels}")
        rows.append(
            {
                "rid": r["rid"],
                "split": r["split"],
                "dims": _canon(r["dims"]),
                "rt60": r["rt60"],
                "mics": _canon(r["mics"]),
                "src_pos": _canon(r["src_pos"]),
                "ref_mic": r["ref_mic"],
                "target": r["target"],
                "rir_path": r["rir_path"],
                "channels": int(rir_shape[1]),
                "mic_array": r["mic_array"],
                "origin": r["origin"],
            }
        )
    if not rows:
        raise DBError(f"{rooms_dir}/rooms.tsv has no rooms")
    return rows


def _canon(x: Any) -> str:
    return json.dumps(x, separators=(",", ":"), sort_keys=True, ensure_ascii=False)


def config_digest(config: dict) -> str:
    """sha256 of the config sections that determine the DB content. A recorded corpus's ``root`` is left out:
    where the corpus lies is not what it holds (its files' checksums are in the DB)."""
    keys = ("seed", "sample_rate", "corpus", "rooms", "mixtures")
    sections = {k: config.get(k) for k in keys}
    corpus = sections["corpus"]
    if isinstance(corpus, dict) and isinstance(corpus.get(corpus.get("kind")), dict):
        from se_lib.data.corpora.stage import corpus_options

        sections["corpus"] = {**corpus, corpus["kind"]: corpus_options(corpus)}
    return hashlib.sha256(_canon(sections).encode()).hexdigest()


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"se-workflow {version('se-workflow')}"
    except PackageNotFoundError:  # not installed as a distribution
        return "se-workflow unknown"


# ---------------------------------------------------------------------------------- generation
@dataclass
class _Pools:
    speech: list[_Audio]
    noise: list[_Audio]
    rooms: list[str]


def candidate_rows(
    rng: np.random.Generator,
    pools: _Pools,
    length: int,
    snr_range: Sequence[float],
    rel_range: Sequence[float] = NOISE2_REL_DB_RANGE,
) -> Iterator[dict]:
    """Endless stream of candidate mixture rows for one split (keys not yet checked)."""
    lo, hi = float(snr_range[0]), float(snr_range[1])
    rel_lo, rel_hi = float(rel_range[0]), float(rel_range[1])
    n_noise = len(pools.noise)
    while True:
        sp = pools.speech[int(rng.integers(len(pools.speech)))]
        i1 = int(rng.integers(n_noise))
        i2 = int(rng.integers(n_noise - 1))
        i2 += i2 >= i1
        n1, n2 = pools.noise[i1], pools.noise[i2]
        rid = pools.rooms[int(rng.integers(len(pools.rooms)))]
        snr = round_snr(rng.uniform(lo, hi)) if hi > lo else round_snr(lo)
        rel = round_snr(rng.uniform(rel_lo, rel_hi))
        if sp.frames >= length:
            speech_offset, speech_start = int(rng.integers(sp.frames - length + 1)), 0
        else:
            speech_offset, speech_start = 0, int(rng.integers(length - sp.frames + 1))
        yield {
            "sid": sp.id,
            "nid1": n1.id,
            "nid2": n2.id,
            "rid": rid,
            "snr_db": snr,
            "snr_tenths": snr_tenths(snr),
            "speech_offset": speech_offset,
            "speech_start": speech_start,
            "noise1_offset": int(rng.integers(n1.frames)),
            "noise2_offset": int(rng.integers(n2.frames)),
            "length": length,
            "noise2_rel_db": rel,
        }


def _key(row: dict) -> tuple:
    return (row["sid"], row["nid1"], row["nid2"], row["rid"], row["snr_tenths"])


@functools.cache
def _key_probe():
    """``SELECT key FROM mixture WHERE key = :k0 OR ... OR key = :k499``, built once.

    Each OR term is an equality on all five columns of ``uq_mixture_key``, so SQLite (multi-index
    OR) and PostgreSQL (bitmap OR) answer it with one unique-index probe per key: the cost of a
    query does not grow with the table. (A row-value ``IN`` list, used before, made SQLite search
    the index on the first four columns only and scan every SNR under each prefix -- linear in the
    table, quadratic over the build.) One statement object with named parameters, so SQLAlchemy
    compiles it once per dialect.
    """
    cols = [Mixture.__table__.c[name] for name in KEY_COLUMNS]
    terms = [and_(*[c == bindparam(f"{c.name}_{i}") for c in cols]) for i in range(_KEY_PROBE)]
    return select(*cols).where(or_(*terms))


def existing_keys(conn: Connection, keys: Sequence[tuple]) -> set[tuple]:
    """The keys among ``keys`` that the mixture table already holds (index lookups, see above)."""
    stmt = _key_probe()
    found: set[tuple] = set()
    for i in range(0, len(keys), _KEY_PROBE):
        part = list(keys[i : i + _KEY_PROBE])
        part += [part[-1]] * (_KEY_PROBE - len(part))  # pad: same statement for a short batch
        params = {f"{name}_{j}": v for j, key in enumerate(part) for name, v in zip(KEY_COLUMNS, key, strict=True)}
        found.update(tuple(r) for r in conn.execute(stmt, params))
    return found


def _rel_range(config: dict) -> Sequence[float]:
    """Level range of noise 2 relative to noise 1 (dB), config ``mixtures.noise2_rel_db_range``."""
    return config["mixtures"]["noise2_rel_db_range"]


def _insert_mixtures(conn: Connection, config: dict, split: str, pools: _Pools, length: int, chunk_size: int) -> int:
    """Draw, de-duplicate and insert the mixtures of ``split`` chunk by chunk; returns collisions."""
    count = int(config["mixtures"]["count"][split])
    rng = derive_rng(config["seed"], "mixtures", split)
    candidates = candidate_rows(rng, pools, length, config["mixtures"]["snr_range"], _rel_range(config))
    max_draws = 50 * count + 1000
    draws = collisions = done = 0
    while done < count:
        want = min(chunk_size, count - done)
        batch: dict[tuple, dict] = {}
        while len(batch) < want:
            need = want - len(batch)
            cands = [next(candidates) for _ in range(need)]
            draws += need
            existing = existing_keys(conn, [_key(c) for c in cands])
            for c in cands:
                k = _key(c)
                if k in existing or k in batch:
                    collisions += 1
                else:
                    batch[k] = c
            if draws > max_draws:
                raise DBError(
                    f"split {split}: too many key collisions ({collisions} in {draws} draws); "
                    "config key 'mixtures.count' is too large for the corpus/rooms/SNR grid"
                )
        rows = []
        for j, c in enumerate(batch.values()):
            mid = f"{split}-{done + j:07d}"
            rows.append({"mid": mid, "split": split, "seed": derive_seed(config["seed"], "mixture", mid), **c})
        conn.execute(insert(Mixture), rows)
        done += len(rows)
    return collisions


# ---------------------------------------------------------------------------------------- build
@contextlib.contextmanager
def _build_target(url: str) -> Iterator[Engine]:
    """Engine to build into; SQLite: a temp file renamed over the target on success."""
    path = _sqlite_path(url)
    if path is None:
        engine = create_engine(url)
        try:
            yield engine
        finally:
            engine.dispose()
        return
    try:
        with atomic_file(path) as tmp:
            engine = create_engine(make_url(url).set(database=str(tmp)))
            try:
                yield engine
            finally:
                engine.dispose()
                tmp.with_name(tmp.name + "-journal").unlink(missing_ok=True)
    finally:
        for key in [k for k in _ENGINES if k.endswith(url)]:
            _ENGINES.pop(key).dispose()


def build_db(
    config: dict,
    url: str | None = None,
    corpus_dir: str | os.PathLike = "results/corpus",
    rooms_dir: str | os.PathLike = "results/rooms",
    root: str | os.PathLike = ".",
    chunk_size: int = CHUNK_SIZE,
    log: Callable[[str], None] = print,
) -> str:
    """Build the mixture DB at ``url`` (default ``se_lib.config.db_url(config)``); returns its digest.

    ``root``: directory that the relative paths in the corpus/room tables are relative to.
    """
    from se_lib.config import db_url

    t0 = time.perf_counter()
    url = resolve_url(url or db_url(config))
    root, corpus_dir, rooms_dir = Path(root), Path(corpus_dir), Path(rooms_dir)
    if (corpus_dir / "recordings.tsv").exists():
        return build_recorded_db(config, url, corpus_dir, log=log)
    sr = int(config["sample_rate"])
    length = round(float(config["mixtures"]["seconds"]) * sr)
    speech = _audio_rows(
        corpus_dir / "speech.tsv", "sid", ("sid", "path", "speaker", "split", "sr", "seconds", "text"), sr, root
    )
    noise = _audio_rows(corpus_dir / "noise.tsv", "nid", ("nid", "path", "kind", "split", "sr", "seconds"), sr, root)
    rooms = _room_rows(rooms_dir, sr, root)
    pools = {}
    for split in SPLITS:
        p = _Pools(
            speech=[_Audio(r["sid"], r["path"], r["frames"]) for r in speech if r["split"] == split],
            noise=[_Audio(r["nid"], r["path"], r["frames"]) for r in noise if r["split"] == split],
            rooms=[r["rid"] for r in rooms if r["split"] == split],
        )
        if not p.speech or len(p.noise) < 2 or not p.rooms:
            raise DBError(
                f"split {split}: needs >= 1 speech file ({len(p.speech)} in "
                f"{corpus_dir}/speech.tsv), >= 2 noise files ({len(p.noise)} in "
                f"{corpus_dir}/noise.tsv) and >= 1 room ({len(p.rooms)} in {rooms_dir}/rooms.tsv)"
            )
        lo, hi = config["mixtures"]["snr_range"]
        space = len(p.speech) * len(p.noise) * (len(p.noise) - 1) * len(p.rooms) * (snr_tenths(hi) - snr_tenths(lo) + 1)
        if int(config["mixtures"]["count"][split]) > space:
            raise DBError(
                f"config key 'mixtures.count.{split}': {config['mixtures']['count'][split]} "
                f"exceeds the {space} distinct (speech, noise pair, room, SNR) combinations"
            )
        pools[split] = p
    meta = {
        "schema_version": SCHEMA_VERSION,
        "config_digest": config_digest(config),
        "seed": str(config["seed"]),
        "sample_rate": str(sr),
        "mixture_length": str(length),
        "snr_range": _canon([float(x) for x in config["mixtures"]["snr_range"]]),
        "noise2_rel_db_range": _canon([float(x) for x in _rel_range(config)]),
        "channels": str(rooms[0]["channels"]),
        "created_by": _version(),
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    collisions = 0
    with _build_target(url) as engine, engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            # The collision probe runs thousands of times; psycopg prepares it after 5 runs, and the
            # server would then keep a generic plan made while the table was small (a sequential
            # scan: quadratic build). Plan every run for its values and the table as it is now.
            conn.exec_driver_sql("SET LOCAL plan_cache_mode = force_custom_plan")
        Base.metadata.drop_all(conn)
        Base.metadata.create_all(conn)
        conn.execute(insert(Meta), [{"key": k, "value": v} for k, v in meta.items()])
        conn.execute(insert(Speech), speech)
        conn.execute(insert(Noise), noise)
        conn.execute(insert(Room), rooms)
        for split in SPLITS:
            collisions += _insert_mixtures(conn, config, split, pools[split], length, chunk_size)
    result = digest(url)
    n = sum(int(config["mixtures"]["count"][s]) for s in SPLITS)
    log(
        f"mixture DB {make_url(url).render_as_string(hide_password=True)}: {n} mixtures, "
        f"{collisions} redrawn key collisions, digest {result[:12]}, {time.perf_counter() - t0:.1f} s"
    )
    return result


def build_recorded_db(config: dict, url: str, corpus_dir: str | os.PathLike, log: Callable[[str], None] = print) -> str:
    """Build the DB of a recorded corpus (the corpus stage's ``recordings.tsv``/``manifest.tsv``,
    :func:`se_lib.data.corpora.recordings.db_tables`); returns its digest. Same atomicity as :func:`build_db`."""
    import json as _json

    from se_lib.data.corpora.recordings import CorpusLayoutError, db_tables

    t0 = time.perf_counter()
    url = resolve_url(url)
    corpus_dir = Path(corpus_dir)
    sr = int(config["sample_rate"])
    try:
        tables = db_tables(corpus_dir, sr, int(config["seed"]), config["corpus"]["kind"])
        stats = _json.loads((corpus_dir / "stats.json").read_text())
    except (CorpusLayoutError, FileNotFoundError, ValueError) as exc:
        raise DBError(str(exc)) from exc
    missing = [s for s in SPLITS if not any(m["split"] == s for m in tables["mixture"])]
    meta = {
        "schema_version": SCHEMA_VERSION,
        "config_digest": config_digest(config),
        "seed": str(config["seed"]),
        "sample_rate": str(sr),
        "source": f"recorded:{config['corpus']['kind']}",
        "splits_without_mixtures": _canon(missing),
        "channels": str(tables["room"][0]["channels"]),
        "recordings_root": stats["root"],
        "created_by": _version(),
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    with _build_target(url) as engine, engine.begin() as conn:
        Base.metadata.drop_all(conn)
        Base.metadata.create_all(conn)
        conn.execute(insert(Meta), [{"key": k, "value": v} for k, v in meta.items()])
        for model in (Speech, Noise, Room, Mixture, Recording):
            rows = tables[model.__tablename__]
            for i in range(0, len(rows), CHUNK_SIZE):
                conn.execute(insert(model), rows[i : i + CHUNK_SIZE])
    result = digest(url)
    log(
        f"mixture DB {make_url(url).render_as_string(hide_password=True)}: {len(tables['mixture'])} recorded "
        f"mixtures of {config['corpus']['kind']} at {stats['root']}, digest {result[:12]}, "
        f"{time.perf_counter() - t0:.1f} s"
    )
    return result


# -------------------------------------------------------------------------------------- readers
def _ordered(col: Any, dialect: str) -> Any:
    """Order by byte value on every backend (PostgreSQL/MySQL collations may differ otherwise)."""
    if dialect == "postgresql":
        return col.collate("C")
    if dialect in ("mysql", "mariadb"):
        return col.collate("utf8mb4_bin")
    return col


def digest(url_or_path: str | os.PathLike) -> str:
    """Content digest of the DB (see the module docstring)."""
    engine = get_engine(url_or_path)
    h = hashlib.sha256()
    with engine.connect() as conn:
        dialect = engine.dialect.name
        for model in TABLES:
            table = model.__table__
            cols = [c.name for c in table.columns]
            h.update(_canon([table.name, cols]).encode() + b"\n")
            pk = [_ordered(c, dialect) if isinstance(c.type, (String, Text)) else c for c in table.primary_key.columns]
            stmt = select(table).order_by(*pk)
            if model is Meta:
                stmt = stmt.where(table.c.key.not_in(sorted(VOLATILE_META)))
            result = conn.execution_options(stream_results=True, yield_per=CHUNK_SIZE).execute(stmt)
            for row in result:
                h.update(json.dumps(list(row), separators=(",", ":"), ensure_ascii=False).encode() + b"\n")
    return h.hexdigest()


def _render_select(dialect: str):
    n1, n2 = aliased(Noise), aliased(Noise)
    stmt = (
        select(
            *[c for c in Mixture.__table__.columns],
            Speech.path.label("speech_path"),
            n1.path.label("noise1_path"),
            n2.path.label("noise2_path"),
            Room.rir_path,
            Room.ref_mic,
            Room.channels,
            Recording.noisy.label("recorded_noisy"),
            Recording.clean.label("recorded_clean"),
            Recording.sr.label("recorded_sr"),
        )
        .join(Speech, Speech.sid == Mixture.sid)
        .join(n1, n1.nid == Mixture.nid1)
        .join(n2, n2.nid == Mixture.nid2)
        .join(Room, Room.rid == Mixture.rid)
        .outerjoin(Recording, Recording.mid == Mixture.mid)
    )
    return stmt, _ordered(Mixture.mid, dialect)


def iter_mixtures(
    url_or_path: str | os.PathLike, split: str | None = None, limit: int | None = None
) -> Iterator[dict[str, Any]]:
    """Render-ready rows (mixture columns + speech/noise/RIR paths, ref_mic, channels) by ``mid``."""
    if split is not None and split not in SPLITS:
        raise ValueError(f"split {split!r} is not one of {SPLITS}")
    engine = get_engine(url_or_path)
    stmt, order = _render_select(engine.dialect.name)
    if split is not None:
        stmt = stmt.where(Mixture.split == split)
    stmt = stmt.order_by(order)
    if limit is not None:
        stmt = stmt.limit(int(limit))
    meta = None
    with engine.connect() as conn:
        for row in conn.execution_options(stream_results=True, yield_per=CHUNK_SIZE).execute(stmt):
            if row.recorded_noisy is not None and meta is None:
                meta = read_meta(url_or_path)
            yield _render_row(row._mapping, meta)


def _render_row(mapping: Mapping[str, Any], meta: Mapping[str, str] | None) -> dict[str, Any]:
    """A render-ready row; a recorded one's ``recorded_noisy``/``recorded_clean`` decoded, paths under the DB's
    ``meta.recordings_root`` (or ``$SE_RECORDINGS_ROOT`` where the corpus has moved), and the DB's
    ``sample_rate`` (the rate it is rendered at)."""
    row = dict(mapping)
    if row.get("recorded_noisy") is None:
        return row
    meta = meta or {}
    row["sample_rate"] = int(meta["sample_rate"])
    base = Path(os.environ.get("SE_RECORDINGS_ROOT") or meta.get("recordings_root") or ".")
    row["recorded_noisy"] = [(str(base / p), int(c)) for p, c in json.loads(row["recorded_noisy"])]
    clean = json.loads(row["recorded_clean"]) if row["recorded_clean"] else None
    row["recorded_clean"] = (str(base / clean[0]), int(clean[1])) if clean else None
    return row


def lookup_mixture(session_or_url: Any, sid: str, nid1: str, nid2: str, rid: str, snr_db: float) -> dict[str, Any]:
    """The render-ready row with this key; LookupError if there is none."""
    if isinstance(session_or_url, Session):
        bind = session_or_url.get_bind()
        executor: Any = session_or_url
    else:
        bind = get_engine(session_or_url)
        executor = None
    stmt, _ = _render_select(bind.dialect.name)
    stmt = stmt.where(
        Mixture.sid == sid,
        Mixture.nid1 == nid1,
        Mixture.nid2 == nid2,
        Mixture.rid == rid,
        Mixture.snr_tenths == snr_tenths(snr_db),
    )
    if executor is None:
        with bind.connect() as conn:
            row = conn.execute(stmt).first()
    else:
        row = executor.execute(stmt).first()
    if row is None:
        raise LookupError(f"no mixture with sid={sid} nid1={nid1} nid2={nid2} rid={rid} snr_db={snr_db}")
    if row.recorded_noisy is None:
        return dict(row._mapping)
    url = session_or_url if executor is None else bind.url.render_as_string(hide_password=False)
    return _render_row(row._mapping, read_meta(url))


def find_mixture(session_or_url: Any, name: Mapping[str, Any] | str | os.PathLike) -> dict[str, Any]:
    """The DB row a mixture file name denotes (the inverse of :func:`se_lib.data.naming.mixture_filename`).

    ``session_or_url``: a SQLAlchemy ``Session``, a URL or a SQLite path. ``name``: a file name or
    path, or the dict :func:`~se_lib.data.naming.parse_mixture_filename` returns. Returns the
    render-ready row dict (the shape :func:`iter_mixtures` yields); LookupError when no row matches.
    """
    parsed = parse_mixture_filename(name) if isinstance(name, (str, os.PathLike)) else name
    return lookup_mixture(
        session_or_url,
        sid=parsed["sid"],
        nid1=parsed["nid1"],
        nid2=parsed["nid2"],
        rid=parsed["rid"],
        snr_db=float(parsed["snr_db"]),
    )


def read_meta(url_or_path: str | os.PathLike) -> dict[str, str]:
    with get_engine(url_or_path).connect() as conn:
        return {k: v for k, v in conn.execute(select(Meta.key, Meta.value))}


def _counts(url_or_path: str | os.PathLike) -> tuple[dict[str, Counter], Counter]:
    """Rows per table and split; mixtures per (split, lower edge of the 5-dB SNR bin)."""
    engine = get_engine(url_or_path)
    counts: dict[str, Counter] = {}
    bins: Counter = Counter()
    with engine.connect() as conn:
        for model in (Speech, Noise, Room, Mixture):
            counts[model.__tablename__] = Counter(
                dict(conn.execute(select(model.split, func.count()).group_by(model.split)).all())
            )
        for split, tenths, n in conn.execute(
            select(Mixture.split, Mixture.snr_tenths, func.count()).group_by(Mixture.split, Mixture.snr_tenths)
        ):
            bins[(split, math.floor(tenths / 50.0) * 5)] += n
    return counts, bins


def summary_table(url_or_path: str | os.PathLike):
    """Mixtures per 5-dB SNR bin (rows ``[lo,hi)``, then ``all``) and split (columns + ``total``).

    Returns a ``pandas.DataFrame`` with columns ``snr_bin train val test total``.
    """
    import pandas as pd

    _, bins = _counts(url_or_path)
    records = []
    for lo in sorted({b for _, b in bins}):
        row = {"snr_bin": f"[{lo},{lo + 5})", **{s: bins.get((s, lo), 0) for s in SPLITS}}
        records.append(row)
    records.append({"snr_bin": "all", **{s: sum(n for (sp, _), n in bins.items() if sp == s) for s in SPLITS}})
    table = pd.DataFrame.from_records(records, columns=["snr_bin", *SPLITS])
    table["total"] = table[list(SPLITS)].sum(axis=1)
    return table


def summary(url_or_path: str | os.PathLike) -> str:
    """Text tables: row counts per table and split, then mixtures per split and 5-dB SNR bin."""
    counts, _ = _counts(url_or_path)
    splits = list(SPLITS)
    lines = [f"{'table':<10}" + "".join(f"{s:>10}" for s in splits) + f"{'total':>10}"]
    for name, c in counts.items():
        lines.append(f"{name:<10}" + "".join(f"{c.get(s, 0):>10}" for s in splits) + f"{sum(c.values()):>10}")
    lines += ["", f"{'SNR bin':<10}" + "".join(f"{s:>10}" for s in splits) + f"{'total':>10}"]
    for rec in summary_table(url_or_path).itertuples(index=False):
        lines.append(f"{rec.snr_bin:<10}" + "".join(f"{getattr(rec, s):>10}" for s in splits) + f"{rec.total:>10}")
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------ CLI
def main(argv: Sequence[str] | None = None) -> int:
    from se_lib.config import load_config

    p = argparse.ArgumentParser(prog="python -m se_lib.data.db", description="Mixture database tools")
    sub = p.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build", help="build the DB from the corpus and rooms; prints the digest")
    b.add_argument("--config", default="config/config.yaml")
    b.add_argument("--url", default=None, help="SQLAlchemy URL (default: config db.url)")
    b.add_argument("--corpus-dir", default="results/corpus")
    b.add_argument("--rooms-dir", default="results/rooms")
    for name, help_ in (("digest", "print the content digest"), ("summary", "counts per split and SNR bin")):
        s = sub.add_parser(name, help=help_)
        s.add_argument("db", help="SQLAlchemy URL or SQLite file path")
    a = p.parse_args(argv)
    try:
        if a.cmd == "build":
            cfg = load_config(a.config)
            print(build_db(cfg, a.url, a.corpus_dir, a.rooms_dir, log=lambda m: print(m, file=sys.stderr)))
        elif a.cmd == "digest":
            print(digest(a.db))
        else:
            print(summary(a.db))
    except (DBError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

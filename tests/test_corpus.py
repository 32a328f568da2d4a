"""Corpus stage: demo corpus (eSpeak NG speakers + noises) and bring-your-own files corpus."""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from se_lib.config import ConfigError, load_config
from se_lib.data.audio import AudioError
from se_lib.data.corpus import (
    NOISE_COLUMNS,
    RIR_COLUMNS,
    SPEECH_COLUMNS,
    CorpusError,
    build_corpus,
    main,
    sanitize_id,
)
from se_lib.data.demo_corpus import babble_voice_pool, plan_speakers
from se_lib.data.splits import allocate_splits

ID_RE = re.compile(r"^[A-Za-z0-9-]+$")
SMALL_DEMO = {"corpus": {"demo": {"utterances_per_speaker": 2, "noises_per_kind": 3, "noise_seconds": 1.0}}}
SPLITS = ("train", "val", "test")


def _read_tsv(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, sep="\t", keep_default_na=False, dtype={"sr": int})


def _hashes(out: Path) -> dict[str, str]:
    return {
        p.relative_to(out).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(out.rglob("*"))
        if p.is_file()
    }


def _quiet(_msg: str) -> None:
    pass


def _no_temp_dirs(parent: Path) -> bool:
    return not [p for p in parent.iterdir() if p.name.startswith(".")]


@pytest.fixture()
def in_tmp(tmp_path, monkeypatch) -> Path:
    """Run in a temp dir standing in for the repo root (manifest paths are relative to cwd)."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


# ---------------------------------------------------------------------------- demo corpus ----


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    root = tmp_path_factory.mktemp("demo")
    cwd = os.getcwd()
    os.chdir(root)
    try:
        cfg = load_config(overrides=SMALL_DEMO)
        stats = build_corpus(cfg, "results/corpus", log=_quiet)
        yield root, cfg, stats, _hashes(root / "results/corpus")
    finally:
        os.chdir(cwd)


def test_demo_manifests_follow_contract(demo):
    root, cfg, stats, _ = demo
    out = root / "results/corpus"
    speech, noise = _read_tsv(out / "speech.tsv"), _read_tsv(out / "noise.tsv")
    assert tuple(speech.columns) == SPEECH_COLUMNS and tuple(noise.columns) == NOISE_COLUMNS
    assert not (out / "rirs.tsv").exists()
    for df, id_col, sub in ((speech, "sid", "speech"), (noise, "nid", "noise")):
        assert df[id_col].is_unique and all(ID_RE.match(i) for i in df[id_col])
        assert set(df["split"]) == set(SPLITS)
        for ident, path, sr, seconds in zip(df[id_col], df["path"], df["sr"], df["seconds"], strict=True):
            assert path == f"results/corpus/{sub}/{ident}.wav"  # relative to the repo root (cwd)
            info = sf.info(root / path)
            assert (info.samplerate, info.channels, info.subtype) == (cfg["sample_rate"], 1, "PCM_16")
            assert sr == cfg["sample_rate"] and seconds == pytest.approx(info.frames / info.samplerate, abs=1e-4)
    assert len(speech) == 10 * 2 and stats["speech"] == {"train": 12, "val": 4, "test": 4}
    assert speech["text"].str.len().min() > 10 and speech["text"].is_unique
    assert set(os.listdir(out)) == {"speech", "noise", "speech.tsv", "noise.tsv", "speakers.tsv", "stats.json"}


def test_demo_speakers_distinct_and_disjoint(demo):
    root, cfg, stats, _ = demo
    speech = _read_tsv(root / "results/corpus/speech.tsv")
    assert speech["speaker"].nunique() >= 8
    by_split = {s: set(speech.loc[speech["split"] == s, "speaker"]) for s in SPLITS}
    assert [len(by_split[s]) for s in SPLITS] == [6, 2, 2]
    assert not (
        by_split["train"] & by_split["val"]
        or by_split["train"] & by_split["test"]
        or by_split["val"] & by_split["test"]
    )
    speakers = _read_tsv(root / "results/corpus/speakers.tsv")
    voices = [s.split()[0] for s in speakers["source"]]
    assert len(set(voices)) == len(voices) == 10  # distinct eSpeak voices
    assert len({v.split("+")[0] for v in voices}) == 8  # all 8 English accents used
    assert not set(voices) & set(babble_voice_pool())  # babble talkers are never targets
    rates = {s.split()[1] for s in speakers["source"]}
    assert len(rates) > 5  # rate varies per speaker


def test_demo_noise_kinds_and_disjoint_splits(demo):
    root, cfg, stats, _ = demo
    noise = _read_tsv(root / "results/corpus/noise.tsv")
    kinds = cfg["corpus"]["demo"]["noise_kinds"]
    assert len(kinds) >= 4 and set(noise["kind"]) == set(kinds)
    assert len(noise) == 3 * len(kinds) and noise["nid"].is_unique  # one split per file
    for s in SPLITS:
        assert set(noise.loc[noise["split"] == s, "kind"]) == set(kinds)  # every kind in every split
    assert (noise["seconds"] == 1.0).all()
    for path in noise["path"]:
        x, _ = sf.read(root / path)
        assert np.isfinite(x).all() and 0.05 < np.abs(x).max() < 1.0


def test_demo_is_deterministic_and_seeded(demo, tmp_path, monkeypatch):
    root, cfg, _, hashes = demo
    monkeypatch.chdir(tmp_path)
    build_corpus(cfg, "results/corpus", log=_quiet)
    assert _hashes(tmp_path / "results/corpus") == hashes  # same config -> byte-identical
    build_corpus(load_config(overrides={**SMALL_DEMO, "seed": cfg["seed"] + 1}), "results/corpus", log=_quiet)
    again = _hashes(tmp_path / "results/corpus")
    wavs = [k for k in hashes if k.endswith(".wav")]
    assert set(again) == set(hashes)  # IDs do not depend on the seed ...
    assert sum(again[k] != hashes[k] for k in wavs) == len(wavs)  # ... every audio file does
    assert _no_temp_dirs(tmp_path / "results")


def test_demo_replaces_existing_out_dir(in_tmp):
    out = in_tmp / "results/corpus"
    (out / "speech").mkdir(parents=True)
    (out / "stale.txt").write_text("old")
    cfg = load_config(
        overrides={
            "corpus": {
                "demo": {
                    "speakers": {"train": 1, "val": 1, "test": 1},
                    "utterances_per_speaker": 1,
                    "noise_kinds": ["white"],
                    "noises_per_kind": 3,
                    "noise_seconds": 0.5,
                }
            }
        }
    )
    stats = build_corpus(cfg, out, log=_quiet)
    assert not (out / "stale.txt").exists() and stats["speech"] == {"train": 1, "val": 1, "test": 1}
    assert _no_temp_dirs(in_tmp / "results")


def test_plan_speakers_limits_and_allocation():
    with pytest.raises(ValueError, match="corpus.demo.speakers"):
        plan_speakers({"train": 100, "val": 10, "test": 10}, 0)
    plan = plan_speakers({"train": 6, "val": 2, "test": 2}, 7)
    assert plan == plan_speakers({"train": 6, "val": 2, "test": 2}, 7)
    assert plan != plan_speakers({"train": 6, "val": 2, "test": 2}, 8)
    assert sum(s.voice.split("+")[-1].startswith("f") for s in plan) == 5  # alternating gender
    rng = np.random.default_rng(0)
    split = allocate_splits(
        {"a": [f"a{i}" for i in range(10)], "b": ["b0"], "c": ["c0"], "d": ["d0"]}, {"val": 0.2, "test": 0.1}, rng
    )
    a = [split[f"a{i}"] for i in range(10)]
    assert (a.count("train"), a.count("val"), a.count("test")) == (7, 2, 1)
    assert sorted(split[k] for k in ("b0", "c0", "d0")) == ["test", "train", "val"]  # small groups rotate


def test_espeak_synthesis_is_a_pure_function():
    from se_lib.data.espeak import ESPEAK_SAMPLE_RATE, EspeakError, synthesize

    a = synthesize("The yellow fence was painted on Tuesday.", "en-gb-scotland+f2", rate=160, pitch=40)
    b = synthesize("Something else entirely, with another voice.", "en-us+m3", rate=200, seed=3)
    c = synthesize("The yellow fence was painted on Tuesday.", "en-gb-scotland+f2", rate=160, pitch=40)
    assert a.dtype == np.float32 and 1.0 < a.size / ESPEAK_SAMPLE_RATE < 5.0 and 0.1 < np.abs(a).max() <= 1.0
    np.testing.assert_array_equal(a, c)  # not affected by the synthesis in between
    assert a.size != b.size or not np.array_equal(a[: b.size], b)
    with pytest.raises(EspeakError, match="variant"):
        synthesize("hello", "en+nosuchvariant")
    with pytest.raises(EspeakError, match="rate"):
        synthesize("hello", "en", rate=5)


# --------------------------------------------------------------------------- files corpus ----


def _speechlike(rng: np.random.Generator, sr: int, seconds: float, f0: float) -> np.ndarray:
    t = np.arange(int(sr * seconds)) / sr
    x = sum(np.sin(2 * np.pi * k * f0 * t) / k for k in range(1, 8) if k * f0 < sr / 2)
    env = 0.5 * (1 + np.sin(2 * np.pi * 4 * t))
    return (0.3 * x * env / 2 + 0.01 * rng.standard_normal(t.size)).astype(np.float32)


def _make_files_tree(root: Path) -> Path:
    """speech/<speaker>/<utt>.wav (22.05 and 8 kHz, one stereo), noise/<kind>/*.wav, rirs/*.wav."""
    rng = np.random.default_rng(0)
    data = root / "data"
    for i, spk in enumerate(["alice", "bob", "carol", "dave", "eve_x"]):
        sr = 22050 if i % 2 == 0 else 8000
        for j in range(2):
            x = _speechlike(rng, sr, 0.6 + 0.1 * j, 110 + 20 * i)
            if spk == "bob" and j == 0:
                x = np.stack([x, np.zeros_like(x)], axis=1)  # stereo: channel 0 must be used
            d = data / "speech" / spk
            d.mkdir(parents=True, exist_ok=True)
            sf.write(d / f"utt {j}.wav", x, sr, subtype="PCM_16")
    (data / "speech/alice/utt 0.txt").write_text("hello\tworld\n")
    for kind in ("fan", "street"):
        d = data / "noise" / kind
        d.mkdir(parents=True)
        for j in range(3):
            sf.write(d / f"n{j}.wav", (0.1 * rng.standard_normal(8000)).astype(np.float32), 16000)
    d = data / "rirs"
    d.mkdir()
    for j in range(2):
        rir = np.zeros((800, 4), np.float32)
        rir[10 + j, :] = 1.0
        rir[11:, :] = 0.01 * rng.standard_normal((789, 4))
        sf.write(d / f"room_{j}.wav", rir, 8000, subtype="FLOAT")
    return data


def _files_config(**files) -> dict:
    base = {
        "speech_glob": "data/speech/*/*.wav",
        "noise_glob": "data/noise/**/*.wav",
        "split_fractions": {"val": 0.2, "test": 0.2},
    }
    base.update(files)
    return load_config(overrides={"corpus": {"kind": "files", "files": base}})


def test_files_corpus_resamples_splits_and_lists_rirs(in_tmp):
    _make_files_tree(in_tmp)
    messages: list[str] = []
    stats = build_corpus(_files_config(rir_glob="data/rirs/*.wav"), "results/corpus", log=messages.append)
    out = in_tmp / "results/corpus"
    speech, noise, rirs = (_read_tsv(out / n) for n in ("speech.tsv", "noise.tsv", "rirs.tsv"))
    assert tuple(speech.columns) == SPEECH_COLUMNS and tuple(rirs.columns) == RIR_COLUMNS
    assert set(speech["speaker"]) == {"alice", "bob", "carol", "dave", "eve-x"}
    by_split = speech.groupby("split")["speaker"].apply(set).to_dict()
    assert set(by_split) == set(SPLITS) and sum(len(v) for v in by_split.values()) == 5
    for df, col in ((speech, "sid"), (noise, "nid"), (rirs, "ririd")):
        assert all(ID_RE.match(i) for i in df[col]) and df[col].is_unique
    assert "alice-utt-0" in set(speech["sid"])
    assert speech.set_index("sid").loc["alice-utt-0", "text"] == "hello world"
    for path in speech["path"]:
        info = sf.info(path)
        assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")
    # durations survive resampling from 22.05 and 8 kHz
    assert sorted(speech["seconds"].round(2)) == sorted([0.6, 0.7] * 5)
    assert stats["resampled"] == 10 + 2  # all speech and both RIRs (noise is already at 16 kHz)
    bob0, _ = sf.read(speech.set_index("sid").loc["bob-utt-0", "path"])
    assert np.abs(bob0).max() > 0.05  # channel 0 (not the silent channel 1)
    assert stats["multichannel"] == ["data/speech/bob/utt 0.wav"]
    assert any("multichannel" in m and "bob/utt 0.wav" in m for m in messages)
    assert set(noise["kind"]) == {"fan", "street"}
    for s in SPLITS:
        assert set(noise.loc[noise["split"] == s, "kind"]) == {"fan", "street"}
    assert list(rirs["channels"]) == [4, 4] and list(rirs["sr"]) == [16000, 16000]
    rir, sr = sf.read(rirs["path"][0], always_2d=True)
    assert sr == 16000 and rir.shape[1] == 4 and sf.info(rirs["path"][0]).subtype == "FLOAT"
    assert stats["n_skipped"] == 0 and _no_temp_dirs(in_tmp / "results")


def _add_bad(data: Path, which: str) -> Path:
    d = data / "speech" / "bob"
    p = d / f"bad_{which}.wav"
    if which == "corrupt":
        p.write_bytes(np.random.default_rng(3).bytes(4096))
    elif which == "empty":
        sf.write(p, np.zeros(0, np.float32), 16000)
    elif which == "nan":
        x = np.full(1600, 0.1, np.float32)
        x[5] = np.nan
        sf.write(p, x, 16000, subtype="FLOAT")
    elif which == "silent":
        sf.write(p, np.zeros(1600, np.float32), 16000)
    return p


@pytest.mark.parametrize(
    "which, reason", [("corrupt", "unreadable"), ("empty", "empty"), ("nan", "non-finite"), ("silent", "silent")]
)
def test_bad_file_fails_naming_path_and_writes_nothing(in_tmp, which, reason):
    bad = _add_bad(_make_files_tree(in_tmp), which)
    with pytest.raises(AudioError, match=reason) as err:
        build_corpus(_files_config(), "results/corpus", log=_quiet)
    assert bad.relative_to(in_tmp).as_posix() in str(err.value)
    assert not (in_tmp / "results/corpus").exists()
    assert not (in_tmp / "results").exists() or _no_temp_dirs(in_tmp / "results")


def test_failed_rebuild_keeps_previous_corpus(in_tmp):
    data = _make_files_tree(in_tmp)
    build_corpus(_files_config(), "results/corpus", log=_quiet)
    before = _hashes(in_tmp / "results/corpus")
    _add_bad(data, "nan")
    with pytest.raises(AudioError):
        build_corpus(_files_config(), "results/corpus", log=_quiet)
    assert _hashes(in_tmp / "results/corpus") == before and _no_temp_dirs(in_tmp / "results")


def test_skip_mode_counts_and_lists_bad_files(in_tmp):
    data = _make_files_tree(in_tmp)
    bad = sorted(_add_bad(data, w).relative_to(in_tmp).as_posix() for w in ("corrupt", "empty", "nan", "silent"))
    cfg = _files_config()
    cfg["corpus"]["on_bad_file"] = "skip"
    messages: list[str] = []
    stats = build_corpus(cfg, "results/corpus", log=messages.append)
    assert stats["n_skipped"] == 4 and sorted(s["path"] for s in stats["skipped"]) == bad
    assert all(any(b in m for m in messages) for b in bad)
    speech = _read_tsv(in_tmp / "results/corpus/speech.tsv")
    assert len(speech) == 10 and not any("bad" in s for s in speech["sid"])


def test_files_corpus_errors(in_tmp):
    _make_files_tree(in_tmp)
    with pytest.raises(ConfigError, match="corpus.files.speaker_pattern"):
        build_corpus(_files_config(speaker_pattern=r"([^/]+)/[^/]+$"), "results/corpus", log=_quiet)
    with pytest.raises(ConfigError, match="corpus.files.noise_kind_pattern"):
        build_corpus(_files_config(noise_kind_pattern=r"(?P<kind>[/"), "results/corpus", log=_quiet)
    with pytest.raises(CorpusError, match="corpus.files.noise_glob"):
        build_corpus(_files_config(noise_glob="data/nothing/*.wav"), "results/corpus", log=_quiet)
    with pytest.raises(CorpusError, match="at least 3 speakers"):
        build_corpus(_files_config(speech_glob="data/speech/[ab]*/*.wav"), "results/corpus", log=_quiet)
    with pytest.raises(CorpusError, match="corpus.files.speaker_pattern"):
        build_corpus(_files_config(speaker_pattern=r"(?P<speaker>zzz)/"), "results/corpus", log=_quiet)
    with pytest.raises(CorpusError, match="speech_glob and corpus.files.noise_glob both match"):
        build_corpus(_files_config(noise_glob="data/**/*.wav"), "results/corpus", log=_quiet)
    assert not (in_tmp / "results/corpus").exists()


def test_config_key_errors(tmp_path):
    with pytest.raises(ConfigError, match="corpus.files.speech_glob"):
        load_config(overrides={"corpus": {"kind": "files"}})
    with pytest.raises(ConfigError, match="corpus.demo.noise_kinds"):
        load_config(overrides={"corpus": {"demo": {"noise_kinds": ["white", "thunder"]}}})
    with pytest.raises(ConfigError, match="corpus.demo"):
        load_config(overrides={"corpus": {"demo": {"speakerz": 3}}})
    with pytest.raises(ConfigError, match="corpus.on_bad_file"):
        load_config(overrides={"corpus": {"on_bad_file": "ignore"}})
    cfg = load_config(overrides={"corpus": {"demo": {"speakers": {"train": 100, "val": 10, "test": 10}}}})
    with pytest.raises(ConfigError, match="corpus.demo.speakers"):
        build_corpus(cfg, tmp_path / "out", log=_quiet)
    cfg = load_config(overrides={"corpus": {"demo": {"noise_kinds": ["hum"], "noises_per_kind": 2}}})
    with pytest.raises(ConfigError, match="corpus.demo.noises_per_kind"):
        build_corpus(cfg, tmp_path / "out", log=_quiet)
    with pytest.raises(ConfigError, match="corpus.kind"):
        build_corpus({"seed": 1, "sample_rate": 16000, "corpus": {}}, tmp_path / "out", log=_quiet)
    assert not (tmp_path / "out").exists()


def test_sanitize_id():
    assert sanitize_id("eve_x/utt 0") == "eve-x-utt-0"
    assert sanitize_id("__") == "x" and ID_RE.match(sanitize_id("ü-ß"))


def test_cli(in_tmp):
    _make_files_tree(in_tmp)
    cfg = in_tmp / "config.yaml"
    cfg.write_text(
        "experiment: t\nseed: 3\nsample_rate: 8000\ncorpus:\n  kind: files\n  files:\n"
        "    speech_glob: data/speech/*/*.wav\n    noise_glob: data/noise/*/*.wav\n"
    )
    assert main(["--config", str(cfg), "--out", "results/c"]) == 0
    assert sf.info(_read_tsv(in_tmp / "results/c/speech.tsv")["path"][0]).samplerate == 8000
    (in_tmp / "data/speech/alice/bad.wav").write_bytes(b"RIFF garbage")
    assert main(["--config", str(cfg), "--out", "results/c"]) == 2

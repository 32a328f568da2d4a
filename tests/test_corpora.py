"""Public-corpus adapters on stand-ins in the published layouts (tests/corpus_standins.py): pairing, counts,
resampling, channel assembly, the bad-input cases, and the mixture DB rows that name files and checksums."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

import corpus_standins as standins
from se_lib.config import ConfigError, load_config
from se_lib.data import db as mixture_db
from se_lib.data.audio import resample_audio
from se_lib.data.corpora.recordings import CorpusLayoutError, read_manifest, read_recordings
from se_lib.data.corpora.stage import build_recorded_corpus
from se_lib.data.naming import mixture_filename, parse_mixture_filename
from se_lib.data.render import Renderer
from se_lib.data.rooms import CHIME3_TABLET_CM

SCALE = {"voicebank_demand": 0.002, "dns2020": 0.02, "chime4": 0.0031}  # >= 4 utterances per set: one per environment


def corpus_config(kind: str, root: Path, **options) -> dict:
    """A validated workflow config whose corpus is ``kind`` at ``root`` (reduced counts for the stand-ins)."""
    corpus = {"kind": kind, "count_scale": SCALE.get(kind, 1.0), kind: {"root": str(root), **options}}
    return load_config(overrides={"corpus": corpus, "sample_rate": 16000})


def build(tmp_path: Path, config: dict, name: str = "corpus") -> tuple[Path, str]:
    out = tmp_path / name
    build_recorded_corpus(config, out, log=lambda m: None)
    url = f"sqlite:///{tmp_path}/{name}.sqlite"
    mixture_db.build_db(config, url, corpus_dir=out, log=lambda m: None)
    return out, url


@pytest.fixture(scope="module")
def vbd(tmp_path_factory) -> standins.StandIn:
    return standins.voicebank_demand(tmp_path_factory.mktemp("vbd") / "VoiceBank-DEMAND", SCALE["voicebank_demand"])


def test_voicebank_demand_pairs_splits_and_counts(vbd, tmp_path):
    out, url = build(tmp_path, corpus_config("voicebank_demand", vbd.root))
    rows = read_recordings(out)
    assert len(rows) == vbd.counts["noisy_trainset_28spk_wav"] + vbd.counts["noisy_testset_wav"] == 23 + 2
    by_split = {s: [r for r in rows if r["split"] == s] for s in ("train", "val", "test")}
    assert {r["speaker"] for r in by_split["val"]} == {"p226", "p287"}  # taken out of the training set
    assert {r["speaker"] for r in by_split["train"]} == {"p228", "p230", "p231"}
    assert {r["speaker"] for r in by_split["test"]} == {"p232", "p257"}
    for r in rows:  # pairs by identical basename, clean from the clean_ folder
        ((noisy_path, _),) = r["noisy"]
        assert Path(noisy_path).name == Path(r["clean"][0]).name and r["clean"][0].startswith("clean_")
        assert r["sr"] == 48000 and r["channels"] == 1
    # the test set's log file gives noise type and SNR ("published"); the training pairs are measured
    test = by_split["test"][0]
    assert test["snr_source"] == "published" and test["condition"] in ("living", "office", "bus", "cafe")
    assert test["snr_db"] == vbd.snr[test["noisy"][0][0]]
    for r in by_split["train"]:
        assert r["snr_source"] == "measured" and abs(r["snr_db"] - vbd.snr[r["noisy"][0][0]]) < 0.3
    # the manifest holds every file's size and sha256
    manifest = read_manifest(out)
    assert len(manifest) == 2 * len(rows)
    some = sorted(manifest)[0]
    assert manifest[some] == (
        (vbd.root / some).stat().st_size,
        hashlib.sha256((vbd.root / some).read_bytes()).hexdigest(),
    )

    # DB rows: 48 kHz recordings render at the workflow's 16 kHz, the name keeps the source stem
    mix = [m for m in mixture_db.iter_mixtures(url, "test")]
    assert len(mix) == 2
    m = mix[0]
    name = mixture_filename(m, "enhanced")
    assert Path(m["recorded_clean"][0]).stem in name  # e.g. p232_001
    assert mixture_db.find_mixture(url, parse_mixture_filename(name))["mid"] == m["mid"]
    rendered = Renderer().render(m)
    clean, sr = sf.read(m["recorded_clean"][0], dtype="float32")
    noisy, _ = sf.read(m["recorded_noisy"][0][0], dtype="float32")
    assert sr == 48000 and rendered.noisy.shape == (1, m["length"]) and m["length"] == -(-len(noisy) // 3)
    np.testing.assert_allclose(rendered.target.numpy(), resample_audio(clean, 48000, 16000), atol=1e-6)
    np.testing.assert_allclose(rendered.noisy[0].numpy(), resample_audio(noisy, 48000, 16000), atol=1e-6)
    assert abs(rendered.snr_db - m["snr_db"]) < 1.0  # the file's own SNR, measured again at 16 kHz
    assert mixture_db.read_meta(url)["source"] == "recorded:voicebank_demand"


def test_digest_covers_file_checksums_not_the_corpus_location(vbd, tmp_path):
    config = corpus_config("voicebank_demand", vbd.root)
    _, url = build(tmp_path, config, "a")
    moved = tmp_path / "elsewhere" / "VBD"
    shutil.copytree(vbd.root, moved)
    _, url_moved = build(tmp_path, corpus_config("voicebank_demand", moved), "b")
    assert mixture_db.digest(url) == mixture_db.digest(url_moved)  # same files, another folder
    victim = sorted((moved / "noisy_testset_wav").glob("*.wav"))[0]
    x, sr = sf.read(victim, dtype="float32")
    sf.write(victim, x * 0.9, sr, subtype="PCM_16")
    _, url_changed = build(tmp_path, corpus_config("voicebank_demand", moved), "c")
    assert mixture_db.digest(url_changed) != mixture_db.digest(url)  # one changed file changes the digest


def _break(root: Path) -> dict[str, str]:
    """Damage a copy of the VB-DEMAND stand-in in every way the checks know; returns path -> expected words."""
    train, test = root / "noisy_trainset_28spk_wav", root / "noisy_testset_wav"
    files = sorted(train.glob("*.wav"))
    sf.write(files[0], np.full(4800, np.nan, dtype=np.float32), 48000, subtype="FLOAT")  # NaN
    sf.write(files[1], np.zeros(48000, dtype=np.float32), 48000, subtype="PCM_16")  # silent
    x, _ = sf.read(files[2], dtype="float32")
    sf.write(files[2], x, 44100, subtype="PCM_16")  # another rate than its partner
    sf.write(files[3], np.concatenate([x, x[:1000]]), 48000, subtype="PCM_16")  # 20.8 ms longer
    files[4].write_bytes(b"RIFF....not audio")  # unreadable
    (root / "clean_trainset_28spk_wav" / files[5].name).unlink()  # missing partner
    return {
        files[0].name: "non-finite",
        files[1].name: "silent",
        files[2].name: "has 44100 Hz",
        files[3].name: "ms (> 10 ms)",
        files[4].name: "unreadable audio (Format not recognised",
        files[5].name: "no clean partner",
    } | {test.name: ""}


def test_bad_files_named_in_one_error_and_nothing_written(vbd, tmp_path):
    root = tmp_path / "VBD"
    shutil.copytree(vbd.root, root)
    expected = _break(root)
    out = tmp_path / "corpus"
    with pytest.raises(CorpusLayoutError) as err:
        build_recorded_corpus(corpus_config("voicebank_demand", root), out, log=lambda m: None)
    text = str(err.value)
    for name, words in expected.items():
        if words:
            assert name in text and words in text, (name, words, text)
    assert "on_bad_file: skip" in text
    assert not out.exists() and not list(tmp_path.glob("corpus*"))  # nothing half-written


def test_skip_lists_and_leaves_out_bad_files(vbd, tmp_path):
    root = tmp_path / "VBD"
    shutil.copytree(vbd.root, root)
    expected = _break(root)
    messages: list[str] = []
    stats = build_recorded_corpus(
        load_config(
            overrides={
                "corpus": {
                    "kind": "voicebank_demand",
                    "on_bad_file": "skip",
                    "count_scale": SCALE["voicebank_demand"],
                    "voicebank_demand": {"root": str(root)},
                }
            }
        ),
        tmp_path / "corpus",
        log=messages.append,
    )
    assert stats["recordings"] == 25 - 6
    skipped = " ".join(s["path"] for s in stats["skipped"])
    for name, words in expected.items():
        if words:
            assert name in skipped
    assert any("skipped" in m for m in messages)


def test_wrong_counts_and_wrong_channels_are_fatal(vbd, tmp_path):
    root = tmp_path / "VBD"
    shutil.copytree(vbd.root, root)
    for p in sorted((root / "noisy_testset_wav").glob("*.wav")) + sorted((root / "clean_testset_wav").glob("*.wav")):
        shutil.copy(p, p.with_name("p999_001.wav"))
    with pytest.raises(CorpusLayoutError, match=r"noisy_testset_wav: 3 recordings found, the recipe expects 2"):
        build_recorded_corpus(corpus_config("voicebank_demand", root), tmp_path / "c", log=lambda m: None)
    config = corpus_config("voicebank_demand", vbd.root)
    config["corpus"]["channels"] = 4
    with pytest.raises(CorpusLayoutError, match=r"have 1 channel\(s\), the models take 4"):
        build_recorded_corpus(config, tmp_path / "d", log=lambda m: None)
    with pytest.raises(ConfigError, match=r"corpus.voicebank_demand.root"):
        build_recorded_corpus(corpus_config("voicebank_demand", tmp_path / "nowhere"), tmp_path / "e")


def test_dns2020_pairs_by_fileid_with_published_snr_and_real_recordings_without_reference(tmp_path):
    dns = standins.dns2020(tmp_path / "DNS-Challenge", SCALE["dns2020"])
    config = corpus_config("dns2020", dns.root, sets=["no_reverb", "with_reverb", "real_recordings"])
    out, url = build(tmp_path, config)
    rows = read_recordings(out)
    assert len(rows) == 3 + 3 + 6 and {r["split"] for r in rows} == {"test"}
    synthetic = [r for r in rows if r["clean"]]
    for r in synthetic:
        n = r["noisy"][0][0].rsplit("_fileid_", 1)[1]
        assert r["clean"][0].endswith(f"clean/clean_fileid_{n}") or r["clean"][0].endswith(f"clean_fileid_{n}")
        assert r["snr_source"] == "published" and r["snr_db"] == dns.snr[r["noisy"][0][0]]
    assert {r["setup"] for r in synthetic} == {"dns2020-no-reverb", "dns2020-with-reverb"}
    real = [m for m in mixture_db.iter_mixtures(url, "test") if m["recorded_clean"] is None]
    assert len(real) == 6
    rendered = Renderer().render(real[0])
    assert float(rendered.target.abs().max()) == 0.0 and np.isnan(rendered.snr_db)  # DNSMOS only
    # the same fileid in both conditions stays two rows with two unique names
    names = {mixture_filename(m, "noisy") for m in mixture_db.iter_mixtures(url)}
    assert len(names) == 12 and any("fileid_0-noreverb" in n for n in names)


def test_dns2020_missing_partner(tmp_path):
    dns = standins.dns2020(tmp_path / "DNS", SCALE["dns2020"], real=False)
    victim = dns.root / "datasets/test_set/synthetic/no_reverb/clean/clean_fileid_1.wav"
    victim.unlink()
    with pytest.raises(CorpusLayoutError, match=r"fileid_1\.wav: no clean partner clean_fileid_1\.wav"):
        build_recorded_corpus(corpus_config("dns2020", dns.root), tmp_path / "c", log=lambda m: None)


@pytest.fixture(scope="module")
def chime(tmp_path_factory) -> standins.StandIn:
    return standins.chime4(tmp_path_factory.mktemp("chime4") / "16kHz", SCALE["chime4"])


def test_chime4_channels_in_config_order_with_the_reference_clean(chime, tmp_path):
    out, url = build(tmp_path, corpus_config("chime4", chime.root))
    rows = read_recordings(out)
    assert {r["group"] for r in rows} == {"tr05_simu", "dt05_simu", "et05_simu", "et05_real"}
    assert len(rows) == sum(chime.counts.values()) == 22 + 5 + 4 + 4
    assert {r["split"] for r in rows if r["group"] == "tr05_simu"} == {"train"}
    assert {r["split"] for r in rows if r["group"].startswith("et05")} == {"test"}
    r = next(r for r in rows if r["group"] == "et05_simu")
    assert [Path(p).name.split(".")[1] for p, _ in r["noisy"]] == ["CH1", "CH3", "CH4", "CH5", "CH6"]  # CH2 dropped
    assert r["ref"] == 3 and r["clean"][0].endswith(".CH5.Clean.wav") and r["clean"][0].startswith("isolated_ext/")
    m = next(m for m in mixture_db.iter_mixtures(url, "test") if m["mid"] and m["rid"].startswith("chime4-et05"))
    rendered = Renderer().render(m)
    assert rendered.noisy.shape[0] == 5 and m["ref_mic"] == 3
    for c, (path, _) in enumerate(m["recorded_noisy"]):
        x, _ = sf.read(path, dtype="float32")
        np.testing.assert_allclose(rendered.noisy[c].numpy(), x[: m["length"]], atol=1e-6)
    real = [m for m in mixture_db.iter_mixtures(url, "test") if m["rid"].endswith("-real")]
    assert real and all(m["recorded_clean"] is None for m in real)
    assert all(m["sid"].endswith("-real") for m in real)  # simu and real share utterance names


def test_chime4_channel_numbering_matches_the_tablet_preset(chime, tmp_path):
    """Index i of the chime3_tablet room preset is CHiME-4's CH(i+1): CH2 is the mic on the back (behind the
    screen plane), and the recorded rooms carry the preset's coordinates for the channels chosen."""
    assert CHIME3_TABLET_CM[1][2] < 0 and all(CHIME3_TABLET_CM[i][2] == 0 for i in (0, 2, 3, 4, 5))
    _, url = build(tmp_path, corpus_config("chime4", chime.root, channels=[1, 2, 5], reference_channel=1))
    import sqlalchemy as sa

    with mixture_db.get_engine(url).connect() as conn:
        mics = {json.dumps(json.loads(v)) for v in conn.execute(sa.select(mixture_db.Room.mics)).scalars()}
    assert mics == {json.dumps([[round(v / 100, 4) for v in CHIME3_TABLET_CM[c - 1]] for c in (1, 2, 5)])}


def test_chime4_bad_layouts(chime, tmp_path):
    root = tmp_path / "16kHz"
    shutil.copytree(chime.root, root)
    victim = sorted((root / "isolated" / "et05_bus_simu").glob("*.CH4.wav"))[0]
    victim.unlink()
    with pytest.raises(CorpusLayoutError, match=r"CH4\.wav: channel file missing"):
        build_recorded_corpus(corpus_config("chime4", root), tmp_path / "c", log=lambda m: None)
    with pytest.raises(ConfigError, match=r"reference_channel 2 is not one of"):
        build_recorded_corpus(corpus_config("chime4", root, reference_channel=2), tmp_path / "c")
    with pytest.raises(ConfigError, match=r"tr05_real has no clean reference"):
        build_recorded_corpus(corpus_config("chime4", root, sets=["tr05_real"]), tmp_path / "c")


def test_paired_layout_librimix_multichannel(tmp_path):
    lm = standins.librimix(tmp_path / "LibriMix", channels=3)
    options = {
        "noisy": "Libri2Mix/wav16k/min/*/mix_single/*.wav",
        "clean": "Libri2Mix/wav16k/min/*/s1/*.wav",
        "key": r"(?P<split>[^/]+)/(?:mix_single|s1)/(?P<key>[^/]+)\.wav$",
        "splits": {"train": "/train-100/", "val": "/dev/", "test": "/test/"},
        "channels": [2, 0],
        "counts": {"train": 3, "val": 3, "test": 3},
        "name": "libri2mix",
    }
    out, url = build(tmp_path, corpus_config("paired", lm.root, **options))
    rows = read_recordings(out)
    assert len(rows) == 9 and {r["setup"] for r in rows} == {"libri2mix-train", "libri2mix-val", "libri2mix-test"}
    assert all([c for _, c in r["noisy"]] == [2, 0] for r in rows)
    m = next(iter(mixture_db.iter_mixtures(url, "train")))
    x, _ = sf.read(m["recorded_noisy"][0][0], dtype="float32")
    rendered = Renderer().render(m)
    np.testing.assert_allclose(rendered.noisy.numpy(), x.T[[2, 0], : m["length"]], atol=1e-6)
    options["counts"] = {"train": 4, "val": 3, "test": 3}
    with pytest.raises(CorpusLayoutError, match=r"paired-train: 3 recordings found, the recipe expects 4"):
        build_recorded_corpus(corpus_config("paired", lm.root, **options), tmp_path / "c", log=lambda m: None)


def test_chime4_close_talk_reference_for_real_recordings_scored_as_approximate(chime, tmp_path):
    """`close_talk_reference: true` makes CH0 the target of real recordings (no SNR measured against it); the scorer,
    told the reference is approximate, aligns CH0 with the reference mic and writes `*_approx` columns only."""
    from se_lib.data.corpora.stage import approximate_reference
    from se_lib.metrics.scorer import score_directory

    config = corpus_config("chime4", chime.root, sets=["et05_real"], close_talk_reference=True)
    assert approximate_reference(config["corpus"]) == "close_talk"
    assert approximate_reference(corpus_config("chime4", chime.root)["corpus"]) is None
    out, url = build(tmp_path, config)
    rows = read_recordings(out)
    assert len(rows) == 4 and all(r["clean"][0].endswith(".CH0.wav") for r in rows)
    assert {(r["snr_source"], r["snr_db"]) for r in rows} == {("none", 0.0)}  # CH0 is no clean reference
    pred = tmp_path / "pred"
    pred.mkdir()
    renderer = Renderer()
    for m in mixture_db.iter_mixtures(url, "test"):
        rendered = renderer.render(m)
        ch0, _ = sf.read(m["recorded_clean"][0], dtype="float32")
        np.testing.assert_allclose(rendered.target.numpy(), ch0[: m["length"]], atol=1e-6)  # the target is CH0
        noisy = rendered.noisy.numpy()
        sf.write(pred / mixture_filename(m, "noisy"), noisy.T, 16000, subtype="FLOAT")
        sf.write(pred / mixture_filename(m, "target"), rendered.target.numpy(), 16000, subtype="FLOAT")
        sf.write(pred / mixture_filename(m, "enhanced"), noisy[m["ref_mic"]], 16000, subtype="FLOAT")
    kw = {"ref_mic": 3, "threads": 0, "metrics": ("si_sdr", "pesq", "stoi"), "progress": False}
    df = score_directory(pred, tmp_path / "s.tsv", tmp_path / "sum.tsv", approximate="close_talk", **kw)
    approx = ["si_sdr_approx", "si_sdri_approx", "pesq_wb_approx", "stoi_approx", "estoi_approx"]
    assert np.isfinite(df[approx].astype(float)).all().all()
    assert df[["si_sdr", "si_sdri", "pesq_wb", "stoi", "estoi"]].isna().all().all()  # never mixed with true ones
    # the stand-in delays channel n by n samples (CH0 by none): CH5, the reference mic, lags CH0 by 5 samples
    np.testing.assert_allclose(df["reference_lag_ms"], 1000 * 5 / 16000)
    np.testing.assert_allclose(df["si_sdri_approx"], 0.0, atol=1e-9)  # "enhanced" = the reference mic itself
    summary = pd.read_csv(tmp_path / "sum.tsv", sep="\t").set_index("metric")
    assert summary.loc["si_sdr", "count"] == 0 and summary.loc["si_sdr_approx", "count"] == 4
    # aligned, CH0 explains the reference mic better than unaligned (a 5-sample shift costs SI-SDR)
    from se_lib.metrics.si_sdr import si_sdr

    f = sorted(pred.glob("*_target.wav"))[0]
    target, _ = sf.read(f, dtype="float32")
    mic = sf.read(str(f).replace("_target.wav", "_noisy.wav"), dtype="float32")[0][:, 3]
    row = df.set_index("mixture").loc[f.name[: -len("_target.wav")]]
    assert row["si_sdr_approx"] > si_sdr(mic, target) + 3.0


def test_chime4_close_talk_reference_needs_real_sets_only_and_the_ch0_files(chime, tmp_path):
    with pytest.raises(ConfigError, match=r"corpus\.chime4\.close_talk_reference .*et05_simu"):
        build_recorded_corpus(corpus_config("chime4", chime.root, close_talk_reference=True), tmp_path / "c")
    with pytest.raises(ConfigError, match=r"close_talk_reference"):  # the schema: a boolean
        corpus_config("chime4", chime.root, sets=["et05_real"], close_talk_reference="yes")
    root = tmp_path / "16kHz"
    shutil.copytree(chime.root, root)
    victim = sorted((root / "isolated" / "et05_caf_real").glob("*.CH0.wav"))[0]
    victim.unlink()
    config = corpus_config("chime4", root, sets=["et05_real"], close_talk_reference=True)
    with pytest.raises(CorpusLayoutError, match=r"CH0\.wav: close-talk file missing"):
        build_recorded_corpus(config, tmp_path / "c", log=lambda m: None)
    # without the option the same copy is fine: real recordings then need no CH0
    build_recorded_corpus(corpus_config("chime4", root, sets=["et05_real"]), tmp_path / "d", log=lambda m: None)

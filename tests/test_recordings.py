"""Real recordings in the workflow (config ``recordings:``; se_lib/inference/recordings.py, se_lib/report/recordings.py,
rules/enhance.smk), on recordings made here from real recorded speech (tests/incremental.py, make_recordings): the
alsa-utils voice prompts (/usr/share/sounds/alsa, 48 kHz mono, ``make sysdeps``) mixed with its recorded Noise.wav,
four channels.

Unit tests check the sets (config errors name the key), one model on a set (``se enhance``'s outputs, atomic on a
bad file) and the report section; the end-to-end test checks the two sets the session fixture ``incremental_run``
(tests/conftest.py) adds to a copy of the finished tiny workflow run (``workflow_run``), in the same Snakemake run
as the test sets of tests/test_test_sets.py, then its report: it retrains nothing.
"""

from __future__ import annotations

import base64
import io
import re
import shutil

import pandas as pd
import pytest
import soundfile as sf

from incremental import HAVE_ALSA_SOUNDS, VOICES, make_recordings, rule_runs
from se_lib.config import ConfigError, load_config
from se_lib.data.corpora.stage import network_takes as takes
from se_lib.inference.enhance import EnhanceError
from se_lib.inference.recordings import enhance_set, recording_sets, summary
from se_lib.report.recordings import write_recordings_report
from test_enhance import make_checkpoint

pytestmark = pytest.mark.skipif(not HAVE_ALSA_SOUNDS, reason="alsa-utils sounds missing: make sysdeps")


def sets_config(**sets) -> dict:
    return load_config(overrides={"recordings": sets})


# ------------------------------------------------------------------------------------------------- sets
def test_recording_sets_are_checked_naming_the_key(tmp_path):
    assert load_config()["recordings"] == {} and recording_sets(load_config()) == {}
    files = make_recordings(tmp_path / "array")
    sets = recording_sets(
        sets_config(
            a={"path": str(tmp_path / "array")},
            m={"path": str(tmp_path / "array"), "channels": [2], "recursive": False},
        )
    )
    assert sets["a"].n_channels == 4 and sets["a"].channels is None and sets["a"].inputs == (str(tmp_path / "array"),)
    assert sorted(sets["a"].files) == sorted(map(str, files))
    assert sets["m"].n_channels == 1 and len(sets["m"].files) == 2 and sets["m"].inputs == sets["m"].files
    with pytest.raises(ConfigError, match=r"'recordings\.meeting\.path': .*nope not found"):
        recording_sets(sets_config(meeting={"path": str(tmp_path / "nope")}))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match=r"'recordings\.e\.path': .*holds no"):
        recording_sets(sets_config(e={"path": str(tmp_path / "empty")}))
    with pytest.raises(ConfigError, match=r"'recordings\.a\.channels': names channel 5 but .* has 4"):
        recording_sets(sets_config(a={"path": str(tmp_path / "array"), "channels": [1, 5]}))
    make_recordings(tmp_path / "array" / "stereo", channels=2, voices=VOICES[:1])
    with pytest.raises(ConfigError, match=r"'recordings\.a': .*different channel counts.*'recordings\.a\.channels'"):
        recording_sets(sets_config(a={"path": str(tmp_path / "array")}))
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "x.wav").write_bytes(b"not audio")
    with pytest.raises(ConfigError, match=r"'recordings\.b': .*x\.wav: unreadable"):
        recording_sets(sets_config(b={"path": str(tmp_path / "bad")}))
    with pytest.raises(ConfigError, match=r"recordings"):
        load_config(overrides={"recordings": {"a": {"channels": [1]}}})  # no path
    # which models enhance a set: the same channel count, or one channel
    assert takes(1, 4) and takes(4, 4) and takes(1, 1) and not takes(4, 1) and not takes(4, 6)


# ------------------------------------------------------------------------------------------- one model
@pytest.fixture(scope="module")
def enhanced(tmp_path_factory):
    root = tmp_path_factory.mktemp("recordings")
    files = make_recordings(root / "array")
    ckpts = {a: make_checkpoint(root / f"{a}.ckpt", a) for a in ("conv_tasnet", "ic_conv_tasnet")}
    out = {a: root / "out" / a for a in ckpts}
    rows = {a: enhance_set(ckpts[a], [root / "array"], out[a], device="cpu", threads=1) for a in ckpts}
    return root, files, out, rows


def test_enhance_set_writes_every_file_at_its_rate_and_length_and_the_table(enhanced):
    root, files, out, rows = enhanced
    for model, folder in out.items():
        assert len(rows[model]) == len(files)
        for src in files:
            dst = folder / src.relative_to(root / "array").parent / f"{src.stem}_enhanced.wav"
            i, o = sf.info(src), sf.info(dst)
            assert (o.samplerate, o.frames, o.channels) == (48000, i.frames, 1), dst
        table = pd.read_csv(folder / "enhance_scores.tsv", sep="\t")
        assert len(table) == len(files) and table[["input_dnsmos_ovrl", "dnsmos_ovrl", "rtf"]].notna().all().all()
        stats = summary(rows[model])
        assert stats["n_files"] == len(files) and 1.0 < stats["mean_input_dnsmos_ovrl"] < 5.0 and stats["mean_rtf"] > 0


def test_a_bad_recording_fails_the_set_and_writes_nothing(enhanced, tmp_path):
    root, files, _, _ = enhanced
    shutil.copy(files[0], tmp_path / "good.wav")
    (tmp_path / "cut.wav").write_bytes(files[1].read_bytes()[:30])
    out = tmp_path / "out"
    with pytest.raises(EnhanceError, match="exited with status 1"):
        enhance_set(make_checkpoint(tmp_path / "m.ckpt", "conv_tasnet"), [tmp_path], out, device="cpu")
    assert not out.exists() and not list(tmp_path.glob(".out*"))


def test_report_section_table_spectrograms_and_audio(enhanced, tmp_path):
    _, files, out, _ = enhanced
    rep = tmp_path / "rep"
    table = write_recordings_report(
        "array",
        out,
        table_html_path=rep / "dnsmos.html",
        table_tsv_path=rep / "dnsmos.tsv",
        spectrograms_dir=rep / "spectrograms",
        listen_html_path=rep / "listen.html",
        n_examples=2,
        skipped={"wave_u_net": 6},
        n_channels=4,
    )
    assert list(table["system"]) == ["noisy", "conv_tasnet", "ic_conv_tasnet"]
    assert {"dnsmos_sig", "dnsmos_bak", "dnsmos_ovrl"} <= set(table.columns) and (table["n_files"] == 3).all()
    page = (rep / "dnsmos.html").read_text()
    assert "DNSMOS OVRL" in page and "wave_u_net (6 channels)" in page
    pngs = sorted((rep / "spectrograms").glob("*.png"))
    assert len(pngs) == 2 and len(pd.read_csv(rep / "spectrograms" / "examples.csv")) == 2
    listen = (rep / "listen.html").read_text()
    uris = re.findall(r'<audio controls preload="none" src="data:audio/wav;base64,([^"]+)"', listen)
    assert len(uris) == 2 * 3  # per example: the input and each model
    clip = sf.info(io.BytesIO(base64.b64decode(uris[0])))
    assert clip.samplerate == 48000 and clip.channels == 1 and clip.frames > 0.5 * 48000


# ------------------------------------------------------------------------------- the tiny workflow
@pytest.fixture(scope="module")
def recordings_run(incremental_run):
    """``(workdir, trained, recordings, their folder)`` of the shared ``incremental_run``."""
    run = incremental_run
    return run.workdir, run.trained, run.recordings, run.recordings_root


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_workflow_enhances_recording_sets_and_reports_them(recordings_run):
    workdir, trained, files, root = recordings_run
    assert {r.info.run_id for r in rule_runs(workdir, "train")} == trained  # nothing retrained
    models = {"array": {"conv_tasnet", "ic_conv_tasnet", "dprnn", "wave_u_net"}, "mono": {"conv_tasnet", "dprnn"}}
    for name, expected in models.items():
        folder = workdir / "results" / "recordings" / name
        assert {p.name for p in folder.iterdir() if p.is_dir()} == expected
        for model in expected:
            table = pd.read_csv(folder / model / "enhance_scores.tsv", sep="\t")
            assert len(table) == len(files) and table["dnsmos_ovrl"].notna().all()
            for src in files:
                dst = folder / model / src.relative_to(root).parent / f"{src.stem}_enhanced.wav"
                assert (sf.info(dst).frames, sf.info(dst).samplerate) == (sf.info(src).frames, 48000)
    runs = {r.info.run_name: r for r in rule_runs(workdir, "enhance")}
    assert set(runs) == {f"enhance[recordings={s},model={m}]" for s, ms in models.items() for m in ms}, sorted(runs)
    run = next(iter(runs.values()))
    assert run.data.tags["se.lightning_imported"] == "false" and "mean_dnsmos_ovrl" in run.data.metrics
    assert run.data.tags.get("mlflow.source.git.commit")
    mono = (workdir / "results/report/recordings/mono/dnsmos.html").read_text()
    assert "ic_conv_tasnet (4 channels)" in mono and "wave_u_net (4 channels)" in mono  # skipped, and said so
    # the report file: the listening page is embedded (a data URI), with a player per model and the input
    report = (workdir / "report.html").read_text()
    pages = [
        base64.b64decode(m).decode("utf-8")
        for m in re.findall(r"data:text/html;charset=[\w-]+;filename=listen\.html;base64,([A-Za-z0-9+/=]+)", report)
    ]
    players = sorted(p.count("<audio") for p in pages if "<audio" in p)
    n_shown = min(len(files), 3)
    assert players == [n_shown * 3, n_shown * 5], players  # mono: input + 2 models; array: input + 4 models

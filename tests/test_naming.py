"""File-name contract: compact SNRs, round trip, rejection of bad names, lookup of the DB row."""

from __future__ import annotations

import numpy as np
import pytest

from se_lib.data import db as dbm
from se_lib.data.db import find_mixture
from se_lib.data.naming import (
    KINDS,
    format_snr,
    mixture_filename,
    parse_mixture_filename,
)
from worlds import build_world


@pytest.mark.parametrize(
    "x, text",
    [
        (5, "5"),
        (5.0, "5"),
        (-2.5, "-2.5"),
        (0, "0"),
        (-0.0, "0"),
        (-0.04, "0"),
        (10.04, "10"),
        (-10.96, "-11"),
        (0.1, "0.1"),
        (-0.1, "-0.1"),
        (12.3456, "12.3"),
        (-7.96, "-8"),
    ],
)
def test_format_snr(x, text):
    assert format_snr(x) == text


def test_contract_example():
    row = {"sid": "s-001", "nid1": "n1", "nid2": "n2", "rid": "train003", "snr_db": -2.5}
    name = mixture_filename(row, "noisy")
    assert name == "sid_s-001_nids_n1_n2_rid_train003_snr_-2.5dB_noisy.wav"
    assert parse_mixture_filename("preds/model/" + name) == {**row, "kind": "noisy"}


def test_round_trip_property():
    rng = np.random.default_rng(1234)
    alphabet = np.array(list("abcXYZ0189-"))
    for _ in range(2000):

        def ident():
            return "".join(rng.choice(alphabet, size=int(rng.integers(1, 12))))

        row = {
            "sid": ident(),
            "nid1": ident(),
            "nid2": ident(),
            "rid": ident(),
            "snr_db": int(rng.integers(-400, 400)) / 10,
        }
        kind = str(rng.choice(KINDS))
        name = mixture_filename(row, kind)
        parsed = parse_mixture_filename(name)
        assert parsed == {**row, "kind": kind}, name
        assert mixture_filename(parsed, kind) == name


@pytest.mark.parametrize(
    "bad",
    [
        "sid_a_nids_b_c_rid_d_snr_5dB_clean.wav",  # unknown kind
        "sid_a_nids_b_rid_d_snr_5dB_noisy.wav",  # one noise id
        "sid_a_nids_b_x_c_rid_d_snr_5dB_noisy.wav",  # underscore inside a noise id
        "sid_a_nids_b_c_rid_d_x_snr_5dB_noisy.wav",  # underscore inside a room id
        "sid_a__b_nids_b_c_rid_d_snr_5dB_noisy.wav",  # empty token in a speech id
        "sid_a_nids_b_c_rid_d_snr_5.25dB_noisy.wav",  # two decimals
        "sid_a_nids_b_c_rid_d_snr_5dB_noisy.flac",
    ],
)
def test_rejects_bad_names(bad):
    with pytest.raises(ValueError, match="not a mixture file name"):
        parse_mixture_filename(bad)


def test_rejects_unsafe_ids():
    for sid in ("a_nids_b", "a b", "a__b", "_a", "p232.001"):
        with pytest.raises(ValueError, match="sid"):
            mixture_filename({"sid": sid, "nid1": "n", "nid2": "m", "rid": "r", "snr_db": 1}, "noisy")
    with pytest.raises(ValueError, match="nid1"):
        mixture_filename({"sid": "a", "nid1": "n_x", "nid2": "m", "rid": "r", "snr_db": 1}, "noisy")
    with pytest.raises(ValueError, match="kind"):
        mixture_filename({"sid": "a", "nid1": "n", "nid2": "m", "rid": "r", "snr_db": 1}, "clean")


def test_find_mixture_maps_every_name_to_its_row(tmp_path):
    _, url = build_world(tmp_path / "w")
    rows = list(dbm.iter_mixtures(url))
    for row in rows:
        name = mixture_filename(row, "enhanced")
        assert find_mixture(url, parse_mixture_filename(name))["mid"] == row["mid"]
    with dbm.open_session(url) as session:
        assert find_mixture(session, mixture_filename(rows[3], "target")) == rows[3]
    missing = dict(parse_mixture_filename(mixture_filename(rows[0], "noisy")), snr_db=99.0)  # outside the range
    with pytest.raises(LookupError, match="snr_db=99.0"):
        find_mixture(url, missing)


@pytest.mark.parametrize("sid", ["p232_001", "F01_22GC010A_BUS-real", "fileid_12-noreverb", "a_b_c", "nids-x_y"])
def test_recorded_speech_ids_keep_the_source_stem(sid):
    """A public corpus's file stem (underscores included) survives the name round trip."""
    row = {"sid": sid, "nid1": "living", "nid2": "none", "rid": "vbd-test", "snr_db": 7.5}
    name = mixture_filename(row, "enhanced")
    assert sid in name
    assert parse_mixture_filename(name) == {**row, "kind": "enhanced"}

"""The corpus stage for a recorded corpus (``corpus.kind``: voicebank_demand | dns2020 | chime4 | paired).

:func:`build_recorded_corpus` scans ``corpus.<kind>.root`` with the kind's adapter, checks it against the recipe
(``config/corpora/<kind>.yaml``: expected counts, scaled by ``corpus.count_scale``) and the files themselves
(:func:`se_lib.data.corpora.recordings.check_recordings`), and writes ``recordings.tsv``, ``manifest.tsv`` and
``stats.json`` into the stage's folder -- all or nothing. The corpus is read where it lies: nothing is copied,
so a 30 GB corpus costs no space in the repository or the DVC cache; the manifest (path, size, sha256 of every
file used) is what the stage's output versions, and the mixture DB digest covers it.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from se_lib.config import REPO_ROOT, ConfigError
from se_lib.data.corpora.recordings import check_recordings, expected_counts, write_recorded_corpus

RECORDED_KINDS = ("voicebank_demand", "dns2020", "chime4", "paired")
RECIPES = REPO_ROOT / "config" / "corpora"


def is_recorded(config: Mapping[str, Any]) -> bool:
    """Whether the workflow config's corpus is a recorded one (no rooms are simulated for it)."""
    return config["corpus"]["kind"] in RECORDED_KINDS


def corpus_options(corpus: Mapping[str, Any]) -> dict[str, Any]:
    """A recorded corpus's adapter options (``corpus.<kind>``) without ``root``: what it is, not where it lies."""
    return {k: v for k, v in dict(corpus.get(corpus["kind"]) or {}).items() if k != "root"}


def adapter(kind: str):
    """The adapter module of a recorded corpus kind (``scan(root, options)``). Imported by name, each one
    spelled out, so that the corpus job's code inputs (its import closure, :mod:`se_lib.code_deps`) hold them."""
    from se_lib.data.corpora import chime4, dns2020, paired, voicebank_demand

    modules = {"voicebank_demand": voicebank_demand, "dns2020": dns2020, "chime4": chime4, "paired": paired}
    if kind not in modules:
        raise ConfigError(f"config key 'corpus.kind': {kind!r} is not a recorded corpus kind {RECORDED_KINDS}")
    return modules[kind]


def recipe_counts(kind: str, recipes: Path = RECIPES) -> dict[str, int]:
    """The ``counts:`` of ``config/corpora/<kind>.yaml`` (the recipe of a published corpus)."""
    path = recipes / f"{kind}.yaml"
    try:
        recipe = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except FileNotFoundError as exc:
        raise ConfigError(f"corpus recipe not found: {path}") from exc
    counts = recipe.get("counts")
    if not isinstance(counts, dict) or not all(isinstance(v, int) and v > 0 for v in counts.values()):
        raise ConfigError(f"{path}: key 'counts' must map folders to positive integers")
    return counts


def corpus_root(config: Mapping[str, Any]) -> Path:
    """``corpus.<kind>.root`` as an existing folder (relative paths: to the repository root)."""
    kind = config["corpus"]["kind"]
    root = (config["corpus"].get(kind) or {}).get("root")
    if not root:
        raise ConfigError(f"config key 'corpus.{kind}.root' is required: the folder that holds the corpus")
    path = Path(os.path.expanduser(str(root)))
    path = path if path.is_absolute() else REPO_ROOT / path
    if not path.is_dir():
        raise ConfigError(
            f"config key 'corpus.{kind}.root': {path} is not a folder (get it: make corpus CORPUS={kind} ROOT=...)"
        )
    return path


def scan_corpus(config: Mapping[str, Any], log: Callable[[str], None] = print, threads: int = 1):
    """Scan and check the configured recorded corpus; returns the checked corpus (nothing written)."""
    c = config["corpus"]
    kind = c["kind"]
    options = corpus_options(c)
    root = corpus_root(config)
    module = adapter(kind)
    try:
        recordings, problems, found = module.scan(root, options)
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc
    counts = module.groups_of(options) if kind == "paired" else recipe_counts(kind)
    expected = {g: n for g, n in expected_counts(counts, float(c["count_scale"])).items() if g in found}
    log(f"{kind} at {root}: {len(recordings)} recordings; found {found}, expected {expected or 'no counts'}")
    return check_recordings(
        root,
        recordings,
        layout_problems=problems,
        expected=expected if kind != "paired" or expected else None,
        found=found,
        channels=c["channels"],
        on_bad_file=c["on_bad_file"],
        threads=threads,
        log=log,
        what=f"corpus {kind}",
    )


def build_recorded_corpus(
    config: Mapping[str, Any], out_dir: str | os.PathLike, log: Callable[[str], None] = print, threads: int = 1
) -> dict[str, Any]:
    """Scan, check and write the recorded corpus's stage files into ``out_dir``; returns the stats."""
    checked = scan_corpus(config, log=log, threads=threads)
    kind = config["corpus"]["kind"]
    info = {
        "kind": kind,
        "options": corpus_options(config["corpus"]),
        "count_scale": config["corpus"]["count_scale"],
        "sample_rate": config["sample_rate"],
    }
    return write_recorded_corpus(out_dir, checked, info, log=log)


def reference_mic(config: Mapping[str, Any]) -> int:
    """The reference microphone's index among the channels the models and the scorer see: CHiME-4's
    ``reference_channel`` among its chosen ``channels``; a mono recorded corpus's only channel; else the
    simulated array's ``rooms.mic_array.reference_mic``."""
    kind = config["corpus"]["kind"]
    if kind == "chime4":
        from se_lib.data.corpora.chime4 import options_of

        try:
            opts = options_of(corpus_options(config["corpus"]))
        except ValueError as exc:
            raise ConfigError(str(exc)) from exc
        return opts["channels"].index(opts["reference_channel"])
    if kind in RECORDED_KINDS:
        return 0
    return int(config["rooms"]["mic_array"]["reference_mic"])


# ------------------------------------------------------------------------------------------ test sets
TEST_SET_PREFIX = "test_"


def test_set_splits(config: Mapping[str, Any]) -> dict[str, str]:
    """``test_<name>`` -> ``name`` for every configured public test set (``test_sets``), in config order."""
    return {f"{TEST_SET_PREFIX}{name}": name for name in config["test_sets"]}


def test_set_config(config: Mapping[str, Any], name: str) -> dict[str, Any]:
    """The workflow config with the test set ``name``'s corpus as its corpus (what its corpus and DB stages
    build from); a test set must be a recorded corpus."""
    try:
        entry = config["test_sets"][name]
    except KeyError:
        raise ConfigError(f"config key 'test_sets.{name}' does not exist") from None
    if entry["corpus"]["kind"] not in RECORDED_KINDS:
        raise ConfigError(
            f"config key 'test_sets.{name}.corpus.kind': a test set is a recorded corpus {RECORDED_KINDS}, "
            f"got {entry['corpus']['kind']!r}"
        )
    return {**config, "corpus": entry["corpus"]}


def corpus_channels(corpus: Mapping[str, Any]) -> int | None:
    """The channels a corpus's recordings have, where its configuration says (``channels``, CHiME-4's choice,
    the mono corpora); None when only the files can tell (a paired corpus of multichannel files)."""
    if corpus["channels"] is not None:
        return int(corpus["channels"])
    kind = corpus["kind"]
    if kind in ("voicebank_demand", "dns2020"):
        return 1
    if kind == "chime4":
        from se_lib.data.corpora.chime4 import options_of

        return len(options_of(corpus_options(corpus))["channels"])
    if kind == "paired" and (corpus.get("paired") or {}).get("channels") is not None:
        return len(corpus["paired"]["channels"])
    return None


NET_CHANNELS_KEY = "model.init_args.net.init_args.in_channels"


def network_channels(
    config: Mapping[str, Any], model_files: Sequence[str | os.PathLike], overrides: Mapping[str, Any] | None = None
) -> int:
    """Microphones a system's network takes: ``in_channels`` of its LightningCLI config files (later files win;
    missing files are skipped), then ``train.extra_args``, then its sweep point's ``overrides``; 1 where none
    says (a network of one channel enhances the reference mic of any array)."""
    from se_lib.config import read_config_files

    cfg, _ = read_config_files([f for f in model_files if os.path.exists(f)])
    value = ((cfg.get("model") or {}).get("init_args") or {}).get("net", {}).get("init_args", {}).get("in_channels", 1)
    value = config["train"]["extra_args"].get(NET_CHANNELS_KEY, value)
    return int((overrides or {}).get(NET_CHANNELS_KEY, value))


def model_channels(
    config: Mapping[str, Any],
    model: str,
    overrides: Mapping[str, Any] | None = None,
    models_root: str | os.PathLike = "config/models",
) -> int:
    """:func:`network_channels` of model ``model`` as the workflow trains it: the shared training config, then
    the model's files in the folders of the config's overlay (:func:`se_lib.config.model_config_dirs` under
    ``models_root``), then ``overrides`` (a sweep point's). The rules (rules/common.smk) and the DVC stages
    (:mod:`se_lib.dvc_stages`) both ask here."""
    from se_lib.config import SHARED_MODEL_CONFIG, model_config_dirs

    dirs = model_config_dirs(config["train"]["overlay"], models_root)
    files = [Path(models_root) / SHARED_MODEL_CONFIG.name, *(d / f"{model}.yaml" for d in dirs)]
    return network_channels(config, files, overrides)


def network_takes(network_channels: int, channels: int) -> bool:
    """Whether a network for ``network_channels`` microphones enhances recordings of ``channels`` channels: the
    same count, or a one-channel network (it reads the reference microphone). The rule for public test sets
    (:func:`evaluated_systems`) and for the workflow's recording sets (rules/enhance.smk)."""
    return network_channels in (1, channels)


def evaluated_systems(
    config: Mapping[str, Any], split: str, systems: Sequence[str], channels_of: Callable[[str], int]
) -> list[str]:
    """The ``systems`` evaluated on ``split``: all of them, but on a test set (``test_<name>``) only those whose
    network (``channels_of(system)`` microphones) takes its channel count or one channel; where the config cannot
    tell a test set's channels, all (prediction then checks the files)."""
    name = test_set_splits(config).get(split)
    channels = None if name is None else corpus_channels(config["test_sets"][name]["corpus"])
    return [s for s in systems if channels is None or network_takes(channels_of(s), channels)]


def approximate_reference(corpus: Mapping[str, Any]) -> str | None:
    """``"close_talk"`` where a corpus's references are approximate -- CHiME-4 real recordings with
    ``corpus.chime4.close_talk_reference: true`` are scored against their close-talk mic (CH0) -- else None.
    The scorer then labels its intrusive metrics ``*_approx`` (:mod:`se_lib.metrics.scorer`)."""
    if corpus["kind"] != "chime4":
        return None
    from se_lib.data.corpora.chime4 import options_of

    try:
        opts = options_of(corpus_options(corpus))
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc
    return "close_talk" if opts["close_talk_reference"] else None

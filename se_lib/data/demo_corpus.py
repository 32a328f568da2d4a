"""The self-contained demo corpus: eSpeak NG speakers reading generated sentences, plus noises.

Speakers. A speaker is an eSpeak NG English accent (``en``, ``en-us``, ``en-gb-scotland``,
``en-gb-x-rp``, ``en-029``, ``en-us-nyc``, ``en-gb-x-gbclan``, ``en-gb-x-gbcwmd``) combined with a
standard voice variant (none, ``+f1``..``+f5``, ``+m1``..``+m8``), plus a per-speaker speaking rate,
pitch and pitch range. Speakers are chosen (seeded) to cover as many accents as possible with
alternating gender, then split train/val/test by ``corpus.demo.speakers`` -- whole speakers, so
the splits are speaker-disjoint. Babble talkers use the *named* variants (``+anika``, ``+max``,
...), which are never target speakers.

Sentences come from a small seeded grammar over a word list (thousands of distinct sentences);
each utterance is synthesised at 22.05 kHz, trimmed of leading/trailing silence, resampled to
``sample_rate`` with torchaudio, and normalised to -25 dBFS RMS (peak <= 0.99).

Every random choice derives from ``config.seed`` through
:func:`se_lib.data.splits.derive_rng`, keyed by stable names (never Python's salted ``hash``), so
the same config gives byte-identical audio.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from se_lib.data.audio import normalize_rms, resample_audio, trim_silence
from se_lib.data.noises import DEFAULT_LEVEL_DBFS, NOISE_KINDS, generate_noise, mix_babble
from se_lib.data.splits import SPLITS, allocate_splits, derive_rng

__all__ = [
    "TARGET_ACCENTS",
    "TARGET_VARIANTS",
    "BABBLE_VARIANTS",
    "DemoSpeaker",
    "make_sentence",
    "target_voice_pool",
    "babble_voice_pool",
    "plan_speakers",
    "demo_speech",
    "demo_noise",
]

TARGET_ACCENTS = (
    "en",
    "en-us",
    "en-gb-scotland",
    "en-gb-x-rp",
    "en-029",
    "en-us-nyc",
    "en-gb-x-gbclan",
    "en-gb-x-gbcwmd",
)
#: "" = the accent's default (male) voice.
TARGET_VARIANTS = ("", "f1", "f2", "f3", "f4", "f5", "m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8")
#: Named variants that sound like ordinary talkers (no robots, whisper, croak or Klatt voices);
#: reserved for babble so babble talkers never coincide with target speakers.
BABBLE_VARIANTS = (
    "Andy",
    "Annie",
    "anika",
    "aunty",
    "belinda",
    "boris",
    "ed",
    "gustave",
    "ian",
    "iven",
    "john",
    "linda",
    "max",
    "michel",
    "norbert",
    "paul",
    "quincy",
    "rob",
    "robert",
    "shelby",
    "steph",
    "travis",
    "victor",
    "zac",
)

SPEECH_LEVEL_DBFS = -25.0
_TRIM_DB = -40.0
_TRIM_MARGIN_S = 0.08

# --------------------------------------------------------------------------------- grammar ----

_NAMES = (
    "Anna",
    "Ben",
    "Clara",
    "David",
    "Emma",
    "Felix",
    "Grace",
    "Henry",
    "Iris",
    "Jack",
    "Laura",
    "Martin",
    "Nora",
    "Oliver",
    "Paula",
    "Robert",
    "Sophie",
    "Thomas",
    "Vera",
    "William",
)
_NOUNS = (
    ("garden", "gardens"),
    ("window", "windows"),
    ("teacher", "teachers"),
    ("river", "rivers"),
    ("basket", "baskets"),
    ("letter", "letters"),
    ("engine", "engines"),
    ("village", "villages"),
    ("kitchen", "kitchens"),
    ("doctor", "doctors"),
    ("bicycle", "bicycles"),
    ("picture", "pictures"),
    ("market", "markets"),
    ("blanket", "blankets"),
    ("candle", "candles"),
    ("farmer", "farmers"),
    ("ladder", "ladders"),
    ("island", "islands"),
    ("jacket", "jackets"),
    ("lemon", "lemons"),
    ("mountain", "mountains"),
    ("needle", "needles"),
    ("orange", "oranges"),
    ("pencil", "pencils"),
    ("rabbit", "rabbits"),
    ("sailor", "sailors"),
    ("table", "tables"),
    ("tower", "towers"),
    ("wagon", "wagons"),
    ("violin", "violins"),
    ("bottle", "bottles"),
    ("camera", "cameras"),
    ("dragon", "dragons"),
    ("feather", "feathers"),
    ("hammer", "hammers"),
    ("parcel", "parcels"),
    ("student", "students"),
    ("tunnel", "tunnels"),
    ("cottage", "cottages"),
    ("puppy", "puppies"),
)
_PLACES = (
    "station",
    "harbour",
    "library",
    "bakery",
    "museum",
    "forest",
    "bridge",
    "school",
    "hospital",
    "castle",
    "meadow",
    "airport",
    "theatre",
    "beach",
    "office",
    "park",
)
_ADJ = (
    "small",
    "bright",
    "quiet",
    "heavy",
    "yellow",
    "ancient",
    "gentle",
    "broken",
    "clever",
    "narrow",
    "purple",
    "warm",
    "silver",
    "lazy",
    "wooden",
    "strange",
    "tiny",
    "golden",
    "muddy",
    "friendly",
    "noisy",
    "empty",
    "careful",
    "frozen",
)
_VERBS = (
    ("carry", "carried"),
    ("paint", "painted"),
    ("clean", "cleaned"),
    ("find", "found"),
    ("open", "opened"),
    ("move", "moved"),
    ("watch", "watched"),
    ("repair", "repaired"),
    ("follow", "followed"),
    ("borrow", "borrowed"),
    ("describe", "described"),
    ("deliver", "delivered"),
    ("sell", "sold"),
    ("build", "built"),
    ("count", "counted"),
    ("draw", "drew"),
    ("hide", "hid"),
    ("lift", "lifted"),
    ("measure", "measured"),
    ("push", "pushed"),
)
_INTRANS = (
    ("arrive", "arrived"),
    ("wait", "waited"),
    ("sing", "sang"),
    ("travel", "travelled"),
    ("sleep", "slept"),
    ("laugh", "laughed"),
    ("work", "worked"),
    ("walk", "walked"),
)
_PREPS = ("near", "behind", "beside", "under", "above", "inside", "across", "towards", "beyond", "past")
_TIMES = (
    "this morning",
    "last night",
    "on Monday",
    "yesterday afternoon",
    "before dinner",
    "after the storm",
    "every Sunday",
    "at noon",
    "in the spring",
    "during the holidays",
    "on Friday evening",
    "at dawn",
)
_ADVERBS = ("slowly", "quickly", "carefully", "quietly", "happily", "suddenly", "proudly", "nearly")
_COUNTS = ("two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "twelve", "twenty")


def _pick(rng: np.random.Generator, seq: Sequence):
    return seq[int(rng.integers(len(seq)))]


def make_sentence(rng: np.random.Generator) -> str:
    """One sentence from a small English grammar (statements, questions, requests)."""
    n1, n1p = _pick(rng, _NOUNS)
    n2, _ = _pick(rng, _NOUNS)
    v, vpast = _pick(rng, _VERBS)
    iv, ivpast = _pick(rng, _INTRANS)
    a1, a2 = _pick(rng, _ADJ), _pick(rng, _ADJ)
    name, name2 = _pick(rng, _NAMES), _pick(rng, _NAMES)
    place, prep, when = _pick(rng, _PLACES), _pick(rng, _PREPS), _pick(rng, _TIMES)
    adv, count = _pick(rng, _ADVERBS), _pick(rng, _COUNTS)
    templates = (
        f"The {a1} {n1} {vpast} the {a2} {n2} {prep} the {place}.",
        f"{name} {vpast} {count} {a1} {n1p} {when}.",
        f"Did the {n1} really {v} the {a2} {n2} {when}?",
        f"Please {v} the {a1} {n1} {prep} the {place}.",
        f"{name} and {name2} {ivpast} {prep} the {place} {when}.",
        f"We {adv} {vpast} a {a1} {n1} {prep} the {a2} {place}.",
        f"Why would {name} {v} {count} {n1p} {prep} the {place}?",
        f"The {n1p} {ivpast} {adv} {when}, but the {a1} {n2} stayed {prep} the {place}.",
        f"{name} {adv} {vpast} the {n1}, and then {name2} {ivpast} {prep} the {a2} {place}.",
        f"Nobody knew why the {a1} {n1} {ivpast} {prep} the {place} {when}.",
    )
    return _pick(rng, templates)


# -------------------------------------------------------------------------------- speakers ----


@dataclass(frozen=True)
class DemoSpeaker:
    """A synthetic target speaker."""

    speaker: str  # ID, e.g. "spk03" (filename-safe)
    split: str
    voice: str  # eSpeak voice spec, e.g. "en-gb-scotland+f2"
    rate: int  # words per minute
    pitch: int  # 0..100
    pitch_range: int  # 0..100

    @property
    def description(self) -> str:
        return f"{self.voice} rate={self.rate} pitch={self.pitch} range={self.pitch_range}"


def _voice(accent: str, variant: str) -> str:
    return f"{accent}+{variant}" if variant else accent


def target_voice_pool() -> list[tuple[str, str]]:
    """All (accent, variant) combinations usable as target speakers."""
    return [(a, v) for a in TARGET_ACCENTS for v in TARGET_VARIANTS]


def babble_voice_pool() -> list[str]:
    """Voice specs for babble talkers (disjoint from :func:`target_voice_pool` by variant)."""
    from se_lib.data.espeak import list_variants

    have = set(list_variants())
    return [_voice(a, v) for a in TARGET_ACCENTS for v in BABBLE_VARIANTS if v in have]


def plan_speakers(counts: dict[str, int], seed: int) -> list[DemoSpeaker]:
    """Choose ``sum(counts)`` distinct voices (max accent coverage, alternating gender) and split them.

    Raises:
        ValueError: more speakers requested than distinct voices exist (message names the key).
    """
    total = sum(int(counts[s]) for s in SPLITS)
    pool = target_voice_pool()
    if total > len(pool):
        raise ValueError(
            f"config key 'corpus.demo.speakers': {total} speakers requested, but the demo "
            f"voice pool has only {len(pool)} distinct eSpeak NG voices"
        )
    rng = derive_rng(seed, "demo", "speakers")
    order = [pool[i] for i in rng.permutation(len(pool))]
    used_accent = {a: 0 for a in TARGET_ACCENTS}
    chosen: list[tuple[str, str]] = []
    for i in range(total):
        want_female = i % 2 == 0
        best = None
        for accent, variant in order:
            if (accent, variant) in chosen:
                continue
            female = variant.startswith("f")
            key = (used_accent[accent], female != want_female)
            if best is None or key < best[0]:
                best = (key, (accent, variant))
            if key == (min(used_accent.values()), False):
                break
        assert best is not None
        chosen.append(best[1])
        used_accent[best[1][0]] += 1
    # seeded assignment of voices to splits, then readable IDs in split order
    chosen = [chosen[i] for i in rng.permutation(len(chosen))]
    speakers: list[DemoSpeaker] = []
    k = 0
    for split in SPLITS:
        for _ in range(int(counts[split])):
            accent, variant = chosen[k]
            k += 1
            srng = derive_rng(seed, "demo", "speaker-params", _voice(accent, variant))
            speakers.append(
                DemoSpeaker(
                    speaker=f"spk{k:02d}",
                    split=split,
                    voice=_voice(accent, variant),
                    rate=int(srng.integers(140, 196)),
                    pitch=int(srng.integers(35, 66)),
                    pitch_range=int(srng.integers(30, 76)),
                )
            )
    return speakers


# -------------------------------------------------------------------------------- synthesis ----


def _synth_utterance(text: str, voice: str, rate: int, pitch: int, pitch_range: int, seed: int) -> np.ndarray:
    """Synthesise and trim at the eSpeak rate (float64)."""
    from se_lib.data.espeak import ESPEAK_SAMPLE_RATE, synthesize

    x = synthesize(text, voice, rate=rate, pitch=pitch, pitch_range=pitch_range, seed=seed)
    if x.size == 0 or not np.any(x):
        raise RuntimeError(f"eSpeak NG produced no audio for voice {voice!r} and text {text!r}")
    return trim_silence(x.astype(np.float64), ESPEAK_SAMPLE_RATE, _TRIM_DB, _TRIM_MARGIN_S)


def demo_speech(config: dict) -> Iterator[tuple[dict, np.ndarray]]:
    """Yield ``(row, audio)`` per utterance; ``row`` has sid, speaker, split, text (and voice info).

    ``audio`` is float64 mono at ``config['sample_rate']``.
    """
    from se_lib.data.espeak import ESPEAK_SAMPLE_RATE

    seed, sr = int(config["seed"]), int(config["sample_rate"])
    demo = config["corpus"]["demo"]
    n_utt = int(demo["utterances_per_speaker"])
    seen: set[str] = set()
    for spk in plan_speakers(demo["speakers"], seed):
        for j in range(n_utt):
            urng = derive_rng(seed, "demo", "utterance", spk.speaker, j)
            text = make_sentence(urng)
            while text in seen:  # every sentence of the corpus is distinct
                text = make_sentence(urng)
            seen.add(text)
            rate = int(np.clip(spk.rate + urng.integers(-8, 9), 80, 450))
            pitch = int(np.clip(spk.pitch + urng.integers(-3, 4), 0, 100))
            x = _synth_utterance(text, spk.voice, rate, pitch, spk.pitch_range, int(urng.integers(1, 2**31 - 1)))
            y = normalize_rms(resample_audio(x, ESPEAK_SAMPLE_RATE, sr).astype(np.float64), SPEECH_LEVEL_DBFS)
            row = {
                "sid": f"{spk.speaker}-u{j:03d}",
                "speaker": spk.speaker,
                "split": spk.split,
                "text": text,
                "voice": spk.voice,
            }
            yield row, y


def _babble(seconds: float, sr: int, rng: np.random.Generator, pool: Sequence[str]) -> np.ndarray:
    """Babble of 4..7 talkers from ``pool`` at ``sr`` (synthesised at 22.05 kHz, resampled once)."""
    from se_lib.data.espeak import ESPEAK_SAMPLE_RATE

    n_talkers = int(rng.integers(4, 8))
    voices = [pool[i] for i in rng.choice(len(pool), size=min(n_talkers, len(pool)), replace=False)]
    n_esp = int(round(seconds * ESPEAK_SAMPLE_RATE))
    tracks = []
    for voice in voices:
        rate, pitch, prange = int(rng.integers(140, 200)), int(rng.integers(30, 71)), int(rng.integers(30, 76))
        parts: list[np.ndarray] = []
        total = 0
        while total < n_esp * 1.25:  # a bit more than needed: mix_babble picks a random offset
            x = _synth_utterance(make_sentence(rng), voice, rate, pitch, prange, int(rng.integers(1, 2**31 - 1)))
            gap = np.zeros(int(rng.uniform(0.05, 0.4) * ESPEAK_SAMPLE_RATE))
            parts += [x, gap]
            total += x.size + gap.size
        tracks.append(np.concatenate(parts))
    mixed = mix_babble(tracks, n_esp, rng, level_dbfs=DEFAULT_LEVEL_DBFS)
    return normalize_rms(resample_audio(mixed, ESPEAK_SAMPLE_RATE, sr).astype(np.float64), DEFAULT_LEVEL_DBFS)


def demo_noise(config: dict) -> Iterator[tuple[dict, np.ndarray]]:
    """Yield ``(row, audio)`` per noise file; ``row`` has nid, kind, split.

    ``noises_per_kind`` files of ``noise_seconds`` per kind; files are split per kind by seed with
    fractions taken from the speaker counts (see :func:`allocate_splits`).
    """
    seed, sr = int(config["seed"]), int(config["sample_rate"])
    demo = config["corpus"]["demo"]
    kinds = list(demo["noise_kinds"])
    for kind in kinds:
        if kind not in NOISE_KINDS:
            raise ValueError(f"config key 'corpus.demo.noise_kinds': unknown kind {kind!r}; known: {list(NOISE_KINDS)}")
    per_kind, seconds = int(demo["noises_per_kind"]), float(demo["noise_seconds"])
    n = int(round(seconds * sr))
    spk = demo["speakers"]
    total = sum(int(spk[s]) for s in SPLITS)
    fractions = {"val": int(spk["val"]) / total, "test": int(spk["test"]) / total}
    groups = {kind: [f"{kind}-{j:02d}" for j in range(per_kind)] for kind in kinds}
    split_of = allocate_splits(groups, fractions, derive_rng(seed, "demo", "noise-split"))
    pool = babble_voice_pool() if "babble" in kinds else []
    for kind in kinds:
        for nid in groups[kind]:
            rng = derive_rng(seed, "demo", "noise", nid)
            if kind == "babble":
                y = _babble(seconds, sr, rng, pool)
                if y.size != n:  # resampling rounding: make the length exact
                    y = np.pad(y, (0, max(0, n - y.size)))[:n]
            else:
                y = generate_noise(kind, n, sr, rng)
            yield {"nid": nid, "kind": kind, "split": split_of[nid]}, y

"""DNSMOS P.835 (SIG, BAK, OVRL) and P.808 MOS, computed with the ONNX models bundled in ``speechmos``.

References:
    C. K. A. Reddy, V. Gopal, R. Cutler, "DNSMOS: A non-intrusive perceptual objective speech quality
    metric to evaluate noise suppressors", ICASSP 2021 (P.808 model).
    C. K. A. Reddy, V. Gopal, R. Cutler, "DNSMOS P.835: A non-intrusive perceptual objective speech
    quality metric to evaluate noise suppressors", ICASSP 2022 (SIG/BAK/OVRL model).

The scores reproduce ``speechmos.dnsmos.run`` (same models, same clip handling: the clip is doubled
until it is at least 9.01 s long, scored on 9.01 s windows hopped by 1 s, windows whose slice comes
out one sample short are skipped exactly as speechmos skips them, per-window polynomial mapping,
mean over windows), but the work is organised differently so that it is several times cheaper:

* The ONNX sessions are created once per process (:func:`get_dnsmos`).
* The clip after doubling is periodic, so windows whose start is equal modulo the clip length are
  identical; each distinct window is scored once and weighted by its multiplicity.
* The SIG/BAK/OVRL network is a frame-local log-power STFT followed by four full-resolution 3x3
  convolutions and a 2x2 max-pool (the "trunk", >90 % of the FLOPs) and a small head (three more
  conv/pool stages, global max-pool, dense layers). Consecutive windows overlap by 8 of their 9 s, so
  the trunk is evaluated once over the whole span the windows cover; only the ``margin`` frames next
  to each window border (where the window's own zero padding differs from its neighbourhood in the
  span: the trunk's receptive-field radius, rounded up to whole pools) are recomputed per window. The
  head then runs on each window's pooled features, one window at a time.
  When the clip had to be tiled and its length is a whole number of frame hops (10 ms), the framed
  signal is periodic, so the trunk is evaluated on one period plus the span ends only.
  The sub-models are cut from the bundled ONNX graph with ``onnx.utils.Extractor`` (no weights are
  copied or re-implemented), so every value is computed by the same ONNX Runtime kernels as in
  speechmos; results agree with speechmos to ~1e-6 (float32 summation order).
* The P.808 log-mel features are computed with numpy (same STFT, Slaney mel bank and dB scaling as
  ``librosa`` in speechmos) which avoids librosa's multi-second first-call cost in every worker.

Inputs must be 16 kHz for speechmos; :meth:`DNSMOS.score` resamples other rates
(:func:`se_lib.data.audio.resample_audio`).
Unlike speechmos, samples outside [-1, 1] are scored as they are instead of being refused.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import onnx
import onnx.utils
import scipy.fft

from se_lib.data.audio import resample_audio

__all__ = ["DNSMOS", "DnsmosScores", "get_dnsmos", "dnsmos", "log_mel_p808", "mel_filterbank", "model_dir"]

SR = 16000
INPUT_LENGTH = 9.01  # seconds per window, as in speechmos
LEN_SAMPLES = int(INPUT_LENGTH * SR)  # 144160
FRAME_HOP = 160  # samples per STFT frame hop inside the SIG/BAK/OVRL model
FRAMES_PER_WINDOW = 900
MEL_N_FFT, MEL_HOP, MEL_N_MELS = 321, 160, 120

# Polynomials mapping raw network outputs to MOS (copied from speechmos / Microsoft DNS-Challenge).
_POLY = {
    False: {
        "sig": np.poly1d([-0.08397278, 1.22083953, 0.0052439]),
        "bak": np.poly1d([-0.13166888, 1.60915514, -0.39604546]),
        "ovrl": np.poly1d([-0.06766283, 1.11546468, 0.04602535]),
    },
    True: {
        "sig": np.poly1d([-0.01019296, 0.02751166, 1.19576786, -0.24348726]),
        "bak": np.poly1d([-0.04976499, 0.44276479, -0.1644611, 0.96883132]),
        "ovrl": np.poly1d([-0.00533021, 0.005101, 1.18058466, -0.11236046]),
    },
}


@dataclass(frozen=True)
class DnsmosScores:
    """Clip-level DNSMOS scores (MOS scale, roughly 1..5)."""

    sig: float
    bak: float
    ovrl: float
    p808: float

    def as_dict(self, prefix: str = "dnsmos_") -> dict[str, float]:
        return {
            f"{prefix}sig": self.sig,
            f"{prefix}bak": self.bak,
            f"{prefix}ovrl": self.ovrl,
            f"{prefix}p808": self.p808,
        }


def model_dir() -> Path:
    """Folder of the installed ``speechmos`` package that holds the bundled ONNX models."""
    import importlib.util

    spec = importlib.util.find_spec("speechmos")
    if spec is None or spec.origin is None:
        raise ModuleNotFoundError("the 'speechmos' package (bundled DNSMOS ONNX models) is not installed")
    return Path(spec.origin).parent


def _load_model(path: Path) -> onnx.ModelProto:
    return onnx.load(str(path))


def subgraph(
    model: onnx.ModelProto,
    input_name: str,
    input_shape: list[int | str],
    output_name: str,
    output_shape: list[int | str],
) -> bytes:
    """Serialized ONNX model computing ``output_name`` from tensor ``input_name`` of ``model``'s graph.

    Cut with :class:`onnx.utils.Extractor` (nodes reachable backwards from ``output_name``, stopping at
    ``input_name``; the initializers they read). The cut tensors get float32 value infos with the given
    (partly symbolic) shapes, since the trunk runs on spans of any length; no intermediate shapes are
    declared (ONNX Runtime infers them for each run). A graph output of ``model`` keeps its own type.
    """
    produced = {out for node in model.graph.node for out in node.output}
    for name in (input_name, output_name):
        if name not in produced:
            raise ValueError(f"cannot cut DNSMOS graph: no node produces tensor {name!r}")
    # Extractor takes the cut points' types from the graph's value infos: give it exactly those two.
    source = onnx.ModelProto()
    source.CopyFrom(model)
    del source.graph.value_info[:]
    source.graph.value_info.extend(
        [
            onnx.helper.make_tensor_value_info(input_name, onnx.TensorProto.FLOAT, input_shape),
            onnx.helper.make_tensor_value_info(output_name, onnx.TensorProto.FLOAT, output_shape),
        ]
    )
    sub = onnx.utils.Extractor(source).extract_model([input_name], [output_name])
    del sub.graph.value_info[:]
    sub.ir_version = model.ir_version
    # a tensor read by the cut graph that nothing in it computes: another graph input of the full model
    read = {name for node in sub.graph.node for name in node.input if name}
    made = {name for node in sub.graph.node for name in node.output} | {t.name for t in sub.graph.initializer}
    if outside := sorted(read - made - {input_name}):
        raise ValueError(
            f"cannot cut DNSMOS graph: tensor {output_name!r} depends on {outside}, not only on {input_name!r}"
        )
    onnx.checker.check_model(sub)
    return sub.SerializeToString()


def _split_primary(model: onnx.ModelProto) -> tuple[bytes, bytes, int, int]:
    """Cut the SIG/BAK/OVRL model into ``frames -> pooled trunk features`` and ``those -> [sig, bak, ovr]``.

    Returns ``(trunk_bytes, head_bytes, halo, pool)``. The trunk starts at the framed waveform (output of
    the model's only Concat, ``[N, frames, 320]``) and ends after the first MaxPool (``pool`` x ``pool``,
    stride ``pool``), which shrinks what the head reads by ``pool**2``; ``halo`` is the receptive-field
    radius along time of the convolutions before that pool.
    """
    graph = model.graph
    concat = [n for n in graph.node if n.op_type == "Concat"]
    pools = [i for i, n in enumerate(graph.node) if n.op_type == "MaxPool"]
    if len(concat) != 1 or not pools:
        raise ValueError("unexpected DNSMOS SIG/BAK/OVRL graph layout (expected one Concat and MaxPools)")
    pool_node = graph.node[pools[0]]
    attrs = {a.name: list(a.ints) for a in pool_node.attribute if a.name in ("kernel_shape", "strides", "pads")}
    kernel, strides = attrs.get("kernel_shape", []), attrs.get("strides", [])
    if len(kernel) != 2 or kernel[0] != kernel[1] or strides != kernel or any(attrs.get("pads", [])):
        raise ValueError(f"unexpected first MaxPool in the DNSMOS model: {attrs}")
    pool = int(kernel[0])
    init = {t.name: t for t in graph.initializer}
    halo, channels = 0, 0
    for node in graph.node[: pools[0]]:
        if node.op_type == "Conv" and len(init[node.input[1]].dims) == 4:  # 2-D conv over (time, freq)
            weight = init[node.input[1]]
            halo += (int(weight.dims[2]) - 1) // 2
            channels = int(weight.dims[0])
    if FRAMES_PER_WINDOW % pool or (SR // FRAME_HOP) % pool:
        raise ValueError(f"DNSMOS pooling {pool} does not divide the window/hop frame counts")
    trunk_out = pool_node.output[0]
    pooled = ["N", channels, "P", "Q"]  # P = frames // pool, Q = frequency bins after the pool
    trunk = subgraph(model, concat[0].output[0], ["N", "F", 2 * FRAME_HOP], trunk_out, pooled)
    head = subgraph(model, trunk_out, ["N", channels, FRAMES_PER_WINDOW // pool, "Q"], graph.output[0].name, ["N", 3])
    return trunk, head, halo, pool


# --------------------------------------------------------------------------------------------------
# P.808 features: numpy re-implementation of speechmos' librosa log-mel.
# --------------------------------------------------------------------------------------------------
def _hz_to_mel(f: np.ndarray) -> np.ndarray:
    f = np.asarray(f, dtype=np.float64)
    f_sp, min_log_hz = 200.0 / 3, 1000.0
    min_log_mel, logstep = min_log_hz / f_sp, np.log(6.4) / 27.0
    mels = f / f_sp
    return np.where(f >= min_log_hz, min_log_mel + np.log(np.maximum(f, 1e-300) / min_log_hz) / logstep, mels)


def _mel_to_hz(m: np.ndarray) -> np.ndarray:
    m = np.asarray(m, dtype=np.float64)
    f_sp, min_log_hz = 200.0 / 3, 1000.0
    min_log_mel, logstep = min_log_hz / f_sp, np.log(6.4) / 27.0
    return np.where(m >= min_log_mel, min_log_hz * np.exp(logstep * (m - min_log_mel)), f_sp * m)


@lru_cache(maxsize=4)
def mel_filterbank(sr: int = SR, n_fft: int = MEL_N_FFT, n_mels: int = MEL_N_MELS) -> np.ndarray:
    """Slaney-style, Slaney-normalised mel filter bank ``[n_mels, 1 + n_fft // 2]`` (= ``librosa.filters.mel``)."""
    fftfreqs = np.fft.rfftfreq(n=n_fft, d=1.0 / sr)
    mel_f = _mel_to_hz(np.linspace(_hz_to_mel(0.0), _hz_to_mel(sr / 2.0), n_mels + 2))
    fdiff = np.diff(mel_f)
    ramps = np.subtract.outer(mel_f, fftfreqs)
    lower = -ramps[:-2] / fdiff[:-1, None]
    upper = ramps[2:] / fdiff[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper))
    weights *= (2.0 / (mel_f[2 : n_mels + 2] - mel_f[:n_mels]))[:, None]
    weights = weights.astype(np.float32)
    weights.setflags(write=False)
    return weights


@lru_cache(maxsize=1)
def _hann_periodic(n: int) -> np.ndarray:
    w = (0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(n) / n)).astype(np.float32)
    w.setflags(write=False)
    return w


def log_mel_p808(segments: np.ndarray) -> np.ndarray:
    """P.808 input features for ``segments [B, 144000]`` (16 kHz) -> ``[B, 900, 120]`` float32.

    Same as speechmos ``DNSMOS.audio_melspec``: centred (zero-padded) STFT with a periodic Hann window of
    321 samples and hop 160, power spectrum, Slaney mel bank, ``power_to_db(ref=max, top_db=80)`` per
    segment, then ``(db + 40) / 40``.
    """
    x = np.atleast_2d(np.asarray(segments, dtype=np.float32))
    pad = MEL_N_FFT // 2
    padded = np.pad(x, ((0, 0), (pad, pad)))
    frames = np.lib.stride_tricks.sliding_window_view(padded, MEL_N_FFT, axis=1)[:, ::MEL_HOP]
    spec = scipy.fft.rfft(frames * _hann_periodic(MEL_N_FFT), axis=-1, workers=1)
    power = (spec.real**2 + spec.imag**2).astype(np.float32)
    mel = power @ mel_filterbank().T  # [B, frames, n_mels]
    amin = 1e-10
    ref = np.maximum(amin, mel.max(axis=(1, 2), keepdims=True))
    db = 10.0 * np.log10(np.maximum(amin, mel)) - 10.0 * np.log10(ref)
    db = np.maximum(db, db.max(axis=(1, 2), keepdims=True) - 80.0)
    return ((db + 40.0) / 40.0).astype(np.float32)


# --------------------------------------------------------------------------------------------------
# Scorer
# --------------------------------------------------------------------------------------------------
def _windows(n_samples: int) -> list[int]:
    """Start samples of the windows speechmos scores on a (doubled) clip of ``n_samples`` samples."""
    num_hops = int(np.floor(n_samples / SR) - INPUT_LENGTH) + 1
    starts = []
    for idx in range(num_hops):
        start, end = int(idx * SR), int((idx + INPUT_LENGTH) * SR)
        if min(end, n_samples) - start < LEN_SAMPLES:  # speechmos skips windows that come out short
            continue
        starts.append(start)
    return starts


class DNSMOS:
    """Reusable DNSMOS scorer (one set of ONNX Runtime sessions per instance).

    Args:
        personalized: use the personalized DNSMOS (pDNSMOS) SIG/BAK/OVRL model, as
            ``speechmos.dnsmos.run(..., model_type="dnsmos_personalized")``.
        num_threads: ONNX Runtime intra-op threads; ``None`` keeps ONNX Runtime's default (one per
            physical core, what speechmos uses). Use 1 inside process pools.
        max_windows: windows scored per trunk span (bounds memory: about 5 MB of features per window).
        arena: ONNX Runtime's CPU memory arena and memory patterns for the trunk session, whose input
            length changes with every clip length: with them a process grows to ~1 GB over clips of
            varied length, without (default) it stays near 400 MB. The other sessions (fixed shapes, run
            one window at a time) always keep them.
    """

    def __init__(
        self, personalized: bool = False, num_threads: int | None = 1, max_windows: int = 8, arena: bool = False
    ) -> None:
        import onnxruntime as ort

        folder = model_dir()
        primary_path = folder / ("pdnsmos_models" if personalized else "dnsmos_models") / "sig_bak_ovr.onnx"
        p808_path = folder / "dnsmos_models" / "model_v8.onnx"
        for path in (primary_path, p808_path):
            if not path.is_file():
                raise FileNotFoundError(f"DNSMOS model file missing from the speechmos package: {path}")
        self.personalized = personalized
        self.max_windows = max(1, int(max_windows))
        opts = ort.SessionOptions()
        if num_threads is not None:
            opts.intra_op_num_threads = int(num_threads)
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.log_severity_level = 3
        providers = ["CPUExecutionProvider"]
        trunk, head, self.halo, self.pool = _split_primary(_load_model(primary_path))
        self.margin = -(-self.halo // self.pool) * self.pool
        trunk_opts = ort.SessionOptions()
        for name in (
            "intra_op_num_threads",
            "inter_op_num_threads",
            "execution_mode",
            "graph_optimization_level",
            "log_severity_level",
        ):
            setattr(trunk_opts, name, getattr(opts, name))
        trunk_opts.enable_cpu_mem_arena = arena  # its input length varies with every clip length
        trunk_opts.enable_mem_pattern = arena
        self._trunk = ort.InferenceSession(trunk, trunk_opts, providers=providers)
        self._head = ort.InferenceSession(head, opts, providers=providers)
        self._full = ort.InferenceSession(str(primary_path), opts, providers=providers)
        self._p808 = ort.InferenceSession(str(p808_path), opts, providers=providers)
        if self.halo < 1:
            raise ValueError(f"unexpected DNSMOS model {primary_path}: no 3x3 convolutions before pooling")
        self._poly = _POLY[personalized]

    # ---- network pieces -------------------------------------------------------------------------
    # Frame indices below are STFT frames (10 ms); the trunk returns pooled frames (``pool`` frames
    # each). ``self.margin`` is the halo rounded up to a whole number of pools, so chunk borders always
    # fall on pool boundaries and the pooled outputs line up with the full-window computation.
    @staticmethod
    def _run_fixed(session, x: np.ndarray) -> np.ndarray:
        """Run a fixed-shape session one window at a time: a single input shape keeps its memory arena
        small (batching windows gains little for these compute-bound convolutions)."""
        return session.run(None, {session.get_inputs()[0].name: x})[0]

    def _run_trunk(self, frames: np.ndarray) -> np.ndarray:
        return self._trunk.run(None, {self._trunk.get_inputs()[0].name: frames})[0]

    def _trunk_span(self, frames: np.ndarray, block: int = FRAMES_PER_WINDOW) -> np.ndarray:
        """Pooled trunk features ``[C, F / pool, Q]`` of frames ``[F, 320]`` (zero padding at both ends)."""
        n, m, p = frames.shape[0], self.margin, self.pool
        out: np.ndarray | None = None
        for b0 in range(0, n, block):
            b1 = min(n, b0 + block)
            lo, hi = max(0, b0 - m), min(n, b1 + m)
            feats = self._run_trunk(np.ascontiguousarray(frames[None, lo:hi]))[0]
            if out is None:
                out = np.empty((feats.shape[0], n // p, feats.shape[2]), dtype=np.float32)
            out[:, b0 // p : b1 // p] = feats[:, (b0 - lo) // p : (b1 - lo) // p]
        assert out is not None
        return out

    def _span_features(self, frames: np.ndarray, period: int | None) -> tuple[np.ndarray, np.ndarray]:
        """Pooled trunk features of a span as ``(base [C, M, Q], index [F / pool])``.

        Pooled frame ``q`` of the span is ``base[:, index[q]]``. When the framed signal is periodic with
        ``period`` frames (a tiled clip whose length is a whole number of hops), the features away from
        the span ends are periodic too, so one period plus the two ends are computed; otherwise all.
        """
        n, m, p = frames.shape[0], self.margin, self.pool
        if period is not None:
            period = period * p // math.gcd(period, p)  # a whole number of pools
        if period is None or 2 * m + period >= n:
            return self._trunk_span(frames), np.arange(n // p)
        left = self._trunk_span(frames[: 2 * m + period])[:, : (m + period) // p]  # exact: frames [0, m + P)
        right = self._run_trunk(np.ascontiguousarray(frames[None, n - 3 * m :]))[0][:, -(m // p) :]  # [n - m, n)
        q = np.arange(n // p)
        mp, pp, nq = m // p, period // p, n // p
        index = np.where(q < mp + pp, q, mp + (q - mp) % pp)
        index = np.where(q >= nq - mp, mp + pp + (q - (nq - mp)), index)
        return np.concatenate([left, right], axis=1), index

    def _primary_raw(self, span: np.ndarray, offsets: list[int], period: int | None) -> np.ndarray:
        """Raw [sig, bak, ovr] for windows starting at ``offsets`` (samples, multiples of 1 s) in ``span``."""
        n_frames = (len(span) - 2 * FRAME_HOP) // FRAME_HOP + 1
        if len(offsets) == 1 and (period is None or 2 * self.margin + period >= n_frames):
            # a lone window with nothing to share: the uncut model is the cheapest way (same kernels)
            x = np.ascontiguousarray(span[None, offsets[0] : offsets[0] + LEN_SAMPLES], dtype=np.float32)
            return self._full.run(None, {self._full.get_inputs()[0].name: x})[0]
        frames = np.lib.stride_tricks.sliding_window_view(span, 2 * FRAME_HOP)[::FRAME_HOP][:n_frames]
        frames = np.ascontiguousarray(frames, dtype=np.float32)
        base, index = self._span_features(frames, period)
        m, p, w = self.margin, self.pool, 3 * self.margin
        mp, wq = m // p, FRAMES_PER_WINDOW // p
        # a window's own borders inside the span: recompute its margin with its own zero padding
        edge_inputs, edge_slots = [], []
        for i, off in enumerate(offsets):
            f0 = off // FRAME_HOP
            if f0 > 0:
                edge_inputs.append(frames[f0 : f0 + w])
                edge_slots.append((i, True))
            if f0 + FRAMES_PER_WINDOW < n_frames:
                edge_inputs.append(frames[f0 + FRAMES_PER_WINDOW - w : f0 + FRAMES_PER_WINDOW])
                edge_slots.append((i, False))
        edges = self._run_trunk(np.stack(edge_inputs)) if edge_inputs else None
        feats = np.empty((len(offsets), base.shape[0], wq, base.shape[2]), dtype=np.float32)
        for i, off in enumerate(offsets):
            q0 = off // FRAME_HOP // p
            np.take(base, index[q0 : q0 + wq], axis=1, out=feats[i])
        for e, (i, at_start) in enumerate(edge_slots):
            if at_start:
                feats[i, :, :mp] = edges[e, :, :mp]
            else:
                feats[i, :, -mp:] = edges[e, :, -mp:]
        return np.concatenate([self._run_fixed(self._head, feats[i : i + 1]) for i in range(len(feats))])

    # ---- public API -------------------------------------------------------------------------------
    def score(self, audio: np.ndarray, sample_rate: int = SR) -> DnsmosScores:
        """DNSMOS of one mono clip (any rate; resampled to 16 kHz)."""
        x = np.asarray(audio)
        if x.ndim != 1:
            raise ValueError(f"DNSMOS expects a mono 1-D signal, got shape {x.shape}")
        if x.size == 0:
            raise ValueError("DNSMOS got an empty signal")
        if not np.isfinite(x).all():
            raise ValueError("DNSMOS got non-finite samples (NaN/Inf)")
        x = resample_audio(x.astype(np.float32), int(sample_rate), SR)
        length = len(x)
        n = length
        while n < LEN_SAMPLES:
            n *= 2
        starts = _windows(n)
        # windows with equal start modulo the clip length are identical (the doubled clip is periodic)
        counts: dict[int, int] = {}
        first_start: dict[int, int] = {}
        for s in starts:
            key = s % length
            counts[key] = counts.get(key, 0) + 1
            first_start.setdefault(key, s)
        unique = sorted(first_start.values())
        weights = np.array([counts[s % length] for s in unique], dtype=np.float64)
        need = unique[-1] + LEN_SAMPLES
        rep = np.tile(x, -(-need // length))[:need] if need > length else x[:need]

        period = length // FRAME_HOP if length % FRAME_HOP == 0 and need > length else None
        raw = np.empty((len(unique), 3), dtype=np.float32)
        p808 = np.empty(len(unique), dtype=np.float32)
        for g0 in range(0, len(unique), self.max_windows):
            group = unique[g0 : g0 + self.max_windows]
            span = rep[group[0] : group[-1] + LEN_SAMPLES]
            raw[g0 : g0 + len(group)] = self._primary_raw(span, [s - group[0] for s in group], period)
            segs = np.stack([rep[s : s + LEN_SAMPLES - FRAME_HOP] for s in group])
            mel = log_mel_p808(segs)
            p808[g0 : g0 + len(group)] = [self._run_fixed(self._p808, mel[i : i + 1])[0, 0] for i in range(len(group))]

        def wmean(values: np.ndarray) -> float:
            return float(np.sum(weights * values) / np.sum(weights))

        return DnsmosScores(
            sig=wmean(self._poly["sig"](raw[:, 0])),
            bak=wmean(self._poly["bak"](raw[:, 1])),
            ovrl=wmean(self._poly["ovrl"](raw[:, 2])),
            p808=wmean(p808.astype(np.float64)),
        )

    __call__ = score


_INSTANCES: dict[tuple[bool, int | None], DNSMOS] = {}


def get_dnsmos(personalized: bool = False, num_threads: int | None = 1) -> DNSMOS:
    """Process-wide cached :class:`DNSMOS` (models are loaded once per process and setting)."""
    key = (personalized, num_threads)
    if key not in _INSTANCES:
        _INSTANCES[key] = DNSMOS(personalized=personalized, num_threads=num_threads)
    return _INSTANCES[key]


def dnsmos(
    audio: np.ndarray, sample_rate: int = SR, *, personalized: bool = False, num_threads: int | None = 1
) -> DnsmosScores:
    """DNSMOS of one clip using the cached scorer of this process."""
    return get_dnsmos(personalized, num_threads).score(audio, sample_rate)

"""``se enhance``: a trained network applied to your own recordings (docs/enhance.md).

::

    se enhance --model results/models/conv_tasnet/best.ckpt recordings/ --output-dir enhanced/
    python -m se_lib.inference.enhance --model best.ckpt meeting.flac --channels 1,3,4,5 -o out/

What it does, per recording (wav/flac/ogg, any rate, length and channel count the model accepts):

1. the channels: a network for ``C`` microphones (``in_channels == C > 1``) takes ``C`` channels, by
   default all of the file's, or those ``--channels`` picks (1-based, in the order the network expects
   its microphones; its ``ref_mic`` indexes that list); a single-channel network reads the reference
   microphone ``ref_mic`` of the file (or of the ``--channels`` list; one channel named there is used as
   it is) -- :func:`plan_channels`;
2. the samples, streamed in overlapping chunks (``--chunk-seconds``, ``--overlap-seconds``): the fewest
   chunks of at most about ``--chunk-seconds`` that cover the file, all of one length, spread from its
   start to its end, each starting on the network's grid (encoder hop, DPRNN chunk hop, Wave-U-Net
   decimation: :func:`network_grid`) so that a chunk is framed exactly as in the whole file
   (:func:`chunk_layout`); each chunk is resampled to the network's rate (windowed sinc,
   :func:`se_lib.data.audio.resample_audio`), enhanced, resampled back to the file's rate and
   overlap-added with a raised-cosine crossfade that sums to one (:func:`chunk_weights`). The output has
   exactly the input's length, and memory does not grow with the length of the recording;
3. the enhanced reference microphone, written at the input's sample rate to
   ``<output-dir>/<path relative to the input folder without suffix>_enhanced.wav`` atomically;
4. a row of ``<output-dir>/enhance_scores.tsv``: duration, channels, rates, real-time factor, DNSMOS of
   input (reference microphone) and output, and SI-SDR/PESQ/STOI when ``--reference`` has the clean file.

Every input is checked before anything is written (the check pass: headers, channel counts, a decode of
the samples for NaN/Inf and truncation); bad inputs are named in one message, and by default
(``--on-bad-file fail``) nothing is enhanced. Nothing here imports Lightning or matplotlib; MLflow only for a
model URI.

The model is a ``se fit`` checkpoint (:func:`se_lib.inference.checkpoint.load_network`, plain torch,
``weights_only=True``) or an MLflow model URI (``runs:/<run_id>/model``, ``models:/se-dprnn/3``,
``models:/se-dprnn@champion``; :func:`resolve_model`), whose checkpoint is loaded the same way.
"""

from __future__ import annotations

import argparse
import csv
import io
import logging
import math
import os
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from se_lib.data.audio import AudioError, AudioInfo, audio_info, read_audio, resample_audio
from se_lib.inference.audio_io import (
    AUDIO_SUFFIXES,
    SCORES_FILE,
    BlockReader,
    InputFile,
    find_inputs,
    open_wav_writer,
    probe_audio,
)
from se_lib.inference.checkpoint import (
    CheckpointError,
    LoadedNetwork,
    checkpoint_of,
    download_model,
    load_network,
    torch_device,
)
from se_lib.io import write_text_atomic

__all__ = [
    "DEFAULT_CHUNK_SECONDS",
    "DEFAULT_OVERLAP_SECONDS",
    "SCORES_FILE",
    "ChannelError",
    "ChannelPlan",
    "EnhanceError",
    "Enhancer",
    "chunk_layout",
    "chunk_weights",
    "network_grid",
    "main",
    "output_path",
    "parse_channels",
    "plan_channels",
    "resolve_device",
    "resolve_model",
]

log = logging.getLogger(__name__)

#: Defaults of ``--chunk-seconds`` / ``--overlap-seconds`` (docs/enhance.md: chunked output agrees with
#: whole-file inference to >= 30 dB SNR for every architecture; tests/test_enhance.py).
DEFAULT_CHUNK_SECONDS = 20.0
DEFAULT_OVERLAP_SECONDS = 1.0
#: DNSMOS of a long recording: the mean over consecutive blocks of this many seconds (duration-weighted);
#: a recording shorter than twice this is scored whole, exactly as the batch scorer scores a file.
DNSMOS_BLOCK_SECONDS = 30.0
OUTPUT_SUFFIX = "_enhanced.wav"
SUBTYPES = ("FLOAT", "PCM_16", "PCM_24")
MODEL_URI_SCHEMES = ("runs:/", "models:/")


class EnhanceError(RuntimeError):
    """A problem with the command as a whole (model, options, output names), not with one input file."""


class ChannelError(ValueError):
    """The channels of a file (or of ``--channels``) do not fit what the network takes."""


# --------------------------------------------------------------------------------------------- model
def resolve_model(uri: str | os.PathLike, device: str | torch.device = "cpu") -> LoadedNetwork:
    """The network that ``--model`` names, on ``device``: a ``se fit`` checkpoint file
    (:func:`~se_lib.inference.checkpoint.load_network`), or an MLflow model URI -- a run's model
    (``runs:/<run_id>/model``), a registered version (``models:/se-dprnn/3``) or alias
    (``models:/se-dprnn@champion``) -- from the tracking store of ``$MLFLOW_TRACKING_URI`` (default
    ``sqlite:///mlflow.db``): downloaded, and its checkpoint loaded the same way
    (:func:`se_lib.inference.pyfunc.checkpoint_of`). MLflow is imported only for a URI.
    """
    text = os.fspath(uri)
    if text.startswith(MODEL_URI_SCHEMES):
        text = _download_model(text)
    elif "://" in text:
        raise EnhanceError(f"--model {text}: not a checkpoint path (URI schemes other than runs:/ and models:/)")
    try:
        return load_network(text, map_location=device)
    except (FileNotFoundError, CheckpointError) as exc:
        raise EnhanceError(f"--model: {exc}") from exc


def _download_model(uri: str) -> str:
    """The local checkpoint of MLflow model ``uri`` (downloaded into MLflow's cache folder)."""
    from se_lib.config import tracking_uri

    store = tracking_uri(None)
    try:
        return str(checkpoint_of(download_model(uri, store)))
    except Exception as exc:  # MlflowException (no such model/version/alias/run), a folder without a model
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise EnhanceError(f"--model {uri}: {first} (tracking store {store}; set MLFLOW_TRACKING_URI)") from exc


def resolve_device(name: str = "auto") -> torch.device:
    """``--device``: ``auto`` (the first CUDA GPU if one is visible, else the CPU) or a torch device name
    (``cpu``, ``cuda``, ``cuda:1``, ``mps``): :func:`se_lib.inference.checkpoint.torch_device`."""
    try:
        return torch_device(name)
    except ValueError as exc:
        raise EnhanceError(f"--device {exc}") from None


# ------------------------------------------------------------------------------------------ channels
def parse_channels(text: str) -> list[int]:
    """``"1,3,4"`` (1-based channel numbers, in order) -> ``[0, 2, 3]``; ``ValueError`` when malformed."""
    items = [s.strip() for s in str(text).split(",")]
    try:
        numbers = [int(s) for s in items]
    except ValueError:
        raise ValueError(
            f"--channels {text!r}: expected 1-based channel numbers separated by commas, e.g. 1,3,4"
        ) from None
    if any(n < 1 for n in numbers):
        raise ValueError(f"--channels {text!r}: channel numbers start at 1")
    if len(set(numbers)) != len(numbers):
        raise ValueError(f"--channels {text!r}: a channel is named twice")
    return [n - 1 for n in numbers]


@dataclass(frozen=True)
class ChannelPlan:
    """Which channels of a file the network reads.

    Attributes:
        file_channels: channels of the file.
        read: 0-based file channels fed to the network, in the network's microphone order.
        reference: 0-based file channel the output enhances (the input's reference microphone).
    """

    file_channels: int
    read: tuple[int, ...]
    reference: int

    @property
    def reference_row(self) -> int:
        """Index of :attr:`reference` in :attr:`read`."""
        return self.read.index(self.reference)

    def describe(self) -> str:
        return ",".join(str(c + 1) for c in self.read)


def _model_takes(in_channels: int | None, ref_mic: int) -> str:
    if in_channels is None:
        return "any number of channels"
    if in_channels == 1:
        return f"1 channel, the reference microphone ref_mic={ref_mic} (channel {ref_mic + 1})"
    return f"{in_channels} channels"


def check_channel_option(channels: Sequence[int] | None, in_channels: int | None, ref_mic: int) -> None:
    """``ChannelError`` when ``--channels`` (0-based) cannot fit the network, whatever the file."""
    if channels is None or in_channels is None:
        return
    picked = len(channels)
    if in_channels > 1 and picked != in_channels:
        raise ChannelError(f"--channels picks {picked} channel(s); the model takes {in_channels}")
    if in_channels == 1 and picked > 1 and picked <= ref_mic:
        raise ChannelError(
            f"--channels picks {picked} channels; the single-channel model reads its reference microphone "
            f"ref_mic={ref_mic} of them (position {ref_mic + 1}); name one channel to use it alone"
        )


def plan_channels(
    file_channels: int, in_channels: int | None, ref_mic: int, channels: Sequence[int] | None = None
) -> ChannelPlan:
    """The channels a network (``in_channels``, ``ref_mic``) reads from a file with ``file_channels``.

    ``channels`` (0-based, from ``--channels``) picks and orders the file's channels; without it all of
    them are used. A network for ``C > 1`` microphones needs exactly ``C``; a single-channel network reads
    position ``ref_mic`` of them (a single channel named in ``channels`` is used as it is). Raises
    :class:`ChannelError` naming the file's channel count and what the model takes.
    """
    if channels is not None:
        if beyond := [c + 1 for c in channels if c >= file_channels]:
            raise ChannelError(
                f"has {file_channels} channel(s); --channels names channel {', '.join(map(str, beyond))}"
            )
        picked = tuple(channels)
    else:
        picked = tuple(range(file_channels))
    hint = "" if channels is not None else "; pick them with --channels (1-based), e.g. --channels 1,2,3,4"
    if in_channels is None:
        ref = picked[ref_mic] if ref_mic < len(picked) else None
        if ref is None:
            raise ChannelError(f"has {len(picked)} channel(s) for a model with ref_mic={ref_mic}")
        return ChannelPlan(file_channels, picked, ref)
    if in_channels == 1:
        if channels is not None and len(picked) == 1:
            return ChannelPlan(file_channels, picked, picked[0])
        if ref_mic >= len(picked):
            what = "picks" if channels is not None else "has"
            raise ChannelError(
                f"{what} {len(picked)} channel(s); the model takes {_model_takes(in_channels, ref_mic)}"
                + ("" if channels is not None else "; name the channel to use with --channels N")
            )
        return ChannelPlan(file_channels, (picked[ref_mic],), picked[ref_mic])
    if len(picked) != in_channels:
        what = "--channels picks" if channels is not None else "has"
        raise ChannelError(f"{what} {len(picked)} channel(s); the model takes {in_channels} channels{hint}")
    return ChannelPlan(file_channels, picked, picked[ref_mic])


# ------------------------------------------------------------------------------------------ chunking
def network_grid(net: torch.nn.Module) -> int:
    """Samples (at the network's rate) by which its input can be shifted without changing how the network
    cuts it up: chunk starts are multiples of it, so a chunk is framed exactly like the same samples of
    the whole recording.

    TasNet family: the encoder's hop ``L // 2``; DPRNN: times its chunk hop ``K // 2`` (frames); Wave-U-Net:
    ``2 ** num_layers`` (its decimations); another network may declare ``input_grid`` (else 1).
    """
    from se_lib.models.base import EncoderMaskerDecoder
    from se_lib.models.dprnn import DPRNN
    from se_lib.models.wave_u_net import WaveUNet

    declared = getattr(net, "input_grid", None)
    if declared:
        return int(declared)
    if isinstance(net, WaveUNet):
        return 2**net.num_layers
    grid = 1
    if isinstance(net, EncoderMaskerDecoder):
        grid = int(net.encoder.stride)
    if isinstance(net, DPRNN):
        grid *= max(1, net.K // 2)
    return grid


def chunk_layout(n: int, chunk: int, overlap: int, step: int = 1) -> tuple[int, list[int]]:
    """``(length, starts)``: the fewest chunks of about ``chunk`` frames that cover ``n`` frames with at least
    ``overlap`` frames shared by neighbours, all of one ``length`` (so that they batch), spread evenly from
    frame 0 to the end (the last chunk ends at ``n``), starting at multiples of ``step``. One chunk
    ``[0, n)`` when ``n <= chunk``.

    With ``K`` chunks the network computes about ``n + (K - 1) * overlap`` frames in all: the chunk length
    shrinks from ``chunk`` just enough that no chunk is wasted on a short tail (and grows by less than
    ``step`` for the alignment). ``overlap`` may be at most a third of ``chunk`` (neighbouring crossfades
    never meet). ``ValueError`` if ``step`` is too coarse for ``chunk`` and ``overlap``.
    """
    if chunk < 1 or step < 1 or not 0 <= overlap <= chunk // 3:
        raise ValueError(f"chunk {chunk} and overlap {overlap}: need chunk >= 1 and 0 <= overlap <= chunk / 3")
    if n <= chunk:
        return max(n, 1), [0]
    # plan for overlaps of overlap + step - 1: starts rounded down to the grid then still share >= overlap
    planned = overlap + step - 1
    first = -(-(n - planned) // max(1, chunk - planned))
    for count in range(max(2, first), max(2, first) + 4):
        length = -(-(n + (count - 1) * planned) // count)
        length += (n - length) % step  # the last start, n - length, on the grid
        if length >= n:
            return n, [0]
        units = (n - length) // step
        starts = [step * (i * units // (count - 1)) for i in range(count)]
        hops = np.diff(starts)
        if hops.min() >= overlap and hops.max() <= length - overlap:
            return length, starts
    raise ValueError(
        f"chunks of {chunk} frames with {overlap} overlapping cannot start on the network's grid of {step} frames; "
        "use longer chunks"
    )


def _ramp(overlap: int) -> np.ndarray:
    """Raised-cosine fade-in ``sin^2``; ``ramp + ramp[::-1] == 1``."""
    return np.sin(0.5 * np.pi * (np.arange(overlap) + 0.5) / overlap) ** 2 if overlap else np.zeros(0)


def chunk_weights(starts: Sequence[int], k: int, chunk: int, overlap: int) -> np.ndarray:
    """Overlap-add weights of chunk ``k`` (``chunk`` frames from ``starts[k]``).

    Chunk ``k + 1`` fades in over the last ``overlap`` frames of chunk ``k`` while chunk ``k`` fades out
    (raised cosine: the two weights sum to one); frames of chunk ``k + 1`` before that crossfade weigh
    zero (neighbours may share a frame or so more than ``overlap``, see :func:`chunk_layout`).
    Over the whole file the weights sum to one at every frame.
    """
    w = np.ones(chunk)
    ramp = _ramp(overlap)
    if k > 0:
        prev_end = starts[k - 1] + chunk - starts[k]  # the previous chunk's end, in this chunk's frames
        w[: prev_end - overlap] = 0.0
        w[prev_end - overlap : prev_end] = ramp
    if k < len(starts) - 1:
        w[chunk - overlap :] *= 1.0 - ramp
    return w


# ------------------------------------------------------------------------------------------ enhancer
@dataclass
class Timing:
    """Seconds spent on one recording: ``network`` (resampling + forward passes), ``total`` (everything but
    the scores: reading, network, writing)."""

    network: float = 0.0
    total: float = 0.0


class Enhancer:
    """A loaded network applied to recordings in overlapping chunks.

    Args:
        loaded: the network (:func:`resolve_model`), already on ``device``.
        device: where the forward passes run.
        chunk_seconds: chunk length (``0``/``None``: the whole recording in one pass, memory then grows
            with the length).
        overlap_seconds: frames shared by neighbouring chunks (the crossfade), at most a third of a chunk.
        batch_seconds: audio seconds per forward pass: ``floor(batch_seconds / chunk_seconds)`` chunks of
            a recording go through the network together (at least one; default one).
        channels: ``--channels``, 0-based (None: all of a file's channels).
    """

    def __init__(
        self,
        loaded: LoadedNetwork,
        *,
        device: str | torch.device = "cpu",
        chunk_seconds: float | None = DEFAULT_CHUNK_SECONDS,
        overlap_seconds: float = DEFAULT_OVERLAP_SECONDS,
        batch_seconds: float | None = None,
        channels: Sequence[int] | None = None,
    ) -> None:
        self.loaded = loaded
        self.device = torch.device(device)
        self.net = loaded.net.to(self.device).eval()
        self.sample_rate = int(loaded.sample_rate)
        self.in_channels = loaded.in_channels
        self.ref_mic = loaded.ref_mic
        self.grid = network_grid(self.net)
        self.chunk_seconds = float(chunk_seconds) if chunk_seconds else None
        self.overlap_seconds = float(overlap_seconds) if self.chunk_seconds else 0.0
        if self.chunk_seconds is not None and not 0.0 <= self.overlap_seconds <= self.chunk_seconds / 3:
            raise EnhanceError(
                f"--overlap-seconds {overlap_seconds:g}: must be between 0 and a third of --chunk-seconds "
                f"({self.chunk_seconds:g})"
            )
        if batch_seconds is not None and batch_seconds <= 0:
            raise EnhanceError(f"--batch-seconds {batch_seconds:g}: must be positive")
        self.batch_seconds = batch_seconds
        self.channels = list(channels) if channels is not None else None
        try:
            check_channel_option(self.channels, self.in_channels, self.ref_mic)
        except ChannelError as exc:
            raise EnhanceError(str(exc)) from exc

    # ---- planning
    def plan(self, file_channels: int) -> ChannelPlan:
        return plan_channels(file_channels, self.in_channels, self.ref_mic, self.channels)

    def takes(self) -> str:
        """What the network takes, in words (error messages, the start-up line)."""
        return _model_takes(self.in_channels, self.ref_mic)

    def frames(self, n: int, sample_rate: int) -> tuple[int, int]:
        """``(chunk, overlap)`` in frames of a recording of ``n`` frames at ``sample_rate``."""
        if self.chunk_seconds is None:
            return max(n, 1), 0
        chunk = max(1, round(self.chunk_seconds * sample_rate))
        overlap = min(round(self.overlap_seconds * sample_rate), chunk // 3)
        if n <= chunk:
            return max(n, 1), 0
        return chunk, overlap

    def step(self, sample_rate: int) -> int:
        """Chunk starts (frames at ``sample_rate``) that fall on the network's grid (:func:`network_grid`)
        after resampling, and on the same resampling phase as the whole recording."""
        g = math.gcd(int(sample_rate), self.sample_rate)
        return int(sample_rate) // g * (self.grid // math.gcd(self.grid, self.sample_rate // g))

    def layout(self, n: int, sample_rate: int) -> tuple[int, list[int]]:
        """:func:`chunk_layout` of a recording of ``n`` frames at ``sample_rate``; :class:`EnhanceError` when
        the chunks are too short for the network's grid at that rate."""
        chunk, overlap = self.frames(n, sample_rate)
        try:
            return chunk_layout(n, chunk, overlap, self.step(sample_rate))
        except ValueError as exc:
            raise EnhanceError(f"--chunk-seconds {self.chunk_seconds or 0:g} at {sample_rate} Hz: {exc}") from exc

    def chunks_per_pass(self) -> int:
        if self.batch_seconds is None or self.chunk_seconds is None:
            return 1
        return max(1, int(self.batch_seconds // self.chunk_seconds))

    def warm_up(self, sample_rate: int) -> None:
        """Build the resampling kernels between ``sample_rate`` and the network's (imports torchaudio once),
        so that the real-time factor of the first recording at a new rate does not count them."""
        if sample_rate != self.sample_rate:
            resample_audio(
                resample_audio(np.zeros(64, np.float32), sample_rate, self.sample_rate), self.sample_rate, sample_rate
            )

    # ---- the network on a batch of equal-length chunks
    def infer(self, batch: np.ndarray, sample_rate: int, timing: Timing | None = None) -> np.ndarray:
        """``[B, len(plan.read), T]`` float32 chunks at ``sample_rate`` -> enhanced ``[B, T]`` float32 at
        ``sample_rate`` (resampled to the network's rate and back)."""
        t0 = time.perf_counter()
        length = batch.shape[-1]
        x = np.ascontiguousarray(batch, dtype=np.float32)
        if sample_rate != self.sample_rate:
            x = resample_audio(x, sample_rate, self.sample_rate)
        t = torch.from_numpy(x).to(self.device)
        if self.in_channels == 1 and self.ref_mic > 0:  # the network picks channel ref_mic: give it a view
            t = t.expand(-1, self.ref_mic + 1, -1)
        with torch.inference_mode():
            y = self.net(t)
        y = y.detach().float().cpu().numpy()
        if sample_rate != self.sample_rate:
            y = resample_audio(y, self.sample_rate, sample_rate)
        if y.shape[-1] < length:  # cannot happen with torchaudio's ceil lengths; keep the contract anyway
            y = np.pad(y, ((0, 0), (0, length - y.shape[-1])))
        if timing is not None:
            timing.network += time.perf_counter() - t0
        return np.ascontiguousarray(y[:, :length], dtype=np.float32)

    # ---- streaming overlap-add
    def stream(
        self,
        read: Callable[[int, int], np.ndarray],
        n: int,
        sample_rate: int,
        *,
        on_input: Callable[[np.ndarray], None] | None = None,
        timing: Timing | None = None,
    ) -> Iterator[np.ndarray]:
        """Enhanced frames of a recording of ``n`` frames, as consecutive float32 blocks (exactly ``n``
        frames in all).

        ``read(start, stop)`` returns ``[len(plan.read), stop - start]`` frames (starts never decrease);
        ``on_input`` gets every frame read once, in order, as ``[len(plan.read), m]`` blocks.
        """
        chunk, overlap = self.frames(n, sample_rate)
        chunk, starts = self.layout(n, sample_rate)
        per_pass = self.chunks_per_pass()
        acc = np.zeros(0)  # float64 sums of weighted chunk outputs, from frame acc_start
        acc_start = 0
        fed = 0
        for b0 in range(0, len(starts), per_pass):
            ks = range(b0, min(len(starts), b0 + per_pass))
            blocks = []
            for k in ks:
                s = starts[k]
                block = read(s, s + chunk)
                if block.shape[-1] != min(chunk, n - s):
                    raise RuntimeError(f"read({s}, {s + chunk}) returned {block.shape[-1]} frames")
                if on_input is not None and s + block.shape[-1] > fed:
                    on_input(block[:, fed - s :])
                    fed = s + block.shape[-1]
                blocks.append(block)
            outs = self.infer(np.stack(blocks), sample_rate, timing)
            for k, y in zip(ks, outs, strict=True):
                s = starts[k]
                end = s + chunk
                if end - acc_start > acc.shape[0]:
                    acc = np.concatenate([acc, np.zeros(end - acc_start - acc.shape[0])])
                # the last chunk may start before acc_start: its weights are zero there
                lo = max(s, acc_start)
                acc[lo - acc_start : end - acc_start] += (chunk_weights(starts, k, chunk, overlap) * y)[lo - s :]
                final = n if k == len(starts) - 1 else end - overlap  # no later chunk reaches below this
                if final > acc_start:
                    yield acc[: final - acc_start].astype(np.float32)
                    acc = acc[final - acc_start :]
                    acc_start = final

    def enhance_array(self, audio: Any, sample_rate: int) -> np.ndarray:
        """Enhance an in-memory recording ``[C, T]`` (or ``[T]``) at ``sample_rate`` -> ``[T]`` float32 at
        ``sample_rate``, with the same channels, chunks and crossfade as :meth:`enhance_file`."""
        x = np.asarray(audio.detach().cpu().numpy() if hasattr(audio, "detach") else audio, dtype=np.float32)
        if x.ndim == 1:
            x = x[None]
        if x.ndim != 2 or x.shape[1] == 0:
            raise ValueError(f"expected audio [channels, samples] with samples > 0, got shape {tuple(x.shape)}")
        if not np.isfinite(x).all():
            raise ValueError("audio contains non-finite samples (NaN/Inf)")
        plan = self.plan(x.shape[0])
        picked = x[list(plan.read)]
        out = list(self.stream(lambda a, b: picked[:, a:b], x.shape[1], int(sample_rate)))
        return np.concatenate(out)

    def enhance_file(
        self,
        src: str | os.PathLike,
        dst: str | os.PathLike,
        plan: ChannelPlan,
        *,
        subtype: str = "FLOAT",
        on_input: Callable[[np.ndarray], None] | None = None,
        on_output: Callable[[np.ndarray], None] | None = None,
    ) -> Timing:
        """Enhance recording ``src`` into the mono WAV ``dst`` (written atomically, at ``src``'s rate, exactly
        its length); returns the time spent. ``on_input`` gets the reference microphone's samples in
        order, ``on_output`` the enhanced ones (scores); time spent in them is not counted."""
        timing = Timing()
        self.warm_up(audio_info(src).sample_rate)
        t0 = time.perf_counter()
        row = plan.reference_row
        spent_outside = 0.0
        clipped = 0

        def feed_input(block: np.ndarray) -> None:
            nonlocal spent_outside
            if on_input is not None:
                t = time.perf_counter()
                on_input(block[row])
                spent_outside += time.perf_counter() - t

        with BlockReader(src, plan.read) as reader, open_wav_writer(dst, reader.sample_rate, 1, subtype) as out:
            for y in self.stream(reader.read, reader.frames, reader.sample_rate, on_input=feed_input, timing=timing):
                if on_output is not None:
                    t = time.perf_counter()
                    on_output(y)
                    spent_outside += time.perf_counter() - t
                if subtype != "FLOAT":
                    over = np.abs(y) > 1.0
                    if over.any():
                        clipped += int(np.count_nonzero(over))
                    if subtype == "PCM_16":  # as se_lib.data.audio.write_wav_atomic quantises
                        y = np.clip(np.round(y.astype(np.float64) * 32768.0), -32768, 32767).astype(np.int16)
                    else:  # PCM_24: libsndfile scales by 2**23 without clipping
                        y = np.clip(y, -1.0, 1.0 - 2.0**-23)
                out.write(y)
        if clipped:
            log.warning("%s: clipped %d samples outside [-1, 1] for %s", dst, clipped, subtype)
        timing.total = time.perf_counter() - t0 - spent_outside
        return timing


# ------------------------------------------------------------------------------------------- scores
class BlockDnsmos:
    """DNSMOS of a stream of mono blocks without holding the stream: consecutive blocks of
    ``block_seconds`` are scored as they fill (the last block takes the remainder, so it holds between one
    and two blocks), and the scores are averaged weighted by duration. A stream shorter than twice
    ``block_seconds`` is scored whole (:meth:`se_lib.metrics.dnsmos.DNSMOS.score`)."""

    def __init__(self, sample_rate: int, block_seconds: float = DNSMOS_BLOCK_SECONDS) -> None:
        self.sample_rate = int(sample_rate)
        self.block = max(1, round(block_seconds * sample_rate))
        self._parts: list[np.ndarray] = []
        self._buffered = 0
        self._scores: list[tuple[int, Any]] = []

    def push(self, x: np.ndarray) -> None:
        self._parts.append(np.array(x, dtype=np.float32))  # a copy: x may be a view of a larger buffer
        self._buffered += x.shape[-1]
        while self._buffered >= 2 * self.block:
            buf = np.concatenate(self._parts)
            self._score(buf[: self.block])
            self._parts = [buf[self.block :]]
            self._buffered = self._parts[0].shape[0]

    def _score(self, x: np.ndarray) -> None:
        from se_lib.metrics.dnsmos import get_dnsmos

        self._scores.append((x.shape[0], get_dnsmos(num_threads=None).score(x, self.sample_rate)))

    def result(self, prefix: str = "") -> dict[str, float]:
        if self._buffered:
            self._score(np.concatenate(self._parts))
            self._parts, self._buffered = [], 0
        total = sum(n for n, _ in self._scores)
        names = ("sig", "bak", "ovrl", "p808")
        if not total:
            return {f"{prefix}dnsmos_{k}": math.nan for k in names}
        return {f"{prefix}dnsmos_{k}": sum(n * getattr(s, k) for n, s in self._scores) / total for k in names}


DNSMOS_COLUMNS = tuple(f"{p}dnsmos_{k}" for p in ("input_", "") for k in ("sig", "bak", "ovrl", "p808"))
REFERENCE_COLUMNS = (
    "reference",
    "input_si_sdr",
    "si_sdr",
    "si_sdri",
    "input_pesq_wb",
    "pesq_wb",
    "input_stoi",
    "stoi",
    "input_estoi",
    "estoi",
)
BASE_COLUMNS = (
    "input",
    "output",
    "seconds",
    "sample_rate",
    "channels",
    "used_channels",
    "reference_channel",
    "model_sample_rate",
    "enhance_seconds",
    "rtf",
)


def reference_scores(clean: np.ndarray, noisy: np.ndarray, enhanced: np.ndarray, sample_rate: int) -> dict:
    """SI-SDR (and its improvement), wide-band PESQ, STOI and ESTOI of the input's reference microphone
    (``input_*``) and of the output against the clean reference (1-D, same length and rate)."""
    from se_lib.metrics.pesq_wb import pesq_wb
    from se_lib.metrics.si_sdr import si_sdr
    from se_lib.metrics.stoi import estoi, stoi

    row: dict[str, float] = {}
    row["input_si_sdr"] = float(si_sdr(noisy, clean))
    row["si_sdr"] = float(si_sdr(enhanced, clean))
    row["si_sdri"] = row["si_sdr"] - row["input_si_sdr"]
    row["input_pesq_wb"] = pesq_wb(clean, noisy, sample_rate)
    row["pesq_wb"] = pesq_wb(clean, enhanced, sample_rate)
    row["input_stoi"] = stoi(clean, noisy, sample_rate)
    row["stoi"] = stoi(clean, enhanced, sample_rate)
    row["input_estoi"] = estoi(clean, noisy, sample_rate)
    row["estoi"] = estoi(clean, enhanced, sample_rate)
    return row


class ReferenceIndex:
    """Clean files under ``--reference DIR``, paired with an input by its relative path (same folders and
    stem, any of :data:`AUDIO_SUFFIXES`), else by its stem alone when exactly one clean file has it."""

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise EnhanceError(f"--reference {self.root}: not a folder")
        self.by_rel: dict[Path, Path] = {}
        self.by_stem: dict[str, list[Path]] = {}
        for f in sorted(self.root.rglob("*")):
            if f.suffix.lower() in AUDIO_SUFFIXES and f.is_file():
                rel = f.relative_to(self.root)
                self.by_rel.setdefault(rel.with_suffix(""), f)
                self.by_stem.setdefault(f.stem, []).append(f)

    def find(self, rel: Path) -> Path | None:
        if (hit := self.by_rel.get(rel.with_suffix(""))) is not None:
            return hit
        same = self.by_stem.get(rel.stem, [])
        return same[0] if len(same) == 1 else None


def check_reference(ref: Path, info: AudioInfo, plan: ChannelPlan) -> AudioInfo:
    """The clean reference ``ref`` of an input (``info``): readable, finite, mono or with the input's
    channels, and the same duration (within one frame); :class:`AudioError` naming ``ref`` otherwise."""
    rinfo = probe_audio(ref)
    if rinfo.channels not in (1, info.channels):
        raise AudioError(ref, f"reference has {rinfo.channels} channels; expected 1 or the input's {info.channels}")
    if abs(rinfo.frames * info.sample_rate - info.frames * rinfo.sample_rate) > max(
        info.sample_rate, rinfo.sample_rate
    ):
        raise AudioError(
            ref,
            f"reference has {rinfo.frames} frames at {rinfo.sample_rate} Hz ({rinfo.seconds:.3f} s); the input "
            f"{info.path} has {info.frames} at {info.sample_rate} Hz ({info.seconds:.3f} s)",
        )
    return rinfo


def load_reference(ref: Path, info: AudioInfo, plan: ChannelPlan) -> np.ndarray:
    """The clean reference as 1-D float32 at the input's rate and exactly its length (the reference
    microphone's channel when the reference has the input's channels)."""
    x, sr = read_audio(ref, None, mono=False, min_peak=None)
    x = x[plan.reference] if x.shape[0] > 1 else x[0]
    if sr != info.sample_rate:
        x = resample_audio(x, sr, info.sample_rate)
    if x.shape[0] < info.frames:
        x = np.pad(x, (0, info.frames - x.shape[0]))
    return np.ascontiguousarray(x[: info.frames], dtype=np.float32)


# --------------------------------------------------------------------------------------------- run
def output_path(output_dir: str | os.PathLike, rel: Path) -> Path:
    """``<output_dir>/<rel without suffix>_enhanced.wav``."""
    return Path(output_dir) / rel.parent / f"{rel.stem}{OUTPUT_SUFFIX}"


@dataclass
class Job:
    """One checked input: where it goes, its header, channels and clean reference (if any)."""

    src: InputFile
    dst: Path
    info: AudioInfo
    plan: ChannelPlan
    reference: Path | None = None
    row: dict[str, Any] = field(default_factory=dict)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.9g}"
    return str(value)


def write_scores(path: Path, rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> None:
    buf = io.StringIO()
    writer = csv.writer(buf, delimiter="\t", lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_fmt(row.get(c, "")) for c in columns])
    write_text_atomic(path, buf.getvalue())


def _bad_message(problems: Sequence[AudioError], total: int, action: str) -> str:
    lines = [f"se enhance: {len(problems)} of {total} input(s) cannot be enhanced ({action}):"]
    lines += [f"  {p}" for p in problems]
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="se enhance",
        description="Enhance your own recordings (wav/flac/ogg, any rate, length and channel count the model "
        "takes) with a trained model; see docs/enhance.md.",
        epilog="exit status: 0 all enhanced; 1 bad inputs with --on-bad-file fail (nothing written) or an input "
        "that went bad while enhanced; 2 bad command line or model; 3 bad inputs skipped, the others enhanced",
    )
    ap.add_argument("inputs", nargs="+", metavar="INPUT", help="audio files or folders (searched recursively)")
    ap.add_argument(
        "--model",
        "-m",
        required=True,
        help="checkpoint of `se fit` (e.g. results/models/conv_tasnet/best.ckpt), or an MLflow model: "
        "runs:/<run>/model, "
        "models:/se-dprnn/3, models:/se-dprnn@champion (store: $MLFLOW_TRACKING_URI, default sqlite:///mlflow.db)",
    )
    ap.add_argument(
        "--output-dir", "-o", required=True, help="where <input stem>_enhanced.wav and enhance_scores.tsv go"
    )
    ap.add_argument(
        "--channels",
        help="1-based channels of the files to feed the model, in its microphone order, e.g. 1,3,4,5 "
        "(default: all channels; a single-channel model reads its ref_mic)",
    )
    ap.add_argument(
        "--chunk-seconds",
        type=float,
        default=DEFAULT_CHUNK_SECONDS,
        help="chunk length (default %(default)g); 0: each file in one pass",
    )
    ap.add_argument(
        "--overlap-seconds",
        type=float,
        default=DEFAULT_OVERLAP_SECONDS,
        help="crossfade between neighbouring chunks, at most a third of a chunk (default %(default)g)",
    )
    ap.add_argument(
        "--batch-seconds",
        type=float,
        default=None,
        help="audio seconds per forward pass (chunks of a file batched together; default: one chunk)",
    )
    ap.add_argument(
        "--device", default="auto", help="auto (default: the first CUDA GPU, else the CPU), cpu, cuda, cuda:N, mps"
    )
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    ap.add_argument("--reference", help="folder of clean files paired by relative path or name: SI-SDR, PESQ, STOI")
    ap.add_argument("--no-dnsmos", action="store_true", help="skip the DNSMOS scores (non-intrusive, slowish)")
    ap.add_argument(
        "--on-bad-file",
        choices=("fail", "skip"),
        default="fail",
        help="fail (default): enhance nothing when an input is bad; skip: enhance the others (exit status 3)",
    )
    ap.add_argument(
        "--subtype", choices=SUBTYPES, default="FLOAT", help="sample format of the output WAVs (default %(default)s)"
    )
    ap.add_argument("--dry-run", action="store_true", help="check the inputs and list the outputs; write nothing")
    ap.add_argument("--quiet", "-q", action="store_true", help="no progress bars or progress messages")
    return ap


def main(argv: Sequence[str] | None = None) -> int:
    """``se enhance`` (docs/enhance.md). Exit status: 0 done; 1 bad inputs with ``--on-bad-file fail``
    (nothing written) or a failure while enhancing; 2 a bad command line or model; 3 some inputs were
    skipped (``--on-bad-file skip``), the others enhanced."""
    args = build_parser().parse_args(list(argv) if argv is not None else None)
    say = (lambda *a: None) if args.quiet else (lambda *a: print(*a, file=sys.stderr, flush=True))
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        channels = parse_channels(args.channels) if args.channels else None
        if args.chunk_seconds < 0:
            raise EnhanceError(f"--chunk-seconds {args.chunk_seconds:g}: must be >= 0 (0: whole file)")
        if args.threads:
            torch.set_num_threads(args.threads)
        device = resolve_device(args.device)
        loaded = resolve_model(args.model, device)
        enhancer = Enhancer(
            loaded,
            device=device,
            chunk_seconds=args.chunk_seconds,
            overlap_seconds=args.overlap_seconds,
            batch_seconds=args.batch_seconds,
            channels=channels,
        )
        references = ReferenceIndex(args.reference) if args.reference else None
    except (EnhanceError, ValueError) as exc:
        print(f"se enhance: error: {exc}", file=sys.stderr)
        return 2
    out_dir = Path(args.output_dir)
    say(
        f"se enhance: {loaded.class_path} ({loaded.parameters:,} parameters, {loaded.sample_rate} Hz, takes "
        f"{enhancer.takes()}) from {loaded.path} on {device}"
    )
    try:
        return _run(args, enhancer, references, out_dir, say)
    except EnhanceError as exc:
        print(f"se enhance: error: {exc}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace, enhancer: Enhancer, references: ReferenceIndex | None, out_dir: Path, say) -> int:
    from tqdm import tqdm

    inputs, problems = find_inputs(args.inputs, exclude=out_dir)
    bars = not args.quiet and sys.stderr.isatty()
    # ---- the check pass: every input, before anything is written
    jobs: list[Job] = []
    missing_refs: list[Path] = []
    for src in tqdm(inputs, desc="checking", unit="file", disable=not bars or len(inputs) < 2, leave=False):
        try:
            info = probe_audio(src.path)
            try:
                plan = enhancer.plan(info.channels)
            except ChannelError as exc:
                raise AudioError(src.path, str(exc)) from None
            job = Job(src, output_path(out_dir, src.rel), info, plan)
            enhancer.layout(info.frames, info.sample_rate)  # chunks that fit the network's grid at this rate
            if references is not None:
                job.reference = references.find(src.rel)
                if job.reference is None:
                    missing_refs.append(src.path)
                else:
                    check_reference(job.reference, info, plan)
        except AudioError as exc:
            problems.append(exc)
            continue
        jobs.append(job)
    seen: dict[Path, Path] = {}
    for job in jobs:
        if (other := seen.setdefault(job.dst, job.src.path)) != job.src.path:
            print(
                f"se enhance: error: {other} and {job.src.path} would both be written to {job.dst}; "
                "enhance them into different --output-dir folders",
                file=sys.stderr,
            )
            return 2
    total = len(jobs) + len(problems)
    if problems and args.on_bad_file == "fail":
        print(_bad_message(problems, total, "nothing was written"), file=sys.stderr)
        return 1
    if problems:  # skip: the full list comes at the end, where it is seen
        say(f"se enhance: {len(problems)} bad input(s) will be skipped (listed at the end)")
    if missing_refs:
        print(
            f"se enhance: warning: no clean reference under {args.reference} for {len(missing_refs)} input(s) "
            f"(their SI-SDR/PESQ/STOI stay empty): "
            + ", ".join(map(str, missing_refs[:10]))
            + (" ..." if len(missing_refs) > 10 else ""),
            file=sys.stderr,
        )
    if args.dry_run or not jobs:
        for job in jobs:
            print(f"{job.src.path}\t{job.dst}\tchannels {job.plan.describe()}\t{job.info.seconds:.3f} s")
        if problems:
            print(_bad_message(problems, total, "skipped"), file=sys.stderr)
        if not jobs:
            print("se enhance: no input to enhance", file=sys.stderr)
            return 1
        return 3 if problems else 0
    # ---- enhancement
    columns = list(BASE_COLUMNS)
    if not args.no_dnsmos:
        columns += DNSMOS_COLUMNS
    if references is not None:
        columns += REFERENCE_COLUMNS
    rows: list[dict[str, Any]] = []
    failed: list[AudioError] = []
    audio_total = sum(j.info.seconds for j in jobs)
    say(f"se enhance: {len(jobs)} file(s), {audio_total:.1f} s of audio -> {out_dir}")
    file_bar = tqdm(total=len(jobs), desc="files", unit="file", disable=not bars, position=0)
    sec_bar = tqdm(total=round(audio_total, 2), desc="audio", unit="s", disable=not bars, position=1)
    try:
        for job in jobs:
            try:
                rows.append(_enhance_one(job, enhancer, args, out_dir, sec_bar))
            except AudioError as exc:  # appeared after the check pass (a file changed under us)
                failed.append(exc)
                if args.on_bad_file == "fail":
                    print(
                        _bad_message(failed, total, f"stopped; {len(rows)} file(s) complete, no partial output"),
                        file=sys.stderr,
                    )
                    return 1
                continue
            finally:
                file_bar.update()
            write_scores(out_dir / SCORES_FILE, rows, columns)
    finally:
        sec_bar.close()
        file_bar.close()
    if problems or failed:
        print(_bad_message([*problems, *failed], total, "skipped"), file=sys.stderr)
    seconds = sum(r["seconds"] for r in rows)
    took = sum(r["enhance_seconds"] for r in rows)
    say(
        f"se enhance: wrote {len(rows)} file(s) ({seconds:.1f} s of audio, real-time factor "
        f"{took / seconds if seconds else math.nan:.3f}) and {out_dir / SCORES_FILE}"
    )
    return 3 if problems or failed else 0


def _enhance_one(job: Job, enhancer: Enhancer, args: argparse.Namespace, out_dir: Path, bar) -> dict[str, Any]:
    info, plan = job.info, job.plan
    dn_in = dn_out = None
    if not args.no_dnsmos:
        dn_in, dn_out = BlockDnsmos(info.sample_rate), BlockDnsmos(info.sample_rate)
    keep_in: list[np.ndarray] = []
    keep_out: list[np.ndarray] = []
    with_ref = job.reference is not None

    def on_input(x: np.ndarray) -> None:
        if dn_in is not None:
            dn_in.push(x)
        if with_ref:
            keep_in.append(np.array(x, dtype=np.float32))

    def on_output(y: np.ndarray) -> None:
        bar.update(round(y.shape[0] / info.sample_rate, 2))
        if dn_out is not None:
            dn_out.push(y)
        if with_ref:
            keep_out.append(y)

    timing = enhancer.enhance_file(
        job.src.path, job.dst, plan, subtype=args.subtype, on_input=on_input, on_output=on_output
    )
    row: dict[str, Any] = {
        "input": str(job.src.path),
        "output": str(job.dst.relative_to(out_dir)),
        "seconds": info.seconds,
        "sample_rate": info.sample_rate,
        "channels": info.channels,
        "used_channels": plan.describe(),
        "reference_channel": plan.reference + 1,
        "model_sample_rate": enhancer.sample_rate,
        "enhance_seconds": timing.total,
        "rtf": timing.total / info.seconds,
    }
    if dn_in is not None and dn_out is not None:
        row.update(dn_in.result("input_"))
        row.update(dn_out.result(""))
    if with_ref:
        assert job.reference is not None
        clean = load_reference(job.reference, info, plan)
        row["reference"] = str(job.reference)
        row.update(reference_scores(clean, np.concatenate(keep_in), np.concatenate(keep_out), info.sample_rate))
    return row


if __name__ == "__main__":
    raise SystemExit(main())

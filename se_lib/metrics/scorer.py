"""Batch scorer: one folder of prediction wavs -> a per-file TSV and a summary TSV.

The folder holds, per mixture, files named by :mod:`se_lib.data.naming`
``sid_{sid}_nids_{nid1}_{nid2}_rid_{rid}_snr_{snr}dB_{kind}.wav`` with ``kind`` in ``noisy`` (all mic
channels, ``[T, C]`` in the wav), ``enhanced`` (mono) and ``target`` (mono, reference mic).

Modes:
    ``enhanced``: the enhanced file is scored against the target; SI-SDRi is relative to channel
    ``ref_mic`` of the noisy file.
    ``noisy``: the noisy baseline, channel ``ref_mic`` of the noisy file against the target (SI-SDRi = 0).

Metrics (groups selectable with ``metrics``): ``si_sdr`` -> si_sdr, si_sdri; ``pesq`` -> pesq_wb;
``stoi`` -> stoi, estoi; ``dnsmos`` -> dnsmos_sig, dnsmos_bak, dnsmos_ovrl, dnsmos_p808 (non-intrusive:
computed on the scored signal only). Values a metric cannot produce for a file (PESQ finds no utterance,
STOI has too few speech frames) are NaN, logged with the file name and counted in the summary.

Approximate references (``approximate="close_talk"``: CHiME-4 real recordings, whose target file is the speaker's
close-talk mic CH0, corpus option ``close_talk_reference``): CH0 is no clean reference -- a headset mic on a
recorder of its own, so neither sample-aligned nor level-matched with the tablet array, and picking up the
environment's noise and other talkers too -- so its intrusive scores go into their own columns ``si_sdr_approx``,
``si_sdri_approx``, ``pesq_wb_approx``, ``stoi_approx``, ``estoi_approx`` (the true-reference columns stay NaN:
the two are never mixed, not even in one summary row). Before scoring, CH0 is shifted by the lag within
+-:data:`CLOSE_TALK_MAX_LAG_S` that maximises its cross-correlation with the noisy reference mic
(:func:`align_reference`; the same lag for the noisy baseline and every system), recorded per file in
``reference_lag_ms``; SI-SDR is scale-invariant, PESQ and STOI normalise the level themselves. A recording whose
target is all zeros (no reference at all) still gets DNSMOS only.

Execution: file headers are checked first (readable, rate, channels, lengths) so bad input fails before
any scoring; then mixtures are scored in a pool of ``threads`` worker processes forked from a clean
``forkserver`` with the metric modules preloaded (single-threaded ONNX Runtime and BLAS in each worker,
DNSMOS models loaded once per worker). Callers' scripts need the usual ``if __name__ == "__main__":``
guard, as with any ``spawn``/``forkserver`` pool. Work is streamed: only file paths are sent,
each worker reads its own files, at most ``2 * threads`` mixtures are in flight and rows are gathered as
they finish (memory does not grow with the number of files beyond one small row each). Both TSVs are
written atomically (temporary file + ``os.replace``) after every mixture has been scored.

Summary: per metric, mean over the non-NaN values, 95 % confidence half-width of the mean from the
t-distribution (``t_{0.975, n-1} * s / sqrt(n)``), ``count`` (non-NaN values) and ``nan_count``.

CLI::

    python -m se_lib.metrics.scorer results/predictions/conv_tasnet/test \\
        --out results/scores/conv_tasnet/per_file.tsv --summary results/scores/conv_tasnet/summary.tsv \\
        --mode enhanced --ref-mic 0 --threads 2
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import math
import multiprocessing
import os
import sys
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from se_lib.data.audio import AudioError, audio_info, read_audio
from se_lib.data.naming import parse_mixture_filename
from se_lib.io import write_text_atomic

if TYPE_CHECKING:  # pandas is imported lazily: worker processes never need it
    import pandas as pd

__all__ = [
    "ALL_METRICS",
    "APPROX_SUFFIX",
    "APPROXIMATE_REFERENCES",
    "ID_COLUMNS",
    "METRIC_COLUMNS",
    "MixtureFiles",
    "ScoringError",
    "align_reference",
    "approx_columns",
    "collect_mixtures",
    "main",
    "metric_columns",
    "score_directory",
    "score_mixture",
    "summarize",
]

log = logging.getLogger(__name__)

METRIC_COLUMNS: dict[str, tuple[str, ...]] = {
    "si_sdr": ("si_sdr", "si_sdri"),
    "pesq": ("pesq_wb",),
    "stoi": ("stoi", "estoi"),
    "dnsmos": ("dnsmos_sig", "dnsmos_bak", "dnsmos_ovrl", "dnsmos_p808"),
}
ALL_METRICS: tuple[str, ...] = tuple(METRIC_COLUMNS)
#: Metric groups that compare with a reference (DNSMOS does not).
INTRUSIVE: tuple[str, ...] = ("si_sdr", "pesq", "stoi")
#: Suffix of the columns scored against an approximate reference, and the kinds of approximate reference.
APPROX_SUFFIX = "_approx"
APPROXIMATE_REFERENCES: tuple[str, ...] = ("close_talk",)
#: Largest shift (seconds, either way) tried when aligning a close-talk reference with the array.
CLOSE_TALK_MAX_LAG_S = 0.05
LAG_COLUMN = "reference_lag_ms"
ID_COLUMNS: tuple[str, ...] = ("mixture", "sid", "nid1", "nid2", "rid", "snr_db")
MODES = ("enhanced", "noisy")
SUMMARY_COLUMNS = ("metric", "mean", "ci95", "count", "nan_count")
FLOAT_FORMAT = "%.6g"


class ScoringError(ValueError):
    """A prediction folder or file that cannot be scored; the message names the file or mixture."""


@dataclass(frozen=True)
class MixtureFiles:
    """The files of one mixture. ``estimate`` is what gets scored (enhanced file, or the noisy file in
    ``noisy`` mode, then channel ``ref_mic`` is used); ``noisy`` is needed for SI-SDRi."""

    mixture: str
    ids: dict[str, Any]
    estimate: Path
    target: Path
    noisy: Path | None


def metric_columns(metrics: Iterable[str]) -> list[str]:
    """Output columns of the chosen metric groups, in canonical order."""
    chosen = _check_metrics(metrics)
    return [col for name in ALL_METRICS if name in chosen for col in METRIC_COLUMNS[name]]


def approx_columns(metrics: Iterable[str]) -> list[str]:
    """Columns of the chosen intrusive metrics scored against an approximate reference (``si_sdr_approx``, ...)."""
    chosen = _check_metrics(metrics)
    return [
        f"{col}{APPROX_SUFFIX}"
        for name in ALL_METRICS
        if name in chosen and name in INTRUSIVE
        for col in METRIC_COLUMNS[name]
    ]


def align_reference(reference: np.ndarray, observed: np.ndarray, max_lag: int) -> tuple[np.ndarray, int]:
    """``reference`` shifted by the lag in ``[-max_lag, max_lag]`` samples that maximises the magnitude of its
    cross-correlation with ``observed`` (zeros shifted in, same length), and that lag (> 0: ``observed`` lags
    behind, the reference was delayed)."""
    from scipy.signal import correlate, correlation_lags

    if reference.shape != observed.shape:
        raise ValueError(f"align_reference: shapes differ, {reference.shape} and {observed.shape}")
    n = reference.size
    xc = correlate(observed.astype(np.float64), reference.astype(np.float64), mode="full", method="fft")
    lags = correlation_lags(n, n, mode="full")
    window = np.abs(lags) <= max_lag
    lag = int(lags[window][np.argmax(np.abs(xc[window]))])
    out = np.zeros_like(reference)
    if lag >= 0:
        out[lag:] = reference[: n - lag]
    else:
        out[: n + lag] = reference[-lag:]
    return out, lag


def _check_metrics(metrics: Iterable[str]) -> tuple[str, ...]:
    chosen = tuple(dict.fromkeys(metrics))
    unknown = [m for m in chosen if m not in METRIC_COLUMNS]
    if unknown or not chosen:
        raise ValueError(f"unknown or empty metrics {unknown or list(chosen)}; choose from {list(ALL_METRICS)}")
    return chosen


def collect_mixtures(
    pred_dir: str | os.PathLike, mode: str = "enhanced", *, need_noisy: bool = True
) -> list[MixtureFiles]:
    """Group the wavs of ``pred_dir`` by mixture; errors name the offending file or mixture.

    Every ``*.wav`` must follow the naming pattern. Each mixture needs a target, plus the enhanced file
    (``enhanced`` mode) and/or the noisy file (``noisy`` mode, or ``need_noisy`` for SI-SDRi).
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    folder = Path(pred_dir)
    if not folder.is_dir():
        raise ScoringError(f"{folder}: prediction folder not found")
    groups: dict[str, dict[str, Any]] = {}
    for path in sorted(folder.glob("*.wav")):
        try:
            parsed = parse_mixture_filename(path.name)
        except ValueError as exc:
            raise ScoringError(f"{path}: {exc}") from None
        kind = parsed.pop("kind")
        stem = path.name[: -len(f"_{kind}.wav")]
        entry = groups.setdefault(stem, {"ids": parsed, "files": {}})
        entry["files"][kind] = path
    if not groups:
        raise ScoringError(f"{folder}: no prediction wavs (*.wav) to score")
    wanted = {"target", mode if mode == "enhanced" else "noisy"}
    if need_noisy or mode == "noisy":
        wanted.add("noisy")
    missing = [f"{stem}_{kind}.wav" for stem, g in groups.items() for kind in sorted(wanted) if kind not in g["files"]]
    if missing:
        shown = ", ".join(missing[:5]) + (f" (+{len(missing) - 5} more)" if len(missing) > 5 else "")
        raise ScoringError(f"{folder}: {len(missing)} file(s) missing for mode {mode!r}: {shown}")
    out = []
    for stem, g in sorted(groups.items()):
        files = g["files"]
        out.append(
            MixtureFiles(
                mixture=stem,
                ids=g["ids"],
                estimate=files["enhanced"] if mode == "enhanced" else files["noisy"],
                target=files["target"],
                noisy=files.get("noisy") if "noisy" in wanted else None,
            )
        )
    return out


def check_headers(mixtures: Sequence[MixtureFiles], *, mode: str, ref_mic: int, sample_rate: int) -> None:
    """Header-only validation of every file (no samples read): readable, non-empty, rate, channels, lengths."""
    for mix in mixtures:
        lengths: dict[Path, int] = {}
        roles = [(mix.target, "target"), (mix.estimate, mode)]
        if mix.noisy is not None and mix.noisy != mix.estimate:
            roles.append((mix.noisy, "noisy"))
        for path, role in roles:
            try:
                info = audio_info(path)
            except AudioError as exc:
                raise ScoringError(f"cannot score {exc}") from None
            if info.frames == 0:
                raise ScoringError(f"cannot score {path}: empty audio (0 samples)")
            if info.sample_rate != sample_rate:
                raise ScoringError(f"cannot score {path}: sample rate {info.sample_rate} Hz, expected {sample_rate} Hz")
            if role == "noisy":
                if not 0 <= ref_mic < info.channels:
                    raise ScoringError(
                        f"cannot score {path}: ref_mic {ref_mic} out of range for {info.channels} channel(s)"
                    )
            elif info.channels != 1:
                raise ScoringError(f"cannot score {path}: {role} file must be mono, has {info.channels} channels")
            lengths[path] = info.frames
        if len(set(lengths.values())) > 1:
            detail = ", ".join(f"{p.name}={n}" for p, n in lengths.items())
            raise ScoringError(f"cannot score mixture {mix.mixture}: lengths differ ({detail} samples)")


# ------------------------------------------------------------------------------------------------
# Worker side
# ------------------------------------------------------------------------------------------------
_WORKER: dict[str, Any] = {}


def _init_worker(
    metrics: tuple[str, ...], mode: str, ref_mic: int, sample_rate: int, approximate: str | None = None
) -> None:
    """Per-process setup: settings, and the DNSMOS models loaded once (one ONNX Runtime thread)."""
    _WORKER.update(metrics=metrics, mode=mode, ref_mic=ref_mic, sample_rate=sample_rate, approximate=approximate)
    if "pesq" in metrics:
        import pesq  # noqa: F401  (import cost paid here, not inside the first task)
    if "stoi" in metrics:
        import pystoi  # noqa: F401
    if "dnsmos" in metrics:
        from se_lib.metrics.dnsmos import get_dnsmos

        get_dnsmos(num_threads=1)


def _read(path: Path, sample_rate: int) -> np.ndarray:
    try:
        x, _ = read_audio(path, sample_rate, mono=False, resample=False, min_peak=None)
    except AudioError as exc:  # re-raised as a plain picklable error that still names the file
        raise ScoringError(f"cannot score {exc}") from None
    return x  # [C, T]


def score_mixture(
    mix: MixtureFiles,
    *,
    metrics: Sequence[str] = ALL_METRICS,
    mode: str = "enhanced",
    ref_mic: int = 0,
    sample_rate: int = 16000,
    approximate: str | None = None,
) -> dict[str, Any]:
    """Scores of one mixture as a row dict (ids + metric columns + ``_problems``: list of NaN reasons); with an
    ``approximate`` reference, the intrusive scores in ``<column>_approx`` (see the module docstring)."""
    from se_lib.metrics.pesq_wb import pesq_wb_with_reason
    from se_lib.metrics.si_sdr import si_sdr
    from se_lib.metrics.stoi import stoi

    target = _read(mix.target, sample_rate)[0]
    est_all = _read(mix.estimate, sample_rate)
    if mode == "noisy":
        if not 0 <= ref_mic < est_all.shape[0]:
            raise ScoringError(
                f"cannot score {mix.estimate}: ref_mic {ref_mic} out of range for {est_all.shape[0]} channel(s)"
            )
        estimate = est_all[ref_mic]
    else:
        estimate = est_all[0]
    if estimate.shape != target.shape:
        raise ScoringError(
            f"cannot score mixture {mix.mixture}: {mix.estimate.name} has {estimate.size} samples, "
            f"{mix.target.name} {target.size}"
        )
    if approximate is not None and approximate not in APPROXIMATE_REFERENCES:
        raise ValueError(f"approximate must be None or one of {APPROXIMATE_REFERENCES}, got {approximate!r}")
    row: dict[str, Any] = {"mixture": mix.mixture, **mix.ids}
    problems: list[str] = []
    intrusive = [c for m in metrics if m in INTRUSIVE for c in METRIC_COLUMNS[m]]
    suffix = ""
    noisy_ref = None  # the noisy reference mic, read once where SI-SDRi or the alignment needs it

    def reference_mic() -> np.ndarray:
        nonlocal noisy_ref
        if noisy_ref is None:
            if mode == "noisy":
                noisy_ref = estimate
            else:
                if mix.noisy is None:
                    raise ScoringError(f"cannot score mixture {mix.mixture}: SI-SDRi needs its noisy file")
                noisy = _read(mix.noisy, sample_rate)
                if not 0 <= ref_mic < noisy.shape[0]:
                    raise ScoringError(
                        f"cannot score {mix.noisy}: ref_mic {ref_mic} out of range for {noisy.shape[0]} channel(s)"
                    )
                if noisy.shape[1] != target.size:
                    raise ScoringError(
                        f"cannot score mixture {mix.mixture}: {mix.noisy.name} has {noisy.shape[1]} samples, "
                        f"{mix.target.name} {target.size}"
                    )
                noisy_ref = noisy[ref_mic]
        return noisy_ref

    if not np.any(target):  # a real recording (CHiME-4 et05_real, DNS real_recordings): no clean reference
        for col in intrusive:
            row[col] = math.nan
        problems.append("no clean reference (a real recording): DNSMOS only")
        metrics = [m for m in metrics if m == "dnsmos"]
    elif approximate is not None:  # the close-talk mic: true-reference columns NaN, scores in *_approx
        for col in intrusive:
            row[col] = math.nan
        suffix = APPROX_SUFFIX
        target, lag = align_reference(target, reference_mic(), round(CLOSE_TALK_MAX_LAG_S * sample_rate))
        row[LAG_COLUMN] = 1000.0 * lag / sample_rate
    if "si_sdr" in metrics:
        row[f"si_sdr{suffix}"] = si_sdr(estimate, target)
        if mode == "noisy":
            row[f"si_sdri{suffix}"] = 0.0
        else:
            row[f"si_sdri{suffix}"] = row[f"si_sdr{suffix}"] - si_sdr(reference_mic(), target)
    if "pesq" in metrics:
        row[f"pesq_wb{suffix}"], reason = pesq_wb_with_reason(target, estimate, sample_rate)
        if reason:
            problems.append(f"pesq_wb{suffix}: {reason}")
    if "stoi" in metrics:
        for col, extended in (("stoi", False), ("estoi", True)):
            row[col + suffix] = stoi(target, estimate, sample_rate, extended=extended)
            if math.isnan(row[col + suffix]):
                problems.append(f"{col}{suffix}: not enough speech frames")
    if "dnsmos" in metrics:
        from se_lib.metrics.dnsmos import get_dnsmos

        row.update(get_dnsmos(num_threads=1).score(estimate, sample_rate).as_dict())
    row["_problems"] = problems
    return row


def _score_task(mix: MixtureFiles) -> dict[str, Any]:
    return score_mixture(
        mix,
        metrics=_WORKER["metrics"],
        mode=_WORKER["mode"],
        ref_mic=_WORKER["ref_mic"],
        sample_rate=_WORKER["sample_rate"],
        approximate=_WORKER["approximate"],
    )


# ------------------------------------------------------------------------------------------------
# Driver
# ------------------------------------------------------------------------------------------------
#: Imported once in the fork server, so every worker starts with them loaded (scipy.signal, pulled in by
#: pystoi, alone takes seconds to import on a busy machine).
_PRELOAD = [
    "numpy",
    "scipy.signal",
    "scipy.fft",
    "soundfile",
    "pesq",
    "pystoi",
    "onnxruntime",
    "onnx.utils",
    "se_lib.metrics.scorer",
    "se_lib.metrics.dnsmos",
    "se_lib.metrics.pesq_wb",
    "se_lib.metrics.stoi",
    "se_lib.metrics.si_sdr",
]
#: Workers are single-threaded: one process per core, no BLAS/OpenMP threads spinning against each other.
_WORKER_ENV = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def _pool_context() -> multiprocessing.context.BaseContext:
    """``forkserver`` context: workers fork from a clean, single-threaded server process (never from the
    caller, which may hold ONNX Runtime / torch threads) that has the metric modules preloaded and was
    started with single-threaded BLAS/OpenMP. Like ``spawn``, the caller's main module must be guarded by
    ``if __name__ == "__main__":``. Falls back to ``spawn`` where ``forkserver`` does not exist."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    from multiprocessing import forkserver

    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(_PRELOAD)
    with single_threaded_children():  # only the server process (started now, if not yet) sees these
        forkserver.ensure_running()
    return ctx


@contextlib.contextmanager
def single_threaded_children() -> Iterator[None]:
    """Processes started inside the block get single-threaded BLAS/OpenMP (:data:`_WORKER_ENV`);
    this process's environment is restored afterwards."""
    saved = {k: os.environ.get(k) for k in _WORKER_ENV}
    os.environ.update(_WORKER_ENV)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _import_table_modules() -> None:
    import pandas  # noqa: F401
    import scipy.special  # noqa: F401


def _iter_rows(mixtures: Sequence[MixtureFiles], settings: tuple, threads: int, progress: bool):
    from tqdm import tqdm

    bar = tqdm(
        total=len(mixtures),
        desc=f"scoring ({settings[1]})",
        unit="file",
        disable=not progress,
        file=sys.stderr,
        dynamic_ncols=True,
    )
    try:
        if threads == 0:  # in-process (debugging); BLAS/ONNX Runtime threads as the caller has them
            _init_worker(*settings)
            for mix in mixtures:
                yield _score_task(mix)
                bar.update()
            return
        with ProcessPoolExecutor(
            max_workers=threads, mp_context=_pool_context(), initializer=_init_worker, initargs=settings
        ) as pool:
            todo = iter(mixtures)
            pending: set[Future] = set()

            def refill() -> None:
                for mix in todo:
                    pending.add(pool.submit(_score_task, mix))
                    if len(pending) >= 2 * threads:
                        break

            refill()
            _import_table_modules()  # while the workers start: the main process is idle anyway
            try:
                while pending:
                    done, _ = wait(pending, return_when=FIRST_COMPLETED)
                    for fut in done:
                        pending.discard(fut)
                        yield fut.result()
                        bar.update()
                    refill()
            except BaseException:
                for fut in pending:
                    fut.cancel()
                pool.shutdown(wait=True, cancel_futures=True)
                raise
    finally:
        bar.close()


def score_directory(
    pred_dir: str | os.PathLike,
    out_tsv: str | os.PathLike | None,
    summary_tsv: str | os.PathLike | None,
    *,
    mode: str = "enhanced",
    ref_mic: int = 0,
    threads: int = 1,
    metrics: Sequence[str] = ALL_METRICS,
    sample_rate: int = 16000,
    progress: bool = True,
    approximate: str | None = None,
) -> pd.DataFrame:
    """Score every mixture of ``pred_dir``; write the per-file and summary TSVs (when paths are given).

    ``approximate``: ``"close_talk"`` where the targets are approximate references (module docstring): the
    intrusive scores go into ``<column>_approx`` columns (with ``reference_lag_ms``), the usual ones stay NaN.

    ``threads``: worker processes (the job's thread count); every mixture is scored in a worker, even
    with 1, so BLAS/OpenMP stay single-threaded whatever the caller's environment. ``0`` scores in this
    process instead (for debugging).

    Returns the per-file table (one row per mixture, sorted by mixture name). Raises
    :class:`ScoringError` naming the file for unreadable/empty/non-finite/wrong-rate/wrong-channel audio,
    badly named or missing files; nothing is written then.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    if approximate is not None and approximate not in APPROXIMATE_REFERENCES:
        raise ValueError(f"approximate must be None or one of {APPROXIMATE_REFERENCES}, got {approximate!r}")
    chosen = _check_metrics(metrics)
    threads = int(threads)
    if threads < 0:
        raise ValueError(f"threads must be >= 0, got {threads}")
    if threads > 0:
        _pool_context()  # start the fork server now: its imports overlap with the header checks below
    mixtures = collect_mixtures(pred_dir, mode, need_noisy="si_sdr" in chosen or approximate is not None)
    check_headers(mixtures, mode=mode, ref_mic=ref_mic, sample_rate=sample_rate)
    settings = (chosen, mode, int(ref_mic), int(sample_rate), approximate)
    workers = min(threads, len(mixtures))  # 0 stays 0: in-process
    rows = []
    n_problem_files = 0
    for row in _iter_rows(mixtures, settings, workers, progress):
        problems = row.pop("_problems")
        if problems:
            n_problem_files += 1
            log.warning("%s: NaN scores (%s)", row["mixture"], "; ".join(problems))
        rows.append(row)
    import pandas as pd  # imported by the main process only, while the workers start (never in workers)

    columns = list(ID_COLUMNS) + metric_columns(chosen)
    if approximate is not None:
        columns += approx_columns(chosen) + [LAG_COLUMN]
    df = pd.DataFrame(rows, columns=columns).sort_values("mixture", kind="stable").reset_index(drop=True)
    summary = summarize(df)
    if n_problem_files:
        log.warning(
            "%d of %d file(s) had metrics that could not be computed (NaN, counted in nan_count)",
            n_problem_files,
            len(df),
        )
    if out_tsv is not None:
        write_text_atomic(out_tsv, df.to_csv(sep="\t", index=False, float_format=FLOAT_FORMAT, na_rep="nan"))
    if summary_tsv is not None:
        write_text_atomic(summary_tsv, summary.to_csv(sep="\t", index=False, float_format=FLOAT_FORMAT, na_rep="nan"))
    return df


def summarize(df: pd.DataFrame) -> pd.DataFrame:
    """Per metric column of ``df``: mean, 95 % CI half-width (Student t), count (non-NaN) and nan_count."""
    import pandas as pd
    from scipy.special import stdtrit  # Student-t quantile (lighter import than scipy.stats)

    known = [c for cols in METRIC_COLUMNS.values() for c in cols] + approx_columns(INTRUSIVE)
    records = []
    for col in [c for c in known if c in df.columns]:
        values = pd.to_numeric(df[col], errors="coerce").to_numpy(dtype=np.float64)
        ok = values[np.isfinite(values)]
        n = int(ok.size)
        mean = float(ok.mean()) if n else math.nan
        ci = float(stdtrit(n - 1, 0.975) * ok.std(ddof=1) / math.sqrt(n)) if n >= 2 else math.nan
        records.append({"metric": col, "mean": mean, "ci95": ci, "count": n, "nan_count": int(values.size - n)})
    return pd.DataFrame(records, columns=list(SUMMARY_COLUMNS))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m se_lib.metrics.scorer", description=__doc__.split("\n\n")[0])
    parser.add_argument("pred_dir", help="folder of prediction wavs")
    parser.add_argument("--out", required=True, help="per-file TSV to write")
    parser.add_argument("--summary", required=True, help="summary TSV to write")
    parser.add_argument("--mode", choices=MODES, default="enhanced")
    parser.add_argument("--ref-mic", type=int, default=0, help="reference microphone channel of the noisy files")
    parser.add_argument("--threads", type=int, default=1, help="worker processes (0: score in this process)")
    parser.add_argument(
        "--metrics", default=",".join(ALL_METRICS), help=f"comma-separated subset of {','.join(ALL_METRICS)}"
    )
    parser.add_argument("--sample-rate", type=int, default=16000)
    parser.add_argument(
        "--approximate-reference",
        choices=APPROXIMATE_REFERENCES,
        default=None,
        help="the targets are approximate references (CHiME-4 close-talk mic): scores go into *_approx columns",
    )
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        score_directory(
            args.pred_dir,
            args.out,
            args.summary,
            mode=args.mode,
            ref_mic=args.ref_mic,
            threads=args.threads,
            metrics=[m.strip() for m in args.metrics.split(",") if m.strip()],
            sample_rate=args.sample_rate,
            progress=not args.no_progress,
            approximate=args.approximate_reference,
        )
    except (ScoringError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    import pandas as pd

    print(pd.read_csv(args.summary, sep="\t").to_string(index=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Inference without Lightning: the network from a checkpoint with plain torch, batch prediction of a split.

* :mod:`se_lib.inference.checkpoint` -- :func:`~se_lib.inference.checkpoint.load_network`: a ``se fit``
  (LightningCLI) checkpoint read with ``torch.load(..., weights_only=True)``; the network class from its
  ``net.class_path`` hyper-parameter, its arguments from ``net.init_args``, the weights without the
  module's ``net.`` prefix; a plain :class:`torch.nn.Module` in eval mode.
* :mod:`se_lib.inference.writer` -- :class:`~se_lib.inference.writer.ItemWriter` (metadata-named wavs,
  atomic) and :func:`~se_lib.inference.writer.export_references` (rule ``noisy_reference``).
* :mod:`se_lib.inference.predict` -- :func:`~se_lib.inference.predict.predict_job` (rule ``predict``):
  the split's mixtures through the network under ``torch.inference_mode()``, the same files and
  statistics ``se predict`` writes (byte-identical wavs: tests/test_inference.py).
* :mod:`se_lib.inference.enhance` -- ``se enhance``: any checkpoint on recordings of any rate, length and
  channel count the network accepts, in overlapping chunks (docs/enhance.md); its file reading and
  checks in :mod:`se_lib.inference.audio_io`.

Nothing here imports ``lightning``, ``mlflow.pytorch`` or ``matplotlib``: a predict job starts in
the time of ``import torch`` (tests/test_inference.py checks ``sys.modules`` in a fresh interpreter).
``se predict`` (LightningCLI, :mod:`se_lib.train`) stays for use by hand.
"""

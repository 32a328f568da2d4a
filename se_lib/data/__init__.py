"""Data stages of the workflow: corpus (demo + files), rooms, mixture DB, rendering, data module.

Kept import-free on purpose: ``import se_lib.data`` must stay cheap (no torch, no eSpeak), so import
the submodule you need, e.g. ``from se_lib.data.audio import read_audio``.
"""

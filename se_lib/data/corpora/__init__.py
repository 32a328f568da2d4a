"""Public corpora in their published layouts: one module per layout (VoiceBank-DEMAND, DNS-Challenge test sets,
CHiME-4, any paired layout), their layout checks, and the downloader (``download``).

A recorded corpus becomes :class:`se_lib.data.corpora.recordings.Recording` items (noisy channel files, clean
reference, split, condition), checked together (:func:`~se_lib.data.corpora.recordings.check_recordings`) and
written as the corpus stage's ``recordings.tsv`` + ``manifest.tsv``; the mixture DB turns each into a row that
names its files and their checksums (:mod:`se_lib.data.db`). This package file imports nothing.
"""

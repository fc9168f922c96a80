"""Word and character error rates that are comparable: ``omniavsr score`` as a library.

>>> from omniavsr_cli.scoring import score
>>> report = score("hyp.txt", "ref.txt", normalizer="lrs3")
>>> report.systems[0].wer
"""

from .formats import FORMATS, Transcript, Utterance, parse_transcript, read_transcript
from .measures import EditCounts
from .normalizers import NORMALIZERS, Normalizer, get_normalizer
from .reports import RENDERERS, REPORTS, report_dict
from .scorer import ScoreReport, SystemScore, score, score_texts, score_transcripts

__all__ = [
    "FORMATS",
    "NORMALIZERS",
    "RENDERERS",
    "REPORTS",
    "EditCounts",
    "Normalizer",
    "ScoreReport",
    "SystemScore",
    "Transcript",
    "Utterance",
    "get_normalizer",
    "parse_transcript",
    "read_transcript",
    "report_dict",
    "score",
    "score_texts",
    "score_transcripts",
]

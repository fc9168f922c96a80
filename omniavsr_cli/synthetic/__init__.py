"""A synthetic audio-visual corpus: GRID-style sentences spoken by espeak-ng, on a face whose mouth follows
the phonemes. What the demo model (weights/demo) is trained and evaluated on; see docs/synth-corpus.md."""

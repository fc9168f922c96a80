"""WER/CER numbers: hand-checked cases, properties, empty references, pairing errors, bootstrap statistics."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from omniavsr_cli.cli._errors import exit_code
from omniavsr_cli.cli._errors import message as cli_message
from omniavsr_cli.errors import InputError, UsageError
from omniavsr_cli.scoring import score, score_texts
from omniavsr_cli.scoring.normalizers import NORMALIZERS


def levenshtein(a: list[str], b: list[str]) -> int:
    """Independent oracle: the textbook dynamic programme (what torchaudio's edit_distance computes)."""
    previous = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        current = [i]
        for j, y in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (x != y)))
        previous = current
    return previous[-1]


REFS = ["a b c d", "hello world", "one two three four five six"]
HYPS = ["a x c d e", "hello", "one two three four five six"]


def test_hand_checked_wer_cer_and_mean_utterance_wer():
    report = score_texts(HYPS, REFS)
    system = report.systems[0]
    # utt 1: b->x substitution, e inserted; utt 2: world deleted; utt 3 exact.
    assert (system.words.substitutions, system.words.deletions, system.words.insertions, system.words.hits) == (1, 1, 1, 10)
    assert system.words.reference_length == 12
    assert system.wer == pytest.approx(3 / 12)
    # Mean of per-utterance WERs (2/4, 1/2, 0) is a different number, reported separately.
    assert system.mean_utterance_wer == pytest.approx((0.5 + 0.5 + 0) / 3)
    assert system.mean_utterance_count == 3
    # Characters: 7 + 11 + 27 = 45; edits: b->x, " e" inserted (3), " world" deleted (6).
    assert system.characters.reference_length == 45
    assert system.characters.errors == 9
    assert system.cer == pytest.approx(9 / 45)
    assert [u.counts.errors for u in system.utterances] == [2, 1, 0]


def test_lrs3_normaliser_is_lowercase_and_whitespace_split_only():
    assert NORMALIZERS["lrs3"].words("Hello, World  AGAIN") == ["hello,", "world", "again"]
    report = score_texts(["hello, world"], ["HELLO WORLD"], normalizer="lrs3")
    assert report.systems[0].words.substitutions == 1  # punctuation is kept, exactly as the papers score


def test_other_normalisers():
    assert NORMALIZERS["basic"].words("Well-known, isn\u2019t it?") == ["well", "known", "isn't", "it"]
    assert NORMALIZERS["none"].words("Hello, World") == ["Hello,", "World"]
    assert NORMALIZERS["whisper-en"].words("Mr. Smith won't pay twenty five colours") == [
        "mister",
        "smith",
        "will",
        "not",
        "pay",
        "25",
        "colors",
    ]
    report = score_texts(["i will not pay 25"], ["I won't pay twenty-five"], normalizer="whisper-en")
    assert report.systems[0].wer == 0


def test_unknown_normaliser():
    with pytest.raises(UsageError, match="unknown normaliser 'fancy'"):
        score_texts(["a"], ["a"], normalizer="fancy")


words = st.lists(st.sampled_from(["a", "b", "c", "d", "the", "cat"]), max_size=12)


@settings(max_examples=60, deadline=None)
@given(st.lists(words, min_size=1, max_size=8))
def test_identical_text_scores_zero(utterances):
    texts = [" ".join(u) for u in utterances]
    system = score_texts(texts, texts).systems[0]
    assert system.words.errors == 0 and system.characters.errors == 0
    if system.words.reference_length:
        assert system.wer == 0


@settings(max_examples=40, deadline=None)
@given(st.lists(st.sampled_from(["x", "y", "z"]), min_size=1, max_size=20))
def test_n_insertions_into_an_empty_reference_are_n_edits(inserted):
    report = score_texts([" ".join(inserted), "a b"], ["", "a b"])
    system = report.systems[0]
    assert system.words.insertions == len(inserted) == system.words.errors
    assert system.wer == pytest.approx(len(inserted) / 2)
    assert report.empty_references == 1


@settings(max_examples=80, deadline=None)
@given(st.lists(st.tuples(words, words), min_size=1, max_size=8))
def test_corpus_wer_equals_the_official_total_edits_over_total_words(pairs):
    refs = [" ".join(r) for r, _ in pairs]
    hyps = [" ".join(h) for _, h in pairs]
    system = score_texts(hyps, refs).systems[0]
    edits = sum(levenshtein(r.lower().split(), h.lower().split()) for r, h in zip(refs, hyps))
    assert system.words.errors == edits
    assert system.words.reference_length == sum(len(r.split()) for r in refs)
    for utterance in system.utterances:
        assert utterance.counts.reference_length == len(utterance.reference)
        assert utterance.counts.hits + utterance.counts.substitutions + utterance.counts.insertions == len(utterance.hypothesis)


def test_all_empty_references_do_not_crash_and_warn():
    report = score_texts(["a b", ""], ["", ""])
    system = report.systems[0]
    assert system.wer is None and system.words.insertions == 2
    assert system.mean_utterance_wer is None
    assert any("WER is undefined" in w for w in report.warnings)


def test_empty_reference_warning_counts_its_insertions():
    report = score_texts(["a b c", "x"], ["", "x"])
    assert report.systems[0].wer == 3.0
    assert report.warnings == [
        "1 reference utterance is empty: 3 hypothesis words opposite it count as insertions in the corpus WER; "
        "the mean utterance WER leaves it out"
    ]


def test_pairing_by_id_ignores_order(write):
    ref = write("ref.txt", "u1 a b\nu2 c d\n")
    hyp = write("hyp.trn", "c d (u2)\na x (u1)\n")
    report = score(hyp, ref)
    assert report.pairing == "id"
    assert [u.id for u in report.systems[0].utterances] == ["u1", "u2"]
    assert report.systems[0].words.errors == 1


def test_id_mismatch_lists_ids_and_counts(write):
    ref = write("ref.txt", "".join(f"u{i} w\n" for i in range(10)))
    hyp = write("hyp.txt", "".join(f"u{i} w\n" for i in range(3, 12)))
    with pytest.raises(InputError) as info:
        score(hyp, ref)
    message = str(info.value)
    assert "3 of 10 reference ids have no hypothesis (u0, u1, u2)" in message
    assert "2 hypothesis ids are not in the reference (u10, u11)" in message
    assert "pass allow_missing to score the 7 common ids" in message
    assert "pass --allow-missing to score the 7 common ids" in cli_message(info.value)
    assert info.value.code == "E_ID_MISMATCH" and exit_code(info.value) == 2


def test_allow_missing_scores_common_ids_and_reports_the_rest(write):
    ref = write("ref.txt", "u1 a\nu2 b\nu3 c\n")
    hyp = write("hyp.txt", "u1 a\nu3 x\nu9 z\n")
    report = score(hyp, ref, allow_missing=True)
    assert [u.id for u in report.systems[0].utterances] == ["u1", "u3"]
    assert report.missing == ["u2"] and report.extra == ["u9"]
    assert report.systems[0].wer == pytest.approx(1 / 2)
    assert "left out 1 reference id without a hypothesis and ignored 1 hypothesis id" in report.warnings[-1]


def test_line_count_mismatch_suggests_the_fix(write):
    with pytest.raises(InputError, match="has 2 utterances but .* has 3, and they are paired by line") as info:
        score(write("h.txt", "a\nb\n"), write("r.txt", "a\nb\nc\n"))
    assert info.value.code == "E_COUNT_MISMATCH"
    with pytest.raises(InputError, match="pass join to score"):
        score(
            write("talk.srt", "1\n00:00:00,000 --> 00:00:01,000\na b\n\n2\n00:00:01,000 --> 00:00:02,000\nc\n"), write("one.txt", "a b c\n")
        )


def test_join_scores_whole_files_as_one_utterance(write):
    srt = write("talk.srt", "1\n00:00:00,000 --> 00:00:01,000\nA b\n\n2\n00:00:01,000 --> 00:00:02,000\nc\n")
    report = score(srt, write("ref.txt", "a b\nc d\n"), join=True)
    assert len(report.systems[0].utterances) == 1
    assert report.systems[0].words.deletions == 1 and report.systems[0].wer == pytest.approx(1 / 4)


def test_mixed_id_and_plain_sides_pair_by_line(write):
    report = score(write("hyp.txt", "a b\nc\n"), write("ref", "utt_1 a b\nutt_2 d\n"))
    assert report.pairing == "line"
    assert [u.id for u in report.systems[0].utterances] == ["utt_1", "utt_2"]


def test_empty_reference_file_is_an_error(write):
    with pytest.raises(InputError, match="no utterances to score"):
        score(write("h.txt", ""), write("r.txt", ""))


def test_bootstrap_interval_is_reproducible_and_brackets_the_estimate():
    refs = [f"w{i} a b c d" for i in range(60)]
    hyps = [("x" if i % 3 == 0 else f"w{i}") + " a b c d" for i in range(60)]
    first = score_texts(hyps, refs, confidence=True, seed=7).systems[0]
    second = score_texts(hyps, refs, confidence=True, seed=7).systems[0]
    assert first.interval == second.interval
    assert first.interval.low < first.wer < first.interval.high
    assert first.interval.samples == 1000 and first.interval.level == 0.95
    other_seed = score_texts(hyps, refs, confidence=True, seed=8).systems[0]
    assert other_seed.interval != first.interval


def test_paired_bootstrap_identical_systems_give_p_one(write):
    ref = write("ref.txt", "\n".join(f"a b c {i}" for i in range(30)) + "\n")
    hyp = write("hyp.txt", "\n".join(f"a x c {i}" for i in range(30)) + "\n")
    report = score(hyp, ref, compare=hyp)
    assert report.comparison.p_value == 1.0 and report.comparison.delta == 0


def test_paired_bootstrap_detects_a_clearly_worse_system(write):
    ref = write("ref.txt", "\n".join(f"a b c {i}" for i in range(40)) + "\n")
    good = write("good.txt", "\n".join(f"a b c {i}" if i % 10 else f"a b x {i}" for i in range(40)) + "\n")
    bad = write("bad.txt", "\n".join(f"a y x {i}" for i in range(40)) + "\n")
    report = score(good, ref, compare=bad)
    assert report.comparison.delta == pytest.approx((80 - 4) / 160)
    assert report.comparison.p_value < 0.01
    assert report.comparison.interval.low > 0


@settings(max_examples=80, deadline=None)
@given(st.lists(st.tuples(words, words), min_size=1, max_size=8))
def test_counts_and_alignments_equal_jiwers(pairs):
    # jiwer.process_words/process_characters computed these before; scoring now aligns pair by pair.
    import jiwer

    refs = [" ".join(r).lower() for r, _ in pairs]
    hyps = [" ".join(h).lower() for _, h in pairs]
    system = score_texts(hyps, refs).systems[0]
    jiwer_words, jiwer_characters = jiwer.process_words(refs, hyps), jiwer.process_characters(refs, hyps)
    for measured, expected in [(system.words, jiwer_words), (system.characters, jiwer_characters)]:
        assert (measured.hits, measured.substitutions, measured.deletions, measured.insertions) == (
            expected.hits,
            expected.substitutions,
            expected.deletions,
            expected.insertions,
        )
    assert [u.alignment for u in system.utterances] == jiwer_words.alignments


def test_an_utterance_too_long_to_align_is_a_one_line_error(monkeypatch):
    from omniavsr_cli.scoring import scorer

    monkeypatch.setattr(scorer, "MAX_ALIGNMENT_PAIRS", 100)
    with pytest.raises(InputError, match=r"<hypotheses>: utterance 2 is too long to align \(11 characters against 11 in the") as error:
        score_texts(["a b", "hello world"], ["a c", "hello there"])
    assert error.value.code == "E_TOO_LONG"


def test_no_process_outlives_a_killed_score(write):
    # A character-alignment worker once kept running after its parent was killed, then blocked forever
    # holding gigabytes. Kill score mid-run and check that nothing it started survives.
    import contextlib
    import subprocess
    import sys

    import psutil

    lines = 6000  # above the size at which the worker used to start
    ref = write("ref.txt", "".join(f"utt{i} the cat sat on the mat number {i}\n" for i in range(lines)))
    hyp = write("hyp.txt", "".join(f"utt{i} a cat sat on mat number {i} today\n" for i in range(lines)))
    parent = psutil.Popen([sys.executable, "-m", "omniavsr_cli", "score", str(hyp), str(ref)], stdout=subprocess.DEVNULL)
    started = []
    try:
        while parent.poll() is None and not started:
            try:
                started = parent.children(recursive=True)
            except psutil.NoSuchProcess:
                break
        with contextlib.suppress(psutil.NoSuchProcess):  # it may have finished: then nothing must be left either
            parent.kill()
        parent.wait()
        _, alive = psutil.wait_procs(started, timeout=5)
        assert not alive
    finally:
        for process in started:
            if process.is_running():
                process.kill()

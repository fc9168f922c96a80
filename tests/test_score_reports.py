"""What omniavsr score prints: summary, per-utterance, sclite-style alignment and the JSON schema."""

import io
import json
from importlib.resources import files

import jsonschema
import pytest
from helpers import REPO, run_cli

from omniavsr_cli.scoring import report_dict, score, score_texts
from omniavsr_cli.scoring.reports import alignment_lines, render_alignment, render_summary, render_utterances

SCHEMA = json.loads(files("omniavsr_cli.scoring").joinpath("score-report.schema.json").read_text())


def test_alignment_is_sclite_style():
    report = score_texts(["the cat is sit on"], ["the cat sat on the"])
    assert alignment_lines(report.systems[0].utterances[0]) == [
        "id: (1)",
        "Scores: (#C #S #D #I) 3 1 1 1",
        "REF:  the cat *** sat on the",
        "HYP:  the cat is  sit on ***",
        "Eval:         I   S      D",
        "",
    ]


def test_alignment_of_a_substitution_and_a_deletion_exactly():
    report = score_texts(["a x c"], ["a b c d"])
    assert alignment_lines(report.systems[0].utterances[0])[1:5] == [
        "Scores: (#C #S #D #I) 2 1 1 0",
        "REF:  a b c d",
        "HYP:  a x c ***",
        "Eval:   S   D",
    ]


def test_utterance_report_is_sorted_by_errors():
    report = score_texts(["a b", "x y z", "a x"], ["a b", "a b c", "a b"])
    out = io.StringIO()
    render_utterances(report, out)
    rows = [line.split("\t") for line in out.getvalue().splitlines()[2:]]
    assert [row[0] for row in rows] == ["2", "3", "1"]
    assert [row[1] for row in rows] == ["3", "1", "0"]
    assert rows[0][-2:] == ["a b c", "x y z"]


def test_plain_summary_names_normaliser_and_aggregation():
    report = score_texts(["a x"], ["a b"])
    out = io.StringIO()
    render_summary(report, out, rich_output=False)
    text = out.getvalue()
    assert "normaliser:" in text and "lrs3: lowercase, split on whitespace" in text
    assert "WER:" in text and "50.00 %" in text
    assert "mean utterance WER:" in text and "not the corpus WER" in text
    assert "\x1b[" not in text  # no terminal escapes when piped


def test_rich_summary_renders_the_same_rows():
    report = score_texts(["a x"], ["a b"])
    out = io.StringIO()
    render_summary(report, out, rich_output=True)
    assert "omniavsr score" in out.getvalue() and "50.00 %" in out.getvalue()


def test_json_report_matches_its_schema_and_the_numbers(write):
    ref = write("ref.txt", "u1 a b c\nu2\nu3 d e\n")
    hyp = write("hyp.trn", "a x c (u1)\nextra (u2)\n(u3)\n")
    hyp2 = write("hyp2.trn", "a b c (u1)\n(u2)\nd e (u3)\n")
    document = report_dict(score(hyp, ref, compare=hyp2, confidence=True, bootstrap_samples=200))
    jsonschema.validate(document, SCHEMA)
    assert document["schema"] == "omniavsr.score.v1"
    assert document["pairing"] == "id" and document["empty_references"] == 1
    first = document["systems"][0]
    assert first["wer"]["errors"] == 4 and first["wer"]["reference_words"] == 5  # 1 sub, 2 del, 1 ins
    assert first["wer"]["value"] == pytest.approx(0.8)
    assert first["wer"]["ci"]["samples"] == 200
    assert [u["id"] for u in first["utterances"]] == ["u1", "u2", "u3"]
    assert first["utterances"][1]["wer"] is None
    assert document["comparison"]["delta_wer"] == pytest.approx(-0.8)


def test_schema_rejects_a_broken_report():
    document = report_dict(score_texts(["a"], ["a"]))
    del document["systems"][0]["wer"]["errors"]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(document, SCHEMA)


def test_cli_json_goes_to_stdout_and_warnings_to_stderr(write):
    result = run_cli("score", str(write("h.txt", "a\nb c\n")), str(write("r.txt", "a\n\n")), "--report", "json")
    assert result.returncode == 0
    document = json.loads(result.stdout)
    jsonschema.validate(document, SCHEMA)
    assert document["systems"][0]["wer"]["insertions"] == 2
    assert b"omniavsr: warning: 1 reference utterance is empty: 2 hypothesis words opposite it" in result.stderr


def test_cli_reads_hypothesis_from_stdin(write):
    result = run_cli("score", "-", str(write("r.txt", "a b\n")), "--report", "json", input=b"a x\n")
    assert result.returncode == 0
    assert json.loads(result.stdout)["systems"][0]["wer"]["value"] == 0.5


def test_cli_every_report_on_the_bundled_examples():
    args = ("score", "examples/score/system-a.txt", "examples/score/reference.txt")
    summary = run_cli(*args)
    assert summary.returncode == 0 and b"normaliser:" in summary.stdout
    align = run_cli(*args, "--report", "align")
    assert b"REF:  and so we started to look at the data" in align.stdout
    assert b"HYP:  and so we started to look at *** data" in align.stdout
    utt = run_cli(*args, "--report", "utt")
    assert utt.stdout.splitlines()[2].split(b"\t")[1] == b"2"  # the worst utterance comes first
    compared = run_cli(*args, "--compare", "examples/score/system-b.txt", "--ci")
    assert compared.returncode == 0 and b"paired bootstrap:" in compared.stdout
    assert (REPO / "examples/score/reference.txt").read_text().count("\n") == 6


@pytest.mark.parametrize(
    "extra, message",
    [
        (("--report", "bogus"), b"unknown report 'bogus'"),
        (("--normalizer", "fancy"), b"unknown normaliser 'fancy'"),
        (("--format", "xml"), b"unknown transcript format 'xml'"),
    ],
)
def test_cli_bad_choices_are_one_line_usage_errors(write, extra, message):
    result = run_cli("score", str(write("h.txt", "a\n")), str(write("r.txt", "a\n")), *extra)
    assert result.returncode == 2 and message in result.stderr and result.stderr.count(b"\n") == 1


def test_cli_non_utf8_and_id_mismatch_exit_codes(write):
    bad = run_cli("score", str(write("h.txt", b"\xff\n")), str(write("r.txt", "a\n")))
    assert bad.returncode == 2 and b"h.txt:1: not valid UTF-8" in bad.stderr and b"Traceback" not in bad.stderr
    mismatch = run_cli("score", str(write("h2.txt", "u1 a\n")), str(write("r2.txt", "u2 a\n")))
    assert mismatch.returncode == 2 and b"pass --allow-missing" in mismatch.stderr


def test_render_alignment_covers_every_utterance():
    report = score_texts(["a", "b"], ["a", "c"])
    out = io.StringIO()
    render_alignment(report, out)
    assert out.getvalue().count("Scores:") == 2

"""Customer guardrail files (issue 14, section 4): parsed and validated without Django, every
problem named by its path; hostile files (aliases, deep nesting, NUL, huge, not UTF-8) are
refused with one reason, never an exception."""

from pathlib import Path

import pytest

from recsys_experiments.lib.errors import InvalidInput
from recsys_experiments.lib.guardrail_files import (
    MAX_FILE_BYTES,
    GuardrailFile,
    evaluate_on_results,
    load_guardrail_file,
    parse_guardrail_file,
    verdict,
)

DOCS = Path(__file__).resolve().parents[3] / "docs" / "fixtures" / "guardrails"
HEAD = "customer: acme\n"
LIKE = "{metric: like_rate, max_drop: 0.02}"

BILLION_LAUGHS = (
    'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
    "b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\n"
    "c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\n"
    "d: [*c,*c,*c,*c,*c,*c,*c,*c,*c]\n"
)


@pytest.mark.parametrize(
    ("text", "path", "reason"),
    [
        # by path, in the lib/guardrails format
        (
            HEAD + f"guardrails: [{LIKE}, {LIKE.replace('like', 'dislike')}, "
            "{metric: watchlist_rate, max_drop: lots}]",
            "guardrails[2].max_drop",
            "must be a number from 0",
        ),
        (HEAD + "guardrails: [{metric: orphan_outcomes, max_share: 1.5}]",
         "guardrails[0].max_share", "must be a number from 0 to 1"),
        (HEAD + "guardrails: [{metric: like_rate, max_drop: -0.1}]",
         "guardrails[0].max_drop", "must be a number from 0"),
        (HEAD + "guardrails: [{metric: like_rate, max_drop: true}]",
         "guardrails[0].max_drop", "must be a number"),
        (HEAD + "guardrails: [{metric: like_rate, max_drop: .nan}]",
         "guardrails[0].max_drop", "must be a number"),
        (HEAD + "guardrails: [{metric: like_rate, max_drop: 1.0e400}]",
         "guardrails[0].max_drop", "must be a number"),
        (HEAD + "guardrails: [{metric: like_rate, max_drop: '0.02'}]",
         "guardrails[0].max_drop", "must be a number"),
        (HEAD + f"guardrails: [{LIKE}, {{metric: love_rate, max_drop: 0.1}}]",
         "guardrails[1].metric", "must be one of like_rate"),
        (HEAD + "guardrails: [{metric: like_rate, max_drop: 0.1, max_rise: 0.1}]",
         "guardrails[0]", "needs exactly one of max_drop, max_rise"),
        (HEAD + "guardrails: [{metric: like_rate, max_share: 0.1}]",
         "guardrails[0]", "needs exactly one of max_drop, max_rise"),
        (HEAD + "guardrails: [like_rate]", "guardrails[0]", "must be an object"),
        (HEAD + f"guardrails: [{LIKE}, {{metric: like_rate, max_drop: 0.5}}]",
         "guardrails[1]", "repeats like_rate max_drop"),
        (HEAD + "guardrails: {like_rate: 0.02}", "guardrails", "must be a list of at most 20"),
        (HEAD + "guardrails: [" + ", ".join([LIKE.replace("0.02", str(n)) for n in range(21)])
         + "]", "guardrails", "must be a list of at most 20"),
        (HEAD, "guardrails", "is required"),
        (HEAD + "guardrails: []", "guardrails", "declares no guardrail at all"),
        # the other fields
        (f"guardrails: [{LIKE}]", "customer", "must be a slug"),
        (f"customer: Media Catalog\nguardrails: [{LIKE}]", "customer", "must be a slug"),
        (f"customer: 42\nguardrails: [{LIKE}]", "customer", "must be a slug"),
        (HEAD + f"guardrails: [{LIKE}]\nowner: me", "owner", "is not a guardrail file field"),
        (HEAD + f"guardrails: [{LIKE}]\n7: x", "7", "is not a guardrail file field"),
        (HEAD + f"guardrails: [{LIKE}]\ndescription: [a]", "description", "must be text"),
        (HEAD + f"guardrails: [{LIKE}]\nsrm: maybe", "srm", "must be one of fail, warn"),
        (HEAD + f"guardrails: [{LIKE}]\nsrm: [fail]", "srm", "must be one of fail, warn"),
        (HEAD + f"guardrails: [{LIKE}]\nnot_enough_data: true",
         "not_enough_data", "must be one of fail, pass"),
        (HEAD + f"guardrails: [{LIKE}]\nexperiments: [a, b]", "experiments", "must be a mapping"),
        (HEAD + f"guardrails: [{LIKE}]\nexperiments: {{Bad-Key: [{LIKE}]}}",
         "experiments.Bad-Key", "is not an experiment key"),
        (HEAD + f"guardrails: [{LIKE}]\nexperiments: {{blend: {LIKE}}}",
         "experiments.blend", "must be a list"),
        (HEAD + f"guardrails: [{LIKE}]\nexperiments: {{blend: [{LIKE}, "
         "{metric: dislike_rate, max_rise: x}]}",
         "experiments.blend[1].max_rise", "must be a number from 0"),
        # not a guardrail file at all, or a hostile one
        ("customer: [unclosed", "file", "is not valid YAML: line 1: expected"),
        ("- a\n- b\n", "file", "must be a YAML mapping"),
        ("", "file", "must be a YAML mapping"),
        ("just text", "file", "must be a YAML mapping"),
        (HEAD + "guardrails: [{metric: like_rate\x00, max_drop: 0.1}]", "file", "NUL character"),
        (HEAD + "guardrails: [{metric: like_rate, max_drop: 0.1}]\x00", "file", "NUL character"),
        (HEAD + "guardrails: [\ud800]", "file", "lone surrogate"),
        (BILLION_LAUGHS, "file", "line 1: anchors and aliases are not allowed"),
        (HEAD + "x: &one 1\ny: *one", "file", "line 2: anchors and aliases are not allowed"),
        (HEAD + "guardrails: " + "[" * 5000 + "]" * 5000, "file", "nested too deeply"),
        (HEAD + "guardrails: " + "[" * 50_000, "file", "nested too deeply"),
        (HEAD + "customer: other", "file", "line 2: duplicate key 'customer'"),
        (HEAD + "? [a, b]\n: 1", "file", "line 2: a key must be text"),
        (HEAD + "x: !!python/object/apply:os.system [ls]", "file", "is not valid YAML"),
        ("a: " + "x" * (MAX_FILE_BYTES + 1), "file", f"is larger than {MAX_FILE_BYTES} bytes"),
    ],
)  # fmt: skip
def test_a_bad_file_names_the_path_and_the_reason(text, path, reason):
    with pytest.raises(InvalidInput) as raised:
        parse_guardrail_file(text)

    assert path in raised.value.errors, raised.value.errors
    assert any(reason in said for said in raised.value.errors[path]), raised.value.errors
    assert "\n" not in raised.value.message and "\x00" not in raised.value.message


def test_many_problems_give_a_bounded_answer():
    text = HEAD + f"guardrails: [{LIKE}]\n" + "".join(f"k{n}: 1\n" for n in range(500))

    with pytest.raises(InvalidInput) as raised:
        parse_guardrail_file(text)

    assert len(raised.value.errors) == 51
    assert raised.value.errors["body"] == ["and 450 more problems not listed"]


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"customer: acme\nguardrails: [\xff\xfe]", "is not UTF-8 text (byte 28)"),
        (b"#" * (MAX_FILE_BYTES + 1), f"is larger than {MAX_FILE_BYTES} bytes"),
    ],
)
def test_a_hostile_file_on_disk_is_refused(tmp_path, content, reason):
    path = tmp_path / "g.yml"
    path.write_bytes(content)

    with pytest.raises(InvalidInput) as raised:
        load_guardrail_file(path)

    assert raised.value.errors == {"file": [reason]}


def test_a_missing_file_or_a_directory_is_one_reason(tmp_path):
    with pytest.raises(InvalidInput, match=r"file: cannot read .*missing\.yml: No such file"):
        load_guardrail_file(tmp_path / "missing.yml")
    with pytest.raises(InvalidInput, match="is a directory, not a file"):
        load_guardrail_file(tmp_path)


def test_the_documented_examples_load():
    media = load_guardrail_file(DOCS / "media_catalog.yml")
    strict = load_guardrail_file(DOCS / "media_catalog_strict.yml")

    assert media.customer == strict.customer == "media_catalog"
    assert (media.srm, media.not_enough_data) == ("warn", "pass")
    assert (strict.srm, strict.not_enough_data) == ("fail", "fail")
    assert media.path.endswith("media_catalog.yml")


def test_an_experiments_entry_replaces_the_same_limit_and_adds_the_rest():
    guardrail_file = parse_guardrail_file(
        HEAD
        + "guardrails:\n"
        + "  - {metric: like_rate, max_drop: 0.02}\n"
        + "  - {metric: dislike_rate, max_rise: 0.03}\n"
        + "experiments:\n"
        + "  blend:\n"
        + "    - {metric: detail_open_rate, max_drop: 0.05}\n"
        + "    - {metric: like_rate, max_drop: 0.05}\n"
        + "    - {metric: like_rate, max_rise: 0.5}\n"
        + "  only_defaults: []\n"
    )

    assert guardrail_file.guardrails_for("blend") == [
        {"metric": "like_rate", "max_drop": 0.05},  # in place of the file-wide one
        {"metric": "dislike_rate", "max_rise": 0.03},
        {"metric": "detail_open_rate", "max_drop": 0.05},
        {"metric": "like_rate", "max_rise": 0.5},
    ]
    defaults = [
        {"metric": "like_rate", "max_drop": 0.02},
        {"metric": "dislike_rate", "max_rise": 0.03},
    ]
    assert guardrail_file.guardrails_for("only_defaults") == defaults
    assert guardrail_file.guardrails_for("not_in_the_file") == defaults
    # Each call hands out copies: a caller cannot change the file.
    guardrail_file.guardrails_for("blend")[0]["max_drop"] = 9
    assert guardrail_file.guardrails_for("blend")[0]["max_drop"] == 0.05


def test_a_file_of_only_per_experiment_guardrails_is_valid():
    guardrail_file = parse_guardrail_file(
        HEAD + f"guardrails: []\nexperiments:\n  blend: [{LIKE}]\nsrm: fail\n"
    )

    assert guardrail_file.guardrails_for("blend") == [{"metric": "like_rate", "max_drop": 0.02}]
    assert guardrail_file.guardrails_for("other") == []
    assert guardrail_file.srm == "fail" and guardrail_file.not_enough_data == "pass"


def results_with(guardrails, *, flagged=False):
    return {
        "guardrails": guardrails,
        "srm": {"flagged": flagged, "p_value": 1e-5 if flagged else 0.4},
    }


def judged(status, source="file"):
    return {
        "metric": "like_rate",
        "max_drop": 0.02,
        "variant": "b",
        "status": status,
        "source": source,
    }


@pytest.mark.parametrize(
    ("srm", "not_enough_data", "results", "passed", "failures", "warnings"),
    [
        ("warn", "pass", results_with([judged("passed")]), True, 0, 0),
        ("warn", "pass", results_with([judged("failed")]), False, 1, 0),
        # the experiment's own guardrails are not the file's to judge
        ("warn", "pass", results_with([judged("failed", "experiment")]), True, 0, 0),
        ("warn", "pass", results_with([judged("passed")], flagged=True), True, 0, 1),
        ("fail", "pass", results_with([judged("passed")], flagged=True), False, 1, 0),
        ("warn", "pass", results_with([judged("not enough data")]), True, 0, 1),
        ("warn", "fail", results_with([judged("not enough data")]), False, 1, 0),
    ],
)  # fmt: skip
def test_the_verdict_follows_the_file_policy(
    srm, not_enough_data, results, passed, failures, warnings
):
    policy = GuardrailFile(customer="acme", guardrails=[], srm=srm, not_enough_data=not_enough_data)

    result = verdict(results, policy)

    assert result["passed"] is passed
    assert (len(result["failures"]), len(result["warnings"])) == (failures, warnings)


def test_stored_results_are_judged_on_their_metric_rows_and_stored_guardrails():
    results = {
        "control": "control",
        "variants": [{"variant": "control"}, {"variant": "b"}],
        "metrics": [
            {"metric": "like_rate", "variant": "b", "abs_lift": -0.1, "abs_ci_low": -0.15,
             "abs_ci_high": -0.05},
        ],
        "guardrails": [
            {"metric": "mean_rating", "variant": "b", "value": 0.2, "ci_low": 0.1,
             "ci_high": 0.3, "max_rise": 1},
            {"metric": "orphan_outcomes", "variant": None, "value": 0.04, "max_share": 0.1},
        ],
    }  # fmt: skip

    judged_rows = evaluate_on_results(
        results,
        [
            {"metric": "like_rate", "max_drop": 0.02},
            {"metric": "mean_rating", "max_rise": 0.05},
            {"metric": "orphan_outcomes", "max_share": 0.03},
            {"metric": "dislike_rate", "max_rise": 0.05},
            {"metric": "untagged_impressions", "max_share": 0.05},
        ],
    )

    assert [(g["metric"], g["status"]) for g in judged_rows] == [
        ("like_rate", "failed"),  # the whole interval below -0.02
        ("mean_rating", "failed"),  # from the stored guardrail: above +0.05
        ("orphan_outcomes", "failed"),  # the stored share 0.04 > 0.03
        ("dislike_rate", "not enough data"),
        ("untagged_impressions", "not enough data"),
    ]
    assert judged_rows[3]["reason"] == "the bundle's results hold no row of this metric"
    assert judged_rows[4]["reason"] == "the bundle's results hold no value of this share"
    assert {g["source"] for g in judged_rows} == {"file"}

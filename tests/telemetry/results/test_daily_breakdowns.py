"""The source, position and genre daily views per variant (issue 16 §5): the SQL views, the
results page tabs and the metrics API (`?view=`) over the results window."""

import re
from datetime import timedelta
from html import unescape

import pytest
from django.db import connection
from django.utils import timezone

from telemetry.results.analysis import experiment_results
from telemetry.results.selectors import experiment_daily_breakdown
from tests.factories.experiments import ActiveExperimentFactory
from tests.helpers import api_error_fields, history_seq_scans
from tests.telemetry.results.test_phases_and_window import phase
from tests.telemetry.test_daily_views import dataset, fill_history, rows  # noqa: F401

COUNTS = ("impressions", "likes", "dislikes", "watchlists", "ratings", "detail_opens")
VIEWS = {
    "source": ("rec_variant_source_daily_metrics_v1", "rec_source_daily_metrics_v1"),
    "position": ("rec_variant_position_daily_metrics_v1", "rec_position_daily_metrics_v1"),
    "genre": ("rec_variant_genre_daily_metrics_v1", "rec_genre_daily_metrics_v1"),
}


@pytest.fixture
def exp_a(dataset):  # noqa: F811
    """The dataset's exp_a (control: today cf + popularity, 3 days ago cf; treatment: today
    genre), running for 5 days."""
    started = timezone.now() - timedelta(days=5)
    experiment = ActiveExperimentFactory(key="exp_a", started_at=started)
    phase(experiment, 1, started)
    return experiment


def view_totals(view, key, first="current_date - 30", last="current_date"):
    """Per variant and category, the view's counts summed over the days (the tabs' totals)."""
    sql_view, _ = VIEWS[view]
    sums = ", ".join(f"sum({name})::bigint as {name}" for name in COUNTS)
    return rows(
        f"select variant, {view} as category, {sums} from {sql_view} "
        f"where experiment_key = %s and day between {first} and {last} "
        f"group by 1, 2 order by 1, 2",
        [key],
    )


def test_the_per_variant_views_on_hand_numbers(exp_a):
    source = rows(
        "select day = current_date as today, variant, source, impressions, users, likes, "
        "dislikes, ratings, like_rate, dislike_rate from rec_variant_source_daily_metrics_v1 "
        "where experiment_key = 'exp_a' order by 1, 2, 3"
    )
    position = rows(
        "select variant, position, impressions, likes, detail_opens, detail_open_rate "
        "from rec_variant_position_daily_metrics_v1 "
        "where experiment_key = 'exp_a' and day = current_date order by 1, 2"
    )

    assert [tuple(row.values()) for row in source] == [
        (False, "control", "cf", 1, 1, 0, 0, 0, 0.0, 0.0),  # three days ago
        (True, "control", "cf", 1, 1, 1, 0, 1, 1.0, 0.0),
        (True, "control", "popularity", 1, 1, 0, 1, 0, 0.0, 1.0),
        (True, "treatment", "genre", 1, 1, 1, 0, 0, 1.0, 0.0),
    ]
    assert [tuple(row.values()) for row in position] == [
        ("control", 1, 1, 1, 0, 0.0),
        ("control", 2, 1, 0, 0, 0.0),
        ("treatment", 1, 1, 1, 1, 1.0),
    ]
    assert view_totals("genre", "exp_a") == [
        {"variant": "control", "category": "comedy", "impressions": 2, "likes": 1,
         "dislikes": 0, "watchlists": 0, "ratings": 1, "detail_opens": 0},
        {"variant": "control", "category": "drama", "impressions": 2, "likes": 1,
         "dislikes": 0, "watchlists": 0, "ratings": 1, "detail_opens": 0},
        {"variant": "control", "category": "horror", "impressions": 1, "likes": 0,
         "dislikes": 1, "watchlists": 0, "ratings": 0, "detail_opens": 0},
        {"variant": "treatment", "category": "comedy", "impressions": 1, "likes": 1,
         "dislikes": 0, "watchlists": 0, "ratings": 0, "detail_opens": 1},
        {"variant": "treatment", "category": "drama", "impressions": 1, "likes": 1,
         "dislikes": 0, "watchlists": 0, "ratings": 0, "detail_opens": 1},
    ]  # fmt: skip


@pytest.mark.parametrize("view", list(VIEWS))
def test_split_by_variant_the_views_add_up_to_the_unsplit_ones(exp_a, view):
    # Today every impression carries exp_a: its variants together are the whole day.
    split, whole = VIEWS[view]
    sums = ", ".join(f"sum({name})::bigint as {name}" for name in COUNTS)
    by_variant = rows(
        f"select {view}, {sums} from {split} where experiment_key = 'exp_a' "
        f"and day = current_date group by 1 order by 1"
    )
    unsplit = rows(
        f"select {view}, {', '.join(COUNTS)} from {whole} where day = current_date order by 1"
    )

    assert [tuple(r.values()) for r in by_variant] == [tuple(r.values()) for r in unsplit]


@pytest.mark.parametrize("view", list(VIEWS))
def test_the_selector_reads_the_views_rows_over_the_window(exp_a, view):
    breakdown = experiment_daily_breakdown(exp_a, view, window=experiment_results(exp_a)["window"])
    sql_view, _ = VIEWS[view]
    expected = rows(
        f"select * from {sql_view} where experiment_key = 'exp_a' order by day, variant, {view}"
    )

    assert breakdown["sql_view"] == sql_view
    assert breakdown["to"] == timezone.now().date().isoformat()
    assert [{**row, "day": row["day"]} for row in breakdown["rows"]] == [
        {**{k: v for k, v in row.items() if k != "experiment_key"}, "day": row["day"].isoformat()}
        for row in expected
    ]
    assert [
        {"variant": t["variant"], "category": t[view], **{n: t[n] for n in COUNTS}}
        for t in breakdown["totals"]
    ] == view_totals(view, "exp_a")
    for total in breakdown["totals"]:
        assert total["like_rate"] == total["likes"] / total["impressions"]


def test_an_empty_window_reads_nothing(exp_a):
    window = {"from": "2026-01-01T00:00:00+00:00", "to": "2026-01-01T00:00:00+00:00"}

    breakdown = experiment_daily_breakdown(exp_a, "source", window=window)

    assert (breakdown["rows"], breakdown["totals"], breakdown["from"]) == ([], [], None)


@pytest.mark.parametrize("view", ["source", "position", "genre"])
def test_the_selectors_day_filter_does_not_scan_all_history(db, view):
    fill_history(days=400, per_day=250)  # tagged e=a; a week is under 2% of them
    sql_view, _ = VIEWS[view]

    with connection.cursor() as cursor:
        cursor.execute(
            f"explain select * from {sql_view} where experiment_key = 'e' "
            "and day between current_date - 7 and current_date"
        )
        plan = "\n".join(row[0] for row in cursor.fetchall())

    assert "idx_rec_impressions_day" in plan, plan
    assert history_seq_scans(plan, "rec_impressions") == [], plan


def table(html: str, table_id: str) -> list[list[str]]:
    body = re.search(rf'<table[^>]*id="{table_id}".*?<tbody>(.*?)</tbody>', html, re.S)
    cells = [
        re.findall(r"<td>(.*?)</td>", row, re.S)
        for row in re.findall(r"<tr>(.*?)</tr>", body.group(1), re.S)
    ]
    return [[unescape(re.sub(r"<[^>]+>", "", cell)).strip() for cell in row] for row in cells]


def page(client, staff_user, experiment, query=""):
    client.force_login(staff_user)
    response = client.get(f"/admin/recsys_experiments/experiment/{experiment.pk}/results/{query}")
    assert response.status_code == 200
    return response


@pytest.mark.parametrize("view", list(VIEWS))
def test_each_tab_shows_the_views_numbers_and_charts(exp_a, client, staff_user, view):
    html = page(client, staff_user, exp_a, f"?view={view}").content.decode()

    shown = table(html, "recsys-breakdown-totals")
    expected = view_totals(view, "exp_a")
    assert [cells[:8] for cells in shown] == [[str(v) for v in row.values()] for row in expected]
    assert [cells[8] for cells in shown] == [
        f"{row['likes'] / row['impressions']:.4f}" for row in expected
    ]
    assert f'id="recsys-breakdown-{view}"' in html
    assert html.count('class="recsys-chart"', html.index('id="recsys-breakdown"')) == 2
    tabs = re.search(r'id="recsys-breakdown-tabs">(.*?)</nav>', html, re.S).group(1)
    assert f'<strong class="recsys-tab current" data-view="{view}">' in tabs
    assert tabs.count("<a ") == 2


def test_the_tabs_follow_the_pages_window(exp_a, client, staff_user):
    today = timezone.now().date().isoformat()
    html = page(client, staff_user, exp_a, f"?view=source&from={today}").content.decode()

    # The control impression three days ago is outside the window.
    assert table(html, "recsys-breakdown-totals") == [
        ["control", "cf", "1", "1", "0", "0", "1", "0", "1.0000"],
        ["control", "popularity", "1", "0", "1", "0", "0", "0", "0.0000"],
        ["treatment", "genre", "1", "1", "0", "0", "0", "1", "1.0000"],
    ]
    tabs = re.search(r'id="recsys-breakdown-tabs">(.*?)</nav>', html, re.S).group(1)
    assert f'href="?from={today}&amp;view=position#recsys-breakdown"' in tabs


@pytest.mark.parametrize("bad", ["bogus", "source\x00", "SOURCE", "genre;drop"])
def test_a_bad_tab_is_a_message_and_the_source_view(exp_a, client, staff_user, bad):
    response = page(client, staff_user, exp_a, "?" + f"view={bad}".replace("\x00", "%00"))

    html = response.content.decode()
    assert "view: must be one of source, position, genre; showing the source view" in html.lower()
    assert 'id="recsys-breakdown-source"' in html


def test_the_metrics_api_gives_the_same_breakdown(exp_a, api_client, staff_user):
    api_client.force_authenticate(staff_user)
    url = "/api/v1/admin/experiments/exp_a/metrics"

    plain = api_client.get(url).json()
    body = api_client.get(url, {"view": "genre"}).json()

    assert "breakdown" not in plain
    breakdown = body["breakdown"]
    assert (breakdown["view"], breakdown["category"]) == ("genre", "genre")
    assert breakdown == experiment_daily_breakdown(exp_a, "genre", window=body["window"])
    assert [
        {"variant": t["variant"], "category": t["genre"], **{n: t[n] for n in COUNTS}}
        for t in breakdown["totals"]
    ] == view_totals("genre", "exp_a")


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("view=bogus", "view"),
        ("view=source%00", "view"),
        ("view=%00", "view"),
        ("view=sources", "view"),
        ("view=source&phase=%00", "phase"),
        ("view=source&from=2026-02-30", "from"),
        ("view=source&days=0", "days"),
    ],
)
def test_bad_metrics_parameters_are_400_naming_the_field(
    exp_a, api_client, staff_user, query, field
):
    api_client.force_authenticate(staff_user)

    response = api_client.get(f"/api/v1/admin/experiments/exp_a/metrics?{query}")

    assert response.status_code == 400
    assert field in api_error_fields(response)


def test_the_schema_documents_the_view_parameter_and_the_breakdown(api_client, staff_user):
    api_client.force_authenticate(staff_user)

    schema = api_client.get("/api/schema/", {"format": "json"}).json()

    operation = schema["paths"]["/api/v1/admin/experiments/{key}/metrics"]["get"]
    [view] = [p for p in operation["parameters"] if p["name"] == "view"]
    assert view["schema"]["enum"] == ["genre", "position", "source"] or view["schema"]["enum"] == [
        "source", "position", "genre"
    ]  # fmt: skip
    assert "`view`" in operation["responses"]["400"]["description"]
    assert "breakdown" in str(schema["components"]["schemas"]["ExperimentMetrics"])

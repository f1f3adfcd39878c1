"""deploy/prometheus-rules.yml and deploy/grafana-dashboard.json: valid, and about metrics /metrics really exports.

promtool (Debian's `prometheus` package) checks the rules and runs their unit
tests (deploy/prometheus-rules.test.yml) when it is installed; the Python
checks run everywhere.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from quotas.tests.test_metrics import store_both

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
RULES = DEPLOY / "prometheus-rules.yml"
RULES_TEST = DEPLOY / "prometheus-rules.test.yml"
DASHBOARD = DEPLOY / "grafana-dashboard.json"
ALERTS = {"SyntrackQuotaRunsOutBeforeReset", "SyntrackQuotaAbove95Percent", "SyntrackPollerStale"}
# The PromQL words the expressions may use besides metric and label names.
PROMQL_WORDS = {"on", "by", "or", "and", "unless", "sum", "increase", "rate", "time", "max", "min"}
# Labels Prometheus adds to every scraped series.
TARGET_LABELS = {"instance", "job"}
PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None, reason="promtool is not installed (Debian: apt-get install -y prometheus)"
)


@pytest.fixture
def exported(client, providers_configured, settings) -> tuple[set[str], set[str]]:
    """The sample names and label names a real scrape has, with a quota projected to run out."""
    settings.SYNTRACK_METRICS_PUBLIC = True
    store_both()
    response = client.get("/metrics")
    samples = [s for family in text_string_to_metric_families(response.content.decode()) for s in family.samples]
    return {s.name for s in samples}, {label for s in samples for label in s.labels}


def alert_rules() -> list[dict]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def dashboard_queries() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    queries = [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    queries += [v["definition"] for v in dashboard["templating"]["list"] if v["type"] == "query"]
    return queries


def unknown_names(expr: str, metric_names: set[str], label_names: set[str]) -> set[str]:
    """Identifiers of ``expr`` that are neither exported metrics or labels nor PromQL."""
    bare = re.sub(r'"[^"]*"|\[[^\]]*\]', "", expr)  # strings (label values, $variables) and ranges
    bare = re.sub(r"label_values\((\w+), (\w+)\)", r"\1 \2", bare)  # Grafana's variable query
    words = set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", bare))
    return words - metric_names - label_names - TARGET_LABELS - PROMQL_WORDS


@needs_promtool
def test_promtool_accepts_the_rules() -> None:
    result = subprocess.run([PROMTOOL, "check", "rules", str(RULES)], capture_output=True, text=True, timeout=60)

    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(ALERTS)} rules found" in result.stdout


@needs_promtool
def test_each_alert_fires_and_stays_quiet_as_its_unit_test_says() -> None:
    result = subprocess.run(
        [PROMTOOL, "test", "rules", RULES_TEST.name], capture_output=True, text=True, timeout=60, cwd=DEPLOY
    )

    assert result.returncode == 0, result.stdout + result.stderr
    tested = set(re.findall(r"alertname: (\w+)", RULES_TEST.read_text()))
    assert tested == ALERTS


@pytest.mark.django_db
def test_the_alerts_use_only_exported_metrics_and_labels(exported) -> None:
    metric_names, label_names = exported
    rules = alert_rules()

    assert {rule["alert"] for rule in rules} == ALERTS
    for rule in rules:
        used = set(re.findall(r"syntrack_\w+", rule["expr"]))
        assert used and used <= metric_names, rule["alert"]
        assert not unknown_names(rule["expr"], metric_names, label_names), rule["alert"]
        assert rule["labels"]["severity"] in {"warning", "critical"}


@pytest.mark.django_db
def test_the_dashboard_queries_only_exported_metrics_and_labels(exported) -> None:
    metric_names, label_names = exported
    dashboard = json.loads(DASHBOARD.read_text())
    queries = dashboard_queries()

    assert len(queries) >= 7
    for query in queries:
        used = set(re.findall(r"syntrack_\w+", query))
        assert used and used <= metric_names, query
        assert not unknown_names(query, metric_names, label_names), query
    # Importable anywhere: every panel asks the data source chosen in the variable.
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    assert all(panel["datasource"]["uid"] == "${datasource}" for panel in dashboard["panels"])


@pytest.mark.django_db
def test_the_name_check_catches_a_metric_that_does_not_exist(exported) -> None:
    metric_names, label_names = exported

    assert unknown_names('syntrack_quota_used_percent{provider=~"$p"} > 0.9', metric_names, label_names) == {
        "syntrack_quota_used_percent"
    }
    assert unknown_names("sum by (tier) (syntrack_quota_used)", metric_names, label_names) == {"tier"}

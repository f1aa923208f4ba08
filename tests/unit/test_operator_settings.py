"""The operator's settings and the `kopf run` command line its console script builds."""

from __future__ import annotations

import pytest
from ojs_operator import cli
from ojs_operator.settings import Settings, SettingsError


def test_defaults_and_variables():
    assert Settings.from_env({}) == Settings()
    settings = Settings.from_env(
        {
            "OJS_GATEWAY_URL": "http://gw:8080/",
            "OJS_GATEWAY_TOKEN": "s3cret",
            "OJS_NATS_MONITOR_URL": "http://nats:8222",
            "OJS_NAMESPACE": "prod",
            "OJS_OPERATOR_RESYNC_S": "5",
            "OJS_LOG_LEVEL": "DEBUG",
            "KUBECONFIG": "/k",
        }
    )
    assert settings.gateway_url == "http://gw:8080"
    assert settings.gateway_token == "s3cret"
    assert (settings.nats_monitor_url, settings.ojs_namespace) == ("http://nats:8222", "prod")
    assert (settings.resync_s, settings.log_level, settings.kubeconfig) == (5.0, "debug", "/k")


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("OJS_GATEWAY_URL", "gw:8080"),
        ("OJS_NATS_MONITOR_URL", "nats:8222"),
        ("OJS_OPERATOR_RESYNC_S", "0"),
        ("OJS_GATEWAY_TIMEOUT_S", "soon"),
        ("OJS_LOG_LEVEL", "loud"),
    ],
)
def test_bad_values_name_their_variable(name, value):
    with pytest.raises(SettingsError, match=name):
        Settings.from_env({name: value})


def test_console_script_runs_our_handlers_with_json_logs_at_the_configured_level():
    args = cli.kopf_args(["--standalone", "-A"], Settings(log_level="warning"))
    assert args == [
        "run",
        "--module",
        "ojs_operator.handlers",
        "--log-format=json",
        "--quiet",
        "--standalone",
        "-A",
    ]
    assert "--debug" in cli.kopf_args([], Settings(log_level="debug"))


def test_explicit_kopf_logging_options_win():
    args = cli.kopf_args(["--log-format=plain", "--verbose"], Settings(log_level="warning"))
    assert "--log-format=json" not in args
    assert "--quiet" not in args

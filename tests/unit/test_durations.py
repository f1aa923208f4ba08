import pytest

from ojs_nats.model.durations import format_duration_ms, parse_duration_ms


@pytest.mark.parametrize(("text", "ms"), [
    ("PT1S", 1000), ("PT0.5S", 500), ("PT5M", 300_000), ("PT1H30M", 5_400_000),
    ("P1D", 86_400_000), ("P1W", 604_800_000), ("PT2S", 2000), ("P1DT1S", 86_401_000),
])
def test_parse(text, ms):
    assert parse_duration_ms(text) == ms


@pytest.mark.parametrize("bad", ["", "P", "PT", "1S", "PT1", "P1M", "P1Y", "PTS", "-PT1S"])
def test_parse_rejects(bad):
    with pytest.raises(ValueError, match="ISO 8601"):
        parse_duration_ms(bad)


@pytest.mark.parametrize("ms", [500, 1000, 60_000, 5_400_000, 1500])
def test_format_round_trips(ms):
    assert parse_duration_ms(format_duration_ms(ms)) == ms

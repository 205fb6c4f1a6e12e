"""The HTTP-level settings of ``python -m serving start``: defaults, flags and bad values."""
import pytest

from serving.cli import start_settings
from serving.http_limits import EVENT_LOOPS, HttpLimits
from tests.conftest import TAXI_CONFIG


def test_the_default_event_loop_is_uvloop_and_asyncio_is_the_fallback():
    assert HttpLimits().event_loop == "uvloop"
    assert EVENT_LOOPS == ("uvloop", "asyncio")


def test_an_unknown_event_loop_names_the_flag_and_the_choices():
    with pytest.raises(ValueError, match=r"--event_loop: expected one of uvloop, asyncio, got 'tokio'"):
        HttpLimits(event_loop="tokio")


@pytest.mark.parametrize("loop", EVENT_LOOPS)
def test_the_flag_reaches_the_gateway_settings(loop):
    settings = start_settings(["--config", TAXI_CONFIG, "--event_loop", loop, "--head_timeout_seconds", "2.5"])
    assert settings.http.event_loop == loop and settings.http.head_timeout_s == 2.5


def test_the_flag_refuses_a_loop_it_does_not_offer(capsys):
    with pytest.raises(SystemExit):
        start_settings(["--config", TAXI_CONFIG, "--event_loop", "tokio"])
    assert "invalid choice: 'tokio'" in capsys.readouterr().err

"""before_send hooks: scrub, sample or enrich each message in the caller's thread.

A hook gets a copy of the built message and returns it (changed or not) or None to drop
it (``filtered``); a hook that raises drops the event (``hook_error``), never sending it
unscrubbed. The output is validated and size-checked like any message.
"""

from __future__ import annotations

from typing import Any, Callable

import pytest

from rudder_analytics import Client, ConfigurationError, MessageTooLargeError, ValidationError
from rudder_analytics.devserver import DevServer

Make = Callable[..., Client]


def _scrub(message: dict[str, Any]) -> dict[str, Any]:
    message.get("properties", {}).pop("email", None)
    return message


def test_a_hook_scrubs_what_is_sent_and_not_the_callers_data(
    make_client: Make, dataplane: DevServer,
) -> None:
    """The hook's output is what is sent and returned; the caller's dict is untouched."""
    client = make_client(before_send=_scrub)
    properties = {"email": "ada@example.com", "plan": "pro"}
    ok, message = client.track("u", "Signed Up", properties)
    assert ok and "email" not in message["properties"]
    assert properties == {"email": "ada@example.com", "plan": "pro"}
    assert client.flush(timeout=10)
    [event] = dataplane.events()
    assert event["properties"] == {"plan": "pro"}


def test_hooks_apply_in_order_and_none_filters(make_client: Make, dataplane: DevServer) -> None:
    """A list of hooks applies in order; None drops the event as ``filtered`` (on_drop too)."""
    drops: list[str] = []

    def tag(message: dict[str, Any]) -> dict[str, Any]:
        message.setdefault("context", {})["tagged"] = True
        return message

    def sample(message: dict[str, Any]) -> Any:
        return None if message["event"] == "Noise" else message

    client = make_client(before_send=[tag, sample], on_drop=lambda r, m: drops.append(r))
    assert client.track("u", "Noise")[0] is False
    assert client.track("u", "Signal")[0] is True
    assert client.flush(timeout=10) is False  # one event was dropped (filtered)
    assert client.stats()["dropped"]["filtered"] == 1
    assert drops == ["filtered"]
    [event] = dataplane.events()
    assert event["event"] == "Signal" and event["context"]["tagged"] is True


def test_a_raising_hook_drops_and_never_sends_unscrubbed(
    make_client: Make, dataplane: DevServer,
) -> None:
    """A hook that raises drops the event (``hook_error``); nothing unscrubbed is sent."""
    def broken(message: dict[str, Any]) -> dict[str, Any]:
        raise KeyError("oops")

    client = make_client(before_send=broken)
    assert client.track("u", "Secret", {"ssn": "123"})[0] is False
    assert client.flush(timeout=5) is False
    assert client.stats()["dropped"]["hook_error"] == 1
    assert dataplane.count() == 0


def test_hook_output_is_validated_and_size_checked(make_client: Make) -> None:
    """A hook that returns a non-message, removes both ids or bloats the message raises
    the usual typed error in the caller's thread."""
    with pytest.raises(ValidationError, match="before_send must return"):
        make_client(before_send=lambda m: "nope").track("u", "E")
    with pytest.raises(ValidationError, match="userId and anonymousId"):
        make_client(before_send=lambda m: {**m, "userId": None, "anonymousId": None}).track(
            "u", "E")

    def bloat(message: dict[str, Any]) -> dict[str, Any]:
        message["properties"] = {"blob": "x" * 40_000}
        return message

    with pytest.raises(MessageTooLargeError):
        make_client(before_send=bloat).track("u", "E")


def test_before_enqueue_is_accepted_and_a_non_callable_refused(make_client: Make) -> None:
    """rudder-sdk-python 2.2's name works; a hook that is not callable is a config error."""
    client = make_client(before_enqueue=_scrub)
    assert "email" not in client.track("u", "E", {"email": "x"})[1]["properties"]
    with pytest.raises(ConfigurationError, match="before_send"):
        make_client(before_send=42)

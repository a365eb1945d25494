"""Errors: every SDK exception survives pickle and deepcopy with its attributes (so a
multiprocessing pool, Celery and dataclasses.asdict work), and every delivery error says in a
short line what went wrong and where, with a stable `cause`.
"""

from __future__ import annotations

import base64
import copy
import dataclasses
import multiprocessing
import pickle
import socket
from typing import Any

import pytest

import rudder_analytics.exceptions as exceptions_module
from rudder_analytics import (
    Client,
    DeliveryError,
    HTTPStatusError,
    MessageTooLargeError,
    RetriesExhaustedError,
    TransportError,
)
from rudder_analytics._core.policy import RETRY, Failure, classify, describe, failure_of
from rudder_analytics._sync.delivery import DeliveryReport, RequestResult
from rudder_analytics.devserver import DevServer
from tests.conftest import FAST, WRITE_KEY

# --- pickling and copying -------------------------------------------------------------


def _samples() -> list[BaseException]:
    """One instance of every exception class the SDK exports, attributes set."""
    refused = TransportError("connection refused by 127.0.0.1:9",
                             exception=ConnectionRefusedError(111, "Connection refused"),
                             cause="connection refused by 127.0.0.1:9")
    status = HTTPStatusError("503 from http://h: busy", status_code=503, body="busy\n",
                             retry_after=2.0, response=object(), cause="503 from http://h",
                             location=None)
    samples: list[BaseException] = [
        exceptions_module.RudderAnalyticsError("root"),
        exceptions_module.ConfigurationError("bad option"),
        exceptions_module.ValidationError("bad argument"),
        exceptions_module.InvalidTypeError("bad type"),
        MessageTooLargeError(40000, 32768),
        exceptions_module.ClientClosedError("closed"),
        DeliveryError("failed", status_code=400, body="invalid json", cause="400"),
        refused,
        status,
        RetriesExhaustedError(3, refused),
        RetriesExhaustedError(11, status),
    ]
    exported = {getattr(exceptions_module, name) for name in exceptions_module.__all__}
    assert {type(s) for s in samples} == exported, "a new error class needs a sample here"
    return samples


def _attributes(error: BaseException) -> dict[str, Any]:
    """What a copy must keep: the public attributes (response excepted), compared by text."""
    return {name: repr(value) for name, value in vars(error).items() if name != "response"}


@pytest.mark.parametrize("how", ["pickle", "deepcopy", "copy"])
def test_every_error_class_survives_pickle_and_copy(how: str) -> None:
    """Each exported error comes back with its type, message and attributes; `response` (a
    live requests.Response in real errors) becomes None."""
    round_trip = {
        "pickle": lambda e: pickle.loads(pickle.dumps(e)),
        "deepcopy": copy.deepcopy,
        "copy": copy.copy,
    }[how]
    for error in _samples():
        copied = round_trip(error)
        assert type(copied) is type(error)
        assert str(copied) == str(error) and copied.args == error.args
        assert _attributes(copied) == _attributes(error)
        if hasattr(error, "response"):
            assert copied.response is None


def test_an_error_from_a_real_delivery_pickles_without_its_response(
    dataplane: DevServer,
) -> None:
    """An error as on_error gets it (a requests.Response inside) pickles; status, body,
    Retry-After and cause are kept, and the write key does not travel."""
    dataplane.fail_next(3, status=503, retry_after=0, body="busy")
    client = Client(WRITE_KEY, dataplane.url, sync_mode=True, raise_on_error=True,
                    **{**FAST, "max_retries": 2})
    with pytest.raises(RetriesExhaustedError) as raised:
        client.track("u", "E")
    client.shutdown(timeout=2)
    error = raised.value
    assert error.response is not None
    data = pickle.dumps(error)
    assert WRITE_KEY.encode() not in data
    assert base64.b64encode(f"{WRITE_KEY}:".encode()) not in data
    copied = pickle.loads(data)
    assert copied.response is None and copied.last_error.response is None
    assert (copied.status_code, copied.body, copied.attempts) == (503, "busy\n", 3)
    assert copied.last_error.retry_after == 0.0 and copied.cause == error.cause


def test_asdict_of_results_that_hold_errors() -> None:
    """dataclasses.asdict() works on RequestResult and DeliveryReport holding any error."""
    for error in _samples():
        if not isinstance(error, DeliveryError):
            continue
        result = RequestResult(None, "", 3, False, 2, error)
        report = DeliveryReport(delivered=1, failed=3, requests=[result], deferred=[[b"{}"]])
        as_dict = dataclasses.asdict(report)
        assert as_dict["requests"][0]["error"].args == error.args
        assert as_dict["deferred"] == [[b"{}"]]


def _track_too_large(size: int) -> None:
    """A pool task: build a client that sends nothing and track an oversized event."""
    client = Client("k", "http://127.0.0.1:9", send=False, atexit=False)
    client.track("u", "Big", {"blob": "x" * size})


def test_message_too_large_crosses_a_multiprocessing_pool() -> None:
    """A pool task raising MessageTooLargeError hands it back to .get() with its size and
    limit (before, unpickling it killed the pool's result thread and .get() hung)."""
    context = multiprocessing.get_context("spawn")
    with context.Pool(1) as pool:
        pending = pool.apply_async(_track_too_large, (40_000,))
        with pytest.raises(MessageTooLargeError) as raised:
            pending.get(timeout=60)
    assert raised.value.limit == 32 * 1024 and raised.value.size > 40_000


# --- wording --------------------------------------------------------------------------


def _sync(url: str, **options: Any) -> Client:
    return Client(WRITE_KEY, url, sync_mode=True, raise_on_error=True, **{**FAST, **options})


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_401_names_the_write_key_problem_and_the_data_plane(dataplane: DevServer) -> None:
    """A wrong write key: `401 invalid write key for <data plane URL>`, key not shown."""
    client = Client("wrong-key", dataplane.url, sync_mode=True, raise_on_error=True, **FAST)
    with pytest.raises(HTTPStatusError) as raised:
        client.track("u", "E")
    client.shutdown(timeout=2)
    assert str(raised.value) == f"401 invalid write key for {dataplane.url}"
    assert raised.value.cause == str(raised.value)


def test_404_suggests_a_wrong_data_plane_url(dataplane: DevServer) -> None:
    """A URL with an extra path: `404 at <batch URL>: wrong data plane URL?`."""
    client = _sync(dataplane.url + "/x")
    with pytest.raises(HTTPStatusError) as raised:
        client.track("u", "E")
    client.shutdown(timeout=2)
    assert str(raised.value) == f"404 at {dataplane.url}/x/v1/batch: wrong data plane URL?"


def test_404_of_a_disabled_source_says_so(dataplane: DevServer) -> None:
    """The data plane's own 404 for a disabled source is named as that."""
    client = Client("disabled-key", dataplane.url, sync_mode=True, raise_on_error=True,
                    **FAST)
    with pytest.raises(HTTPStatusError) as raised:
        client.track("u", "E")
    client.shutdown(timeout=2)
    assert str(raised.value) == f"404 source is disabled at {dataplane.url}"


def test_connection_refused_names_host_and_port() -> None:
    """Nothing listens: `connection refused by 127.0.0.1:<port>`, the same cause each try."""
    port = _free_port()
    client = _sync(f"http://127.0.0.1:{port}", max_retries=1)
    with pytest.raises(RetriesExhaustedError) as raised:
        client.track("u", "E")
    client.shutdown(timeout=2)
    assert raised.value.cause == f"connection refused by 127.0.0.1:{port}"
    assert str(raised.value) == \
        f"gave up after 2 attempt(s): connection refused by 127.0.0.1:{port}"


def test_timeout_names_the_wait_and_the_target(dataplane: DevServer) -> None:
    """A data plane that does not answer: `timed out after 0.5 s waiting for host:port`."""
    dataplane.hang_next(1, seconds=3)
    client = _sync(dataplane.url, max_retries=0, timeout=0.5)
    with pytest.raises(RetriesExhaustedError) as raised:
        client.track("u", "E")
    client.shutdown(timeout=2)
    host_port = dataplane.url.split("//", 1)[1]
    assert raised.value.cause == f"timed out after 0.5 s waiting for {host_port}"


def test_status_errors_name_status_target_and_the_servers_line(dataplane: DevServer) -> None:
    """Other statuses: `<status> from <data plane URL>: <first line of the answer>`."""
    dataplane.fail_next(1, status=400, body="invalid json\nmore")
    client = _sync(dataplane.url)
    with pytest.raises(HTTPStatusError) as raised:
        client.track("u", "E")
    client.shutdown(timeout=2)
    assert str(raised.value) == f"400 from {dataplane.url}: invalid json"


def test_describe_is_pure_and_covers_every_failure_kind() -> None:
    """Every failure kind gets a message naming the target; the default port is written."""
    url = "https://hosted.example.com/v1/batch"
    for kind in (Failure.UNKNOWN_HOST, Failure.DNS_TEMPORARY, Failure.REFUSED, Failure.RESET,
                 Failure.TIMEOUT, Failure.TLS, Failure.PROXY, Failure.OTHER):
        message, cause = describe(url, None, failure=kind, timeout=15)
        assert "hosted.example.com" in message and cause == message
    assert describe(url, None, failure=Failure.REFUSED)[0] == \
        "connection refused by hosted.example.com:443"
    assert describe(url, 302, location="/new/v1/batch")[0] == (
        "redirect 302 to https://hosted.example.com/new/v1/batch "
        "(not followed: set data_plane_url to the new base URL)")


def test_dns_failures_are_told_apart() -> None:
    """NXDOMAIN is final (rejected); EAI_AGAIN is a blip (retried)."""
    nxdomain = OSError("wrapped")
    nxdomain.__cause__ = socket.gaierror(socket.EAI_NONAME, "Name or service not known")
    again = OSError("wrapped")
    again.__context__ = socket.gaierror(socket.EAI_AGAIN, "Temporary failure")
    assert failure_of(nxdomain) == Failure.UNKNOWN_HOST
    assert classify(None, failure_of(nxdomain)) != RETRY
    assert failure_of(again) == Failure.DNS_TEMPORARY
    assert classify(None, failure_of(again)) == RETRY

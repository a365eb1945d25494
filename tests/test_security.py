"""Security: the write key stays secret, TLS is verified, plain http is flagged, the local
data plane is loopback-only and checks keys, and responses are inert, capped text.
"""

from __future__ import annotations

import ast
import base64
import contextlib
import http.server
import logging
import pickle
import shutil
import ssl
import subprocess
import sys
import threading
import time
import types
import uuid
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, Optional

import pytest
import requests

import rudder_analytics
from rudder_analytics import Client, ConfigurationError, DeliveryError, ValidationError
from rudder_analytics.devserver import DevServer
from rudder_analytics.devserver.cli import build_parser
from tests.helpers_reliability import FAST, REPO, run_script

SECRET = "wk_SECRET_" + uuid.uuid4().hex
"""A write key distinctive enough that any leak of it is found by substring search."""
SECRET_FORMS = (
    SECRET,
    base64.b64encode(f"{SECRET}:".encode()).decode(),  # the Basic credentials
    base64.b64encode(SECRET.encode()).decode()[:-4],
)


def _leaks(text: str) -> list[str]:
    return [form for form in SECRET_FORMS if form in text]


class Capture(logging.Handler):
    """Every record from every logger, formatted with its traceback."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        text = self.format(record)
        if record.stack_info:
            text += record.stack_info
        self.lines.append(text)

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


@pytest.fixture
def all_logs() -> Iterator[Capture]:
    """Capture every log record at DEBUG (root and SDK loggers turned all the way up)."""
    capture = Capture()
    root = logging.getLogger()
    sdk = logging.getLogger("rudder_analytics")
    old_root, old_sdk = root.level, sdk.level
    root.addHandler(capture)
    root.setLevel(logging.DEBUG)
    sdk.setLevel(logging.DEBUG)
    yield capture
    root.removeHandler(capture)
    root.setLevel(old_root)
    sdk.setLevel(old_sdk)


@pytest.fixture
def server() -> Iterator[DevServer]:
    """A local data plane that knows the secret key."""
    with DevServer(write_keys=(SECRET,), disabled_write_keys=("disabled-key",)) as srv:
        yield srv


def _deep_leaks(root: Any, limit: int = 20_000) -> list[str]:
    """Paths inside ``root``'s object graph (attributes, args, causes, containers) where the
    write key appears; ``response`` attributes and Response objects are not followed."""
    found: list[str] = []
    seen: set[int] = set()
    stack: list[tuple[Any, str]] = [(root, "payload")]
    skip = (int, float, bool, type(None), type, types.ModuleType, types.FunctionType,
            types.BuiltinFunctionType, types.MethodType, requests.Response)
    while stack and len(seen) < limit:
        obj, path = stack.pop()
        if id(obj) in seen or isinstance(obj, skip):
            continue
        seen.add(id(obj))
        if isinstance(obj, (str, bytes, bytearray)):
            text = obj if isinstance(obj, str) else bytes(obj).decode("latin-1")
            if _leaks(text):
                found.append(path)
            continue
        if isinstance(obj, Mapping) or isinstance(getattr(obj, "items", None), Callable):
            with contextlib.suppress(Exception):
                for key, value in list(obj.items()):
                    stack.append((key, f"{path}.<key>"))
                    stack.append((value, f"{path}[{key!r}]"))
            continue
        if isinstance(obj, (list, tuple, set, frozenset)):
            stack.extend((value, f"{path}[{i}]") for i, value in enumerate(obj))
            continue
        if isinstance(obj, BaseException):
            stack.append((obj.args, f"{path}.args"))
            stack.append((obj.__cause__, f"{path}.__cause__"))
            stack.append((obj.__context__, f"{path}.__context__"))
        attributes = getattr(obj, "__dict__", None)
        if isinstance(attributes, dict):
            stack.extend((v, f"{path}.{k}") for k, v in attributes.items() if k != "response")
    return found


def _payload_texts(value: Any) -> list[str]:
    """str() and repr() of a callback argument and of its public attributes."""
    texts = [str(value), repr(value)]
    if isinstance(value, BaseException):
        texts += [repr(a) for a in value.args]
        for name in ("body", "status_code", "exception", "last_error", "retry_after",
                     "__cause__", "__context__"):
            attr = getattr(value, name, None)
            if attr is not None:
                texts += [str(attr), repr(attr)]
    return texts


# --- the write key ---------------------------------------------------------------------


def test_write_key_never_in_logs_exceptions_or_error_payloads(
    server: DevServer, all_logs: Capture
) -> None:
    """Across success, retries, resets, timeouts, 400/401/404, refused connections, raising
    callbacks and shutdown losses, no log line at any level, exception or on_error/on_drop
    payload (other than the response object) contains the write key."""
    payloads: list[str] = []
    objects: list[Any] = []

    def on_error(error: DeliveryError, batch: list[dict[str, Any]]) -> None:
        payloads.extend(_payload_texts(error))
        payloads.append(repr(batch))
        objects.extend([error, batch])
        raise RuntimeError("on_error blew up")  # logged by the SDK, with its traceback

    def on_error_seed(status: Any, body: Any, exception: Any, response: Any) -> None:
        payloads.extend([repr(status), repr(body), *_payload_texts(exception)])
        objects.extend([status, body, exception])

    def on_drop(reason: str, messages: list[dict[str, Any]]) -> None:
        payloads.append(repr((reason, messages)))
        objects.extend([reason, messages])
        raise ValueError("on_drop blew up")

    options = {**FAST, "debug": True, "max_retries": 2, "timeout": 0.5}
    client = Client(SECRET, server.url, on_error=on_error, on_drop=on_drop, **options)
    server.fail_next(1, status=503, retry_after=0)
    server.drop_next(1)
    for i in range(30):
        client.track("u", "Secret Test", {"i": i})
    assert client.flush(timeout=20)
    server.hang_next(1, seconds=2)
    client.track("u", "After A Hang")
    assert client.flush(timeout=20)
    server.fail_next(1, status=400)
    server.fail_next(3, status=500)
    client.track("u", "Rejected")
    client.flush(timeout=10)
    client.track("u", "Exhausted")
    client.flush(timeout=10)

    wrong = Client(SECRET + "x", server.url, on_error=on_error_seed, **options)  # 401
    wrong.track("u", "Unauthorized")
    wrong.flush(timeout=10)
    refused = Client(SECRET, "http://127.0.0.1:9", on_error=on_error, **options)
    refused.track("u", "Refused")
    refused.flush(timeout=10)
    server.hang_next(5, seconds=3)
    client.track("u", "Lost At Shutdown")
    client.shutdown(timeout=0.5)
    wrong.shutdown(timeout=2)
    refused.shutdown(timeout=0.5)

    sync = Client(SECRET, "http://127.0.0.1:9", sync_mode=True, raise_on_error=True,
                  **options)
    with pytest.raises(DeliveryError) as raised:
        sync.track("u", "Sync")
    payloads.extend(_payload_texts(raised.value))
    objects.append(raised.value)
    with pytest.raises(ValidationError) as invalid:
        client.track(None, "No Id")
    payloads.extend(_payload_texts(invalid.value))

    assert payloads and len(all_logs.lines) > 20  # the scenarios really ran and logged
    assert "on_error blew up" in all_logs.text  # tracebacks are in the captured text
    assert not _leaks(all_logs.text), "write key in log output"
    assert not _leaks("\n".join(payloads)), "write key in an exception or callback payload"
    transport_errors = [o for o in objects if isinstance(o, DeliveryError)
                        and isinstance(o.exception, requests.RequestException)]
    assert transport_errors  # connection errors and timeouts were among the payloads
    assert not [p for o in objects for p in _deep_leaks(o)], "write key inside a payload"


@pytest.mark.parametrize(
    "options",
    [
        {"timeout": -1},
        {"gzip_level": 42},
        {"max_queue_size": 0},
        {"on_error": "not callable"},
        {"proxies": ["not", "a", "mapping"]},
        {"upload_sise": 10},
        {"max_message_size": 10**9},
    ],
)
def test_write_key_not_in_configuration_errors(options: dict[str, Any]) -> None:
    """Configuration errors name the bad option, never the write key."""
    with pytest.raises(ConfigurationError) as raised:
        Client(SECRET, "https://dataplane.example.com", **options)
    assert not _leaks(str(raised.value) + repr(raised.value))
    with pytest.raises(ConfigurationError) as raised:
        Client(SECRET, "ftp://dataplane.example.com")
    assert not _leaks(str(raised.value) + repr(raised.value))


def test_write_key_not_in_repr_of_client_or_config() -> None:
    """repr() and str() of the client and of its config redact the write key."""
    client = Client(SECRET, "https://dataplane.example.com", send=False, atexit=False)
    texts = [repr(client), str(client), repr(client.config), str(client.config),
             f"{client.config}", f"{client.config!r}"]
    assert not _leaks("\n".join(texts))
    assert "redacted" in repr(client.config)
    assert client.config.write_key == SECRET  # still there for the transport


def test_write_key_not_in_exit_report_or_debug_output_of_a_process() -> None:
    """A process with debug logging that loses events at exit prints no write key."""
    script = """
import logging, sys
logging.basicConfig(level=logging.DEBUG)
from rudder_analytics import Client
client = Client(sys.argv[1], "http://127.0.0.1:9", debug=True, shutdown_timeout=1.0,
                retry_base_delay=0.05, retry_max_delay=0.1, timeout=0.5)
for i in range(10):
    client.track("u", "Exit", {"i": i})
"""
    result = run_script(script, SECRET, timeout=30)
    assert result.returncode == 0, result.stderr
    assert "not delivered" in result.stderr
    assert not _leaks(result.stdout + result.stderr)


def test_write_key_not_in_command_line_output(server: DevServer) -> None:
    """The CLI with --debug, failing (refused, 401) or succeeding, never prints the key."""
    runs = [
        (SECRET, "http://127.0.0.1:9", ["--max-retries", "1", "--timeout", "0.5"]),
        (SECRET + "x", server.url, []),
        (SECRET, server.url, ["--json"]),
    ]
    for key, url, extra in runs:
        result = subprocess.run(
            [sys.executable, "-m", "rudder_analytics", "track", "--write-key", key,
             "--data-plane-url", url, "--user-id", "u", "--event", "CLI", "--debug", *extra],
            capture_output=True, text=True, timeout=60, cwd=str(REPO),
        )
        assert result.stdout or result.stderr
        assert not _leaks(result.stdout + result.stderr), (url, extra)
    assert server.count(event="CLI") == 1


# --- TLS --------------------------------------------------------------------------------


class _Stub(http.server.BaseHTTPRequestHandler):
    """Answers POSTs as configured on the server object; records nothing else."""

    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        self.server.hits += 1  # type: ignore[attr-defined]
        mode = self.server.mode  # type: ignore[attr-defined]
        if mode == "ok":
            self._answer(200, b"ok")
        elif mode == "endless":  # a 503 whose chunked body never ends
            self.send_response(503)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            chunk = b"A" * 65536
            frame = f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
            sent = 0
            with contextlib.suppress(OSError):
                while sent < 512 * 1024 * 1024:
                    self.wfile.write(frame)
                    sent += len(chunk)
            self.server.streamed = sent  # type: ignore[attr-defined]
            self.close_connection = True
        else:  # a body that must never be evaluated or unpickled
            self._answer(int(mode), self.server.body)  # type: ignore[attr-defined]

    def _answer(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Content-Type", "text/plain")
        self.end_headers()
        self.wfile.write(body)


@contextlib.contextmanager
def stub_server(
    mode: str = "ok", body: bytes = b"", tls: Optional[ssl.SSLContext] = None
) -> Iterator[Any]:
    """A tiny HTTP(S) server on loopback that answers every POST per ``mode``."""
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Stub)
    httpd.daemon_threads = True
    httpd.mode = mode  # type: ignore[attr-defined]
    httpd.body = body  # type: ignore[attr-defined]
    httpd.hits = 0  # type: ignore[attr-defined]
    httpd.streamed = 0  # type: ignore[attr-defined]
    if tls is not None:
        httpd.socket = tls.wrap_socket(httpd.socket, server_side=True)
    scheme = "https" if tls is not None else "http"
    httpd.url = f"{scheme}://127.0.0.1:{httpd.server_address[1]}"  # type: ignore[attr-defined]
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    try:
        yield httpd
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (made with the openssl command)."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl command not available")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True, timeout=60,
    )
    return cert, key


@pytest.fixture
def tls_server(certificate: tuple[Path, Path]) -> Iterator[Any]:
    """An HTTPS stub that answers 200 ok, with a certificate no CA store trusts."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(certificate[0]), str(certificate[1]))
    with stub_server("ok", tls=context) as httpd:
        yield httpd


def test_tls_is_verified_by_default(
    tls_server: Any, monkeypatch: pytest.MonkeyPatch, all_logs: Capture
) -> None:
    """By default an untrusted certificate fails delivery (SSLError) and nothing is sent."""
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    errors: list[DeliveryError] = []
    client = Client(SECRET, tls_server.url, max_retries=1,
                    on_error=lambda error, batch: errors.append(error), **FAST)
    assert client.config.verify is True
    client.track("u", "TLS")
    assert client.flush(timeout=10) is False
    client.shutdown(timeout=1)
    assert len(errors) == 1
    assert isinstance(errors[0].exception, requests.exceptions.SSLError)
    assert tls_server.hits == 0
    assert "verification is off" not in all_logs.text


@pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")
def test_turning_tls_verification_off_is_explicit_and_warns(
    tls_server: Any, certificate: tuple[Path, Path], all_logs: Capture
) -> None:
    """verify=False delivers and logs a warning; verify=<CA bundle> delivers silently."""
    client = Client(SECRET, tls_server.url, verify=False, **FAST)
    warnings = [line for line in all_logs.lines if "verification is off" in line]
    assert len(warnings) == 1 and "WARNING" in warnings[0]
    client.track("u", "Unverified")
    assert client.flush(timeout=10)
    client.shutdown(timeout=1)
    assert tls_server.hits == 1

    all_logs.lines.clear()
    pinned = Client(SECRET, tls_server.url, verify=str(certificate[0]), **FAST)
    pinned.track("u", "Pinned")
    assert pinned.flush(timeout=10)
    pinned.shutdown(timeout=1)
    assert tls_server.hits == 2
    assert "verification is off" not in all_logs.text


def test_plain_http_to_a_non_loopback_host_warns_once(all_logs: Capture) -> None:
    """http:// to a remote host logs one warning however many clients use it; loopback
    and https do not."""
    remote = f"http://dataplane-{uuid.uuid4().hex[:12]}.example.com"
    for _ in range(3):
        Client(SECRET, remote, send=False, atexit=False)
    for url in ("http://127.0.0.1:8080", "http://localhost:8080", "http://[::1]:8080",
                f"https://dataplane-{uuid.uuid4().hex[:12]}.example.com"):
        Client(SECRET, url, send=False, atexit=False)
    warnings = [line for line in all_logs.lines if "plain http" in line]
    assert len(warnings) == 1 and remote in warnings[0] and "WARNING" in warnings[0]
    assert not _leaks(all_logs.text)


# --- the local data plane -----------------------------------------------------------------


def test_local_data_plane_binds_loopback_and_checks_write_keys() -> None:
    """DevServer and its CLI bind 127.0.0.1 by default; missing, unknown and disabled keys
    are refused (401/401/404) and store nothing."""
    assert build_parser().parse_args([]).host == "127.0.0.1"
    with DevServer(write_keys=(SECRET,), disabled_write_keys=("disabled-key",)) as srv:
        assert srv.host == "127.0.0.1" and srv.url.startswith("http://127.0.0.1:")
        body = b'{"batch":[{"type":"track","event":"x","userId":"u"}]}'
        url = srv.url + "/v1/batch"
        assert requests.post(url, data=body, timeout=5).status_code == 401
        assert requests.post(url, data=body, auth=("unknown", ""), timeout=5).status_code == 401
        assert requests.post(url, data=body, auth=("disabled-key", ""),
                             timeout=5).status_code == 404
        assert srv.count() == 0
        assert requests.post(url, data=body, auth=(SECRET, ""), timeout=5).status_code == 200
        assert srv.count() == 1


# --- responses ------------------------------------------------------------------------------


class _Marker:
    """Unpickling this creates a file: proof that a response was unpickled."""

    path = ""

    def __reduce__(self) -> tuple[Any, ...]:
        return (Path.touch, (Path(self.path),))


def test_response_bodies_are_never_evaluated_or_unpickled(tmp_path: Path) -> None:
    """A pickle or Python expression in a response body stays inert text in on_error."""
    marker = tmp_path / "unpickled"
    _Marker.path = str(marker)
    evil_pickle = pickle.dumps(_Marker())
    evil_python = f"__import__('pathlib').Path({str(tmp_path / 'evaluated')!r}).touch()"
    for body in (evil_pickle, evil_python.encode(), b'{"__class__": "os.system"}'):
        errors: list[DeliveryError] = []
        with stub_server("400", body=body) as httpd:
            client = Client(SECRET, httpd.url, **FAST,
                            on_error=lambda e, b, sink=errors: sink.append(e))
            client.track("u", "Evil Response")
            client.flush(timeout=10)
            client.shutdown(timeout=1)
        assert len(errors) == 1 and isinstance(errors[0].body, str)
    assert not marker.exists() and not (tmp_path / "evaluated").exists()


def test_no_eval_exec_or_unpickling_in_the_sdk_source() -> None:
    """The SDK's modules never call eval/exec/compile or import pickle, marshal or yaml."""
    forbidden_calls = {"eval", "exec", "compile", "__import__"}
    forbidden_modules = {"pickle", "cPickle", "marshal", "shelve", "dill", "yaml", "jsonpickle"}
    package = Path(rudder_analytics.__file__).parent
    offenders: list[str] = []
    for source in sorted(package.rglob("*.py")):
        tree = ast.parse(source.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) \
                    and node.func.id in forbidden_calls:
                offenders.append(f"{source.name}:{node.lineno} {node.func.id}()")
            if isinstance(node, ast.Import):
                names = {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom):
                names = {(node.module or "").split(".")[0]}
            else:
                continue
            if names & forbidden_modules:
                offenders.append(f"{source.name}:{node.lineno} import {names}")
    assert not offenders, offenders


def test_response_bodies_are_read_with_a_size_cap() -> None:
    """A response whose body never ends is cut at max_response_bytes: delivery finishes
    and on_error gets at most that many bytes."""
    errors: list[DeliveryError] = []
    with stub_server("endless") as httpd:
        client = Client(SECRET, httpd.url, max_retries=1, max_response_bytes=4096,
                        on_error=lambda error, batch: errors.append(error),
                        **{**FAST, "timeout": 5.0})
        started = time.monotonic()
        client.track("u", "Endless Answer")
        assert client.flush(timeout=30) is False
        elapsed = time.monotonic() - started
        client.shutdown(timeout=1)
    assert len(errors) == 1
    assert errors[0].status_code == 503
    assert errors[0].body is not None and 0 < len(errors[0].body) <= 4096
    assert httpd.hits == 2
    assert elapsed < 30

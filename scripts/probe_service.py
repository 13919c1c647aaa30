"""Hostile-input probes of ``facelocal serve`` on loopback, bounded in count and time; prints counts per family.

Families:

* ``schemathesis``: every operation of ``/openapi.json``, schema-valid and schema-invalid cases, each answer
  checked against the document (status documented, body and headers as described, no 5xx);
* ``malformed``: mutated images under every accepted content type, nested and broken JSON, broken and oversized
  multipart bodies, garbage request heads;
* ``grpc``: random bytes as the request message of every FaceDetector method;
* ``slowloris``: request heads trickled a byte at a time, and 1,000 connections that send nothing.

A REST answer is in the documented shape when it is JSON ``{"error": {"code", "message"}}`` with a code the
OpenAPI document names; a gRPC one when its status is INVALID_ARGUMENT with an ``error-code`` trailer and details
free of Python internals.

    .venv/bin/python -m scripts.probe_service --model artifacts/model.onnx [--examples 300]
"""

from __future__ import annotations

import argparse
import base64
import concurrent.futures
import json
import random
import socket
import time
from collections import Counter
from pathlib import Path

import grpc
import httpx

from tests.local.serve import ServeProcess, start_serve
from tests.paths import shared_file

SERVICE = "facelocal.v1.FaceDetector"
METHODS = {
    "Detect": "unary",
    "DetectBatch": "unary",
    "ListModels": "unary",
    "Anonymize": "unary",
    "DetectStream": "stream",
}
# Python internals that must never reach a gRPC client.
INTERNALS = ("Traceback", "Exception", "Error:", "<class", 'File "')


def documented_codes(url: str) -> set[str]:
    """Every error code the OpenAPI document's error descriptions name."""
    document = httpx.get(url + "/openapi.json", timeout=30).json()
    text = json.dumps(document)
    codes = set()
    for word in text.replace(",", " ").replace("(", " ").replace(")", " ").split():
        word = word.strip(".;:'\"\\")
        if word.replace("_", "").isalpha() and "_" in word and word.islower():
            codes.add(word)
    return codes


def classify(response: httpx.Response, codes: set[str]) -> str:
    """``2xx``, or ``<status> <code>``, or ``<status> UNDOCUMENTED`` for an error outside the shape."""
    if response.status_code < 400:
        return f"{response.status_code}"
    try:
        error = response.json()["error"]
        if isinstance(error["message"], str) and error["code"] in codes:
            return f"{response.status_code} {error['code']}"
    except (ValueError, KeyError, TypeError):
        pass
    return f"{response.status_code} UNDOCUMENTED"


def schemathesis_family(url: str, examples: int) -> Counter:
    import schemathesis
    from hypothesis import HealthCheck, given, settings
    from schemathesis import GenerationMode
    from schemathesis.config import SchemathesisConfig
    from schemathesis.generation.feedback import NO_FEEDBACK

    config = {
        "seed": 20261205,
        "checks": {"positive_data_acceptance": {"expected-statuses": ["2xx", "400", "413", "415", "503"]}},
    }
    schema = schemathesis.openapi.from_url(f"{url}/openapi.json", config=SchemathesisConfig.from_dict(config))
    counts: Counter = Counter()
    for result in schema.get_all_operations():
        operation = result.ok()
        # Negative data needs something to break: operations without parameters or a body have none.
        breakable = bool(operation.body or list(operation.iter_parameters()))
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE) if breakable else (GenerationMode.POSITIVE,):

            @settings(max_examples=examples, derandomize=True, database=None, deadline=None,
                      suppress_health_check=list(HealthCheck))  # fmt: skip
            @given(case=operation.as_strategy(generation_mode=mode, feedback=NO_FEEDBACK))
            def probe(case) -> None:
                try:
                    response = case.call_and_validate(base_url=url, timeout=60)
                    counts[f"{case.operation.label} {response.status_code // 100}xx"] += 1
                except AssertionError:
                    counts["FAILED CHECK"] += 1
                    raise

            try:
                probe()
            except Exception as exc:  # one failing case ends that operation's run; it is counted above
                counts[f"failure in {operation.label} ({mode.value}): {type(exc).__name__}"] += 1
    return counts


def malformed_family(url: str, codes: set[str], rounds: int) -> Counter:
    rng = random.Random(7)
    photo = shared_file("images", "selfie_group.jpg").read_bytes()
    other = shared_file("images", "wider_train_band_crowd.jpg").read_bytes()
    counts: Counter = Counter()

    def mutate(data: bytes) -> bytes:
        data = bytearray(data)
        for _ in range(rng.randrange(1, 40)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        return bytes(data[: rng.randrange(1, len(data) + 1)])

    requests: list[tuple[str, dict]] = []
    for _ in range(rounds):
        body = mutate(photo)
        for content_type in ("image/jpeg", "image/png", "image/webp", "image/bmp", "application/octet-stream"):
            requests.append(("/v1/detect", {"content": body, "headers": {"content-type": content_type}}))
        requests.append(("/v1/detect", {"files": {"image": ("x.jpg", body, "image/jpeg")}}))
        requests.append(("/v1/detect/batch", {"files": [("images", ("a.jpg", body, "image/jpeg")),
                                                        ("images", ("b.jpg", other, "image/jpeg"))]}))  # fmt: skip
        requests.append(("/v1/detect", {"json": {"image": base64.b64encode(body).decode()}}))
    for depth in (100, 1000, 3000, 100_000):
        for path in ("/v1/detect", "/v1/detect/batch"):
            nested = b"[" * depth + b"]" * depth
            requests.append((path, {"content": nested, "headers": {"content-type": "application/json"}}))
            requests.append((path, {"content": b'{"image":' * depth, "headers": {"content-type": "application/json"}}))
    boundary = "xyz"
    multipart = {"content-type": f"multipart/form-data; boundary={boundary}"}
    part = f"--{boundary}\r\ncontent-disposition: form-data; name=images; filename=a\r\n\r\nx\r\n"
    for body in (
        b"--xyz\r\nbroken",
        (part * 1001 + f"--{boundary}--\r\n").encode(),
        f"--{boundary}\r\ncontent-disposition: form-data\r\n\r\nx\r\n--{boundary}--\r\n".encode(),
        b"",
    ):
        for path in ("/v1/detect", "/v1/detect/batch"):
            requests.append((path, {"content": body, "headers": multipart}))
            requests.append((path, {"content": body, "headers": {"content-type": "multipart/form-data"}}))

    def post(item: tuple[str, dict]) -> str:
        path, kwargs = item
        with httpx.Client(base_url=url, timeout=120) as http:
            return classify(http.post(path, **kwargs), codes)

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        counts.update(pool.map(post, requests))
    # Garbage request heads: uvicorn answers these itself.
    host, port = url.removeprefix("http://").split(":")
    for head in (
        b"\x00\xff garbage\r\n\r\n",
        b"GET / HTTP/9.9\r\n\r\n",
        b"POST /v1/detect HTTP/1.1\r\n" + b"x" * 70000,
    ):
        with socket.create_connection((host, int(port)), timeout=30) as sock:
            try:
                sock.sendall(head)
                answer = sock.recv(65536)
            except (ConnectionResetError, BrokenPipeError):
                answer = b""
        status = answer.split(b" ")[1].decode() if answer.startswith(b"HTTP/1.1") else "closed"
        counts[f"raw head -> {status}"] += 1
    return counts


def grpc_family(target: str, per_method: int) -> Counter:
    rng = random.Random(11)
    counts: Counter = Counter()
    with grpc.insecure_channel(target) as channel:
        for method, kind in METHODS.items():
            path = f"/{SERVICE}/{method}"
            for _ in range(per_method):
                garbage = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 2000)))
                try:
                    if kind == "unary":
                        channel.unary_unary(path)(garbage, timeout=60)
                    else:
                        list(channel.stream_stream(path)(iter([garbage]), timeout=60))
                    counts["OK (bytes that parse as a message)"] += 1
                except grpc.RpcError as error:
                    code = dict(error.trailing_metadata() or ()).get("error-code")
                    leaks = any(word in (error.details() or "") for word in INTERNALS)
                    label = f"{error.code().name} {code}" + (" LEAKS INTERNALS" if leaks else "")
                    counts[label] += 1
    return counts


def slowloris_family(url: str, idle: int, trickling: int, deadline_s: float) -> Counter:
    """``trickling`` connections sending a head a byte per 0.5 s and ``idle`` sending nothing; how each ended."""
    host, port = url.removeprefix("http://").split(":")
    counts: Counter = Counter()
    head = b"POST /v1/detect HTTP/1.1\r\nhost: x\r\ncontent-type: image/jpeg\r\n" + b"x-pad: y\r\n" * 200

    def connection(trickle: bool) -> str:
        started = time.monotonic()
        try:
            with socket.create_connection((host, int(port)), timeout=deadline_s) as sock:
                sent = 0
                sock.settimeout(0.5 if trickle else deadline_s)
                while time.monotonic() - started < deadline_s:
                    if trickle and sent < len(head):
                        try:
                            sock.sendall(head[sent : sent + 1])
                            sent += 1
                        except OSError:
                            pass
                    try:
                        answer = sock.recv(65536)
                    except TimeoutError:
                        continue
                    status = answer.split(b" ")[1].decode() if answer.startswith(b"HTTP/1.1") else "closed"
                    code = json.loads(answer.partition(b"\r\n\r\n")[2])["error"]["code"] if status != "closed" else ""
                    return (
                        f"{'trickle' if trickle else 'idle'}: {status} {code} after {time.monotonic() - started:.0f} s"
                    )
                return f"{'trickle' if trickle else 'idle'}: STILL OPEN after {deadline_s:.0f} s"
        except OSError as exc:
            return f"{'trickle' if trickle else 'idle'}: connect failed ({type(exc).__name__})"

    with concurrent.futures.ThreadPoolExecutor(idle + trickling) as pool:
        outcomes = list(pool.map(connection, [True] * trickling + [False] * idle))
    counts.update(outcomes)
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=Path("artifacts/model.onnx"))
    parser.add_argument("--examples", type=int, default=200, help="schemathesis cases per operation and mode")
    parser.add_argument("--malformed-rounds", type=int, default=60)
    parser.add_argument("--grpc-per-method", type=int, default=250)
    parser.add_argument("--idle", type=int, default=1000)
    parser.add_argument("--trickling", type=int, default=50)
    parser.add_argument("--families", default="schemathesis,malformed,grpc,slowloris")
    args = parser.parse_args()
    # Every option available (the mesh model beside the detector, MediaPipe's canonical face from the shared
    # data): a schema-valid request is then refused only for what it sends, not for what the server lacks.
    geometry = shared_file("weights", "facemesh", "canonical_face_model.obj").parent
    server: ServeProcess = start_serve(args.model, "--log-level", "warning", "--face-geometry-path", str(geometry))
    grpc_target = server.process.args[server.process.args.index("--grpc-port") + 1]
    report: dict[str, dict] = {}
    try:
        codes = documented_codes(server.url)
        families = args.families.split(",")
        if "schemathesis" in families:
            report["schemathesis"] = dict(schemathesis_family(server.url, args.examples))
        if "malformed" in families:
            report["malformed"] = dict(malformed_family(server.url, codes, args.malformed_rounds))
        if "grpc" in families:
            report["grpc"] = dict(grpc_family(f"127.0.0.1:{grpc_target}", args.grpc_per_method))
        if "slowloris" in families:
            report["slowloris"] = dict(slowloris_family(server.url, args.idle, args.trickling, 30.0))
        report["server alive"] = {"healthz": httpx.get(server.url + "/healthz", timeout=10).status_code}
    finally:
        server.stop(60)
    print(json.dumps(report, indent=1, sort_keys=True))


if __name__ == "__main__":
    main()

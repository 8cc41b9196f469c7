"""Servers of their own: API keys, a full queue, and shutdown on SIGTERM/SIGINT."""
import json
import signal
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import openai
import pytest

from conftest import MODEL_ID, Server, haystack_prompt


@pytest.fixture
def make_server():
    started = []

    def make(*flags):
        started.append(Server(*flags))
        return started[-1]

    yield make
    for s in started:
        s.kill()


def test_api_key(make_server):
    server = make_server("--api-key", "sekrit")
    with pytest.raises(openai.AuthenticationError):
        server.client(api_key="wrong").models.list()
    for path in ("/v1/models", "/metrics"):
        status, error = server.request("GET", path)
        assert status == 401 and error["error"]["code"] == "invalid_api_key"
    status, _ = server.request("POST", "/v1/completions", {"model": MODEL_ID, "prompt": "x"},
                               headers={"Authorization": "Bearer sekri"})
    assert status == 401
    assert server.request("GET", "/health")[0] == 200  # health checks need no key
    client = server.client(api_key="sekrit")
    assert client.completions.create(model=MODEL_ID, prompt="And God said", max_tokens=3).choices[0].text
    assert server.request("GET", "/metrics", headers={"Authorization": "Bearer sekrit"})[0] == 200
    assert server.stop() == 0


def test_queue_overflow_gives_429_and_recovers(make_server):
    server = make_server("--max-batch", "1", "--max-queue", "1")
    client = server.client()

    def one(_):
        try:
            r = client.completions.create(model=MODEL_ID, prompt=haystack_prompt(200), max_tokens=48, temperature=0)
            return 200, r.usage.completion_tokens
        except openai.RateLimitError as e:
            assert "capacity" in e.message
            return 429, 0

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(one, range(8)))
    statuses = [s for s, _ in results]
    assert statuses.count(429) >= 1, results   # one runs, one waits: the rest are refused
    assert statuses.count(200) >= 2, results
    deadline = time.monotonic() + 10
    while server.metrics()["dattn_kv_cache_blocks_used"] != 0:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert client.completions.create(model=MODEL_ID, prompt="And God", max_tokens=2).choices[0].text
    assert server.stop() == 0


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_shutdown_finishes_in_flight_requests(make_server, sig):
    server = make_server()
    client = server.client()
    result = {}

    def stream():
        text, finish = "", None
        for chunk in client.completions.create(model=MODEL_ID, prompt=haystack_prompt(40), max_tokens=64,
                                               temperature=0, stream=True):
            text += chunk.choices[0].text
            finish = chunk.choices[0].finish_reason or finish
        result["text"], result["finish"] = text, finish

    worker = threading.Thread(target=stream)
    worker.start()
    time.sleep(0.3)  # the stream is running
    assert server.stop(sig, close_clients=False) == 0
    worker.join(30)
    assert not worker.is_alive()
    assert result["finish"] == "length" and result["text"], result  # finished, not cut off
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", server.port), timeout=2)


def test_shutdown_cancels_after_the_grace_period(make_server):
    server = make_server("--shutdown-grace", "0.5")
    body = json.dumps({"model": MODEL_ID, "prompt": haystack_prompt(40), "max_tokens": 4000, "temperature": 0,
                       "stream": True}).encode()
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=30)
    sock.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                 + f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
    received = sock.recv(4096)
    start = time.monotonic()
    server.proc.send_signal(signal.SIGTERM)
    while b"data: [DONE]" not in received:  # then close: an idle keep-alive connection delays the exit
        data = sock.recv(65536)
        assert data, "the server closed the stream before its end"
        received += data
    sock.close()
    assert server.stop() == 0
    assert time.monotonic() - start < 5
    assert b'"finish_reason":"cancelled"' in received

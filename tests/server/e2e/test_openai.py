"""`dattn serve` on the embedded model through the real `openai` client: endpoints, streaming, stop strings,
usage, concurrency, bad requests, disconnects, and that nothing leaks (KV blocks back to zero)."""
import json
import socket
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor

import openai
import pytest

from conftest import BINARY, MODEL_ID, REPO, haystack_prompt


def wait_idle(server, timeout_s=10):
    """Waits until the engine runs nothing and holds no KV block; returns the metrics then."""
    deadline = time.monotonic() + timeout_s
    while True:
        m = server.metrics()
        if m["dattn_engine_requests_running"] == 0 and m["dattn_engine_requests_waiting"] == 0 \
                and m["dattn_kv_cache_blocks_used"] == 0 and m["dattn_http_requests_in_flight"] == 0:
            return m
        assert time.monotonic() < deadline, f"the server did not become idle: {m}"
        time.sleep(0.05)


def complete(client, prompt, **kw):
    kw.setdefault("max_tokens", 24)
    return client.completions.create(model=MODEL_ID, prompt=prompt, temperature=0, **kw)


def stream_text(stream):
    text, finish, usage, chunks = "", None, None, 0
    for chunk in stream:
        chunks += 1
        if chunk.usage is not None:
            usage = chunk.usage
        for choice in chunk.choices:
            piece = choice.delta.content if hasattr(choice, "delta") else choice.text
            text += piece or ""
            finish = choice.finish_reason or finish
    return text, finish, usage, chunks


def test_models_health_metrics(server):
    assert [m.id for m in server.client().models.list().data] == [MODEL_ID]
    assert server.request("GET", "/health") == (200, {"status": "ok"})
    m = server.metrics()
    assert m["dattn_kv_cache_blocks_total"] > 0


def test_completion_text_and_token_ids(server):
    client = server.client()
    r = complete(client, haystack_prompt(40), max_tokens=12)
    assert r.object == "text_completion" and r.model == MODEL_ID
    assert r.choices[0].text and r.choices[0].finish_reason in ("length", "stop")
    assert r.usage.completion_tokens <= 12
    assert r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens
    # The same prompt as token ids gives the same text.
    ids = tokenize(haystack_prompt(40))
    r_ids = complete(client, ids, max_tokens=12)
    assert r_ids.usage.prompt_tokens == len(ids) == r.usage.prompt_tokens
    assert r_ids.choices[0].text == r.choices[0].text


def tokenize(text):
    """The ids `dattn tokenize` gives (BOS included), as a text prompt encodes."""
    out = subprocess.run([BINARY, "tokenize", "--model", str(REPO / "models" / MODEL_ID), "--text", text],
                         capture_output=True, text=True, timeout=60, check=True).stdout
    return json.loads(out)


def test_chat_streaming_matches_non_streaming(server):
    client = server.client()
    messages = [{"role": "system", "content": "Answer from the text."},
                {"role": "user", "content": haystack_prompt(30)}]
    full = client.chat.completions.create(model=MODEL_ID, messages=messages, max_tokens=20, temperature=0)
    assert full.object == "chat.completion"
    assert full.choices[0].message.role == "assistant"
    text, finish, usage, chunks = stream_text(client.chat.completions.create(
        model=MODEL_ID, messages=messages, max_tokens=20, temperature=0, stream=True,
        stream_options={"include_usage": True}))
    assert text == full.choices[0].message.content
    assert finish == full.choices[0].finish_reason
    assert usage.prompt_tokens == full.usage.prompt_tokens
    assert usage.completion_tokens == full.usage.completion_tokens
    assert chunks >= 3  # role, text, finish (+ usage)


def test_completion_streaming_framing(server):
    """Raw SSE: data lines of JSON, then data: [DONE]; no usage chunk unless asked."""
    body = {"model": MODEL_ID, "prompt": haystack_prompt(20), "max_tokens": 8, "temperature": 0, "stream": True}
    status, text = server.request("POST", "/v1/completions", body)
    assert status == 200
    events = [e for e in text.split("\n\n") if e and not e.startswith(":")]
    assert events[-1] == "data: [DONE]"
    payloads = [json.loads(e[len("data: "):]) for e in events[:-1]]
    assert all(p["object"] == "text_completion" for p in payloads)
    assert all("usage" not in p or p["usage"] is None for p in payloads)
    assert payloads[-1]["choices"][0]["finish_reason"] in ("length", "stop")
    expected = complete(server.client(), haystack_prompt(20), max_tokens=8).choices[0].text
    assert "".join(p["choices"][0]["text"] for p in payloads) == expected


@pytest.mark.parametrize("stream", [False, True])
def test_stop_strings(server, stream):
    client = server.client()
    prompt = haystack_prompt(60)
    reference = complete(client, prompt, max_tokens=40).choices[0].text
    words = reference.split()
    assert len(words) >= 6, reference
    stop = " " + words[3]  # a stop string in the middle of the greedy continuation
    expected = reference[:reference.find(stop)]
    if stream:
        text, finish, usage, _ = stream_text(complete(client, prompt, max_tokens=40, stop=[stop, "\u00e9\u00e9"],
                                                     stream=True, stream_options={"include_usage": True}))
    else:
        r = complete(client, prompt, max_tokens=40, stop=[stop, "\u00e9\u00e9"])
        text, finish, usage = r.choices[0].text, r.choices[0].finish_reason, r.usage
    assert text == expected
    assert finish == "stop"
    assert 0 < usage.completion_tokens < 40


def test_concurrent_greedy_requests_match_sequential(server):
    """10 requests of mixed lengths (about 25 to 550 prompt tokens) sent at once give the texts they give one
    at a time: batching changes neither the prompt's KV nor the greedy choices."""
    client = server.client(timeout=300)
    prompts = [haystack_prompt(w) for w in (20, 400, 60, 200, 40, 35, 150, 100, 90, 120)]
    lengths = [8, 16, 12, 20, 10, 14, 18, 8, 12, 10]
    sequential = [complete(client, p, max_tokens=n).choices[0].text for p, n in zip(prompts, lengths)]
    with ThreadPoolExecutor(len(prompts)) as pool:
        concurrent = list(pool.map(lambda pn: complete(client, pn[0], max_tokens=pn[1]).choices[0].text,
                                   zip(prompts, lengths)))
    assert concurrent == sequential
    assert wait_idle(server)["dattn_engine_peak_batch"] > 1  # the requests did share engine steps


def send_raw_completion(server, **fields):
    """A long greedy completion sent over a raw socket (so the test can drop the connection); the socket."""
    body = json.dumps({"model": MODEL_ID, "prompt": haystack_prompt(50), "max_tokens": 3000, "temperature": 0,
                       **fields}).encode()
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=30)
    sock.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                 + f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
    return sock


def test_disconnect_mid_stream_cancels(server):
    before = server.metrics()
    sock = send_raw_completion(server, stream=True)
    received = b""
    while received.count(b"data: ") < 3:  # a few tokens in
        received += sock.recv(4096)
    sock.close()
    m = wait_idle(server, timeout_s=5)
    generated = m["dattn_engine_generated_tokens_total"] - before["dattn_engine_generated_tokens_total"]
    assert generated < 3000, "the sequence ran to its end although the client left"
    assert complete(server.client(), "And God said", max_tokens=4).choices[0].text  # still answering


def test_disconnect_while_waiting_for_a_non_streaming_answer_cancels(server):
    before = server.metrics()
    sock = send_raw_completion(server, ignore_eos=True)
    deadline = time.monotonic() + 30
    while server.metrics()["dattn_engine_generated_tokens_total"] - before["dattn_engine_generated_tokens_total"] < 3:
        assert time.monotonic() < deadline, "the request generated nothing"
        time.sleep(0.02)
    sock.close()  # nothing was answered yet: a non-streaming response comes whole at the end
    m = wait_idle(server, timeout_s=5)
    generated = m["dattn_engine_generated_tokens_total"] - before["dattn_engine_generated_tokens_total"]
    assert generated < 3000, "the sequence ran to its end although the client left"
    assert complete(server.client(), "And God said", max_tokens=4).choices[0].text  # still answering


BAD_REQUESTS = [
    ("/v1/chat/completions", "{not json", 400, None),
    ("/v1/chat/completions", {"model": MODEL_ID, "messages": []}, 400, "messages"),
    ("/v1/chat/completions", {"model": MODEL_ID, "messages": "hi"}, 400, "messages"),
    ("/v1/chat/completions", {"model": "gpt-4o", "messages": [{"role": "user", "content": "x"}]}, 404, "model"),
    ("/v1/chat/completions", {"model": MODEL_ID, "messages": [{"role": "user", "content": "x"}], "max_tokens": 0},
     400, "max_tokens"),
    ("/v1/chat/completions", {"model": MODEL_ID, "messages": [{"role": "user", "content": "x"}],
                              "max_tokens": 10**6}, 400, "max_tokens"),
    ("/v1/chat/completions", {"model": MODEL_ID, "messages": [{"role": "user", "content": "x"}],
                              "temperature": "hot"}, 400, "temperature"),
    ("/v1/chat/completions", {"model": MODEL_ID, "messages": [{"role": "user", "content": "x"}], "n": 3}, 400, "n"),
    ("/v1/completions", {"model": MODEL_ID, "prompt": [1, 99999]}, 400, "prompt[1]"),
    ("/v1/completions", {"model": MODEL_ID, "prompt": haystack_prompt(5000)}, 400, "prompt"),
    ("/v1/completions", {"model": MODEL_ID, "prompt": "x", "attention": {"window": 10**9}}, 400, "attention.window"),
]


@pytest.mark.parametrize("path,body,status,param", BAD_REQUESTS)
def test_bad_requests(server, path, body, status, param):
    got_status, error = server.request("POST", path, body)
    assert got_status == status, error
    assert set(error["error"]) == {"message", "type", "param", "code"}
    assert error["error"]["param"] == param
    if param:
        assert param in error["error"]["message"]


def test_bad_requests_through_the_client(server):
    client = server.client()
    with pytest.raises(openai.BadRequestError, match="max_tokens"):
        client.chat.completions.create(model=MODEL_ID, messages=[{"role": "user", "content": "x"}], max_tokens=-1)
    with pytest.raises(openai.NotFoundError):
        client.completions.create(model="nope", prompt="x")
    with pytest.raises(openai.BadRequestError, match="context"):
        client.completions.create(model=MODEL_ID, prompt=haystack_prompt(5000))


def test_oversized_body_and_unknown_path(server):
    status, error = server.request("POST", "/v1/completions", "x" * 100_000)
    assert status == 413 and "larger than" in error["error"]["message"]
    status, error = server.request("GET", "/v1/nothing")
    assert status == 404 and "/v1/nothing" in error["error"]["message"]
    assert server.request("GET", "/health")[0] == 200


def test_attention_override_and_unknown_fields(server):
    r = server.client().completions.create(
        model=MODEL_ID, prompt=haystack_prompt(300), max_tokens=6, temperature=0, user="someone",
        presence_penalty=0.0, extra_body={"attention": {"mode": "delta", "window": 64, "sink": 16, "gamma": 16},
                                          "some_vendor_field": {"x": 1}})
    assert r.usage.completion_tokens >= 1


def test_sampling_is_reproducible_with_a_seed(server):
    client = server.client()
    kw = dict(model=MODEL_ID, prompt=haystack_prompt(30), max_tokens=16, temperature=1.0, top_p=0.95, seed=7,
              extra_body={"top_k": 50})
    assert client.completions.create(**kw).choices[0].text == client.completions.create(**kw).choices[0].text


def test_nothing_leaks(server):
    m = wait_idle(server)
    assert m["dattn_engine_requests_finished_total"] > 0

"""Starts `dattn serve` on the embedded model on a free loopback port for the end-to-end tests, and always
stops it (SIGTERM, then SIGKILL after a bounded wait)."""
import http.client
import json
import os
import re
import signal
import subprocess
import threading
from pathlib import Path

import openai
import pytest

REPO = Path(__file__).resolve().parents[3]
BINARY = os.environ.get("DATTN_BINARY", str(REPO / "build/src/cli/dattn"))
MODEL_ID = "dattn-tiny-16k"
START_TIMEOUT_S = 60
STOP_TIMEOUT_S = 30
HAYSTACK = (REPO / "data/haystack/kjv_narrative.txt").read_text(encoding="utf-8")


class Server:
    def __init__(self, *flags):
        # --port 0: the kernel picks a free port, the server prints it; no race with other tests. One engine
        # thread: ctest runs other tests beside this one, and spinning OpenMP threads on a busy machine are slow.
        self.proc = subprocess.Popen([BINARY, "serve", "--port", "0", "--threads", "1", *flags],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        self.log, self.port, self.clients = [], None, []
        ready = threading.Event()

        def pump():
            for line in self.proc.stderr:
                self.log.append(line)
                match = re.search(r"listening on http://[^:]+:(\d+)", line)
                if match:
                    self.port = int(match.group(1))
                    ready.set()
            ready.set()

        threading.Thread(target=pump, daemon=True).start()
        if not ready.wait(START_TIMEOUT_S) or self.port is None:
            self.kill()
            raise RuntimeError("dattn serve did not start:\n" + "".join(self.log))

    def client(self, api_key="unused", timeout=120):
        # No retries: a 429 or 5xx must reach the test, not be retried away.
        client = openai.OpenAI(base_url=f"http://127.0.0.1:{self.port}/v1", api_key=api_key, max_retries=0,
                               timeout=timeout)
        self.clients.append(client)
        return client

    def request(self, method, path, body=None, headers=None, timeout=60):
        """(status, parsed JSON or text) of one request on its own connection."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            data = body if isinstance(body, (bytes, str)) or body is None else json.dumps(body)
            conn.request(method, path, body=data, headers={"Content-Type": "application/json", **(headers or {})})
            response = conn.getresponse()
            text = response.read().decode("utf-8")
            try:
                return response.status, json.loads(text)
            except ValueError:
                return response.status, text
        finally:
            conn.close()

    def metrics(self):
        """Unlabelled samples of /metrics as {name: value}."""
        status, text = self.request("GET", "/metrics")
        assert status == 200, text
        samples = {}
        for line in text.splitlines():
            if line and not line.startswith("#") and "{" not in line:
                name, value = line.split()
                samples[name] = float(value)
        return samples

    def stop(self, sig=signal.SIGTERM, close_clients=True):
        """Sends sig and returns the exit code; SIGKILL if the server does not exit in time."""
        for client in self.clients if close_clients else []:
            client.close()  # idle keep-alive connections would hold the exit for the server's idle timeout
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                return self.proc.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.kill()
                raise AssertionError(f"dattn serve did not exit within {STOP_TIMEOUT_S} s of {sig!r}")
        return self.proc.returncode

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


def start(*flags):
    return Server(*flags)


@pytest.fixture(scope="module")
def server():
    s = Server("--max-context", "4096", "--max-batch", "8", "--kv-memory", "0.25", "--max-body", "65536")
    try:
        yield s
    finally:
        try:
            assert s.stop() == 0, "".join(s.log)
        finally:
            s.kill()


def haystack_prompt(words):
    """The first `words` words of the embedded model's training text (it continues it sensibly)."""
    return " ".join(HAYSTACK.split()[:words])

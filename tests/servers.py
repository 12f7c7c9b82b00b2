"""Real HTTP servers on 127.0.0.1 for backend tests: the model server and a fault injector."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_llama_server(model: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            str(Path(__file__).with_name("llama_server.py")),
            "--model",
            str(model),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--n_ctx",
            "2048",
            "--verbose",
            "False",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}/v1"
    deadline = time.time() + 60
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"llama server exited: {proc.stderr.read().decode()[-2000:]}")
        try:
            urllib.request.urlopen(f"{base}/models", timeout=1)
            return proc, base
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError("llama server did not start in 60 s")


class FaultProxy:
    """Forwards to an OpenAI-compatible server, answering some requests with a fault instead.

    ``plan`` is a repeating list of what to do with successive requests:
    "ok", "429", "500", "garbage" (a 200 with a body that is not JSON),
    "empty" (a 200 with JSON that has no choices) or "401echo" (a 401 whose
    message repeats the Authorization header, as careless servers do). Every request's
    Authorization header is recorded.
    """

    def __init__(self, upstream: str, plan: list[str]):
        self.upstream, self.plan = upstream, plan
        self.count, self.faults, self.auth = 0, [], []
        self.lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with proxy.lock:
                    action = proxy.plan[proxy.count % len(proxy.plan)]
                    proxy.count += 1
                    proxy.auth.append(self.headers.get("Authorization"))
                    if action != "ok":
                        proxy.faults.append(action)
                if action in ("429", "500"):
                    self.reply(
                        int(action),
                        json.dumps({"error": {"message": f"injected {action}", "type": "injected"}}).encode(),
                    )
                elif action == "401echo":
                    message = f"invalid key {self.headers.get('Authorization')}"
                    self.reply(
                        401, json.dumps({"error": {"message": message, "type": "invalid_request_error"}}).encode()
                    )
                elif action == "garbage":
                    self.reply(200, b"<html>upstream hiccup</html>")
                elif action == "empty":
                    self.reply(
                        200,
                        json.dumps(
                            {"id": "x", "object": "chat.completion", "created": 0, "model": "m", "choices": []}
                        ).encode(),
                    )
                else:
                    request = urllib.request.Request(
                        proxy.upstream + self.path.removeprefix("/v1"),
                        data=body,
                        headers={"Content-Type": "application/json"},
                    )
                    try:
                        with urllib.request.urlopen(request, timeout=120) as response:
                            self.reply(response.status, response.read())
                    except urllib.error.HTTPError as error:  # relay the upstream's own errors as they are
                        self.reply(error.code, error.read())

            def reply(self, status: int, payload: bytes):
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()

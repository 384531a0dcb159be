"""A small OpenAI-compatible server on a loopback port, scripted to misbehave, for the openai backend's fault tests.

It answers `/v1/models`, `/v1/completions` and `/v1/chat/completions` the way vLLM does (with `stop_reason`
and `token_ids` when it pretends to be vLLM), from an `answer(prompt) -> str` function; `faults` is a list of
what the next requests get instead (an HTTP status, malformed JSON, a body cut short, a dropped connection, a
delay). Every request is logged, so tests can see which server got what, and when.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class FakeServer:
    def __init__(self, answer=lambda prompt: "42", model: str = "fake-model", vllm: bool = True,
                 api_key: str | None = None, context: int = 10_000, delay=lambda prompt: 0.0):
        self.answer, self.model, self.vllm, self.api_key = answer, model, vllm, api_key
        self.context, self.delay = context, delay
        self.faults: list = []
        self.log: list[dict] = []
        self.lock = threading.Lock()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def prompts(self) -> list[str]:
        return [entry["prompt"] for entry in self.log if entry.get("prompt") is not None]

    def _handler(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def do_GET(self):
                if not server._authorised(self):
                    return self._send(401, {"error": {"message": "invalid api key"}})
                if self.path == "/v1/models":
                    return self._send(200, {"object": "list", "data": [{"id": server.model, "object": "model"}]})
                if self.path == "/version" and server.vllm:
                    return self._send(200, {"version": "0.0-fake"})
                return self._send(404, {"error": {"message": "not found"}})

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
                prompt = body.get("prompt")
                if prompt is None:
                    prompt = "\n".join(m["content"] for m in body.get("messages", []))
                entry = {"path": self.path, "prompt": prompt, "body": body, "time": time.monotonic(),
                         "authorization": self.headers.get("Authorization")}
                with server.lock:
                    server.log.append(entry)
                    fault = server.faults.pop(0) if server.faults else None
                if not server._authorised(self):
                    return self._send(401, {"error": {"message": "invalid api key"}})
                if fault is not None:
                    return self._fault(fault)
                if body.get("model") != server.model:
                    return self._send(404, {"error": {"message": f"The model `{body.get('model')}` does not exist."}})
                if len(prompt.split()) >= server.context:
                    return self._send(400, {"error": {"message": f"This model's maximum context length is "
                                                                 f"{server.context} tokens."}})
                time.sleep(server.delay(prompt))
                self._send(200, server._completion(self.path, body, prompt))

            def _fault(self, fault):
                if isinstance(fault, int):
                    headers = {"Retry-After": "0"} if fault == 429 else {}
                    return self._send(fault, {"error": {"message": f"scripted {fault}"}}, headers)
                if fault == "malformed":
                    return self._raw(200, b'{"id": "x", "choices": [ {"text": ')
                if fault == "truncated":  # promises more bytes than it sends, then closes
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", "500")
                    self.end_headers()
                    self.wfile.write(b'{"id": "x", "choices": [')
                    self.wfile.flush()
                    self.close_connection = True
                    return
                if fault == "drop":
                    self.close_connection = True
                    self.connection.close()
                    return
                raise AssertionError(f"unknown fault {fault!r}")

            def _send(self, status, payload, headers=None):
                self._raw(status, json.dumps(payload).encode(), headers)

            def _raw(self, status, data, headers=None):
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(data)

        return Handler

    def _authorised(self, handler) -> bool:
        return self.api_key is None or handler.headers.get("Authorization") == f"Bearer {self.api_key}"

    def _completion(self, path: str, body: dict, prompt: str) -> dict:
        n = body.get("n") or 1
        choices, total = [], 0
        for index in range(n):
            text = self.answer(prompt)
            text = text if isinstance(text, str) else text[index]
            stop = next((s for s in body.get("stop") or [] if s in text), None)
            if stop is not None:
                text = text[: text.index(stop)]
            words = text.split()
            limit = body.get("max_tokens") or 16
            finish = "length" if len(words) > limit else "stop"
            text = " ".join(words[:limit]) if finish == "length" else text
            total += len(text.split())
            choice = {"index": index, "finish_reason": finish}
            if self.vllm:
                choice["stop_reason"] = stop
                if body.get("return_token_ids"):
                    choice["token_ids"] = list(range(len(text.split())))
            if path.endswith("/chat/completions"):
                choice["message"] = {"role": "assistant", "content": text}
            else:
                choice["text"] = text
            choices.append(choice)
        prompt_tokens = len(prompt.split())
        usage = {"prompt_tokens": prompt_tokens, "completion_tokens": total, "total_tokens": prompt_tokens + total}
        if self.vllm:
            usage["prompt_tokens_details"] = {"cached_tokens": min(prompt_tokens, 3)}
        kind = "chat.completion" if path.endswith("/chat/completions") else "text_completion"
        return {"id": "cmpl-fake", "object": kind, "created": 0, "model": self.model, "choices": choices,
                "usage": usage}

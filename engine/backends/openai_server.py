"""The `openai` backend: any OpenAI-compatible completions/chat server (`vllm serve`, SGLang, a hosted API).

Users who outgrow one machine run model servers; we drive them rather than write a distributed system.
Requests go out asynchronously, at most `concurrency` at a time over all servers, each to the server with the
fewest requests outstanding. The backend generates continuously (`submit`/`poll`/`busy`, as vLLM's engine
loop does), so each example's next step is sent the moment its previous step returned, never in waves.

What fails, and how:
- a request the server refuses (HTTP 400/413/422: a prompt longer than its context, a parameter it does not
  take) fails that item alone, with the server's reason, and the run goes on;
- 429, 5xx, timeouts and dropped connections are retried with exponential back-off (a 429's Retry-After is
  honoured), on another server where there is one; when the retries are spent the run stops with one line
  saying so. Items already finished are in samples.jsonl, and rerunning the same command finishes the rest;
- a refused API key, a model the server does not serve, or an answer that is not an OpenAI response stop the
  run at once: retrying cannot help.

The API key is read from `OPENAI_API_KEY` and goes only into the request header: never into settings, logs,
errors or result files. A server without authentication needs none.

vLLM servers (recognised by their `/version` endpoint) are also asked for each completion's token ids, so
token counts are exact per completion; other servers report one total per request, split over its `n`
completions in proportion to their length.
"""

from __future__ import annotations

import asyncio
import os
import queue
import random
import threading
import time
from dataclasses import dataclass

from engine.backends.formatting import labelled_prompt
from engine.backends.names import check_server_options
from engine.backends.server_probe import API_KEY_VARIABLE, key_problem, probe_servers
from engine.errors import BackendUnavailable, EngineError
from engine.generation import Completion, GenerationRequest, GenerationResult

NO_KEY = "no-key"
"""Sent when no key is set: the client library insists on one, and servers without authentication ignore it."""


@dataclass
class Server:
    base_url: str
    client: object
    outstanding: int = 0
    down_until: float = 0.0
    """A server that dropped a connection is avoided until then, while another is up."""


class ServerFailed(EngineError):
    """The servers cannot serve this run (unreachable after retries, refused the key, gave malformed answers)."""


class OpenAIBackend:
    name = "openai"
    remote = True
    """The weights behind a server are not ours to hash: its results never enter the step cache."""
    prefers_continuous = True

    def __init__(self, model: str | None, base_url: str | None, concurrency: int = 64, timeout: float = 600.0,
                 retries: int = 4, backoff: float = 0.5, dtype: str = "auto", progress=None):
        try:
            import openai
        except ImportError:
            raise BackendUnavailable("the openai backend needs the `openai` package: pip install -e '.[openai]'") from None
        check_server_options(self.name, base_url, dtype)
        if concurrency < 1:
            raise EngineError(f"--concurrency must be at least 1, got {concurrency}")
        urls = [url.strip().rstrip("/") for url in base_url.split(",") if url.strip()]
        key = os.environ.get(API_KEY_VARIABLE) or None
        found = probe_servers(urls, model, key)
        self.model = self.served_model = found.model
        self.server_version = found.version
        self.vllm_extensions = found.vllm
        self.dtype = None  # the server's choice, not visible through the API
        self.concurrency, self.timeout, self.retries, self.backoff = concurrency, timeout, retries, backoff
        self.retried = 0
        self.one_choice_only = False
        """Set when the server answered a request for n samples with one: samples are then asked one by one."""
        if progress:
            kind = f"vLLM {found.version}" if found.vllm else "an OpenAI-compatible server"
            progress(f"using {self.model} on {len(urls)} server(s) ({kind}), up to {concurrency} requests at once")
        self._results: queue.Queue = queue.Queue()
        self._in_flight = 0
        self._fatal: BaseException | None = None
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="openai-backend", daemon=True)
        self._thread.start()

        async def setup():
            self._slots = asyncio.Semaphore(concurrency)
            self._tasks: set[asyncio.Task] = set()
            self._servers = [Server(url, openai.AsyncOpenAI(base_url=url, api_key=key or NO_KEY, max_retries=0,
                                                            timeout=timeout)) for url in urls]

        asyncio.run_coroutine_threadsafe(setup(), self._loop).result()

    # the backend protocol: waves (`generate`) and continuous scheduling (`submit`/`poll`/`busy`)

    def generate(self, requests: list[GenerationRequest]) -> list[GenerationResult]:
        results: list[GenerationResult | None] = [None] * len(requests)
        for position, request in enumerate(requests):
            self.submit(request, ("wave", position))
        remaining = len(requests)
        while remaining:
            for (_, position), result in self.poll():
                results[position] = result
                remaining -= 1
        return results

    def submit(self, request: GenerationRequest, tag) -> None:
        """Send one request now (within the concurrency bound); its result comes back from `poll` with `tag`."""
        self._raise_fatal()
        self._in_flight += 1
        self._loop.call_soon_threadsafe(self._start, request, tag)

    def poll(self) -> list[tuple[object, GenerationResult]]:
        """Wait until at least one request finished; every (tag, result) finished by then."""
        done = []
        while not done:
            self._raise_fatal()
            if not self._in_flight:
                return done
            try:
                done.append(self._results.get(timeout=0.5))
            except queue.Empty:
                continue
        while True:
            try:
                done.append(self._results.get_nowait())
            except queue.Empty:
                break
        self._in_flight -= len(done)
        return done

    def busy(self) -> bool:
        return self._in_flight > 0

    def close(self) -> None:
        """Cancel what is in flight, close the connections and stop the backend's thread."""
        if not self._thread.is_alive():
            return

        async def shutdown():
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            for server in self._servers:
                await server.client.close()

        try:
            asyncio.run_coroutine_threadsafe(shutdown(), self._loop).result(timeout=30)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=30)

    # inside the event loop

    def _start(self, request: GenerationRequest, tag) -> None:
        task = self._loop.create_task(self._serve(request, tag))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _serve(self, request: GenerationRequest, tag) -> None:
        try:
            async with self._slots:
                result = await self._with_retries(request)
            self._results.put((tag, result))
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # noqa: BLE001 - reaches the caller's thread through poll
            if self._fatal is None:
                self._fatal = exc

    async def _with_retries(self, request: GenerationRequest) -> GenerationResult:
        import openai

        problem, problem_wait = "", None
        for attempt in range(self.retries + 1):
            if attempt:
                self.retried += 1
                await asyncio.sleep(problem_wait if problem_wait is not None else self._wait(attempt))
            server = self._pick()
            server.outstanding += 1
            started = time.perf_counter()
            problem_wait = None
            try:
                if request.sampling.n > 1 and self.one_choice_only:
                    return await self._one_by_one(request)
                response = await self._call(server, request)
                if request.sampling.n > 1 and len(response.choices) == 1:  # the server ignores `n`
                    self.one_choice_only = True
                    return await self._one_by_one(request)
                return to_result(request, response, time.perf_counter() - started, self.vllm_extensions)
            except (openai.APIConnectionError, openai.APITimeoutError) as exc:  # timeouts subclass connection errors
                server.down_until = time.monotonic() + self._wait(attempt + 1)
                problem = f"{server.base_url} {'timed out' if isinstance(exc, openai.APITimeoutError) else 'dropped the connection'} ({_first_line(exc)})"
            except openai.RateLimitError as exc:
                problem, problem_wait = f"{server.base_url} is rate-limiting (429)", _retry_after(exc)
            except openai.InternalServerError as exc:
                problem = f"{server.base_url} failed with HTTP {exc.status_code} ({_first_line(exc)})"
            except (openai.AuthenticationError, openai.PermissionDeniedError) as exc:
                raise ServerFailed(key_problem(server.base_url, exc.status_code, os.environ.get(API_KEY_VARIABLE))) from None
            except openai.NotFoundError as exc:
                raise ServerFailed(f"{server.base_url} answered 404 for model {self.model!r} ({_first_line(exc)}): "
                                   "check --model and that --base-url ends in /v1") from None
            except openai.APIStatusError as exc:  # 400, 413, 422: this request, not the server
                return refused(request, f"the server refused this request (HTTP {exc.status_code}: {_first_line(exc)})")
            except (openai.APIResponseValidationError, ValueError, KeyError, TypeError, AttributeError) as exc:
                raise ServerFailed(f"{server.base_url} answered with something that is not an OpenAI completion "
                                   f"({type(exc).__name__}: {_first_line(exc)}): check that --base-url points at an "
                                   "OpenAI-compatible /v1 endpoint") from None
            finally:
                server.outstanding -= 1
        raise ServerFailed(f"gave up after {self.retries} retries: {problem}; items already finished are kept in "
                           "the run folder, and rerunning the same command finishes the rest")

    async def _one_by_one(self, request: GenerationRequest) -> GenerationResult:
        """`n` samples as n requests of one, for servers without `n` (sample i seeded with seed + i, so a seeded
        request still repeats; the samples differ from those a server with `n` draws from one seed)."""
        sampling = request.sampling
        singles = [GenerationRequest(prompt=request.prompt, messages=request.messages, continuation=request.continuation,
                                     sampling=sampling.model_copy(update={
                                         "n": 1, "seed": None if sampling.seed is None else sampling.seed + i}))
                   for i in range(sampling.n)]
        parts = await asyncio.gather(*(self._with_retries(single) for single in singles))
        failed = next((part for part in parts if part.error), None)
        if failed is not None:
            return refused(request, failed.error)
        return GenerationResult(request.key, parts[0].prompt_text, parts[0].prompt_tokens,
                                tuple(part.completions[0] for part in parts), max(part.seconds for part in parts),
                                cached_prompt_tokens=parts[0].cached_prompt_tokens)

    def _pick(self) -> Server:
        """The server with the fewest requests outstanding, among those not recently failing (if any)."""
        now = time.monotonic()
        up = [server for server in self._servers if server.down_until <= now] or self._servers
        return min(up, key=lambda server: server.outstanding)

    def _wait(self, attempt: int) -> float:
        return self.backoff * 2 ** (attempt - 1) * (1 + random.random() / 4)

    async def _call(self, server: Server, request: GenerationRequest):
        settings = request.sampling
        common = {"model": self.model, "max_tokens": settings.max_tokens, "temperature": settings.temperature,
                  "top_p": 1.0 if settings.greedy else settings.top_p, "n": settings.n}
        if settings.stop:
            common["stop"] = list(settings.stop)
        if settings.seed is not None:
            common["seed"] = settings.seed
        extra = {"return_token_ids": True} if self.vllm_extensions else {}
        if request.prompt is not None:
            return await server.client.completions.create(prompt=request.prompt + (request.continuation or ""),
                                                          extra_body=extra or None, **common)
        messages = request.messages_as_dicts()
        if request.continuation:  # carry on inside the model's own answer (vLLM and SGLang take these two keys)
            messages.append({"role": "assistant", "content": request.continuation})
            extra |= {"continue_final_message": True, "add_generation_prompt": False}
        return await server.client.chat.completions.create(messages=messages, extra_body=extra or None, **common)

    def _raise_fatal(self) -> None:
        if self._fatal is not None:
            fatal = self._fatal
            if isinstance(fatal, EngineError):
                raise type(fatal)(str(fatal))
            raise ServerFailed(f"the openai backend failed ({type(fatal).__name__}: {_first_line(fatal)})")


def to_result(request: GenerationRequest, response, seconds: float, with_token_ids: bool) -> GenerationResult:
    """Our result from a completions or chat response (raises on a response that lacks what every server sends)."""
    choices = sorted(response.choices, key=lambda choice: choice.index)
    if len(choices) != request.sampling.n:
        raise ValueError(f"asked for {request.sampling.n} completions, got {len(choices)}")
    texts = [choice.text if hasattr(choice, "text") else (choice.message.content or "") for choice in choices]
    usage = response.usage
    counts = completion_counts(choices, texts, usage.completion_tokens if usage else None, with_token_ids)
    completions = []
    for choice, text, count in zip(choices, texts, counts):
        stop_reason = (choice.model_extra or {}).get("stop_reason")
        completions.append(Completion(text=text, completion_tokens=count,
                                      finish_reason="length" if choice.finish_reason == "length" else "stop",
                                      stop_string=stop_reason if isinstance(stop_reason, str) else None))
    details = getattr(usage, "prompt_tokens_details", None) if usage else None
    return GenerationResult(request.key, labelled_prompt(request), usage.prompt_tokens if usage else 0,
                            tuple(completions), seconds,
                            cached_prompt_tokens=(getattr(details, "cached_tokens", None) or 0) if details else 0)


def completion_counts(choices, texts: list[str], total: int | None, with_token_ids: bool) -> list[int]:
    """Tokens of each completion: exact from vLLM's token ids, else the reported total split by length.

    >>> completion_counts([None, None], ["ab", "abcdef"], 8, with_token_ids=False)
    [2, 6]
    """
    if with_token_ids:
        ids = [(choice.model_extra or {}).get("token_ids") for choice in choices]
        if all(isinstance(one, list) for one in ids):
            return [len(one) for one in ids]
    if total is None:
        return [0] * len(texts)
    if len(texts) == 1:
        return [total]
    weights = [len(text) or 1 for text in texts]
    counts = [total * weight // sum(weights) for weight in weights]
    counts[-1] += total - sum(counts)  # the rounding goes to the last one, so they add up to the total
    return counts


def refused(request: GenerationRequest, reason: str) -> GenerationResult:
    return GenerationResult(request.key, labelled_prompt(request), 0, (), error=reason)


def _retry_after(exc) -> float | None:
    try:
        return min(float(exc.response.headers.get("retry-after")), 60.0)
    except (TypeError, ValueError, AttributeError):
        return None


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]

"""Before a run: does every server answer, serve the model, accept our key, and is it vLLM?

Asked once, at start-up, so a wrong URL, a wrong model name or a missing key is one line before any item
runs, not a failure per item.
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.errors import EngineError

PROBE_SECONDS = 10.0
API_KEY_VARIABLE = "OPENAI_API_KEY"


def key_problem(url: str, status: int, key: str | None) -> str:
    """What a 401/403 means: the key sent was refused, or the server wants one and none was set."""
    what = f"refused the key in {API_KEY_VARIABLE}" if key else f"needs an API key: set {API_KEY_VARIABLE}"
    return f"{url} {what} (HTTP {status})"


@dataclass(frozen=True)
class Found:
    model: str
    version: str | None
    vllm: bool


def probe_servers(urls: list[str], model: str | None, key: str | None) -> Found:
    """The model every server serves (`model`, or the one model they serve) and whether they are vLLM."""
    import httpx

    if not urls:
        raise EngineError("--base-url is empty: give a server URL such as http://127.0.0.1:8000/v1")
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    chosen, versions = model, []
    with httpx.Client(timeout=PROBE_SECONDS, headers=headers) as client:
        for url in urls:
            served = served_models(client, url, key)
            if chosen is None:
                if len(served) != 1:
                    raise EngineError(f"{url} serves {len(served)} models ({', '.join(served) or 'none'}): "
                                      "pass --model with the one to use")
                chosen = served[0]
            elif chosen not in served:
                raise EngineError(f"{url} does not serve model {chosen!r}; it serves {', '.join(served) or 'none'}: "
                                  "pass --model with one of those (or start the server with that model)")
            versions.append(vllm_version(client, url))
    return Found(chosen, versions[0], all(version is not None for version in versions))


def served_models(client, url: str, key: str | None) -> list[str]:
    import httpx

    try:
        response = client.get(f"{url}/models")
    except httpx.HTTPError as exc:
        raise EngineError(f"no server answers at {url} ({type(exc).__name__}: {exc}): start one (for example "
                          "`vllm serve MODEL --port 8000`) or fix --base-url") from None
    if response.status_code in (401, 403):
        raise EngineError(key_problem(url, response.status_code, key))
    if response.status_code != 200:
        raise EngineError(f"{url}/models answered HTTP {response.status_code}: check that --base-url is the "
                          "server's OpenAI-compatible root, ending in /v1")
    try:
        return [entry["id"] for entry in response.json()["data"]]
    except (ValueError, KeyError, TypeError):
        raise EngineError(f"{url}/models did not answer like an OpenAI-compatible server (no JSON model list): "
                          "check that --base-url ends in /v1") from None


def vllm_version(client, url: str) -> str | None:
    """vLLM's version from its `/version` endpoint beside /v1; None for other servers."""
    import httpx

    root = url.removesuffix("/v1")
    try:
        response = client.get(f"{root}/version")
        version = response.json().get("version") if response.status_code == 200 else None
    except (httpx.HTTPError, ValueError, AttributeError):
        return None
    return version if isinstance(version, str) else None

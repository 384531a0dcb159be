import pytest
from pydantic import ValidationError

from engine.errors import EngineError
from engine.generation import GenerationRequest
from engine.sampling import SamplingSettings


@pytest.mark.parametrize("kwargs, message", [
    ({"n": 0}, "n must be at least 1, got 0"),
    ({"max_tokens": -5}, "max_tokens must be at least 1, got -5"),
    ({"temperature": -1}, "temperature must be 0"),
    ({"top_p": 0}, "top_p must be in"),
    ({"stop": [""]}, "stop strings must not be empty"),
    ({"tempreature": 1}, "Extra inputs are not permitted"),
])
def test_bad_sampling_settings(kwargs, message):
    with pytest.raises(ValidationError, match=message):
        SamplingSettings(**kwargs)


def test_stop_accepts_one_string():
    assert SamplingSettings(stop="Q:").stop == ("Q:",)


def test_request_key_is_stable_and_sensitive():
    a = GenerationRequest(prompt="hi", sampling=SamplingSettings(max_tokens=5))
    b = GenerationRequest(prompt="hi", sampling=SamplingSettings(max_tokens=5))
    c = GenerationRequest(prompt="hi", sampling=SamplingSettings(max_tokens=6))
    d = GenerationRequest.chat([{"role": "user", "content": "hi"}], SamplingSettings(max_tokens=5))
    assert a.key == b.key and len({a.key, c.key, d.key}) == 3


@pytest.mark.parametrize("kwargs, message", [
    ({"prompt": "   "}, "prompt is empty"),
    ({}, "exactly one of prompt or messages"),
    ({"messages": ()}, "no messages"),
    ({"messages": (("robot", "x"),)}, "unknown chat role"),
    ({"messages": (("user", " "),)}, "every chat message is empty"),
])
def test_bad_requests(kwargs, message):
    with pytest.raises(EngineError, match=message):
        GenerationRequest(**kwargs)

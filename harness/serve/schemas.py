"""What a request may hold and what an error looks like: the pydantic request models (completions and chat), the
server's limits, and OpenAI's error shape."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


@dataclass
class Limits:
    """What one request may ask for; beyond these it gets a 4xx instead of tying up the engine."""

    max_body_bytes: int = 4 * 1024 * 1024  # request body; a larger Content-Length is refused before reading
    max_n: int = 16  # completions per prompt
    max_tokens: int = 2048  # tokens generated per completion
    max_prompts: int = 256  # prompts in one /v1/completions request
    max_choices: int = 512  # prompts x n in one request
    max_stop: int = 16  # stop strings


class APIError(Exception):
    """A request the client must change; rendered as OpenAI's {"error": {...}} with ``status``."""

    def __init__(
        self,
        status: int,
        message: str,
        param: str | None = None,
        kind: str = "invalid_request_error",
        code: str | None = None,
    ):
        super().__init__(message)
        self.status, self.message, self.param, self.kind, self.code = status, message, param, kind, code

    def body(self) -> dict:
        return error_body(self.message, self.kind, self.param, self.code)


def error_body(message: str, kind: str, param: str | None = None, code: str | None = None) -> dict:
    """OpenAI's error object, the body of every 4xx and 5xx (and the last event of a stream that failed)."""
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


class StreamOptions(BaseModel):
    include_usage: bool = False


class Sampling(BaseModel):
    """The sampling fields completions and chat share; unknown fields (user, presence_penalty, ...) are ignored."""

    model_config = ConfigDict(extra="ignore", ser_json_inf_nan="null", allow_inf_nan=False)

    model: str
    n: int = Field(1, ge=1)
    max_tokens: int | None = Field(None, ge=0)
    max_completion_tokens: int | None = Field(None, ge=0)
    temperature: float = Field(1.0, ge=0.0, le=2.0)
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    top_k: int = Field(0, ge=-1)  # vLLM's extension; -1 or 0: no filter
    stop: str | list[str] | None = None
    seed: int | None = Field(None, ge=0, lt=2**63)
    ignore_eos: bool = False
    stream: bool = False
    stream_options: StreamOptions | None = None
    truncate_prompt_tokens: int | None = Field(None, ge=1)  # vLLM's: keep the last K prompt tokens

    @property
    def include_usage(self) -> bool:
        return bool(self.stream_options and self.stream_options.include_usage)


class CompletionRequest(Sampling):
    prompt: str | list[str] | list[int] | list[list[int]]
    echo: bool = False
    logprobs: int | None = Field(None, ge=0, le=20)


class ContentPart(BaseModel):
    model_config = ConfigDict(extra="ignore")
    type: Literal["text"]
    text: str


class Message(BaseModel):
    model_config = ConfigDict(extra="ignore")
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[ContentPart] | None = None


class ChatRequest(Sampling):
    messages: list[Message] = Field(min_length=1)
    logprobs: bool = False
    top_logprobs: int | None = Field(None, ge=0, le=20)

"""One error tree with stable wire codes.

Each error carries the `code` clients see (HTTP body and data-channel `error`
event alike) and the HTTP status it maps to. `api/errors.py` alone turns these
into HTTP responses; `session/session.py` alone turns them into `error` events.
"""

from __future__ import annotations


class MediaServerError(Exception):
    """Base of every error a client may see."""

    code = "internal_error"
    status = 500
    retry_after_s: float | None = None
    """Set on errors that clear by themselves: when to try again."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ConfigError(MediaServerError):
    """A setting has a value the server cannot use."""

    code = "config_error"


class InvalidRequest(MediaServerError):
    """The request is malformed or a field has a bad value; the message names the field."""

    code = "invalid_request"
    status = 400


class UnknownVoice(InvalidRequest):
    code = "unknown_voice"


class TextTooLong(InvalidRequest):
    code = "text_too_long"
    status = 413


class UnsupportedFormat(InvalidRequest):
    code = "unsupported_format"


class UnsupportedLanguage(InvalidRequest):
    code = "unsupported_language"


class NothingToSpeak(InvalidRequest):
    """The text has no letter or digit (only punctuation, symbols, emoji): there is nothing to say."""

    code = "nothing_to_speak"


class InvalidSsml(InvalidRequest):
    """SSML that is malformed or uses an element or value the server does not speak; the message says where."""

    code = "invalid_ssml"


class UnknownDictionary(InvalidRequest):
    """A pronunciation dictionary (or a version of one) that is not stored."""

    code = "unknown_dictionary"
    status = 404


class TooManyDictionaries(InvalidRequest):
    """Storing one more pronunciation dictionary would pass `MAX_DICTIONARIES`."""

    code = "too_many_dictionaries"
    status = 409


class BodyTooLarge(InvalidRequest):
    """The request body is over its size limit (`MAX_BODY_BYTES`, `MAX_UPLOAD_BYTES` for uploads)."""

    code = "body_too_large"
    status = 413


class BodyTimeout(MediaServerError):
    """The request body did not arrive within `BODY_TIMEOUT` seconds."""

    code = "body_timeout"
    status = 408


class NotFound(MediaServerError):
    code = "not_found"
    status = 404


class UnknownCall(NotFound):
    """No live call has this id, or it is another client's (the two are not told apart)."""

    code = "unknown_call"


class TooManyControllers(MediaServerError):
    """A call already has as many control channels as it may."""

    code = "too_many_controllers"
    status = 409


class Busy(MediaServerError):
    """Admission refused: the queue is full, or first audio would come later than the budget."""

    code = "busy"
    status = 503

    def __init__(self, message: str, retry_after_s: float = 1.0, estimate_ms: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s
        self.estimate_ms = estimate_ms


class NotReady(MediaServerError):
    """The backend is loading (at start, or on first use after it was unloaded when idle)."""

    code = "not_ready"
    status = 503
    retry_after_s = 2.0


class EngineError(MediaServerError):
    """Synthesis failed for this request; the engine itself is still usable."""

    code = "engine_error"
    status = 500


class NoAudio(EngineError):
    """The model's whole output for a request was silence: an utterance never ends in an empty success."""

    code = "no_audio"


class Unauthorized(MediaServerError):
    """No API key, or not one of `API_KEYS`."""

    code = "unauthorized"
    status = 401


class Forbidden(MediaServerError):
    """A browser request from an origin the server does not let in."""

    code = "forbidden_origin"
    status = 403


class RateLimited(MediaServerError):
    """Over a rate limit (a client's requests, or a session's messages). Retry after `retry_after_s`."""

    code = "rate_limited"
    status = 429

    def __init__(self, message: str, retry_after_s: float) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class UrlRefused(InvalidRequest):
    """A user-supplied URL the server will not fetch (disabled, host not allowed, private address...)."""

    code = "url_refused"


class RemoteFetchFailed(MediaServerError):
    """An allowed remote host did not deliver (unreachable, an error status, too slow)."""

    code = "remote_fetch_failed"
    status = 502


class WorkerDied(EngineError):
    """The worker process died (or could not start); it is being restarted, so a retry will be served.

    503 with Retry-After rather than 502: the failure is transient and the
    request safe to repeat, which is what 503 tells clients (and the OpenAI
    SDK) to do; the code tells it apart from `busy` and `not_ready`.
    """

    code = "worker_died"
    status = 503
    retry_after_s = 1.0


class EngineUnavailable(EngineError):
    """No engine replica is left to serve the request (`MODE=ray`); the cluster restarts them, so retry.

    503 with Retry-After, like `worker_died`: the request is safe to repeat once a replica is back.
    """

    code = "engine_unavailable"
    status = 503
    retry_after_s = 1.0


def status_for(code: str) -> int:
    """The HTTP status of the error class whose wire code is `code` (500 when no class has it)."""
    classes: list[type[MediaServerError]] = [MediaServerError]
    while classes:
        cls = classes.pop()
        if cls.code == code:
            return cls.status
        classes.extend(cls.__subclasses__())
    return 500

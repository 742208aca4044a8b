"""A Python client for a running liveml server: predict and read metadata over HTTP."""

from __future__ import annotations

import ssl
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx
import numpy as np
import pandas as pd

from liveml.errors import (
    Conflict,
    Forbidden,
    Invalid,
    LivemlError,
    NotFound,
    TooManyRequests,
    Unauthorized,
    Unavailable,
)
from liveml.settings import Settings

_ERRORS: dict[str, type[LivemlError]] = {
    "invalid": Invalid,
    "payload_too_large": Invalid,
    "unsupported_media_type": Invalid,
    "not_found": NotFound,
    "conflict": Conflict,
    "unauthorized": Unauthorized,
    "forbidden": Forbidden,
    "too_many_requests": TooManyRequests,
}
#: the error class by status, for bodies without a liveml kind (other protocols, proxies)
_BY_STATUS: dict[int, type[LivemlError]] = {
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    429: TooManyRequests,
}


@dataclass(frozen=True)
class RemotePrediction:
    """What the server answered: the version that computed it, values or labels, probabilities, ids."""

    model: str
    version: int
    predictions: np.ndarray
    ids: tuple[str, ...]
    probabilities: np.ndarray | None = None
    classes: tuple[Any, ...] | None = None

    def to_frame(self) -> pd.DataFrame:
        frame = pd.DataFrame({"prediction": list(self.predictions)})
        if self.probabilities is not None:
            for i, cls in enumerate(self.classes or range(self.probabilities.shape[1])):
                frame[f"proba_{cls}"] = self.probabilities[:, i]
        frame["prediction_id"] = list(self.ids)
        return frame


class Client:
    """``Client("http://127.0.0.1:8000")``; errors come back as the same liveml errors the server raised.

    The API key sent is ``api_key``, else ``LIVEML_API_KEY``, else the credentials file ``liveml init``
    wrote (``settings`` says where; default: the environment's). ``verify``: False, an SSL context, or
    the path of a CA bundle, e.g. a server's self-signed certificate."""

    def __init__(
        self,
        url: str,
        *,
        timeout: float = 30.0,
        headers: Mapping[str, str] | None = None,
        api_key: str | None = None,
        settings: Settings | None = None,
        verify: bool | str | ssl.SSLContext = True,
    ) -> None:
        from liveml.security.credentials import api_key as configured_key

        self.url = url.rstrip("/")
        sent = dict(headers or {})
        key = api_key or configured_key(settings or Settings())
        if key and not any(h.lower() in ("authorization", "x-api-key") for h in sent):
            sent["Authorization"] = f"Bearer {key}"
        if isinstance(verify, str):  # a CA bundle (or the server's self-signed certificate)
            verify = ssl.create_default_context(cafile=verify)
        self._http = httpx.Client(base_url=self.url, timeout=timeout, headers=sent, verify=verify)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def predict(
        self,
        ref: str,
        rows: pd.DataFrame | Sequence[Mapping[str, Any]] | Mapping[str, Any],
        *,
        probabilities: bool = False,
    ) -> RemotePrediction:
        """Predict ``rows`` (a DataFrame, records or columns) with ``NAME``, ``NAME:VERSION`` or ``NAME@ALIAS``."""
        params = {"probabilities": "true"} if probabilities else None
        if isinstance(rows, pd.DataFrame):
            body = rows.to_json(orient="records", date_format="iso").encode()
            response = self._send(
                "POST", f"/v1/models/{ref}/predict", content=b'{"inputs": ' + body + b"}", params=params
            )
        else:
            records = [dict(rows)] if isinstance(rows, Mapping) else [dict(r) for r in rows]
            response = self._send(
                "POST", f"/v1/models/{ref}/predict", json={"inputs": records}, params=params
            )
        data = response.json()
        probs = data.get("probabilities")
        return RemotePrediction(
            model=data["model"],
            version=int(data["version"]),
            predictions=np.asarray(data["predictions"]),
            ids=tuple(data["ids"]),
            probabilities=np.asarray(probs, dtype=np.float64) if probs is not None else None,
            classes=tuple(data["classes"]) if data.get("classes") is not None else None,
        )

    def models(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._send("GET", "/v1/models").json()["models"]
        return result

    def model(self, ref: str) -> dict[str, Any]:
        result: dict[str, Any] = self._send("GET", f"/v1/models/{ref}").json()
        return result

    def ready(self) -> bool:
        try:
            return self._http.get("/health/ready").status_code == 200
        except httpx.HTTPError:
            return False

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self._http.request(
                method, path, headers={"content-type": "application/json"}, **kwargs
            )
        except httpx.HTTPError as exc:
            raise Unavailable(f"cannot reach the liveml server at {self.url}: {exc}") from exc
        if response.status_code >= 400:
            try:
                body = response.json()
                message, kind = str(body.get("error")), str(body.get("kind", ""))
            except (ValueError, AttributeError):
                message, kind = response.text[:200], ""
            fallback = _BY_STATUS.get(
                response.status_code, Unavailable if response.status_code >= 500 else Invalid
            )
            error = _ERRORS.get(kind, fallback)
            if error is TooManyRequests:
                wait = response.headers.get("retry-after", "1")
                raise TooManyRequests(
                    f"{message} (HTTP 429 from {self.url})",
                    retry_after_s=float(wait) if wait.isdigit() else 1.0,
                )
            raise error(f"{message} (HTTP {response.status_code} from {self.url})")
        return response


__all__ = ["Client", "RemotePrediction"]

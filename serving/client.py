"""A minimal HTTP client for the gateway (CLI, tests, benchmark).

Standard library only (and the gateway's case-insensitive ``Headers``), with a
keep-alive connection per ``Client`` so that
benchmarks measure the gateway rather than TCP handshakes.
"""
import http.client
import json
import urllib.parse
from typing import Any, Mapping, Optional, Tuple

from serving.api.request import Headers


class Client:
    """One persistent HTTP/1.1 connection to a gateway (not thread-safe: one per thread)."""

    def __init__(self, base_url: str, timeout_s: float = 60.0) -> None:
        parsed = urllib.parse.urlsplit(base_url)
        if parsed.scheme != "http" or not parsed.hostname:
            raise ValueError(f"expected a URL like http://127.0.0.1:8501, got {base_url!r}")
        self._host, self._port = parsed.hostname, parsed.port or 80
        self._timeout_s = timeout_s
        self._conn: Optional[http.client.HTTPConnection] = None

    def request(self, method: str, path: str, body: Any = None, raw: Optional[bytes] = None,
                headers: Optional[Mapping[str, str]] = None) -> Tuple[int, Any, Headers]:
        """(status, parsed JSON or text, headers (case-insensitive)). Reconnects once on a
        dropped connection."""
        data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
        all_headers = {"Content-Type": "application/json", **(headers or {})}
        for attempt in (0, 1):
            if self._conn is None:
                self._conn = http.client.HTTPConnection(self._host, self._port, timeout=self._timeout_s)
            try:
                self._conn.request(method, path, body=data, headers=all_headers)
                response = self._conn.getresponse()
                payload = response.read()
                break
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                self.close()
                if attempt:
                    raise
        if response.getheader("Connection", "").lower() == "close":
            self.close()
        text = payload.decode("utf-8", "replace")
        try:
            parsed: Any = json.loads(text)
        except ValueError:
            parsed = text
        return response.status, parsed, Headers(response.getheaders())

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

"""A small HTTP client of the HybridBatch daemon's batch-session API (``/hybridbatch/v1``).

Only the Python standard library: the plugin installs beside Debian's ``toil`` with nothing from PyPI.
"""

import http.client
import json
import threading
import urllib.parse
from typing import Any, Dict, Optional, Tuple

API = "/hybridbatch/v1"


class DaemonError(Exception):
    """The daemon refused a call or could not be reached; the message says which, why and what to do."""

    def __init__(self, message: str, status: Optional[int] = None, body: Optional[Dict[str, Any]] = None) -> None:
        super().__init__(message)
        self.status = status
        self.body = body or {}


class DaemonClient:
    """Calls the daemon over one keep-alive connection per thread."""

    def __init__(self, url: str, token: Optional[str] = None, timeout: float = 120.0) -> None:
        parsed = urllib.parse.urlsplit(url)
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise DaemonError(
                f"the HybridBatch daemon URL '{url}' is not an http(s) URL: give one such as http://127.0.0.1:8000 "
                "with --hybridbatchUrl or HYBRIDBATCH_URL")
        self.url = url.rstrip("/")
        self._scheme = parsed.scheme
        self._host = parsed.hostname
        self._port = parsed.port
        self._prefix = parsed.path.rstrip("/")
        self._token = token
        self._timeout = timeout
        self._local = threading.local()

    def _connection(self) -> http.client.HTTPConnection:
        connection = getattr(self._local, "connection", None)
        if connection is None:
            kind = http.client.HTTPSConnection if self._scheme == "https" else http.client.HTTPConnection
            connection = kind(self._host, self._port, timeout=self._timeout)
            self._local.connection = connection
        return connection

    def call(self, method: str, path: str, body: Optional[Dict[str, Any]] = None) -> Tuple[int, Dict[str, Any]]:
        """Sends one request; returns the status and the JSON body (empty for 204). Raises DaemonError when unreachable."""
        headers = {"Accept": "application/json"}
        data = None
        if body is not None:
            data = json.dumps(body).encode("utf-8")
            headers["Content-Type"] = "application/json"
        if self._token:
            headers["Authorization"] = "Bearer " + self._token
        # A kept-alive connection the daemon closed meanwhile fails once on reuse; a fresh one is tried then.
        for attempt in (1, 2):
            connection = self._connection()
            try:
                connection.request(method, self._prefix + API + path, body=data, headers=headers)
                response = connection.getresponse()
                raw = response.read()
                break
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError) as error:
                connection.close()
                self._local.connection = None
                if attempt == 2:
                    raise self._unreachable(error) from error
            except (OSError, http.client.HTTPException) as error:
                connection.close()
                self._local.connection = None
                raise self._unreachable(error) from error
        if not raw:
            return response.status, {}
        try:
            return response.status, json.loads(raw)
        except ValueError:
            text = raw.decode("utf-8", "replace").strip()[:200]
            raise DaemonError(
                f"{self.url} answered {method} {path} with status {response.status} and not JSON ('{text}'): "
                "is it the HybridBatch daemon (hybridbatch serve)?", response.status)

    def _unreachable(self, error: BaseException) -> DaemonError:
        return DaemonError(
            f"cannot reach the HybridBatch daemon at {self.url}: {error}. Start it with 'hybridbatch serve' "
            "(or deploy it into the cluster) and give its URL with --hybridbatchUrl or HYBRIDBATCH_URL")

    def close(self) -> None:
        connection = getattr(self._local, "connection", None)
        if connection is not None:
            connection.close()
            self._local.connection = None

"""A local fake of the Bot Connector REST API (what Teams serves at a service URL), HTTP + JSON.

Supported: the token endpoint (client credentials), create conversation (a new channel thread),
send to conversation, reply to activity, update and delete activity, get a conversation member
(with a team id as the conversation: that team's roster). `fail_next` injects an error status,
`lose_answer_next` makes a call happen without an answer. Listing a conversation's activities
(GET .../activities) is an extension Teams does not serve; `lists_activities = False` refuses it.
Every connector call needs a bearer token the fake issued. `rate_limit_next` answers 429 with
Retry-After a number of times. Threads are kept per conversation id `{channel};messageid={root}`.
A service URL with one more path segment (`{service_url}emea/`) is served too, as a regional one;
each call's path shows which was used.
"""

from __future__ import annotations

import copy
import itertools
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit


@dataclass(frozen=True)
class ConnectorCall:
    op: str  # token, create_conversation, send, reply, update, delete, member
    path: str
    body: dict[str, Any]
    status: int
    response: dict[str, Any] = field(default_factory=dict)
    at: float = 0.0  # time.time() when the fake answered


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    fake: FakeTeams


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def _any(self) -> None:
        self.server.fake._handle(self)

    do_GET = do_POST = do_PUT = do_DELETE = _any  # noqa: N815

    def log_message(self, format: str, *args: Any) -> None:
        pass


class FakeTeams:
    def __init__(self, *, app_id: str, app_password: str) -> None:
        self.app_id, self.app_password = app_id, app_password
        self.members: dict[str, dict[str, Any]] = {}  # Teams user id (29:...) -> TeamsChannelAccount
        # Team id (19:...@thread.tacv2) -> the Teams user ids on its roster; a member lookup with a
        # team as the conversation answers 404 MemberNotFound for anyone else (as the connector does).
        self.team_rosters: dict[str, set[str]] = {}
        self.calls: list[ConnectorCall] = []
        self.conversations: dict[str, list[dict[str, Any]]] = {}
        self.delay_seconds = 0.0  # every connector answer waits this long (races between jobs)
        self._tokens: set[str] = set()
        self._limits: dict[str, list[int]] = {}  # op -> [times left, retry-after seconds]
        self._failures: dict[str, list[int]] = {}  # op -> [times left, status]
        self._lost: dict[str, int] = {}  # op -> times left to do the call but drop the answer
        # GET v3/conversations/{id}/activities: served here for the post-once lookup; Teams' own
        # Bot Connector does not list activities (False: answered 405, as there).
        self.lists_activities = True
        self._ids = itertools.count(1_700_000_000_001)
        self._lock = threading.RLock()
        self._server: _Server | None = None

    # ---- lifecycle ----

    def __enter__(self) -> FakeTeams:
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.fake = self
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    @property
    def service_url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}/"

    @property
    def token_url(self) -> str:
        return self.service_url + "oauth2/token"

    # ---- what tests look at ----

    def rate_limit_next(self, op: str, *, times: int = 1, retry_after: int = 1) -> None:
        with self._lock:
            self._limits[op] = [times, retry_after]

    def fail_next(self, op: str, *, status: int, times: int = 1) -> None:
        """The next `times` calls of `op` answer `status` with an error body (403, 404, 500, ...)."""
        with self._lock:
            self._failures[op] = [times, status]

    def lose_answer_next(self, op: str, *, times: int = 1) -> None:
        """The next `times` calls of `op` take effect but their connection drops before the answer
        (a worker that died between the post and its record looks the same to the next attempt)."""
        with self._lock:
            self._lost[op] = times

    def calls_to(self, op: str) -> list[ConnectorCall]:
        with self._lock:
            return [c for c in self.calls if c.op == op]

    def threads(self, channel_id: str) -> list[str]:
        """Thread conversation ids started in this channel, oldest first."""
        with self._lock:
            return [c for c in self.conversations if c.startswith(channel_id + ";messageid=")]

    def thread(self, conversation_id: str) -> list[dict[str, Any]]:
        """The thread's activities (root card first), as last updated, without deleted ones."""
        with self._lock:
            return [copy.deepcopy(a) for a in self.conversations.get(conversation_id, []) if not a.get("_deleted")]

    @staticmethod
    def card_of(activity: dict[str, Any]) -> dict[str, Any]:
        return dict(activity["attachments"][0]["content"])

    # ---- the wire ----

    def _handle(self, req: _Handler) -> None:
        length = int(req.headers.get("Content-Length") or 0)
        raw = req.rfile.read(length) if length else b""
        path = urlsplit(req.path).path
        method = req.command
        if path == "/oauth2/token":
            form = dict(parse_qsl(raw.decode()))
            ok = form.get("client_id") == self.app_id and form.get("client_secret") == self.app_password
            token = f"teams-test-token-{next(self._ids)}"
            if ok:
                with self._lock:
                    self._tokens.add(token)
            self._answer(req, "token", path, {}, 200 if ok else 401,
                         {"access_token": token, "expires_in": 3600, "token_type": "Bearer"} if ok else
                         {"error": "invalid_client"})
            return
        body: dict[str, Any] = json.loads(raw) if raw else {}
        op, conversation, activity_id = self._route(method, path)
        bearer = (req.headers.get("Authorization") or "").removeprefix("Bearer ")
        with self._lock:
            authorized = bearer in self._tokens
            limit = self._limits.get(op)
            if authorized and limit and limit[0] > 0:
                limit[0] -= 1
                self._answer(req, op, path, body, 429, {"error": {"code": "TooManyRequests"}},
                             {"Retry-After": str(limit[1])})
                return
            failure = self._failures.get(op)
            if authorized and failure and failure[0] > 0:
                failure[0] -= 1
                self._answer(req, op, path, body, failure[1], {"error": {"code": "Injected"}})
                return
        if not authorized:
            self._answer(req, op, path, body, 401, {"error": {"code": "Unauthorized"}})
            return
        time.sleep(self.delay_seconds)
        status, answer = self._apply(op, conversation, activity_id, body)
        with self._lock:
            lose = self._lost.get(op, 0) > 0
            if lose:
                self._lost[op] -= 1
        if lose:  # done, but the caller never hears: the connection drops before the answer
            with self._lock:
                self.calls.append(ConnectorCall(op, path, body, 0, answer, time.time()))
            req.close_connection = True
            return
        self._answer(req, op, path, body, status, answer)

    @staticmethod
    def _route(method: str, path: str) -> tuple[str, str, str]:
        parts = [unquote(p) for p in path.strip("/").split("/")]
        if parts[1:3] == ["v3", "conversations"]:
            parts = parts[1:]  # a regional service URL: {service url}/{region}/v3/...
        if parts[:2] != ["v3", "conversations"]:
            return "unknown", "", ""
        if len(parts) == 2:
            return ("create_conversation" if method == "POST" else "unknown"), "", ""
        conversation = parts[2]
        if len(parts) == 4 and parts[3] == "activities" and method == "POST":
            return "send", conversation, ""
        if len(parts) == 4 and parts[3] == "activities" and method == "GET":
            return "list", conversation, ""
        if len(parts) == 5 and parts[3] == "activities":
            return {"POST": "reply", "PUT": "update", "DELETE": "delete"}.get(method, "unknown"), conversation, parts[4]
        if len(parts) == 5 and parts[3] == "members" and method == "GET":
            return "member", conversation, parts[4]
        return "unknown", conversation, ""

    def _apply(self, op: str, conversation: str, activity_id: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        with self._lock:
            if op == "create_conversation":
                channel = ((body.get("channelData") or {}).get("channel") or {}).get("id")
                if not channel or not body.get("activity"):
                    return 400, {"error": {"code": "BadArgument"}}
                root = str(next(self._ids))
                thread = f"{channel};messageid={root}"
                self.conversations[thread] = [{**body["activity"], "id": root}]
                return 201, {"id": thread, "activityId": root}
            if op in ("send", "reply"):
                if conversation not in self.conversations and ";messageid=" in conversation:
                    self.conversations[conversation] = []  # a thread a person started in the channel
                if conversation not in self.conversations:
                    return 404, {"error": {"code": "ConversationNotFound"}}
                new_id = str(next(self._ids))
                self.conversations[conversation].append({**body, "id": new_id, "replyToId": activity_id or None})
                return 201, {"id": new_id}
            if op in ("update", "delete"):
                for thread, activities in self.conversations.items():
                    if thread != conversation and not thread.startswith(conversation + ";"):
                        continue
                    for i, existing in enumerate(activities):
                        if existing["id"] == activity_id:
                            replaced = {**body, "id": activity_id}
                            activities[i] = {**existing, "_deleted": True} if op == "delete" else replaced
                            return 200, {"id": activity_id}
                return 404, {"error": {"code": "ActivityNotFound"}}
            if op == "list":
                if not self.lists_activities:
                    return 405, {"error": {"code": "MethodNotAllowed"}}
                if ";messageid=" in conversation:
                    found = [{**a, "conversation": {"id": conversation}} for a in self.thread(conversation)]
                else:
                    found = [{**self.thread(t)[0], "conversation": {"id": t}} for t in self.threads(conversation)
                             if self.thread(t)]
                return 200, {"activities": found}
            if op == "member":
                roster = self.team_rosters.get(conversation)
                member = self.members.get(activity_id) if roster is None or activity_id in roster else None
                return (200, {"id": activity_id, **member}) if member else (404, {"error": {"code": "MemberNotFound"}})
            return 404, {"error": {"code": "NotFound"}}

    def _answer(self, req: _Handler, op: str, path: str, body: dict[str, Any], status: int,
                answer: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        with self._lock:
            self.calls.append(ConnectorCall(op, path, body, status, answer, time.time()))
        data = json.dumps(answer).encode()
        req.send_response(status)
        req.send_header("Content-Type", "application/json")
        req.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            req.send_header(name, value)
        req.end_headers()
        req.wfile.write(data)

"""A local fake of the Slack Web API for end-to-end tests, speaking Slack's wire protocol.

Use a real client: ``WebClient(token="xoxb-test-token", base_url=fake.api_url)``. Requests are
``POST /api/<method>`` with ``Authorization: Bearer <token>`` and a JSON body (slack_sdk: chat.post*,
chat.update, views.*) or a form body (the rest; ``blocks``/``attachments``/``view`` then arrive as
JSON strings and are decoded back). Errors are HTTP 200 ``{"ok": false, "error": ...}`` as in Slack,
except rate limits (HTTP 429 + ``Retry-After``). Any channel id is accepted, and reactions/permalinks
work on messages the fake never saw (user messages from events); update/delete need a posted message.

Files: ``add_file`` stores a file a person shared and returns its Slack file object (what a
``file_share`` event carries); ``files.info`` answers it, and its ``url_private_download`` serves the
bytes only with a valid ``Authorization: Bearer`` token. Without one Slack answers its HTML sign-in
page with status 200 (not 401), and so does the fake. Downloads are recorded as method "files.download".
"""

from __future__ import annotations

import copy
import json
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TypeVar
from urllib.parse import parse_qsl, quote, urlsplit

BOT_USER_ID = "U0BOT"
BOT_ID = "B0BOT"
TEAM_ID = "T0TEAM"
APP_ID = "A0APP"
TEAM_DOMAIN = "threadline-test"
FILES_PATH = "/files-pri/"
SIGN_IN_PAGE = b"<!DOCTYPE html><html><head><title>Slack</title></head><body>Sign in to Slack</body></html>"
JSON_FIELDS = ("blocks", "attachments", "view", "metadata", "user_auth_blocks")

T = TypeVar("T")
Handler = Callable[[dict[str, Any]], dict[str, Any]]
Answer = tuple[int, dict[str, str], dict[str, Any]]  # HTTP status, extra headers, JSON body


@dataclass(frozen=True)
class SlackCall:
    method: str
    args: dict[str, Any]
    token: str
    at: float
    response: dict[str, Any] | None = None  # what the fake answered; None if the connection was dropped


class SlackError(Exception):
    """Raised by a method handler to answer ``{"ok": false, "error": str(exc)}``."""


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    fake: FakeSlack


class _RequestHandler(BaseHTTPRequestHandler):
    server: _Server

    def do_POST(self) -> None:  # noqa: N802 (http.server naming)
        self.server.fake._handle(self)

    do_GET = do_POST  # noqa: N815

    def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
        pass


class FakeSlack:
    def __init__(self) -> None:
        self.tokens: set[str] = {"xoxb-test-token"}
        self.users: dict[str, dict[str, Any]] = {}  # per-user overrides merged into users.info answers
        self.channels: dict[str, dict[str, Any]] = {}  # per-channel overrides for conversations.info
        # conversations.members: a channel listed here has exactly these members; any other channel
        # has every user the fake knows (configured in `users` or looked up with users.info).
        self.members: dict[str, list[str]] = {}
        self.usergroups: dict[str, list[str]] = {}  # usergroups.users.list
        self.token_teams: dict[str, str] = {}  # the workspace of a bot token (default TEAM_ID)
        self._seen_users: set[str] = set()
        self._caller = threading.local()
        self._lock = threading.RLock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._clock = 1_700_000_000_000_000  # microseconds; ts values are derived from it
        self.files: dict[str, dict[str, Any]] = {}  # file id -> Slack file object (files.info)
        self._file_bytes: dict[str, bytes] = {}
        self._methods: dict[str, Handler] = {
            "auth.test": self._auth_test,
            "chat.postMessage": self._post_message,
            "chat.update": self._update,
            "chat.delete": self._delete,
            "chat.postEphemeral": self._post_ephemeral,
            "chat.getPermalink": self._permalink,
            "reactions.add": self._reactions_add,
            "reactions.remove": self._reactions_remove,
            "users.info": self._users_info,
            "conversations.info": self._conversations_info,
            "conversations.members": self._conversations_members,
            "usergroups.users.list": self._usergroups_users_list,
            "conversations.replies": self._conversations_replies,
            "conversations.history": self._conversations_history,
            "files.info": self._files_info,
            "views.open": self._views_open,
            "views.push": self._views_open,
            "views.update": self._views_update,
        }
        self.reset()

    # ------------------------------------------------------------------ files

    def add_file(self, name: str, content: bytes, *, mimetype: str = "application/octet-stream",
                 user: str = "U0AGENT", size: int | None = None) -> dict[str, Any]:
        """A file a person shared; its Slack file object (``size`` may be declared falsely, as a test wants)."""
        with self._lock:
            file_id = f"F{len(self.files) + 1:08d}"
            base = f"{self.base_url}{FILES_PATH}{TEAM_ID}-{file_id}"
            quoted = quote(name, safe="")
            info = {"id": file_id, "created": 1_700_000_000, "timestamp": 1_700_000_000, "name": name, "title": name,
                    "mimetype": mimetype, "filetype": name.rpartition(".")[2] or "binary", "user": user,
                    "size": len(content) if size is None else size, "mode": "hosted", "is_external": False,
                    "url_private": f"{base}/{quoted}", "url_private_download": f"{base}/download/{quoted}",
                    "permalink": f"https://{TEAM_DOMAIN}.slack.com/files/{user}/{file_id}/{quoted}"}
            self.files[file_id] = info
            self._file_bytes[file_id] = content
            return copy.deepcopy(info)

    def _files_info(self, args: dict[str, Any]) -> dict[str, Any]:
        self._require(args, file="file_not_found")
        info = self.files.get(str(args["file"]))
        if info is None:
            raise SlackError("file_not_found")
        return {"file": copy.deepcopy(info), "comments": [], "response_metadata": {"next_cursor": ""}}

    def _download(self, req: _RequestHandler, path: str, token: str) -> None:
        file_id = path[len(FILES_PATH):].split("/", 1)[0].rpartition("-")[2]
        with self._lock:
            authorised = token in self.tokens
            data = self._file_bytes.get(file_id)
            answer = {"ok": authorised and data is not None}
            self.calls.append(SlackCall("files.download", {"file": file_id, "path": path}, token, time.time(), answer))
            mimetype = self.files[file_id]["mimetype"] if data is not None else "text/html"
        if data is None:
            req.send_error(404)
            return
        body, ctype = (data, mimetype) if authorised else (SIGN_IN_PAGE, "text/html; charset=utf-8")
        req.send_response(200)
        req.send_header("Content-Type", ctype)
        req.send_header("Content-Length", str(len(body)))
        req.end_headers()
        req.wfile.write(body)

    # ----------------------------------------------------------------- lifecycle

    def start(self) -> FakeSlack:
        self._server = _Server(("127.0.0.1", 0), _RequestHandler)
        self._server.fake = self
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-slack", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None and self._thread is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join(timeout=5)
            self._server = self._thread = None

    def __enter__(self) -> FakeSlack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        assert self._server is not None, "FakeSlack is not started"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def api_url(self) -> str:
        return f"{self.base_url}/api/"

    def response_url(self, name: str = "1") -> str:
        """A ``response_url`` for command/interaction payloads; posts to it are recorded as method "response_url"."""
        return f"{self.base_url}/response/{name}"

    # ----------------------------------------------------------- state & helpers

    def reset(self) -> None:
        """Forget calls, messages, reactions, views and pending faults (tokens/users/channels are kept)."""
        with self._lock:
            self.calls: list[SlackCall] = []
            self.reactions: set[tuple[str, str, str]] = set()  # (channel, ts, name) the bot has added
            self.views: dict[str, dict[str, Any]] = {}
            self._messages: dict[tuple[str, str], dict[str, Any]] = {}
            self._rate_limits: dict[str, deque[int]] = defaultdict(deque)
            self._failures: dict[str, deque[str]] = defaultdict(deque)
            self._drops = 0

    def calls_to(self, method: str) -> list[SlackCall]:
        with self._lock:
            return [c for c in self.calls if c.method == method]

    def messages(self, channel: str | None = None, thread_ts: str | None = None) -> list[dict[str, Any]]:
        """Posted messages as they are now (after updates/deletes), oldest first; with ``thread_ts``
        like conversations.replies: the parent (if the fake posted it) and its replies."""
        with self._lock:
            found = [
                m
                for m in self._messages.values()
                if (channel is None or m["channel"] == channel)
                and (thread_ts is None or thread_ts in (m["ts"], m["thread_ts"]))
            ]
            return copy.deepcopy(found)

    def human_says(self, channel: str, user: str, text: str, ts: str, thread_ts: str | None = None) -> None:
        """Store a person's message as Slack would (the test delivers its event separately)."""
        with self._lock:
            self._messages[(channel, ts)] = {"type": "message", "ts": ts, "channel": channel, "thread_ts": thread_ts,
                                             "user": user, "team": TEAM_ID, "text": text}

    def wait_for(self, predicate: Callable[[FakeSlack], T], timeout: float = 10) -> T:
        """Poll until ``predicate(self)`` is truthy and return its value; AssertionError on timeout."""
        deadline = time.monotonic() + timeout
        while True:
            result = predicate(self)
            if result:
                return result
            if time.monotonic() >= deadline:
                with self._lock:
                    recent = "\n".join(f"  {c.method} {c.args!r} -> {c.response!r}" for c in self.calls[-15:])
                raise AssertionError(f"condition not met within {timeout}s; recent Slack calls:\n{recent or '  none'}")
            time.sleep(0.02)

    # ----------------------------------------------------------- fault injection

    def rate_limit_next(self, method: str, times: int = 1, retry_after: int = 1) -> None:
        with self._lock:
            self._rate_limits[method].extend([retry_after] * times)

    def fail_next(self, method: str, error: str = "internal_error", times: int = 1) -> None:
        with self._lock:
            self._failures[method].extend([error] * times)

    def drop_connections_next(self, times: int = 1) -> None:
        """Close the socket without answering the next ``times`` requests (any method)."""
        with self._lock:
            self._drops += times

    # ------------------------------------------------------------------- HTTP

    def _handle(self, req: _RequestHandler) -> None:
        raw = req.rfile.read(int(req.headers.get("Content-Length") or 0))
        url = urlsplit(req.path)
        args: dict[str, Any] = dict(parse_qsl(url.query, keep_blank_values=True))
        bad_body = False
        try:
            if "json" in req.headers.get("Content-Type", ""):
                args.update(json.loads(raw or b"{}"))
            else:
                args.update(parse_qsl(raw.decode(), keep_blank_values=True))
        except (ValueError, TypeError):
            bad_body = True
        for key in JSON_FIELDS:  # form bodies carry these as JSON strings
            if isinstance(args.get(key), str) and args[key][:1] in ("[", "{"):
                try:
                    args[key] = json.loads(args[key])
                except ValueError:
                    bad_body = True
        auth = req.headers.get("Authorization", "")
        token = auth[len("Bearer ") :] if auth.startswith("Bearer ") else str(args.pop("token", ""))

        if url.path.startswith(FILES_PATH):
            self._download(req, url.path, token)
            return
        if url.path.startswith("/response/"):  # a response_url (bolt's respond())
            method = "response_url"
        elif url.path.startswith("/api/"):
            method = url.path[len("/api/") :]
        else:
            req.send_error(404)
            return

        with self._lock:
            if self._drops > 0:
                self._drops -= 1
                self.calls.append(SlackCall(method, args, token, time.time(), None))
                req.close_connection = True  # answer nothing; the client sees the connection closed
                return
            status, headers, body = self._dispatch(method, args, token, bad_body)
            self.calls.append(SlackCall(method, args, token, time.time(), copy.deepcopy(body)))

        data = json.dumps(body).encode()
        req.send_response(status)
        req.send_header("Content-Type", "application/json; charset=utf-8")
        req.send_header("Content-Length", str(len(data)))
        for name, value in headers.items():
            req.send_header(name, value)
        req.end_headers()
        req.wfile.write(data)

    def _dispatch(self, method: str, args: dict[str, Any], token: str, bad_body: bool) -> Answer:
        if method == "response_url":
            return 200, {}, {"ok": True}
        handler = self._methods.get(method)
        if handler is None:
            return 200, {}, {"ok": False, "error": "unknown_method", "req_method": method}
        if self._rate_limits[method] and token in self.tokens:
            retry_after = self._rate_limits[method].popleft()
            return 429, {"Retry-After": str(retry_after)}, {"ok": False, "error": "ratelimited"}
        try:
            if bad_body:
                raise SlackError("invalid_json")
            if token not in self.tokens:
                raise SlackError("invalid_auth" if token else "not_authed")
            if self._failures[method]:
                raise SlackError(self._failures[method].popleft())
            self._caller.token = token
            return 200, {}, {"ok": True, **handler(args)}
        except SlackError as e:
            return 200, {}, {"ok": False, "error": str(e)}

    # ---------------------------------------------------------------- methods

    def _next_ts(self) -> str:
        self._clock += 100
        return f"{self._clock // 1_000_000}.{self._clock % 1_000_000:06d}"

    @staticmethod
    def _require(args: dict[str, Any], **errors: str) -> None:
        """Raise Slack's error for the first missing argument, e.g. ``channel="channel_not_found"``."""
        for name, error in errors.items():
            if not args.get(name):
                raise SlackError(error)

    def _find(self, args: dict[str, Any]) -> dict[str, Any]:
        self._require(args, channel="channel_not_found", ts="message_not_found")
        message = self._messages.get((args["channel"], str(args["ts"])))
        if message is None:
            raise SlackError("message_not_found")
        return message

    @staticmethod
    def _public(message: dict[str, Any]) -> dict[str, Any]:
        """A stored message as Slack returns it (no channel key, no empty optional fields)."""
        out = {k: copy.deepcopy(v) for k, v in message.items() if k != "channel" and v not in (None, [])}
        return {"text": ""} | out

    def _auth_test(self, args: dict[str, Any]) -> dict[str, Any]:
        url = f"https://{TEAM_DOMAIN}.slack.com/"
        ids = {"team_id": TEAM_ID, "user_id": BOT_USER_ID, "bot_id": BOT_ID, "is_enterprise_install": False}
        return {"url": url, "team": "Threadline Test", "user": "threadline"} | ids

    def _post_message(self, args: dict[str, Any]) -> dict[str, Any]:
        self._require(args, channel="channel_not_found")
        if not (args.get("text") or args.get("blocks") or args.get("attachments")):
            raise SlackError("no_text")
        channel, ts = str(args["channel"]), self._next_ts()
        message = {"type": "message", "ts": ts, "channel": channel, "thread_ts": args.get("thread_ts") or None}
        message |= {"user": BOT_USER_ID, "bot_id": BOT_ID, "app_id": APP_ID, "team": TEAM_ID}
        message |= {k: args.get(k) or default for k, default in (("text", ""), ("blocks", []), ("attachments", []))}
        message["metadata"] = args.get("metadata")
        self._messages[(channel, ts)] = message
        return {"channel": channel, "ts": ts, "message": self._public(message)}

    def _update(self, args: dict[str, Any]) -> dict[str, Any]:
        message = self._find(args)
        for key in ("text", "blocks", "attachments", "metadata"):  # absent fields are kept, as in Slack
            if key in args:
                message[key] = args[key]
        message["edited"] = {"user": BOT_USER_ID, "ts": self._next_ts()}
        public = self._public(message)
        return {"channel": message["channel"], "ts": message["ts"], "text": public["text"], "message": public}

    def _delete(self, args: dict[str, Any]) -> dict[str, Any]:
        message = self._find(args)
        del self._messages[(message["channel"], message["ts"])]
        return {"channel": message["channel"], "ts": message["ts"]}

    def _post_ephemeral(self, args: dict[str, Any]) -> dict[str, Any]:
        self._require(args, channel="channel_not_found", user="user_not_in_channel")
        return {"message_ts": self._next_ts()}

    def _permalink(self, args: dict[str, Any]) -> dict[str, Any]:
        self._require(args, channel="channel_not_found", message_ts="message_not_found")
        channel, ts = str(args["channel"]), str(args["message_ts"])
        link = f"https://{TEAM_DOMAIN}.slack.com/archives/{channel}/p{ts.replace('.', '')}"
        known = self._messages.get((channel, ts))
        if known and known["thread_ts"] not in (None, ts):
            link += f"?thread_ts={known['thread_ts']}&cid={channel}"
        return {"channel": channel, "permalink": link}

    def _reaction(self, args: dict[str, Any]) -> tuple[str, str, str]:
        self._require(args, name="invalid_name", channel="channel_not_found", timestamp="message_not_found")
        return str(args["channel"]), str(args["timestamp"]), str(args["name"])

    def _reactions_add(self, args: dict[str, Any]) -> dict[str, Any]:
        if (key := self._reaction(args)) in self.reactions:
            raise SlackError("already_reacted")
        self.reactions.add(key)
        return {}

    def _reactions_remove(self, args: dict[str, Any]) -> dict[str, Any]:
        if (key := self._reaction(args)) not in self.reactions:
            raise SlackError("no_reaction")
        self.reactions.remove(key)
        return {}

    def _users_info(self, args: dict[str, Any]) -> dict[str, Any]:
        self._require(args, user="user_not_found")
        uid = str(args["user"])
        override, is_bot = self.users.get(uid, {}), uid == BOT_USER_ID
        name = override.get("name", "threadline" if is_bot else uid.lower())
        real_name = override.get("real_name", "Threadline" if is_bot else f"User {uid}")
        profile = {"real_name": real_name, "display_name": name, "team": TEAM_ID}
        profile |= {"bot_id": BOT_ID} if is_bot else {"email": f"{uid}@example.test"}
        self._seen_users.add(uid)
        team = self.token_teams.get(getattr(self._caller, "token", ""), TEAM_ID)  # users of the caller's workspace
        user = {"id": uid, "team_id": team, "name": name, "real_name": real_name, "deleted": False}
        user |= {"is_bot": is_bot, "is_admin": False, "tz": "Etc/UTC", "tz_offset": 0} | copy.deepcopy(override)
        user["profile"] = profile | copy.deepcopy(override.get("profile", {}))
        return {"user": user}

    def _conversations_replies(self, args: dict[str, Any]) -> dict[str, Any]:
        """One page, parent first; `metadata` only with include_all_metadata, as in Slack."""
        self._require(args, channel="channel_not_found", ts="thread_not_found")
        with_meta = str(args.get("include_all_metadata", "")).lower() in ("1", "true")
        found = [self._public(m) for m in self.messages(str(args["channel"]), str(args["ts"]))]
        if not found:
            raise SlackError("thread_not_found")
        for m in found:
            if not with_meta:
                m.pop("metadata", None)
        return {"messages": found, "has_more": False}

    def _conversations_history(self, args: dict[str, Any]) -> dict[str, Any]:
        """One page of the channel's top-level messages, newest first; `metadata` only with
        include_all_metadata, as in Slack."""
        self._require(args, channel="channel_not_found")
        with_meta = str(args.get("include_all_metadata", "")).lower() in ("1", "true")
        found = [self._public(m) for m in reversed(self.messages(str(args["channel"])))
                 if m["thread_ts"] in (None, m["ts"])]
        for m in found:
            if not with_meta:
                m.pop("metadata", None)
        return {"messages": found, "has_more": False, "response_metadata": {"next_cursor": ""}}

    def _conversations_members(self, args: dict[str, Any]) -> dict[str, Any]:
        """One page (no cursor): the channel's configured members, else everyone the fake knows."""
        self._require(args, channel="channel_not_found")
        cid = str(args["channel"])
        members = self.members[cid] if cid in self.members else sorted(set(self.users) | self._seen_users)
        return {"members": list(members), "response_metadata": {"next_cursor": ""}}

    def _usergroups_users_list(self, args: dict[str, Any]) -> dict[str, Any]:
        self._require(args, usergroup="no_such_subteam")
        if str(args["usergroup"]) not in self.usergroups:
            raise SlackError("no_such_subteam")
        return {"users": list(self.usergroups[str(args["usergroup"])])}

    def _conversations_info(self, args: dict[str, Any]) -> dict[str, Any]:
        self._require(args, channel="channel_not_found")
        cid = str(args["channel"])
        kind = cid[:1]  # C public channel, G private channel, D direct message
        channel = {"id": cid, "name": f"channel-{cid.lower()}", "is_channel": kind == "C", "is_group": kind == "G"}
        channel |= {"is_im": kind == "D", "is_private": kind in "GD", "is_archived": False, "is_member": True}
        channel |= {"created": 1_700_000_000, "topic": {"value": ""}, "purpose": {"value": ""}}
        return {"channel": channel | copy.deepcopy(self.channels.get(cid, {}))}

    def _store_view(self, spec: Any, view_id: str, root_id: str) -> dict[str, Any]:
        if not isinstance(spec, dict) or "type" not in spec:
            raise SlackError("invalid_arguments")
        defaults = {"blocks": [], "private_metadata": "", "callback_id": "", "external_id": "", "state": {"values": {}}}
        ids = {"id": view_id, "team_id": TEAM_ID, "root_view_id": root_id, "app_id": APP_ID, "bot_id": BOT_ID}
        view = defaults | copy.deepcopy(spec) | ids | {"hash": f"{self._next_ts()}.hash", "previous_view_id": None}
        self.views[view_id] = view
        return {"view": copy.deepcopy(view)}

    def _views_open(self, args: dict[str, Any]) -> dict[str, Any]:  # views.open and views.push
        if not (args.get("trigger_id") or args.get("interactivity_pointer")):
            raise SlackError("invalid_arguments")
        view_id = "V" + self._next_ts().replace(".", "")
        return self._store_view(args.get("view"), view_id, view_id)

    def _views_update(self, args: dict[str, Any]) -> dict[str, Any]:
        external_id = args.get("external_id")
        by_external = [v for v in self.views.values() if external_id and v["external_id"] == external_id]
        old = self.views.get(str(args.get("view_id"))) or next(iter(by_external), None)
        if old is None:
            raise SlackError("not_found")
        if args.get("hash") and args["hash"] != old["hash"]:
            raise SlackError("hash_conflict")
        return self._store_view(args.get("view"), old["id"], old["root_view_id"])

"""The public API (``python -m cloud_broker api --listen 127.0.0.1:8500``): versioned REST
under ``/v1``, its OpenAPI document at ``/v1/openapi.json``.

Every call carries ``Authorization: Bearer lk_...`` (an API key, cloud_broker.api.keys) and
needs the key's scope; every key has a rate per minute (429 and ``Retry-After`` past it);
every write carries an ``Idempotency-Key`` and a repeat gets the first answer.  Errors are
``{"error": code, "en": ..., "fa": ...}``.  The routes call the club's functions (lookup,
the engine's quote, the online store, coupons), never SQL."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from cloud_broker.api import idempotency, keys
from cloud_broker.api.keys import ApiKey
from cloud_broker.api.online import OnlineStore
from cloud_broker.api.openapi import document
from cloud_broker.club import lookup, members
from cloud_broker.club.errors import ClubError
from cloud_broker.club.operators import Operator
from cloud_broker.ledger.db import Database, PerThread
from cloud_broker.ledger.rulebooks import Newest, RuleBooks
from cloud_broker.programme import coupons
from edge.core.ruleset import RuleSet
from edge.errors import LoyaltyError
from edge.sanitize import clean

log = logging.getLogger("cloud_broker.api")
MAX_BODY = 64 * 1024
STATUS = {"unauthorized": 401, "forbidden": 403, "rate_limited": 429, "unknown_member": 404,
          "no_sale": 404, "not_found": 404, "idempotency_conflict": 422, "in_progress": 409,
          "too_large": 413, "no_online_store": 503}  # fmt: skip


@dataclass
class ApiConfig:
    ledger_url: str
    seed_rules: RuleSet  # the rules until head office's ledger holds a bundle
    online_dir: Path | None = None
    online_device: str | None = None


class Bucket:
    """A token bucket per key: ``rate`` requests a minute, as a burst or spread out."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.state: dict[int, tuple[float, float]] = {}

    def take(self, key: ApiKey) -> float:
        """0 when allowed; else the seconds until one more request is."""
        now = time.monotonic()
        per_s = key.rate_per_min / 60
        with self.lock:
            tokens, at = self.state.get(key.id, (float(key.rate_per_min), now))
            tokens = min(float(key.rate_per_min), tokens + (now - at) * per_s)
            if tokens < 1:
                self.state[key.id] = (tokens, now)
                return (1 - tokens) / per_s
            self.state[key.id] = (tokens - 1, now)
            return 0.0


class Api:
    def __init__(self, cfg: ApiConfig) -> None:
        self.cfg = cfg
        self.db = PerThread(cfg.ledger_url)
        self.rules = RuleBooks(self.db(), seed=cfg.seed_rules)
        self.rs = Newest(self.rules)
        self.bucket = Bucket()
        self.online: OnlineStore | None = None
        if cfg.online_dir and cfg.online_device:
            self.online = OnlineStore(Database(cfg.ledger_url), self.rules, cfg.online_dir,
                                      cfg.online_device)  # fmt: skip

    def store(self) -> OnlineStore:
        if self.online is None:
            raise ClubError("no_online_store", "this API has no online store device set up "
                            "(python -m cloud_broker api online-store)",
                            "فروشگاه اینترنتی در این سرور راه‌اندازی نشده است.")  # fmt: skip
        return self.online


def _error(code: str, en: str, fa: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": code, "en": en, "fa": fa}, STATUS.get(code, 400),
                        headers=headers)  # fmt: skip


def _key(api: Api, request: Request) -> ApiKey:
    scheme, _, token = (request.headers.get("authorization") or "").partition(" ")
    key = keys.verify(api.db(), token.strip()) if scheme.lower() == "bearer" else None
    if key is None:
        raise ClubError("unauthorized", "a valid API key is needed (Authorization: Bearer ...)",
                        "کلید API معتبر لازم است.")  # fmt: skip
    return key


async def _body(request: Request) -> Any:
    raw = await request.body()
    if len(raw) > MAX_BODY:
        raise ClubError("too_large", "the body is larger than 64 KB", "بدنه درخواست بزرگ است.")
    try:
        data = json.loads(raw or b"null")
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ClubError("bad_json", "the body is not JSON", "بدنه درخواست JSON نیست.") from None
    if not isinstance(data, dict):
        raise ClubError("bad_json", "the body is a JSON object", "بدنه باید یک شیء JSON باشد.")
    return data


Handler = Callable[[Api, Request, ApiKey], Awaitable[Any]]


def route(api: Api, path: str, method: str, scope: str | None, fn: Handler,
          write: bool = False) -> Route:  # fmt: skip
    """A route: the key, its scope and rate, the idempotency of a write, errors as JSON."""

    async def endpoint(request: Request) -> Response:  # noqa: PLR0911 - one answer per case
        t0 = time.perf_counter()
        try:
            key = await run_in_threadpool(_key, api, request)
            if scope and not key.allows(scope):
                raise ClubError("forbidden", f"this key lacks the scope {scope}",
                                "این کلید دسترسی لازم را ندارد.")  # fmt: skip
            wait = api.bucket.take(key)
            if wait:
                return _error("rate_limited", "too many requests for this key: slow down",
                              "درخواست‌ها بیش از حد مجاز است.",
                              {"Retry-After": str(max(1, int(wait + 0.999)))})  # fmt: skip
            if not write:
                return _json(await fn(api, request, key), t0)
            raw = await request.body()
            idem = request.headers.get("idempotency-key") or ""
            rhash = idempotency.request_hash(method, request.url.path, raw)
            kept = await run_in_threadpool(idempotency.begin, api.db(), key.id, idem, rhash)
            if kept is not None:
                return _json(kept[1], t0, kept[0], replayed=True)
            try:
                status, body = 201, await fn(api, request, key)
            except ClubError as e:
                status, body = STATUS.get(e.code, 400), {"error": e.code, "en": e.en, "fa": e.fa}
            except Exception:
                await run_in_threadpool(idempotency.release, api.db(), key.id, idem)
                raise
            await run_in_threadpool(idempotency.finish, api.db(), key.id, idem, status, body)
            return _json(body, t0, status)
        except ClubError as e:
            return _error(e.code, e.en, e.fa)
        except LoyaltyError as e:
            return _error("bad_request", str(e), getattr(e, "fa", None) or str(e))
        except Exception:
            log.exception("API %s %s failed", method, clean(request.url.path, 80))
            return _error("internal", "something went wrong: see the log",
                          "خطای داخلی؛ گزارش را ببینید.")  # fmt: skip

    return Route(path, endpoint, methods=[method])


def _json(body: Any, t0: float, status: int = 200, replayed: bool = False) -> JSONResponse:
    resp = JSONResponse(body, status)
    resp.headers["Server-Timing"] = f"app;dur={(time.perf_counter() - t0) * 1000:.2f}"
    if replayed:
        resp.headers["Idempotent-Replayed"] = "true"
    return resp


# -- the routes -----------------------------------------------------------------------------


async def get_member(api: Api, request: Request, key: ApiKey) -> Any:
    q = request.query_params
    if not q.get("phone") and not q.get("card"):
        raise ClubError("no_query", "give phone or card", "شماره موبایل یا کارت را بدهید.")
    return await run_in_threadpool(lookup.summary, api.db(), api.rs(), q.get("phone"),
                                   q.get("card"))  # fmt: skip


async def get_history(api: Api, request: Request, key: ApiKey) -> Any:
    member = await run_in_threadpool(lookup.summary, api.db(), api.rs(), None, None,
                                     request.path_params["member"])  # fmt: skip
    page = await run_in_threadpool(members.page, api.db(), api.rs(), member["member"])
    return {"member": member["member"], "purchases": page["purchases"],
            "history": page["history"]}  # fmt: skip


async def post_quote(api: Api, request: Request, key: ApiKey) -> Any:
    body = await _body(request)
    member = _member_of(api, body)
    return await run_in_threadpool(api.store().quote, body.get("basket"), member)


def _member_of(api: Api, body: dict[str, Any]) -> str | None:
    phone = body.get("phone")
    if phone is None:
        return None
    if not isinstance(phone, str):
        raise ClubError("bad_phone", "the phone must be text", "شماره موبایل باید متن باشد.")
    return str(lookup.summary(api.db(), api.rs(), phone)["member"])


async def post_sale(api: Api, request: Request, key: ApiKey) -> Any:
    body = await _body(request)
    ref = body.get("payment_ref")
    if not isinstance(ref, str) or not ref.strip() or len(ref) > 40:
        raise ClubError("bad_payment", "payment_ref: the payment's reference (1 to 40 "
                        "characters)", "شناسه پرداخت لازم است.")  # fmt: skip
    member = await run_in_threadpool(_member_of, api, body)
    return await run_in_threadpool(api.store().sale, body.get("basket"), member, ref)


async def post_refund(api: Api, request: Request, key: ApiKey) -> Any:
    body = await _body(request)
    try:
        seq = int(request.path_params["seq"])
    except ValueError:
        raise ClubError("no_sale", "no such online sale", "چنین فروش اینترنتی نیست.") from None
    req = {"all": True} if body.get("all") is True else {"lines": body.get("lines")}
    return await run_in_threadpool(api.store().refund, seq, req)


async def post_coupons(api: Api, request: Request, key: ApiKey) -> Any:
    body = await _body(request)
    phones = body.get("phones")
    if not isinstance(phones, list) or not all(isinstance(p, str) for p in phones):
        raise ClubError("bad_recipients", "phones: a list of phone numbers",
                        "فهرست شماره‌ها نامعتبر است.")  # fmt: skip
    who = Operator(-key.id, f"api:{key.name}", key.name, "marketing")
    done = await run_in_threadpool(
        coupons.issue, api.db(), api.rs(), who, str(body.get("code") or ""), "\n".join(phones),
        str(body.get("valid_until") or ""), request.headers.get("idempotency-key"),
    )  # fmt: skip
    return {"batch": done.batch, "issued": done.issued, "already": done.already}


def create_app(cfg: ApiConfig) -> Starlette:
    api = Api(cfg)
    spec = document()

    async def openapi(request: Request) -> Response:
        return JSONResponse(spec)

    async def not_found(request: Request, exc: Exception) -> Response:
        return _error("not_found", "no such endpoint", "چنین نشانی‌ای وجود ندارد.")

    routes = [
        Route("/v1/openapi.json", openapi, methods=["GET"]),
        route(api, "/v1/members", "GET", "members:read", get_member),
        route(api, "/v1/members/{member}/history", "GET", "members:read", get_history),
        route(api, "/v1/quote", "POST", "quote", post_quote),
        route(api, "/v1/sales", "POST", "sales:write", post_sale, write=True),
        route(api, "/v1/sales/{seq}/refund", "POST", "sales:write", post_refund, write=True),
        route(api, "/v1/coupons", "POST", "coupons:write", post_coupons, write=True),
    ]
    return Starlette(routes=routes, exception_handlers={404: not_found, 405: not_found})

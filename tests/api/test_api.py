"""The public API over HTTP against the running server, on SQLite and PostgreSQL: keys and
scopes, lookups, quotes, online sales and refunds that reconcile like a till's, idempotency,
rate limits, coupons, bilingual errors."""

from __future__ import annotations

import json
from pathlib import Path

import httpx

from cloud_broker.api import keys
from cloud_broker.api.online import OnlineStore
from cloud_broker.ledger.rulebooks import RuleBooks
from cloud_broker.programme.preview import now_iso
from edge.core import engine
from tests.api.conftest import ADMIN, ALI, REZA, ApiServer
from tests.helpers.headoffice import HO

BASKET = {
    "lines": [
        {"sku": "MILK", "category": "dairy", "qty": 2, "unit_price": 450_000},
        {"sku": "BREAD", "category": "bakery", "qty": 1, "unit_price": 150_000},
    ]
}


def test_keys_scopes_and_errors(ho: HO, api: ApiServer, full_key: str) -> None:
    anon = httpx.Client(base_url=api.url)
    r = anon.get("/v1/members", params={"phone": ALI})
    assert r.status_code == 401 and r.json()["error"] == "unauthorized" and r.json()["fa"]
    r = api.client("lk_00000000_" + "x" * 43).get("/v1/members", params={"phone": ALI})
    assert r.status_code == 401
    read_id, read_only = keys.create(ho.db, ADMIN, "call centre", ["members:read"])
    c = api.client(read_only)
    assert c.get("/v1/members", params={"phone": "۰۹۱۲۱۲۳۴۵۶۷"}).json()["member"] == ALI
    r = c.post("/v1/quote", json={"basket": BASKET})
    assert r.status_code == 403 and "scope quote" in r.json()["en"]
    keys.revoke(ho.db, ADMIN, read_id)
    assert c.get("/v1/members", params={"phone": ALI}).status_code == 401
    f = api.client(full_key)
    r = f.get("/v1/members", params={"phone": "0912 000"})
    assert r.status_code == 400 and r.json()["error"] == "bad_phone" and r.json()["fa"]
    assert f.get("/v1/members", params={"phone": "09129999999"}).status_code == 404
    assert f.get("/v1/nothing").json()["error"] == "not_found"
    r = f.post("/v1/quote", content=b"{not json")
    assert r.status_code == 400 and r.json()["error"] == "bad_json"
    r = f.post("/v1/quote", json={"basket": BASKET, "phone": 9121234567})
    assert r.json()["error"] == "bad_phone" and "text" in r.json()["en"]
    listed = json.dumps(keys.listing(ho.db), default=str)
    assert full_key.split("_", 2)[1] in listed  # its prefix, to tell keys apart
    assert full_key not in listed and full_key.split("_", 2)[2] not in listed  # never the key
    assert full_key not in json.dumps(ho.q("SELECT * FROM api_keys"), default=str)


def test_lookup_history_and_quote(ho: HO, api: ApiServer, full_key: str) -> None:
    c = api.client(full_key)
    m = c.get("/v1/members", params={"phone": ALI}).json()
    assert (m["points"], m["visits"]) == (200, 1)
    assert m["progress"]["tier"] == "regular" and m["progress"]["next"] == "bronze"
    h = c.get(f"/v1/members/{ALI}/history").json()
    assert len(h["purchases"]) == 1 and h["purchases"][0]["paid"] == 2_000_000
    q = c.post("/v1/quote", json={"basket": BASKET, "phone": ALI}).json()
    local = engine.quote(ho.rs, BASKET, None, now_iso())
    assert q["subtotal"] == local["subtotal"] == 1_050_000
    assert q["points_earned"] > 0 and q["discount"] == local["discount"]


def test_online_sale_and_refund_reconcile_once(ho: HO, api: ApiServer, full_key: str) -> None:
    c = api.client(full_key)
    sale = {"basket": BASKET, "phone": "09121234567", "payment_ref": "IPG-778812"}
    r = c.post("/v1/sales", json=sale)
    assert r.status_code == 400 and r.json()["error"] == "idempotency_key"
    r1 = c.post("/v1/sales", json=sale, headers={"Idempotency-Key": "order-1001"})
    assert r1.status_code == 201, r1.text
    done = r1.json()
    assert (done["device"], done["seq"], done["subtotal"]) == ("online-1", 1, 1_050_000)
    assert done["payable"] == done["subtotal"] - done["discount"]
    r2 = c.post("/v1/sales", json=sale, headers={"Idempotency-Key": "order-1001"})
    assert r2.status_code == 201 and r2.json() == done
    assert r2.headers["idempotent-replayed"] == "true"
    other = dict(sale, payment_ref="IPG-1")
    r3 = c.post("/v1/sales", json=other, headers={"Idempotency-Key": "order-1001"})
    assert r3.status_code == 422 and r3.json()["error"] == "idempotency_conflict"
    assert ho.one("SELECT COUNT(*) FROM records WHERE device = 'online-1'") == 1
    pts = ho.member(ALI)[0]
    assert pts == 200 + done["points_earned"]
    r = c.post("/v1/sales/1/refund", json={"lines": [{"line": 0, "qty": 1}]},
               headers={"Idempotency-Key": "rma-1"})  # fmt: skip
    assert r.status_code == 201, r.text
    assert r.json()["refund_amount"] == 450_000 - 0  # one milk back
    r = c.post("/v1/sales/1/refund", json={"lines": [{"line": 0, "qty": 5}]},
               headers={"Idempotency-Key": "rma-2"})  # fmt: skip
    assert r.status_code == 400 and r.json()["error"] == "bad_refund" and r.json()["fa"]
    assert c.post("/v1/sales/9/refund", json={"all": True},
                  headers={"Idempotency-Key": "rma-3"}).status_code == 404  # fmt: skip
    assert ho.one("SELECT COUNT(*) FROM records WHERE device = 'online-1'") == 2
    assert ho.check() == []
    stream = ho.q("SELECT body FROM stream WHERE store = 'web'")
    assert len(stream) == 2  # reconciled like a till's, on the reconciled stream


def test_coupons_and_the_rate_limit(ho: HO, api: ApiServer) -> None:
    _, slow = keys.create(ho.db, ADMIN, "erp", ["members:read", "coupons:write"], 5)
    c = api.client(slow)
    codes = (
        [x.code for x in ho.rs.coupons if x.p.get("member_bound")]
        if hasattr(ho.rs, "coupons")
        else []
    )
    body = {"code": codes[0] if codes else "NOPE", "phones": [ALI, REZA]}
    r = c.post("/v1/coupons", json=body, headers={"Idempotency-Key": "c-1"})
    if codes:
        assert r.status_code == 201 and r.json()["issued"] == 2
    else:
        assert r.status_code == 400 and r.json()["error"] == "not_a_member_coupon"
    statuses = [c.get("/v1/members", params={"phone": ALI}).status_code for _ in range(6)]
    assert 429 in statuses
    r = c.get("/v1/members", params={"phone": ALI})
    assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1 and r.json()["fa"]


def test_a_sale_committed_but_not_applied_is_applied_at_the_next_start(
    ho: HO, tmp_path: Path
) -> None:
    from tests.api.conftest import seed

    seed(ho, tmp_path)
    shop = OnlineStore(ho.db, RuleBooks(ho.db, seed=ho.rs), tmp_path / "online", "online-1")
    q = shop.quote(BASKET, ALI)
    from edge.core import record as R

    who = R.member_field("phone", ALI)
    shop._on(lambda: shop.outbox.commit("sale", R.sale_body(q), member=who, charged=True))
    # the process died here, after the commit and before applying it
    shop.close()
    assert ho.one("SELECT COUNT(*) FROM records WHERE device = 'online-1'") == 0
    again = OnlineStore(ho.db, RuleBooks(ho.db, seed=ho.rs), tmp_path / "online", "online-1")
    assert ho.one("SELECT COUNT(*) FROM records WHERE device = 'online-1'") == 1
    assert again.catch_up() == 0  # nothing left to apply
    again.close()
    assert ho.check() == []

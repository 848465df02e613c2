"""The terminal's side of enrollment, key rotation and decommissioning.

Each sends one signed request (edge.protocol.provisioning) on
``loyalty/v1/{tenant}/enroll/{device}`` and waits for head office's answer on
``.../reply`` (matched by its nonce).  ``enroll`` signs with the new key (proof of
possession) and carries the one-time token; ``rotate`` and ``decommission`` sign with
the key in force.

Rotation, on the terminal (the agent stopped):

1. ``device.key.new`` is generated (or, after an interrupted rotation, reused);
2. the request names the new public key and the seq it applies from: the outbox's next;
3. when head office accepts, ``device.key`` becomes the new key in one rename and the old
   one stays as ``device.key.old``; a refusal destroys ``device.key.new``; no answer
   keeps both, so running ``rotate-key`` again repeats the same request;
4. a heartbeat signed with the new key is shipped; when head office acknowledges it the
   old key is destroyed (overwritten, unlinked).

Decommissioning drains the outbox (every record acknowledged), asks head office to
revoke the device after its last seq, announces ``offline``/``decommissioned`` on its
status topic and, on request, destroys the key.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from edge.clock import Clock
from edge.config import Config
from edge.core import record as R
from edge.errors import ConfigError, DecodeError
from edge.ledger_cache.outbox import Identity, Limits, Outbox, OutboxView
from edge.protocol import keys, messages, topics
from edge.protocol.mqtt import BrokerConfig
from edge.protocol.provisioning import Reply, Request, decode_reply, new_nonce, sign_request
from edge.protocol.record import Record, Sealer
from edge.protocol.uplink import Uplink, UplinkConfig
from firmware_tools import device as devfiles
from firmware_tools.mqttio import Message, Session
from firmware_tools.ui import Out, RefusedError, UnreachableError


def broker_of(cfg: Config) -> BrokerConfig:
    if cfg.broker is None:
        raise ConfigError(
            "head_office.broker", "is not set: this terminal cannot reach head office"
        )
    return cfg.broker


def request(
    cfg: Config,
    req: Request,
    key: Ed25519PrivateKey,
    timeout: float,
    also: list[tuple[str, bytes, bool]] | None = None,
) -> Reply:
    """Send ``req`` signed by ``key`` and return head office's reply; ``also`` are
    messages (topic, payload, retain) published in the same session after an ok."""
    raw = sign_request(req, key)
    reply_topic = topics.enroll_reply(cfg.tenant, cfg.device)
    answers: list[Reply] = []  # the reply to this request, decoded once

    def ours(m: Message) -> bool:
        if m.topic != reply_topic:
            return False
        try:
            reply = decode_reply(m.payload)
        except DecodeError:
            return False
        if reply.nonce != req.nonce:
            return False
        answers.append(reply)
        return True

    with Session(broker_of(cfg), f"{cfg.device}-tools", timeout=min(timeout, 10.0)) as s:
        code = s.subscribe(reply_topic)
        if code >= 0x80:
            raise RefusedError(
                f"the broker does not let {cfg.device} read {reply_topic} (reason 0x{code:02X}); "
                "its certificate must name this device and the ACL allow the enroll topics",
                f"کارگزار اجازهٔ خواندن {reply_topic} را به {cfg.device} نمی‌دهد (کد 0x{code:02X})؛ "
                "گواهی باید به نام همین دستگاه باشد و فهرست دسترسی موضوع‌های ثبت را مجاز کند",
                "acl",
            )
        s.publish(topics.enroll(cfg.tenant, cfg.device), raw)
        if s.wait_for(ours, timeout) is None:
            raise UnreachableError(
                f"head office did not answer the {req.op} request within {timeout:g} s "
                "(is its reconciler running and connected to this broker?)",
                f"دفتر مرکزی در {timeout:g} ثانیه به درخواست {req.op} پاسخ نداد "
                "(آیا سرویس تطبیق دفتر مرکزی اجرا و به همین کارگزار وصل است؟)",
                "no_answer",
            )
        reply = answers[-1]
        if reply.ok:
            for topic, payload, retain in also or ():
                s.publish(topic, payload, retain)
    return reply


def _now_ms() -> int:
    return int(time.time() * 1000)


def _refused(reply: Reply) -> RefusedError:
    return RefusedError(
        f"head office refused ({reply.code}): {reply.en}",
        f"دفتر مرکزی نپذیرفت ({reply.code}): {reply.fa}",
        reply.code,
    )


def enroll(cfg: Config, token: str, out: Out, timeout: float = 20.0) -> Reply:
    key = keys.load_private(cfg.key_file)
    pub = keys.public_raw(key)
    req = Request(
        "enroll", cfg.tenant, cfg.store, cfg.device, _now_ms(), new_nonce(), pub, token.strip()
    )
    reply = request(cfg, req, key, timeout)
    if not reply.ok:
        raise _refused(reply)
    out.say(f"enrolled: {reply.en}", f"ثبت شد: {reply.fa}")
    out.say(
        f"public key fingerprint {devfiles.fingerprint(pub)}; next: python -m firmware_tools "
        f"selftest --config {cfg.path}",
        f"اثر انگشت کلید عمومی {devfiles.fingerprint(pub)}؛ گام بعد: python -m firmware_tools "
        f"selftest --config {cfg.path}",
    )
    return reply


# -- the outbox and the uplink --------------------------------------------------------------


@contextmanager
def outbox(cfg: Config, key: Ed25519PrivateKey) -> Iterator[Outbox]:
    cfg.data_dir.mkdir(parents=True, exist_ok=True)
    ob = Outbox(
        cfg.db_path,
        Identity(cfg.tenant, cfg.store, cfg.device),
        Sealer(key, cfg.device),
        Clock(cfg.utc_offset_min),
        Limits(max_bytes=cfg.outbox_max_bytes, alarm_pct=cfg.alarm_pct),
    )
    try:
        yield ob
    finally:
        ob.close()


def heartbeat(ob: Outbox) -> Record:
    st = ob.status()
    extra = {R.HB_DEPTH: st["depth"], R.HB_APPLIED: st["applied_through"]}
    return ob.commit("heartbeat", {R.K_EXTRA: extra})


def ship(cfg: Config, through: int, timeout: float) -> tuple[bool, int]:
    """Run the uplink until head office's ack covers ``through`` (or ``timeout``);
    returns (covered, applied_through)."""
    up = Uplink(
        UplinkConfig(broker_of(cfg), resend_after=3.0, poll_interval=0.1),
        partial(OutboxView, cfg.db_path),
        Identity(cfg.tenant, cfg.store, cfg.device),
    )
    up.start()
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if up.status()["applied_through"] >= through:
                break
            time.sleep(0.05)
    finally:
        up.stop()
    applied = int(up.status()["applied_through"])
    return applied >= through, applied


# -- rotation ---------------------------------------------------------------------------------


def rotate(cfg: Config, out: Out, timeout: float = 20.0) -> int:
    """Rotate the device key (module docstring); returns the seq the new key applies from."""
    devfiles.require_agent_stopped(cfg)
    key_path = cfg.key_file
    new_path = devfiles.new_key_path(key_path)
    current = keys.load_private(key_path)
    with outbox(cfg, current) as ob:
        if ob.status()["last_seq"] == 0:
            heartbeat(ob)  # seq 1 stays with the enrolled key; the new one starts at 2
        from_seq = int(ob.status()["last_seq"]) + 1
    resumed = new_path.exists()
    new = keys.load_private(new_path) if resumed else keys.generate(new_path)
    req = Request(
        "rotate",
        cfg.tenant,
        cfg.store,
        cfg.device,
        _now_ms(),
        new_nonce(),
        keys.public_raw(new),
        seq=from_seq,
    )
    try:
        reply = request(cfg, req, current, timeout)
    except UnreachableError as e:
        raise UnreachableError(
            f"{e.en}; the new key is kept in {new_path}: run rotate-key again (it repeats the "
            "same request) before starting the agent",
            f"{e.fa}؛ کلید تازه در {new_path} نگه داشته شد: پیش از راه‌اندازی عامل، rotate-key "
            "را دوباره اجرا کنید (همان درخواست تکرار می‌شود)",
            e.code,
        ) from None
    if not reply.ok:
        devfiles.destroy(new_path)
        raise _refused(reply)
    devfiles.switch_key(key_path)
    fp = devfiles.fingerprint(keys.public_raw(new))
    out.say(
        f"key rotated: {reply.en}; new key {fp} in {key_path}, the old one kept as "
        f"{devfiles.old_key_path(key_path).name} until head office acknowledges a record",
        f"کلید عوض شد: {reply.fa}؛ کلید تازه {fp} در {key_path}، کلید پیشین تا تأیید یک رکورد "
        f"به نام {devfiles.old_key_path(key_path).name} نگه داشته می‌شود",
    )
    with outbox(cfg, keys.load_private(key_path)) as ob:
        rec = heartbeat(ob)
    acked, _applied = ship(cfg, rec.seq, timeout)
    if not acked:
        raise UnreachableError(
            f"head office has not acknowledged the heartbeat (seq {rec.seq}) signed with the "
            f"new key within {timeout:g} s; {devfiles.old_key_path(key_path).name} is kept",
            f"دفتر مرکزی ضربان (شمارهٔ {rec.seq}) امضاشده با کلید تازه را در {timeout:g} ثانیه "
            f"تأیید نکرد؛ {devfiles.old_key_path(key_path).name} نگه داشته شد",
            "no_ack",
        )
    devfiles.destroy(devfiles.old_key_path(key_path))
    out.say(
        f"head office acknowledged seq {rec.seq} signed with the new key; the old key was "
        "destroyed",
        f"دفتر مرکزی شمارهٔ {rec.seq} امضاشده با کلید تازه را تأیید کرد؛ کلید پیشین نابود شد",
    )
    return from_seq


# -- decommissioning ----------------------------------------------------------------------------


def decommission(
    cfg: Config,
    out: Out,
    timeout: float = 20.0,
    drain_timeout: float = 60.0,
    force: bool = False,
    destroy_key: bool = False,
) -> int:
    """Drain, ask head office to revoke after the last seq, announce; returns that seq."""
    devfiles.require_agent_stopped(cfg)
    key = keys.load_private(cfg.key_file)
    with outbox(cfg, key) as ob:
        st = ob.status()
    last, applied = int(st["last_seq"]), int(st["applied_through"])
    if applied < last:
        out.say(
            f"sending the {last - applied} records head office has not acknowledged yet ...",
            f"ارسال {last - applied} رکوردی که دفتر مرکزی هنوز تأیید نکرده است ...",
        )
        _done, applied = ship(cfg, last, drain_timeout)
    if applied < last and not force:
        raise RefusedError(
            f"head office has acknowledged records up to seq {applied} of {last}; "
            "decommissioning now would strand the rest. Restore the connection and try again, "
            "or use --force to give them up",
            f"دفتر مرکزی رکوردها را تا شمارهٔ {applied} از {last} تأیید کرده است؛ از رده خارج "
            "کردن اکنون بقیه را جا می‌گذارد. اتصال را برقرار کنید و دوباره تلاش کنید، یا با "
            "--force از آن‌ها بگذرید",
            "not_drained",
        )
    req = Request(
        "decommission", cfg.tenant, cfg.store, cfg.device, _now_ms(), new_nonce(), seq=last
    )
    bye = messages.encode_status("offline", "decommissioned", applied_through=applied)
    reply = request(
        cfg, req, key, timeout, also=[(topics.status(cfg.tenant, cfg.device), bye, True)]
    )
    if not reply.ok:
        raise _refused(reply)
    out.say(f"decommissioned: {reply.en}", f"از رده خارج شد: {reply.fa}")
    if destroy_key:
        gone = [
            p.name
            for p in (
                cfg.key_file,
                devfiles.old_key_path(cfg.key_file),
                devfiles.new_key_path(cfg.key_file),
            )
            if devfiles.destroy(Path(p))
        ]
        out.say(
            f"device key destroyed (overwritten and removed): {', '.join(gone)}",
            f"کلید دستگاه نابود شد (بازنویسی و حذف): {', '.join(gone)}",
        )
    return last

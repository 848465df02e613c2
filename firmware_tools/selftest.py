"""The technician's self-test: each step says what it checked and what failed.

Steps, in order (one ``OK|FAIL|SKIP step: detail`` line in English and one in Persian):

    key        the device key loads (mode 0600) and its fingerprint
    NAME       each configured device, by driver:
                 pn532    start-up and GetFirmwareVersion (IC, version, revision)
                 rdm6300  a frame from a 125 kHz card held on the reader (--wait)
                 scanner  a code scanned (--wait); a line the agent would refuse is shown why
                 keypad   a number typed (--wait)
                 zvt      Registration (06 00): the terminal's id
                 others   the driver opens its port
    broker     the MQTT broker answers (TLS version, certificates, their names and expiry)
    clock      the wall clock is plausible and has not gone back behind the outbox
    disk       room for the outbox to reach its configured limit
    heartbeat  a heartbeat record committed to the outbox, shipped, acknowledged by head office

A serial device that stays silent gets a hint: the same port behind ``spy://`` writes a
hex trace of every byte.  Strings from devices are cleaned (edge.sanitize) and capped.
Exit status 0 when every step that ran passed, 1 when one failed.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from edge.clock import Clock
from edge.config import Config, DeviceConfig
from edge.core import jalali
from edge.core.errors import PhoneError
from edge.drivers import registry
from edge.drivers.scanner import LineParser, ScanError, parse_terminator
from edge.drivers.serialport import open_port, read_available
from edge.errors import ConfigError, DeviceError, LoyaltyError
from edge.ledger_cache.outbox import Limits
from edge.protocol import keys
from firmware_tools import client, pki
from firmware_tools import device as devfiles
from firmware_tools.mqttio import Session
from firmware_tools.ui import Out, ToolError, dev

CLOCK_FLOOR = 1735689600  # 2025-01-01T00:00:00Z: no terminal is older than this software
CLOCK_CEILING = 4102444800  # 2100-01-01
CLOCK_SLACK_MS = 5 * 60 * 1000
MIB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class Step:
    status: str  # OK | FAIL | SKIP
    name: str
    en: str
    fa: str
    hint: tuple[str, str] | None = None


def spy_hint(name: str, port: str) -> tuple[str, str] | None:
    """How to trace a silent serial device; None where spy:// does not apply."""
    if port.startswith("spy://"):
        return (
            f"the bytes on the line are traced as {dev(port, 120)} asks; read that trace",
            f"بایت‌های خط طبق {dev(port, 120)} ردگیری می‌شوند؛ آن فایل را بخوانید",
        )
    if "://" in port:
        return None
    url = f"spy://{dev(port, 120)}?file=/tmp/{name}.trace"
    return (
        f'trace the line: set port = "{url}" in [devices.{name}], run selftest again and '
        f"read /tmp/{name}.trace (a hex dump of every byte each way)",
        f'ردگیری خط: در [devices.{name}] مقدار port = "{url}" بگذارید، selftest را دوباره '
        f"اجرا کنید و /tmp/{name}.trace را بخوانید (همهٔ بایت‌های رفت و برگشت)",
    )


def _device_error(d: DeviceConfig, e: DeviceError, what: str, what_fa: str) -> Step:
    if e.en.startswith("cannot open"):
        return Step(
            "FAIL",
            d.name,
            f"{what} {e.en}",
            f"{what_fa} {e.fa}",
            (
                "check the port name, that the cable is in and that the agent's user may "
                "open it (group dialout)",
                "نام درگاه، وصل بودن کابل و دسترسی کاربر عامل به آن (گروه dialout) را بررسی کنید",
            ),
        )
    return Step("FAIL", d.name, f"{what} {e.en}", f"{what_fa} {e.fa}", spy_hint(d.name, d.port))


# -- devices --------------------------------------------------------------------------------


def _pn532(d: DeviceConfig, _wait: float, _out: Out) -> Step:
    r = registry.create(d.kind, d.driver, port=d.port, **d.options)
    try:
        ic, ver, rev, support = r.version or r.firmware()
        desc = dev(r.describe())
    finally:
        r.close()
    return Step(
        "OK",
        d.name,
        f"{desc} answered on {dev(d.port, 120)} (IC 0x{ic:02X}, firmware {ver}.{rev}, "
        f"support 0x{support:02X})",
        f"{desc} روی {dev(d.port, 120)} پاسخ داد (IC 0x{ic:02X}، میان‌افزار {ver}.{rev})",
    )


def _silent(d: DeviceConfig, wait: float, en: str, fa: str) -> Step:
    return Step(
        "FAIL",
        d.name,
        f"nothing from {dev(d.port, 120)} within {wait:g} s ({en})",
        f"در {wait:g} ثانیه چیزی از {dev(d.port, 120)} نرسید ({fa})",
        spy_hint(d.name, d.port),
    )


def _rdm6300(d: DeviceConfig, wait: float, out: Out) -> Step:
    r = registry.create(d.kind, d.driver, port=d.port, **d.options)
    try:
        out.say(
            f"  hold a 125 kHz card on {d.name} ({wait:g} s) ...",
            f"  یک کارت ۱۲۵ کیلوهرتز روی {d.name} نگه دارید ({wait:g} ثانیه) ...",
        )
        got = r.read(wait)
    finally:
        r.close()
    if got is None:
        return _silent(d, wait, "was a card on the reader?", "آیا کارتی روی کارت‌خوان بود؟")
    return Step(
        "OK",
        d.name,
        f"RDM6300 frame received on {dev(d.port, 120)}: card {dev(got.uid)}",
        f"قاب RDM6300 روی {dev(d.port, 120)} رسید: کارت {dev(got.uid)}",
    )


def _scanner(d: DeviceConfig, wait: float, out: Out) -> Step:
    opts = dict(d.options)
    terminator = parse_terminator(str(opts.get("terminator", "cr")))
    parser = LineParser(terminator, str(opts.get("prefix", "")).encode())
    port = open_port(d.port, baudrate=int(opts.get("baudrate", 9600)), timeout=0.05)
    seen = b""  # what the scanner sent, to show a refused line as it was (cleaned)
    out.say(
        f"  scan any barcode or QR code with {d.name} ({wait:g} s) ...",
        f"  یک بارکد یا کد QR را با {d.name} بخوانید ({wait:g} ثانیه) ...",
    )
    deadline = time.monotonic() + wait
    try:
        while time.monotonic() < deadline:
            data = read_available(port)
            seen += data
            for item in parser.feed(data):
                if isinstance(item, ScanError):
                    why = dev(item.en.split(":", 1)[0], 80)
                    line = dev(seen.split(terminator, 1)[0].decode("utf-8", "replace"), 80)
                    return Step(
                        "FAIL",
                        d.name,
                        f"the scanner answered, but the agent would refuse the line ({why}): "
                        f"{line}",
                        f"اسکنر پاسخ داد، ولی عامل این خط را نمی‌پذیرد ({why}): {line}",
                        (
                            "check the scanner's terminator and prefix against options in "
                            f"[devices.{d.name}]",
                            f"پایان‌دهنده و پیشوند اسکنر را با options در [devices.{d.name}] "
                            "مقایسه کنید",
                        ),
                    )
                return Step(
                    "OK",
                    d.name,
                    f"scanned on {dev(d.port, 120)}: {dev(item)}",
                    f"روی {dev(d.port, 120)} خوانده شد: {dev(item)}",
                )
    finally:
        port.close()
    return _silent(d, wait, "was a code scanned?", "آیا کدی خوانده شد؟")


def _keypad(d: DeviceConfig, wait: float, out: Out) -> Step:
    k = registry.create(d.kind, d.driver, port=d.port, **d.options)
    out.say(
        f"  type a mobile number on {d.name} and confirm with # ({wait:g} s) ...",
        f"  یک شمارهٔ موبایل روی {d.name} بزنید و با # تأیید کنید ({wait:g} ثانیه) ...",
    )
    try:
        phone = k.read_phone(wait)
    except PhoneError as e:
        return Step(
            "OK",
            d.name,
            f"the keypad answered; what was typed is not a mobile number ({dev(e.en, 120)})",
            f"صفحه‌کلید پاسخ داد؛ آنچه زده شد شمارهٔ موبایل نیست ({dev(e.fa, 120)})",
        )
    finally:
        k.close()
    if phone is None:
        return _silent(d, wait, "was a number typed?", "آیا شماره‌ای زده شد؟")
    return Step(
        "OK",
        d.name,
        f"typed on {dev(d.port, 120)}: {dev(phone)}",
        f"روی {dev(d.port, 120)} زده شد: {dev(phone)}",
    )


def _zvt(d: DeviceConfig, _wait: float, _out: Out) -> Step:
    t = registry.create(d.kind, d.driver, port=d.port, **d.options)
    try:
        t.register()
        tid = dev(t.terminal_id or "?")
    finally:
        t.close()
    return Step(
        "OK",
        d.name,
        f"bank terminal registered this cash register (ZVT 06 00) on {dev(d.port, 120)}: "
        f"terminal id {tid}",
        f"پایانهٔ بانکی ثبت صندوق (ZVT 06 00) را روی {dev(d.port, 120)} پذیرفت: شناسهٔ پایانه {tid}",
    )


def _generic(d: DeviceConfig, _wait: float, _out: Out) -> Step:
    drv = registry.create(d.kind, d.driver, port=d.port, **d.options)
    try:
        describe = getattr(drv, "describe", None)
        what = dev(describe()) if callable(describe) else "no self-test for this driver"
    finally:
        drv.close()
    return Step(
        "OK",
        d.name,
        f"{d.kind} driver {d.driver} opened {dev(d.port, 120)}: {what}",
        f"راه‌انداز {d.driver} درگاه {dev(d.port, 120)} را باز کرد: {what}",
    )


PASSIVE = {"rdm6300", "scanner", "keypad"}
PROBES: dict[str, Callable[[DeviceConfig, float, Out], Step]] = {
    "pn532": _pn532,
    "rdm6300": _rdm6300,
    "scanner": _scanner,
    "keypad": _keypad,
    "zvt": _zvt,
}
LABELS = {
    "card": ("card reader", "کارت‌خوان"),
    "phone": ("keypad", "صفحه‌کلید"),
    "bank": ("bank terminal", "پایانهٔ بانکی"),
}


def check_device(d: DeviceConfig, wait: float, out: Out) -> Step:
    label, label_fa = LABELS.get(d.kind, (d.kind, d.kind))
    if d.driver in PASSIVE and wait <= 0:
        return Step(
            "SKIP",
            d.name,
            f"{label} {d.driver} only speaks when used; run with --wait SECONDS to test it",
            f"{label_fa} {d.driver} فقط هنگام استفاده پیام می‌فرستد؛ با --wait آزمایش کنید",
        )
    probe = PROBES.get(d.driver, _generic)
    try:
        return probe(d, wait, out)
    except DeviceError as e:
        return _device_error(d, e, f"{label} {d.driver}:", f"{label_fa} {d.driver}:")
    except (ConfigError, ValueError, TypeError) as e:
        return Step(
            "FAIL",
            d.name,
            f"{label} {d.driver}: its settings are wrong: {dev(e, 200)}",
            f"{label_fa} {d.driver}: تنظیمات آن نادرست است: {dev(e, 200)}",
        )


# -- the rest -------------------------------------------------------------------------------


def check_key(cfg: Config) -> Step:
    try:
        key = keys.load_private(cfg.key_file)
    except ConfigError as e:
        return Step("FAIL", "key", str(e), f"کلید دستگاه: {e}")
    fp = devfiles.fingerprint(keys.public_raw(key))
    return Step(
        "OK",
        "key",
        f"Ed25519 device key {cfg.key_file.name} (mode 0600), fingerprint {fp}",
        f"کلید Ed25519 دستگاه {cfg.key_file.name} (دسترسی 0600)، اثر انگشت {fp}",
    )


def _cert_note(path: str | None, device: str) -> tuple[str, str, bool]:
    """(English, Persian, fine) about this device's own TLS certificate."""
    if path is None:
        return "", "", True
    cert = pki.load_cert(Path(path).read_bytes(), path)
    cn = pki.common_name(cert)
    left = (cert.not_valid_after_utc.timestamp() - time.time()) / 86400
    if cn != device:
        return (
            f"; this device's certificate names {dev(cn)!r}, not {device}: the broker's ACL "
            "would treat it as another device",
            f"؛ گواهی این دستگاه به نام {dev(cn)} است، نه {device}",
            False,
        )
    if left <= 0:
        return (
            f"; this device's certificate ({cn}) has expired",
            f"؛ گواهی این دستگاه ({cn}) منقضی شده است",
            False,
        )
    return (
        f"; device certificate {cn}, {left:.0f} days left",
        f"؛ گواهی دستگاه {cn}، {left:.0f} روز اعتبار مانده",
        True,
    )


def check_broker(cfg: Config, timeout: float) -> Step:
    if cfg.broker is None:
        return Step(
            "SKIP",
            "broker",
            "no broker configured (head_office.broker): this terminal runs offline",
            "کارگزاری تنظیم نشده است (head_office.broker): این پایانه بدون اتصال کار می‌کند",
        )
    b = cfg.broker
    try:
        note, note_fa, fine = _cert_note(b.cert_file, cfg.device)
        with Session(b, f"{cfg.device}-selftest", timeout=timeout) as s:
            tls = s.tls()
    except (ToolError, ConfigError, OSError) as e:
        en = e.en if isinstance(e, LoyaltyError) else str(e)
        fa = e.fa if isinstance(e, LoyaltyError) else str(e)
        return Step("FAIL", "broker", en, fa)
    if tls is None:
        en = f"{b.url} answered (plain MQTT: not encrypted, for test set-ups only)"
        fa = f"{b.url} پاسخ داد (MQTT بدون رمزنگاری: فقط برای آزمایش)"
    else:
        version, peer = tls
        subject = dict(x[0] for x in peer.get("subject", ()))
        cn = dev(subject.get("commonName", "?"))
        en = (
            f"{b.url} answered over {version}; broker certificate {cn} valid until "
            f"{dev(peer.get('notAfter', '?'))}"
        )
        fa = f"{b.url} با {version} پاسخ داد؛ گواهی کارگزار {cn}"
    return Step("OK" if fine else "FAIL", "broker", en + note, fa + note_fa)


def check_clock(cfg: Config) -> Step:
    now = time.time()
    offset = Clock(cfg.utc_offset_min).now().offset_min  # the configured or the system's
    local = time.strftime("%Y-%m-%d %H:%M", time.gmtime(now + offset * 60))
    jdate = jalali.format_date(int(now + offset * 60) // 86400)
    if not CLOCK_FLOOR <= now < CLOCK_CEILING:
        return Step(
            "FAIL",
            "clock",
            f"the clock says {local}, which cannot be right: set the date and time "
            "(and check the RTC battery)",
            f"ساعت {local} را نشان می‌دهد که درست نیست: تاریخ و ساعت را تنظیم کنید "
            "(و باتری ساعت را بررسی کنید)",
        )
    newest = _newest_record_ms(cfg)
    if newest is not None and now * 1000 < newest - CLOCK_SLACK_MS:
        return Step(
            "FAIL",
            "clock",
            f"the clock ({local}) is behind this terminal's newest record by "
            f"{(newest - now * 1000) / 60000:.0f} minutes: it was set back",
            f"ساعت ({local}) از تازه‌ترین رکورد این پایانه "
            f"{(newest - now * 1000) / 60000:.0f} دقیقه عقب‌تر است: عقب کشیده شده است",
        )
    return Step(
        "OK",
        "clock",
        f"{local} (UTC{offset / 60:+g}), {jdate} in the Jalali calendar",
        f"{local} (UTC{offset / 60:+g})، {jdate} خورشیدی",
    )


def _newest_record_ms(cfg: Config) -> int | None:
    if not cfg.db_path.exists():
        return None
    import sqlite3  # noqa: PLC0415 - only when there is a database

    conn = sqlite3.connect(f"file:{cfg.db_path}?mode=ro", uri=True)
    try:
        row = conn.execute(
            "SELECT MAX(m) FROM (SELECT MAX(created_ms) AS m FROM outbox UNION ALL "
            "SELECT last_ack_ms FROM device)"
        ).fetchone()
    except sqlite3.Error:
        return None
    finally:
        conn.close()
    return None if row is None or row[0] is None else int(row[0])


def check_disk(cfg: Config) -> Step:
    cfg.data_dir.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(cfg.data_dir).free
    used = cfg.db_path.stat().st_size if cfg.db_path.exists() else 0
    spare = Limits().min_free_disk + Limits().reserve_bytes
    need = max(0, cfg.outbox_max_bytes - used) + spare
    if free < need:
        return Step(
            "FAIL",
            "disk",
            f"{free // MIB} MB free in {cfg.data_dir}; the outbox may grow to "
            f"{cfg.outbox_max_bytes // MIB} MB and keeps {spare // MIB} MB spare: free space "
            "or lower outbox.max_mb",
            f"{free // MIB} مگابایت جای خالی در {cfg.data_dir}؛ صف ارسال تا "
            f"{cfg.outbox_max_bytes // MIB} مگابایت رشد می‌کند: جا باز کنید یا outbox.max_mb "
            "را کم کنید",
        )
    return Step(
        "OK",
        "disk",
        f"{free // MIB} MB free in {cfg.data_dir}; the outbox may use up to "
        f"{cfg.outbox_max_bytes // MIB} MB",
        f"{free // MIB} مگابایت جای خالی در {cfg.data_dir}؛ صف ارسال تا "
        f"{cfg.outbox_max_bytes // MIB} مگابایت",
    )


def check_heartbeat(cfg: Config, timeout: float) -> Step:
    try:
        key = keys.load_private(cfg.key_file)
    except ConfigError as e:  # the key step was skipped (--skip key)
        return Step("FAIL", "heartbeat", f"cannot sign it: {e}", f"امضا ممکن نیست: {e}")
    with client.outbox(cfg, key) as ob:
        rec = client.heartbeat(ob)
    t0 = time.monotonic()
    acked, applied = client.ship(cfg, rec.seq, timeout)
    if not acked:
        return Step(
            "FAIL",
            "heartbeat",
            f"heartbeat seq {rec.seq} was not acknowledged by head office within {timeout:g} s "
            f"(acknowledged so far: {applied})",
            f"دفتر مرکزی ضربان شمارهٔ {rec.seq} را در {timeout:g} ثانیه تأیید نکرد "
            f"(تأییدشده تاکنون: {applied})",
            (
                "is this terminal enrolled (firmware_tools enroll)? is head office's reconciler "
                "running? `python -m cloud_broker quarantine list` at head office shows refusals",
                "آیا پایانه ثبت شده است (firmware_tools enroll)؟ آیا سرویس تطبیق دفتر مرکزی "
                "اجراست؟ فهرست رکوردهای ردشده: python -m cloud_broker quarantine list",
            ),
        )
    return Step(
        "OK",
        "heartbeat",
        f"heartbeat seq {rec.seq} reconciled and acknowledged by head office in "
        f"{time.monotonic() - t0:.1f} s",
        f"ضربان شمارهٔ {rec.seq} در {time.monotonic() - t0:.1f} ثانیه در دفتر مرکزی ثبت و تأیید شد",
    )


def run(
    cfg: Config,
    out: Out,
    *,
    wait: float = 10.0,
    timeout: float = 20.0,
    skip: tuple[str, ...] = (),
) -> list[Step]:
    """Every step, printed as it completes; returns them."""
    devfiles.require_agent_stopped(cfg)
    steps: list[Step] = []

    def done(step: Step) -> Step:
        steps.append(step)
        out.step(step.status, step.name, step.en, step.fa)
        if step.hint is not None:
            out.hint(*step.hint)
        return step

    def skipped(name: str) -> Step:
        return Step("SKIP", name, "skipped (--skip)", "به درخواست رد شد (--skip)")

    key = done(skipped("key") if "key" in skip else check_key(cfg))
    for d in cfg.devices.values():
        done(skipped(d.name) if d.name in skip else check_device(d, wait, out))
    broker = done(skipped("broker") if "broker" in skip else check_broker(cfg, timeout))
    done(skipped("clock") if "clock" in skip else check_clock(cfg))
    done(skipped("disk") if "disk" in skip else check_disk(cfg))
    if "heartbeat" in skip:
        done(skipped("heartbeat"))
    elif key.status == "FAIL" or broker.status != "OK":
        done(
            Step(
                "SKIP",
                "heartbeat",
                "needs the key and broker steps to pass first",
                "نخست باید مرحله‌های کلید و کارگزار موفق باشند",
            )
        )
    else:
        done(check_heartbeat(cfg, timeout))
    counts = {s: sum(1 for x in steps if x.status == s) for s in ("OK", "FAIL", "SKIP")}
    out.say(
        f"selftest: {counts['OK']} OK, {counts['FAIL']} FAIL, {counts['SKIP']} SKIP",
        f"آزمون: {counts['OK']} سالم، {counts['FAIL']} خطا، {counts['SKIP']} بررسی نشد",
    )
    return steps

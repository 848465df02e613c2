"""Head office's operators: who may log in to the console, with which role, and their
sessions.

Passwords are kept as argon2id hashes (argon2-cffi, the reference implementation's
binding), never in clear.  Five wrong passwords in a row lock the account for fifteen
minutes (the answer is the same whether the name exists or not).  A session is a random id
the browser keeps in a signed cookie; head office keeps only its SHA-256, with the
operator, its CSRF token and when it was last used: an idle session ends after an hour,
any session after twelve, and logging out or disabling the operator ends it at once.

Roles and what they may do (docs/console.md has the same table):

============  =====  =========  =======  =======  ======
permission    admin  marketing  support  finance  viewer
============  =====  =========  =======  =======  ======
read          yes    yes        yes      yes      yes
adjust        yes    .          yes      .        .
link_card     yes    .          yes      .        .
member_edit   yes    yes        yes      .        .
alerts        yes    .          yes      yes      .
quarantine    yes    .          .        yes      .
stores        yes    .          .        .        .
operators     yes    .          .        .        .
audit         yes    .          .        yes      .
programme     yes    yes        .        .        .
publish       yes    .          .        .        .
messages      yes    yes        .        .        .
reports       yes    yes        .        yes      yes
tax           yes    .          .        yes      .
============  =====  =========  =======  =======  ======
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from cloud_broker.club.errors import ClubError, NotAllowedError
from cloud_broker.ledger import audit
from cloud_broker.ledger.db import Database, Tx
from edge.sanitize import clean, is_clean

ROLES = ("admin", "marketing", "support", "finance", "viewer")
PERMISSIONS: dict[str, tuple[str, ...]] = {
    "read": ROLES,
    "adjust": ("admin", "support"),
    "link_card": ("admin", "support"),
    "member_edit": ("admin", "marketing", "support"),
    "alerts": ("admin", "support", "finance"),
    "quarantine": ("admin", "finance"),
    "stores": ("admin",),
    "operators": ("admin",),
    "audit": ("admin", "finance"),
    "programme": ("admin", "marketing"),
    "publish": ("admin",),
    "messages": ("admin", "marketing"),
    "reports": ("admin", "marketing", "finance", "viewer"),
    "tax": ("admin", "finance"),
}
# what each permission lets one do, for "your role may not ..." (English, Persian)
DOING = {
    "read": ("read this", "دیدن این بخش"),
    "adjust": ("adjust a member's points or wallet", "تغییر امتیاز یا کیف پول عضو"),
    "link_card": ("link a card to a member", "اتصال کارت به عضو"),
    "member_edit": ("edit a member", "ویرایش عضو"),
    "alerts": ("acknowledge alerts", "تأیید هشدارها"),
    "quarantine": ("resolve quarantined records", "رسیدگی به رکوردهای قرنطینه"),
    "stores": ("manage stores and devices", "مدیریت فروشگاه‌ها و دستگاه‌ها"),
    "operators": ("manage operators", "مدیریت کاربران"),
    "audit": ("read the audit log", "دیدن گزارش ممیزی"),
    "programme": ("edit the programme", "ویرایش برنامه باشگاه"),
    "publish": ("approve and publish rules", "تأیید و انتشار قوانین"),
    "messages": ("send messages", "ارسال پیامک"),
    "reports": ("read reports", "دیدن گزارش‌ها"),
    "tax": ("manage tax invoices", "مدیریت صورتحساب‌های مالیاتی"),
}

MAX_FAILURES = 5
LOCK_MS = 15 * 60 * 1000
IDLE_MS = 60 * 60 * 1000
SESSION_MS = 12 * 60 * 60 * 1000
_hasher = PasswordHasher()  # argon2id, the library's current recommended parameters


@dataclass(frozen=True, slots=True)
class Operator:
    id: int
    username: str
    name: str
    role: str

    def can(self, permission: str) -> bool:
        return self.role in PERMISSIONS.get(permission, ())

    def require(self, permission: str) -> None:
        if not self.can(permission):
            en, fa = DOING[permission]
            raise NotAllowedError(en, fa)


def command_line(who: str | None = None) -> Operator:
    """The operator behind ``python -m cloud_broker`` on head office's own machine: whoever
    may run it there may do anything, and the audit log names them (``cli:<login>``)."""
    import getpass  # noqa: PLC0415 - only the command line asks who is logged in

    name = who or f"cli:{getpass.getuser()}"
    return Operator(0, clean(name, 64), "command line", "admin")


def _now() -> int:
    return int(time.time() * 1000)


BAD_LOGIN = ClubError(
    "bad_login",
    "wrong user name or password",
    "نام کاربری یا گذرواژه نادرست است.",
)


def _check_new(username: str, name: str, role: str, password: str) -> None:
    if not (username and is_clean(username, 32) and username.isascii() and " " not in username):
        raise ClubError(
            "bad_username",
            "a user name is 1 to 32 ASCII characters without spaces",
            "نام کاربری ۱ تا ۳۲ نویسه لاتین بدون فاصله است.",
        )
    if not (name and is_clean(name, 64)):
        raise ClubError("bad_name", "a name is 1 to 64 characters", "نام ۱ تا ۶۴ نویسه است.")
    if role not in ROLES:
        raise ClubError(
            "bad_role", f"the role is one of {', '.join(ROLES)}", "نقش انتخاب‌شده معتبر نیست."
        )
    if len(password) < 10:
        raise ClubError(
            "weak_password",
            "a password has at least 10 characters",
            "گذرواژه باید دست‌کم ۱۰ نویسه باشد.",
        )


def add(db: Database, username: str, name: str, role: str, password: str, actor: str) -> int:
    """A new operator (the first admin is made with ``cloud_broker operators add``)."""
    _check_new(username, name, role, password)
    hashed = _hasher.hash(password)

    def step(tx: Tx) -> int:
        if tx.one("SELECT 1 FROM operators WHERE username = ?", (username,)):
            raise ClubError(
                "exists", f"operator {username} exists already", "این نام کاربری وجود دارد."
            )
        oid = tx.next_id("operators")
        tx.execute(
            "INSERT INTO operators (id, username, name, role, password_hash, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (oid, username, name, role, hashed, _now()),
        )
        audit.record(
            tx, actor, "operator.add", f"operator:{username}", {"role": role, "name": name}
        )
        return oid

    return db.run(step)


def list_all(db: Database) -> list[dict[str, object]]:
    rows = db.read(
        "SELECT id, username, name, role, created_at, disabled_at, locked_until, last_login_at "
        "FROM operators ORDER BY username"
    )
    keys = (
        "id",
        "username",
        "name",
        "role",
        "created_at",
        "disabled_at",
        "locked_until",
        "last_login",
    )
    return [dict(zip(keys, r, strict=True)) for r in rows]


def set_disabled(db: Database, actor: Operator, username: str, disabled: bool) -> None:
    actor.require("operators")
    if username == actor.username:
        raise ClubError("self", "you cannot disable yourself", "نمی‌توانید خودتان را غیرفعال کنید.")

    def step(tx: Tx) -> None:
        row = tx.one("SELECT id FROM operators WHERE username = ?", (username,))
        if row is None:
            raise ClubError("unknown", "no such operator", "چنین کاربری نیست.")
        tx.execute(
            "UPDATE operators SET disabled_at = ? WHERE id = ?",
            (_now() if disabled else None, row[0]),
        )
        if disabled:
            tx.execute(
                "UPDATE console_sessions SET ended_at = ? WHERE operator_id = ? AND "
                "ended_at IS NULL",
                (_now(), row[0]),
            )
        audit.record(
            tx, actor.username, "operator.disable" if disabled else "operator.enable",
            f"operator:{username}", {},
        )  # fmt: skip

    db.run(step)


def authenticate(db: Database, username: str, password: str) -> Operator:
    """The operator, or ClubError ``bad_login`` / ``locked`` (changes nothing but the
    failure count and the lock)."""
    row = db.read(
        "SELECT id, username, name, role, password_hash, disabled_at, failed_logins, "
        "locked_until FROM operators WHERE username = ?",
        (username,),
    )
    now = _now()
    if not row:
        _hasher.hash(password)  # the same time spent as for a known name
        raise BAD_LOGIN
    oid, uname, name, role, hashed, disabled, failures, locked = row[0]
    if locked is not None and int(locked) > now:
        raise ClubError(
            "locked",
            "too many wrong passwords: this account is locked for a few minutes",
            "گذرواژه چند بار نادرست وارد شد؛ این حساب چند دقیقه قفل است.",
        )
    try:
        _hasher.verify(str(hashed), password)
        ok = disabled is None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        ok = False

    def step(tx: Tx) -> None:
        if ok:
            tx.execute(
                "UPDATE operators SET failed_logins = 0, locked_until = NULL, "
                "last_login_at = ? WHERE id = ?",
                (now, oid),
            )
        else:
            n = int(failures) + 1
            lock = now + LOCK_MS if n >= MAX_FAILURES else None
            tx.execute(
                "UPDATE operators SET failed_logins = ?, locked_until = ? WHERE id = ?",
                (0 if lock else n, lock, oid),
            )
            if lock:
                audit.record(tx, "system", "operator.locked", f"operator:{uname}", {"failures": n})

    db.run(step)
    if not ok:
        raise BAD_LOGIN
    return Operator(int(oid), str(uname), str(name), str(role))


def _sid_hash(sid: str) -> bytes:
    return hashlib.sha256(sid.encode()).digest()


def start_session(db: Database, op: Operator) -> tuple[str, str]:
    """A new session: (its id for the cookie, its CSRF token)."""
    sid, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    now = _now()

    def step(tx: Tx) -> None:
        tx.execute(
            "INSERT INTO console_sessions (sid_hash, operator_id, csrf, created_at, "
            "last_seen_at) VALUES (?, ?, ?, ?, ?)",
            (_sid_hash(sid), op.id, csrf, now, now),
        )
        audit.record(tx, op.username, "session.start", f"operator:{op.username}", {})

    db.run(step)
    return sid, csrf


def session(db: Database, sid: str) -> tuple[Operator, str] | None:
    """The operator and CSRF token of a live session; None if it ended, idled out or its
    operator was disabled.  Touches its last use at most once a minute."""
    rows = db.read(
        "SELECT o.id, o.username, o.name, o.role, s.csrf, s.created_at, s.last_seen_at "
        "FROM console_sessions s JOIN operators o ON o.id = s.operator_id WHERE s.sid_hash = ? "
        "AND s.ended_at IS NULL AND o.disabled_at IS NULL",
        (_sid_hash(sid),),
    )
    if not rows:
        return None
    oid, uname, name, role, csrf, created, seen = rows[0]
    now = _now()
    if now - int(seen) > IDLE_MS or now - int(created) > SESSION_MS:
        end_session(db, sid)
        return None
    if now - int(seen) > 60_000:
        db.run(
            lambda tx: tx.execute(
                "UPDATE console_sessions SET last_seen_at = ? WHERE sid_hash = ?",
                (now, _sid_hash(sid)),
            )
        )
    return Operator(int(oid), str(uname), str(name), str(role)), str(csrf)


def end_session(db: Database, sid: str) -> None:
    db.run(
        lambda tx: tx.execute(
            "UPDATE console_sessions SET ended_at = ? WHERE sid_hash = ? AND ended_at IS NULL",
            (_now(), _sid_hash(sid)),
        )
    )


def safe_name(text: str) -> str:
    return clean(text, 64)

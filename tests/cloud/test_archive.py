"""Months of the ledger: PostgreSQL partitions, the migration that makes them, archiving a
month (its file, what it carries forward, what it refuses) and ``ledger check`` after it;
both databases."""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Any

import pytest

from cloud_broker.cli import main
from cloud_broker.ledger import archive, partitions
from cloud_broker.ledger.archive import ArchiveError
from cloud_broker.ledger.db import Database
from cloud_broker.ledger.partitions import Month, month_of_ms
from cloud_broker.ledger.schema import MIGRATIONS
from edge.protocol.record import Record
from tests.helpers.headoffice import HO
from tests.helpers.ledger17 import back_to_17
from tests.helpers.terminal import DAY0, Terminal

ALI = "+989121234567"
SARA = "+989351112233"
A, B, C = Month(1404, 1), Month(1404, 2), Month(1405, 3)
NOW = C.lo + 5 * 86_400_000  # head office's clock when it archives: 1405-03-06
HOUR = 3_600_000


def _sell(ho: HO, pos: Terminal) -> dict[str, list[Record]]:
    """Sales, a redemption and a refund in months A and B, more sales in C (head office's
    time), on terminal days that move with them."""
    fed: dict[str, list[Record]] = {}
    pos.time.to_day(DAY0)
    a = [pos.enroll(ALI), pos.sale(ALI, earned=100), pos.sale(SARA, earned=40)]
    a.append(pos.sale(ALI, subtotal=2_000_000, discount=300_000, redeemed=30, earned=10))
    a.append(pos.sale(None))
    ho.feed(pos, a, now_ms=A.lo + 10 * HOUR)
    pos.time.to_day(DAY0 + 35)
    b = [pos.sale(ALI, earned=20), pos.refund(ALI, a[1], gross=1_000_000, refunded=1_000_000,
                                              reversed_=100)]  # fmt: skip
    ho.feed(pos, b, now_ms=B.lo + 3 * HOUR)
    pos.time.to_day(DAY0 + 420)
    c = [pos.sale(ALI, earned=5, redeemed=20), pos.sale(SARA, earned=7)]
    ho.feed(pos, c, now_ms=C.lo + HOUR)
    fed.update(a=a, b=b, c=c)
    return fed


@pytest.fixture
def pos(tmp_path: Path, ho: HO) -> Terminal:
    t = Terminal(tmp_path)
    ho.register(t)
    return t


def _counts(ho: HO) -> dict[str, int]:
    return {t: int(ho.one(f"SELECT COUNT(*) FROM {t}")) for t in ("records", "journals",
            "entries", "lot_moves")}  # fmt: skip


def test_a_month_archived_keeps_balances_chains_and_the_check(
    ho: HO, pos: Terminal, tmp_path: Path
) -> None:
    _sell(ho, pos)
    assert ho.check() == []
    before = {m: ho.member(m) for m in (ALI, SARA)}
    all_rows = _counts(ho)
    in_a = int(ho.one("SELECT COUNT(*) FROM records WHERE received_at < ?", (A.hi,)))
    assert in_a == 5

    done = archive.archive_month(ho.db, A, tmp_path / "arch", "tester", now_ms=NOW)

    assert done.path == tmp_path / "arch" / "ledger-1404-01.cbor.gz"
    assert done.counts["records"] == 5
    assert done.counts["journals"] >= 5 and done.counts["entries"] > 0
    assert done.counts["lot_moves"] > 0
    assert _counts(ho)["records"] == all_rows["records"] - 5
    assert ho.one("SELECT MIN(received_at) FROM records") >= B.lo
    assert ho.one("SELECT COUNT(*) FROM journals WHERE at < ?", (A.hi,)) == 0
    assert {m: ho.member(m) for m in (ALI, SARA)} == before  # balances do not move
    assert ho.q("SELECT device, through_seq, records FROM archived_chains") == [(pos.device, 5, 5)]
    assert ho.check() == []  # balances, lots and chains through what was carried forward
    row = ho.q("SELECT label, file, sha256, records, actor FROM archived_months")
    assert row == [("1404-01", done.path.name, done.sha256, 5, "tester")]
    assert ho.q("SELECT action, target FROM audit_log WHERE action = 'ledger.archive'") == [
        ("ledger.archive", "1404-01")
    ]
    header, s = archive.verify(done.path, done.sha256, archive.key_finder(ho.db))
    assert header["month"] == "1404-01" and s.counts == done.counts

    # the chain goes on from the archived end; later months archive in turn
    pos.time.to_day(DAY0 + 425)
    ho.feed(pos, [pos.sale(ALI, earned=3)], now_ms=NOW)
    assert ho.check() == []
    archive.archive_month(ho.db, B, tmp_path / "arch", "tester", now_ms=NOW)
    assert ho.q("SELECT through_seq, records FROM archived_chains") == [(7, 7)]
    assert ho.check() == []
    assert {m: ho.member(m)[0] for m in (ALI, SARA)} == {ALI: before[ALI][0] + 3,
                                                           SARA: before[SARA][0]}  # fmt: skip


def test_a_replayed_record_of_an_archived_month_is_a_duplicate(
    ho: HO, pos: Terminal, tmp_path: Path
) -> None:
    """A terminal restored from an old backup sends last year's records again: they are
    acknowledged as duplicates, not quarantined as conflicts nor applied twice."""
    fed = _sell(ho, pos)
    archive.archive_month(ho.db, A, tmp_path, "t", now_ms=NOW)
    points = ho.member(ALI)[0]
    out = ho.feed(pos, fed["a"][:3], now_ms=NOW)
    assert out.duplicates == 3 and out.applied == 0
    assert ho.one("SELECT COUNT(*) FROM quarantine") == 0
    assert ho.member(ALI)[0] == points
    assert ho.check() == []


def test_the_check_still_finds_a_carried_balance_that_is_wrong(
    ho: HO, pos: Terminal, tmp_path: Path
) -> None:
    _sell(ho, pos)
    archive.archive_month(ho.db, A, tmp_path, "tester", now_ms=NOW)
    ho.db.run(lambda tx: tx.execute(
        "UPDATE archived_balances SET amount = amount + 1 WHERE account = ?",
        (f"M:{ALI}:PTS",)))  # fmt: skip
    ho.db.run(lambda tx: tx.execute("UPDATE archived_chains SET last_hash = ?", (b"x" * 32,)))
    names = {f.invariant for f in ho.check()}
    assert "member points = entries" in names
    assert "hash chain" in names


def test_what_archiving_refuses(ho: HO, pos: Terminal, tmp_path: Path) -> None:
    _sell(ho, pos)
    with pytest.raises(ArchiveError, match="within the last 12 months") as e:
        archive.archive_month(ho.db, Month(1404, 3), tmp_path, "t", now_ms=NOW)
    assert "ماه" in e.value.fa
    with pytest.raises(ArchiveError, match="oldest first"):
        archive.archive_month(ho.db, B, tmp_path, "t", now_ms=NOW)
    # a tax invoice of a record in A not final yet (as the invoicing queue leaves it)
    dev, seq = pos.device, 2
    ho.db.run(lambda tx: tx.execute(
        "INSERT INTO tax_invoices (store, device, seq, kind, serial, tax_id, day, amount, "
        "state, next_at, created_at) VALUES ('s1', ?, ?, 'sale', 1, 'X1', 1, 1, 'sent', 0, 0)",
        (dev, seq)))  # fmt: skip
    with pytest.raises(ArchiveError, match="tax invoice") as e:
        archive.archive_month(ho.db, A, tmp_path, "t", now_ms=NOW)
    assert "مالیاتی" in e.value.fa
    assert not list(tmp_path.glob("*.gz"))  # refused before anything was written
    ho.db.run(lambda tx: tx.execute("UPDATE tax_invoices SET state = 'accepted', final_at = 1"))
    archive.archive_month(ho.db, A, tmp_path, "t", now_ms=NOW)
    with pytest.raises(ArchiveError, match="archived already"):
        archive.archive_month(ho.db, A, tmp_path, "t", now_ms=NOW)
    assert ho.check() == []


def test_a_month_that_is_not_a_prefix_of_a_chain_is_refused(
    ho: HO, pos: Terminal, tmp_path: Path
) -> None:
    """A ledger from before ``applied_at`` may hold a device's record stamped after a later
    one (two reconcilers at a month's end): archiving would cut its chain, so it refuses."""
    _sell(ho, pos)
    ho.db.run(lambda tx: tx.execute(
        "UPDATE records SET received_at = ? WHERE seq = 3", (B.lo + 1,)))  # fmt: skip
    with pytest.raises(ArchiveError, match="not a prefix of their chains") as e:
        archive.archive_month(ho.db, A, tmp_path, "t", now_ms=NOW)
    assert pos.device in str(e.value) and "زنجیره" in e.value.fa


def test_a_damaged_or_forged_archive_does_not_verify(ho: HO, pos: Terminal, tmp_path: Path) -> None:
    _sell(ho, pos)
    done = archive.archive_month(ho.db, A, tmp_path, "t", now_ms=NOW)
    data = done.path.read_bytes()
    keys = archive.key_finder(ho.db)

    flipped = tmp_path / "flipped.cbor.gz"
    flipped.write_bytes(data[:-9] + bytes([data[-9] ^ 1]) + data[-8:])
    with pytest.raises(ArchiveError, match="SHA-256"):
        archive.verify(flipped, done.sha256)

    cut = tmp_path / "cut.cbor.gz"
    cut.write_bytes(gzip.compress(gzip.decompress(data)[:-40]))
    with pytest.raises(ArchiveError, match=r"cut short|no trailer"):
        archive.verify(cut)

    # a record's bytes changed and the file re-made whole: hash, then signature, refuse it
    raw = gzip.decompress(data)
    sale = next(r for r in pos_records(ho, done.path) if r[1] == 2)
    forged_raw = bytearray(sale[12])
    forged_raw[-1] ^= 1
    forged = tmp_path / "forged.cbor.gz"
    forged.write_bytes(gzip.compress(raw.replace(bytes(sale[12]), bytes(forged_raw))))
    with pytest.raises(ArchiveError, match="do not hash to its hash"):
        archive.verify(forged, None, keys)

    not_one = tmp_path / "not.cbor.gz"
    not_one.write_bytes(gzip.compress(b"\x00\x00\x00\x01\xa0"))
    with pytest.raises(ArchiveError, match="not a ledger archive") as e:
        archive.verify(not_one)
    assert "بایگانی" in e.value.fa


def pos_records(ho: HO, path: Path) -> list[tuple[Any, ...]]:
    _, _, chunks = archive.read(path)
    return [tuple(r) for t, rows in chunks if t == "records" for r in rows]


def test_a_device_s_records_keep_their_times_in_seq_order(ho: HO, pos: Terminal) -> None:
    """Head office's clock steps back (or another reconciler's batch took its time first):
    the device's later records are not stamped before its earlier ones, so a month holds a
    contiguous run of each chain."""
    ho.feed(pos, [pos.sale(ALI, earned=1)], now_ms=B.lo + HOUR)
    ho.feed(pos, [pos.sale(ALI, earned=1)], now_ms=A.lo + HOUR)  # the clock stepped back
    times = [r[0] for r in ho.q("SELECT received_at FROM records ORDER BY seq")]
    assert times == [B.lo + HOUR, B.lo + HOUR]
    assert ho.one("SELECT at FROM journals WHERE seq = 2") == B.lo + HOUR
    assert ho.check() == []


def test_the_cli_archives_lists_and_verifies(
    ho: HO, pos: Terminal, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _sell(ho, pos)
    url = ["--ledger", ho.db.url]
    # the real clock is far past 1404-01 (the test runs after 1405-09)
    assert main([*url, "archive", "month", "۱۴۰۴-۰۱", "--dir", str(tmp_path), "--by", "ops"]) == 0
    assert "archived 1404-01" in capsys.readouterr().out
    assert main([*url, "archive", "list"]) == 0
    assert "ledger-1404-01.cbor.gz" in capsys.readouterr().out
    path = tmp_path / "ledger-1404-01.cbor.gz"
    assert main([*url, "archive", "verify", str(path)]) == 0
    assert "matches the ledger's SHA-256" in capsys.readouterr().out
    assert main([*url, "archive", "month", "1404-13", "--dir", str(tmp_path)]) == 2
    out = capsys.readouterr().out
    assert "not a Jalali month" in out and "خطا" in out
    assert main([*url, "archive", "month", "1404-01", "--dir", str(tmp_path)]) == 1
    assert "archived already" in capsys.readouterr().err


# -- PostgreSQL: partitions ---------------------------------------------------------------


def _where(ho: HO, table: str, where: str) -> list[str]:
    return sorted({str(r[0]) for r in ho.q(f"SELECT tableoid::regclass FROM {table} {where}")})


def test_postgresql_keeps_each_month_in_its_partitions(
    ho: HO, pos: Terminal, tmp_path: Path
) -> None:
    if ho.db.dialect != "postgresql":
        pytest.skip("partitions are PostgreSQL's")
    _sell(ho, pos)
    # the migration made partitions around the real date: these months' rows wait in the
    # default partitions until ensure() makes theirs (and the two after NOW's)
    assert _where(ho, "records", "") == ["records_default"]
    made = ho.db.run(lambda tx: partitions.ensure(tx, NOW))
    span = partitions.months(A, Month(1405, 5))  # the default's rows' months and NOW's
    assert sorted(n for n in made if n.startswith("records_")) == [m.table("records") for m in span]
    assert _where(ho, "records", "") == ["records_140401", "records_140402", "records_140503"]
    assert _where(ho, "entries", f"WHERE at < {A.hi}") == ["entries_140401"]
    assert _where(ho, "lot_moves", f"WHERE at < {A.hi}") == ["lot_moves_140401"]
    assert _where(ho, "journals", "") == ["journals_140401", "journals_140402", "journals_140503"]
    assert ho.one("SELECT COUNT(*) FROM records_default") == 0
    archive.archive_month(ho.db, A, tmp_path, "t", now_ms=NOW)
    assert ho.one("SELECT to_regclass('records_140401')") is None  # detached and dropped
    assert ho.one("SELECT to_regclass('entries_140401')") is None
    assert ho.check() == []


def test_postgresql_rows_without_a_partition_wait_in_default_until_ensure(
    ho: HO, pos: Terminal
) -> None:
    if ho.db.dialect != "postgresql":
        pytest.skip("partitions are PostgreSQL's")
    far = Month(1420, 7)  # no partition made for it
    ho.feed(pos, [pos.sale(ALI, earned=1)], now_ms=far.lo + HOUR)
    assert _where(ho, "records", "") == ["records_default"]
    assert _where(ho, "entries", "") == ["entries_default"]
    made = ho.db.run(lambda tx: partitions.ensure(tx, far.lo + HOUR))
    assert "records_142007" in made and "lot_moves_142009" in made
    assert _where(ho, "records", "") == ["records_142007"]
    assert _where(ho, "journals", "") == ["journals_142007"]
    assert ho.db.run(lambda tx: partitions.ensure(tx, far.lo + HOUR)) == []  # once
    assert ho.check() == []


def test_the_migration_partitions_an_existing_ledger(ledger_url: str, tmp_path: Path) -> None:
    """A ledger made before months (schema 17, written by the reconciler and then given
    back the old shape) migrates with every row, balance and chain intact."""
    ho = HO(ledger_url)
    try:
        t = Terminal(tmp_path)
        ho.register(t)
        _sell(ho, t)
        want = {m: ho.member(m) for m in (ALI, SARA)}
        rows = _counts(ho)
        journals = ho.q("SELECT id, at FROM journals ORDER BY id")
        entries = ho.q("SELECT journal_id, account, amount FROM entries ORDER BY 1, 2, 3")
        ho.db.run(back_to_17)
        assert ho.one("SELECT MAX(version) FROM schema_migrations") == 17

        assert ho.db.migrate(MIGRATIONS) == len(MIGRATIONS)

        assert _counts(ho) == rows
        assert ho.q("SELECT id, at FROM journals ORDER BY id") == journals
        assert ho.q("SELECT journal_id, account, amount FROM entries ORDER BY 1, 2, 3") == entries
        assert ho.one("SELECT COUNT(*) FROM entries e JOIN journals j ON j.id = e.journal_id "
                      "WHERE e.at != j.at") == 0  # fmt: skip
        assert ho.one("SELECT applied_at FROM devices") == C.lo + HOUR
        assert {m: ho.member(m) for m in (ALI, SARA)} == want
        assert ho.check() == []
        if ho.db.dialect == "postgresql":
            parts = set(_where(ho, "records", ""))
            assert parts == {"records_140401", "records_140402", "records_140503"}
            now = partitions.month_of_ms(int(__import__("time").time() * 1000))
            assert ho.one(f"SELECT to_regclass('{now.next().next().table('journals')}')")
        # new ids follow the old ones; new sales apply and check
        top = max(j[0] for j in journals)
        t.time.to_day(DAY0 + 500)
        ho.feed(t, [t.sale(ALI, earned=9)])
        assert ho.one("SELECT MAX(id) FROM journals") > top
        assert ho.member(ALI)[0] == want[ALI][0] + 9
        assert ho.check() == []
    finally:
        ho.close()


def test_month_arithmetic() -> None:
    assert partitions.parse_month("۱۴۰۵/۰۹") == Month(1405, 9)
    for bad in ("1405", "1405-00", "abc-01", "1405-13"):
        with pytest.raises(ValueError, match="Jalali month"):
            partitions.parse_month(bad)
    m = Month(1405, 12)
    assert m.next() == Month(1406, 1) and m.next().prev() == m
    # 1 Farvardin 1405 = 2026-03-21; the month starts at 00:00 Tehran = 20:30 UTC the day before
    f = Month(1405, 1)
    assert f.lo == (f.first_day * 86400 - 12600) * 1000
    assert month_of_ms(f.lo) == f and month_of_ms(f.lo - 1) == Month(1404, 12)
    assert Month(1404, 12).hi == f.lo
    # Esfand of a leap year has 30 days (1403), of a common year 29 (1404)
    assert Month(1403, 12).hi - Month(1403, 12).lo == 30 * 86_400_000
    assert Month(1404, 12).hi - Month(1404, 12).lo == 29 * 86_400_000


def test_a_sqlite_ledger_has_no_partitions(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path}/l.db")
    db.migrate(MIGRATIONS)
    assert db.run(lambda tx: partitions.ensure(tx, NOW)) == []
    db.close()

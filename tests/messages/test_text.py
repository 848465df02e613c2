"""SMS length rules, Persian digits, member templates and the opt-out footer."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cloud_broker.messages.text import (
    GSM7_BASIC,
    GSM7_EXTENDED,
    OPT_OUT_KEYWORD,
    PLACEHOLDERS,
    SmsLength,
    Template,
    TemplateError,
    encoding,
    has_opt_out,
    measure,
    persian_digits,
    with_opt_out,
)

# --------------------------------------------------------------------------- length


def test_alphabet_sizes() -> None:
    assert len(GSM7_BASIC) == 127  # 128 code points less the escape
    assert len(GSM7_EXTENDED) == 10
    assert not GSM7_BASIC & GSM7_EXTENDED


@pytest.mark.parametrize(
    ("text", "enc"),
    [
        ("Hello Maryam, 12,500 points!", "GSM-7"),
        ("Café à Zürich: 5€ {ok}", "GSM-7"),  # é à ü basic, € { } extended
        ("ç", "UCS-2"),  # only the capital Ç is in GSM 03.38
        ("سلام", "UCS-2"),
        ("Points: ۱۲", "UCS-2"),  # Persian digits are not GSM
        ("hi 😀", "UCS-2"),
        ("", "GSM-7"),
    ],
)
def test_encoding(text: str, enc: str) -> None:
    assert encoding(text) == enc


@pytest.mark.parametrize(
    ("text", "units", "parts", "remaining"),
    [
        ("", 0, 0, 160),
        ("a" * 160, 160, 1, 0),
        ("a" * 161, 161, 2, 145),  # 153 + 8
        ("a" * 306, 306, 2, 0),
        ("a" * 307, 307, 3, 152),
        ("€" * 80, 160, 1, 0),  # extended characters count double
        ("€" * 81, 162, 2, 143),  # 76 pairs fill 152 of part one; the 77th starts part two
        # an escape pair is never split: part one ends a septet early
        ("a" * 152 + "€" + "a" * 152, 306, 3, 152),
        ("س" * 70, 70, 1, 0),
        ("س" * 71, 71, 2, 63),  # 67 + 4
        ("س" * 134, 134, 2, 0),
        ("س" * 135, 135, 3, 66),
        ("😀" * 35, 70, 1, 0),  # beyond the BMP: two UTF-16 units
        # a surrogate pair is never split either
        ("س" * 66 + "😀" + "س" * 66, 134, 3, 66),
    ],
)
def test_measure(text: str, units: int, parts: int, remaining: int) -> None:
    m = measure(text)
    assert (m.units, m.parts, m.remaining) == (units, parts, remaining)


def test_a_real_persian_message() -> None:
    text = "مریم عزیز، ۱۲٬۵۰۰ امتیاز در شعبه ونک دارید. تا پایان اسفند با ۲۰٪ تخفیف خرید کنید."
    assert len(text) == 82  # all in the BMP: one UTF-16 unit each
    body = measure(text)
    assert body == SmsLength("UCS-2", 82, 2, 67, 52)
    with_footer = measure(with_opt_out(text))  # "\n" + "لغو۱۱": six more units
    assert with_footer == SmsLength("UCS-2", 88, 2, 67, 46)


def test_a_latin_message_becomes_ucs2_with_one_persian_character() -> None:
    latin = "Dear member, your balance is 1,234,000 IRR. Visit us this week for double points!"
    assert len(latin) == 81
    assert measure(latin) == SmsLength("GSM-7", 81, 1, 160, 79)
    assert measure(latin + "ی").encoding == "UCS-2"
    assert measure(latin + "ی").parts == 2


@given(st.text(alphabet=sorted(GSM7_BASIC), max_size=700))
def test_plain_gsm_parts_follow_the_formula(text: str) -> None:
    m = measure(text)
    expected = 0 if not text else 1 if len(text) <= 160 else math.ceil(len(text) / 153)
    assert (m.encoding, m.units, m.parts) == ("GSM-7", len(text), expected)


@given(st.text(max_size=400))
def test_parts_are_never_fewer_than_the_units_allow(text: str) -> None:
    m = measure(text)
    single = 160 if m.encoding == "GSM-7" else 70
    if m.units <= single:
        assert m.parts == (1 if m.units else 0)
    else:
        assert m.parts >= math.ceil(m.units / m.per_part)
        assert m.parts <= math.ceil(m.units / (m.per_part - 1))  # at most one unit lost a part
        assert 0 <= m.remaining < m.per_part


# --------------------------------------------------------------------------- digits


def test_persian_digits() -> None:
    assert persian_digits("0123456789") == "۰۱۲۳۴۵۶۷۸۹"
    assert persian_digits("٠١٢٣٤٥٦٧٨٩") == "۰۱۲۳۴۵۶۷۸۹"  # Arabic-Indic too
    assert persian_digits("کد 48 و ۲۱ و ٣") == "کد ۴۸ و ۲۱ و ۳"
    assert persian_digits("abc") == "abc"


# --------------------------------------------------------------------------- opt-out


@pytest.mark.parametrize("text", ["لغو۱۱", "لغو 11", "لغو11", "سلام\nلغو ۱۱", "لغو\u200c۱۱"])
def test_opt_out_is_recognised_in_any_spelling(text: str) -> None:
    assert has_opt_out(text)
    assert with_opt_out(text) == text


def test_opt_out_is_appended_once() -> None:
    assert OPT_OUT_KEYWORD == "لغو۱۱"
    assert not has_opt_out("لغو عضویت")
    once = with_opt_out("سلام   ")
    assert once == "سلام\nلغو۱۱"
    assert with_opt_out(once) == once


# --------------------------------------------------------------------------- templates

VALUES = {
    "name": "مریم",
    "points": 12500,
    "balance": 1_234_567,
    "tier": "طلایی",
    "coupon": "YALDA25",
    "store": "شعبه ونک",
}


def test_render_with_persian_digits_and_separators() -> None:
    t = Template.compile(
        "{name} عزیز، {points} امتیاز و {balance} ریال ({balance_toman} تومان) در {store} "
        "دارید. کد {coupon} برای سطح {tier}."
    )
    assert t.fields == ("name", "points", "balance", "balance_toman", "store", "coupon", "tier")
    assert t.render(VALUES) == (
        "مریم عزیز، ۱۲٬۵۰۰ امتیاز و ۱٬۲۳۴٬۵۶۷ ریال (۱۲۳٬۴۵۶ تومان) در شعبه ونک "
        "دارید. کد YALDA25 برای سطح طلایی.\nلغو۱۱"
    )


def test_small_and_zero_numbers() -> None:
    t = Template.compile("{points}", opt_out=False)
    assert [t.render({"points": n}) for n in (0, 7, 999, 1000)] == ["۰", "۷", "۹۹۹", "۱٬۰۰۰"]


@pytest.mark.parametrize(
    ("source", "shown"),
    [
        ("سلام {phone}", "{phone}"),
        ("{name!r}", "{name!r}"),
        ("{points:,}", "{points:,}"),
        ("{}", "{}"),
        ("{0}", "{0}"),
        ("{name.upper}", "{name.upper}"),
        ("{نام} عزیز", "{نام}"),
    ],
)
def test_unknown_placeholders_are_refused_at_save_time(source: str, shown: str) -> None:
    with pytest.raises(TemplateError) as exc:
        Template.compile(source)
    e = exc.value
    assert shown in e.en and shown in e.fa
    assert "{name}" in e.en and "{coupon}" in e.fa  # tells the operator what is allowed
    assert "شناخته نشد" in e.fa


@pytest.mark.parametrize("source", ["{name", "name}", "a { b"])
def test_unbalanced_braces_are_refused(source: str) -> None:
    with pytest.raises(TemplateError) as exc:
        Template.compile(source)
    assert "آکولاد" in exc.value.fa


def test_escaped_braces_and_empty_templates() -> None:
    assert Template.compile("{{کد}} {coupon}", opt_out=False).render(VALUES) == "{کد} YALDA25"
    with pytest.raises(TemplateError):
        Template.compile("   ")


def test_values_typed_by_people_are_sanitised_and_capped() -> None:
    t = Template.compile("[{name}] [{store}]", opt_out=False)
    hostile = "\u202eلاگ\u2066 مریم\x1b[31m\n\tرضایی\u200f"
    assert t.render({"name": hostile, "store": "ش" * 50}) == (
        "[لاگ مریم[31m رضایی] [" + "ش" * 39 + "…]"
    )
    assert t.render({"name": "علی\u200cرضا", "store": "x"}) == "[علی\u200cرضا] [x]"  # ZWNJ kept
    assert PLACEHOLDERS["store"].max_len == 40


def test_missing_and_mistyped_values_are_refused() -> None:
    t = Template.compile("{name}: {points}")
    with pytest.raises(TemplateError) as exc:
        t.render({"name": "مریم"})
    assert "{points}" in exc.value.en and "امتیاز" in exc.value.fa
    for bad in ("12", 12.5, True, None):
        with pytest.raises(TemplateError):
            t.render({"name": "مریم", "points": bad})


def test_footer_is_optional_and_counted() -> None:
    source = "کد ورود شما: {coupon}"
    otp = Template.compile(source, opt_out=False)
    club = Template.compile(source)
    assert otp.render(VALUES) == "کد ورود شما: YALDA25"
    assert club.render(VALUES) == "کد ورود شما: YALDA25\nلغو۱۱"
    assert measure(club.render(VALUES)).units == measure(otp.render(VALUES)).units + 6
    already = Template.compile("سلام {name}\nلغو 11")
    assert not already.footer and already.render(VALUES) == "سلام مریم\nلغو 11"
    # a value cannot stand in for the footer
    assert Template.compile("سلام {name}").render({"name": "لغو ۱۱"}) == "سلام لغو ۱۱\nلغو۱۱"


def test_worst_case_length() -> None:
    t = Template.compile("{name} عزیز، {points} امتیاز دارید.")
    # 40 + 15 placeholder characters, 21 of text, 6 of footer
    assert t.worst_case() == SmsLength("UCS-2", 82, 2, 67, 52)

"""Phone normalisation against the phonenumbers package, on both interpreters."""

from __future__ import annotations

import json
import random

import phonenumbers
import pytest
from phonenumbers import PhoneNumberType

from edge.core import phone
from edge.core.errors import PhoneError
from tests.conftest import run_py

FA = str.maketrans("0123456789", "۰۱۲۳۴۵۶۷۸۹")
AR = str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")


def _reference(nsn: str) -> bool:
    n = phonenumbers.parse("+98" + nsn)
    return bool(phonenumbers.is_valid_number(n)) and phonenumbers.number_type(n) in (
        PhoneNumberType.MOBILE,
        PhoneNumberType.FIXED_LINE_OR_MOBILE,
    )


def _sample_numbers() -> list[str]:
    # Every 5-digit prefix 9xxxx (covers every branch of the mobile pattern), each with
    # two random suffixes, plus numbers that are not mobile at all.
    rng = random.Random(98)
    out = [f"{p}{rng.randrange(100000):05d}" for p in range(90000, 100000) for _ in range(2)]
    out += [f"{rng.randrange(1, 9)}{rng.randrange(10**9):09d}" for _ in range(500)]
    return out


def test_validity_agrees_with_phonenumbers_for_every_prefix() -> None:
    wrong = [n for n in _sample_numbers() if phone.is_mobile("0" + n) != _reference(n)]
    assert wrong == []


@pytest.mark.parametrize(
    "typed",
    [
        "09121234567",
        "9121234567",
        "+989121234567",
        "00989121234567",
        "989121234567",
        "0912 123 4567",
        "0912-123-4567",
        "(0912) 123.4567",
        "+98 (912) 123 45 67",
        "۰۹۱۲۱۲۳۴۵۶۷",
        "٠٩١٢١٢٣٤٥٦٧",
        "۰۹۱۲۱23٤۵۶۷",
        "+۹۸۹۱۲۱۲۳۴۵۶۷",
        "\u200f۰۹۱۲ ۱۲۳ ۴۵۶۷\u200f",
        # the trunk 0 kept after the country code
        "+98 0912 123 4567",
        "0098 0912 123 4567",
        "98 0912 123 4567",
        "+۹۸۰۹۱۲۱۲۳۴۵۶۷",
    ],
)
def test_forms_normalise_to_e164(typed: str) -> None:
    assert phone.normalise(typed) == "+989121234567"


@pytest.mark.parametrize(
    "typed",
    [
        "09121234567",
        "+98 0912 123 4567",
        "0098 0912 123 4567",
        "98 0912 123 4567",
        "+98 00912 123 4567",
        "0098 00912 123 4567",
        "980 912 123 456",
        "+98 0912 123 456",
        "0098 0912 123 45678",
        "+98 0212 123 4567",
        "98 0212 123 4567",
    ],
)
def test_country_code_forms_agree_with_phonenumbers(typed: str) -> None:
    n = phonenumbers.parse(typed, "IR")
    ok = phonenumbers.is_valid_number(n) and phonenumbers.number_type(n) in (
        PhoneNumberType.MOBILE,
        PhoneNumberType.FIXED_LINE_OR_MOBILE,
    )
    assert phone.is_mobile(typed) == ok
    if ok:
        assert phone.normalise(typed) == "+98" + str(n.national_number)


@pytest.mark.parametrize(
    ("typed", "en"),
    [
        ("", "Enter a mobile number."),
        ("   ", "Enter a mobile number."),
        ("0912abc4567", "A mobile number has only digits."),
        ("0912+1234567", "A mobile number has only digits."),
        ("091212345", "An Iranian mobile number has 11 digits and starts with 09."),
        ("091212345678", "An Iranian mobile number has 11 digits and starts with 09."),
        ("02188776655", "This is not an Iranian mobile number."),
        ("+449121234567", "This is not an Iranian mobile number."),
        ("09401234567", "This is not an Iranian mobile number."),
    ],
)
def test_invalid_numbers_get_a_clear_bilingual_message(typed: str, en: str) -> None:
    with pytest.raises(PhoneError) as info:
        phone.normalise(typed)
    assert info.value.en == en
    assert info.value.fa and info.value.fa != info.value.en


def test_display_and_mask() -> None:
    assert phone.display("+989121234567") == "0912 123 4567"
    assert phone.display("+989121234567", fa=True) == "۰۹۱۲ ۱۲۳ ۴۵۶۷"
    assert phone.mask("+989121234567") == "0912***4567"


def test_same_answers_on_micropython() -> None:
    rng = random.Random(7)
    texts = []
    for n in _sample_numbers()[::7]:
        form = rng.randrange(8)
        typed = [
            "0" + n,
            n,
            "+98" + n,
            "0098" + n,
            ("0" + n).translate(FA),
            ("0" + n).translate(AR),
            "+980" + n,
            "980" + n,
        ][form]
        texts.append(typed)
    texts += ["", "abc", "+1 555 0100", "0912 123 456", "۰۹۱۲-۱۲۳-۴۵۶۷"]
    req = (json.dumps({"fn": "phones", "texts": texts}) + "\n").encode()
    cp = run_py("cpython", ["tests/core/mp_harness.py"], req)
    mp = run_py("micropython", ["tests/core/mp_harness.py"], req)
    assert cp.returncode == 0 and mp.returncode == 0, (cp.stderr, mp.stderr)
    assert cp.stdout == mp.stdout
    answers = json.loads(cp.stdout)
    expected = []
    for t in texts:
        try:
            expected.append(phone.normalise(t))
        except PhoneError as e:
            expected.append("! " + e.en + " | " + e.fa)
    assert answers == expected
    # about a third of all 9xxxx prefixes are mobile ranges
    assert sum(1 for a in answers if a.startswith("+98")) > len(texts) // 4

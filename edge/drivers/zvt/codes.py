"""What the terminal's numbers mean, for the cashier, in English and Persian.

Result codes (BMP 27, the second byte of a negative acknowledgement 84 xx, the byte of an
abort 06 1E) follow the error-message chapter of the ZVT specification (PA00P015, chapter
"Error-Messages"): 00 is success, 01-63 hex are passed through from the bank's
authorisation host (05 "do not honour" is the everyday decline), 64-FF are the terminal's
own.  Intermediate status codes (04 FF) follow the chapter "Intermediate Status"; 40 hex
added means "... and please remove the card".
"""

from __future__ import annotations

Text = tuple[str, str]  # (English, Persian)

APPROVED: Text = ("approved", "تأیید شد")

RESULTS: dict[int, Text] = {
    0x00: APPROVED,
    0x05: ("card declined by the issuing bank", "کارت توسط بانک صادرکننده رد شد"),
    0x64: ("card not readable", "کارت خوانده نشد"),
    0x65: ("card data not present", "اطلاعات کارت پیدا نشد"),
    0x66: ("processing error in the terminal", "خطای پردازش در پایانه"),
    0x67: ("function not permitted for this debit card", "این عملیات برای این کارت مجاز نیست"),
    0x68: ("function not permitted for credit cards", "این عملیات برای کارت اعتباری مجاز نیست"),
    0x6A: ("the terminal's transaction memory is full", "حافظهٔ تراکنش‌های پایانه پر است"),
    0x6B: (
        "function deactivated (terminal not registered)",
        "این عملیات غیرفعال است (پایانه ثبت نشده است)",
    ),
    0x6C: ("cancelled (time-out or cancel key)", "لغو شد (پایان زمان یا دکمهٔ لغو)"),
    0x6E: ("card is on the blocked list", "کارت در فهرست مسدودی است"),
    0x6F: ("wrong currency", "واحد پول نادرست است"),
    0x71: ("insufficient funds on the card", "موجودی کارت کافی نیست"),
    0x72: ("chip error", "خطای تراشهٔ کارت"),
    0x73: ("card data incorrect", "اطلاعات کارت نادرست است"),
    0x77: ("end-of-day batch not possible", "بستن حساب روزانه ممکن نیست"),
    0x78: ("card expired", "تاریخ اعتبار کارت گذشته است"),
    0x79: ("card not yet valid", "کارت هنوز معتبر نشده است"),
    0x7A: ("card unknown", "کارت ناشناخته است"),
    0x7D: (
        "the terminal cannot reach the bank (communication error)",
        "پایانه به بانک دسترسی ندارد (خطای ارتباط)",
    ),
    0x83: ("function not possible", "این عملیات ممکن نیست"),
    0x85: ("key missing in the terminal", "کلید رمزنگاری در پایانه موجود نیست"),
    0x89: ("PIN pad defective", "صفحه‌کلید رمز خراب است"),
    0x9A: ("ZVT protocol error", "خطای پروتکل ZVT"),
    0x9B: ("error from dial-up / communication fault", "خطای ارتباط با بانک"),
    0x9C: ("please wait", "لطفاً صبر کنید"),
    0xA0: ("receiver not ready", "گیرنده آماده نیست"),
    0xA1: ("the bank's host does not respond", "سرور بانک پاسخ نمی‌دهد"),
    0xA3: ("no connection to the bank", "ارتباط با بانک برقرار نیست"),
    0xB1: ("terminal memory full", "حافظهٔ پایانه پر است"),
    0xB2: ("merchant journal full", "دفتر فروشنده پر است"),
    0xB4: ("already reversed", "قبلاً برگشت خورده است"),
    0xB5: ("reversal not possible", "برگشت تراکنش ممکن نیست"),
    0xC2: ("terminal needs a diagnosis", "پایانه نیاز به عیب‌یابی دارد"),
    0xC3: ("maximum amount exceeded", "مبلغ از سقف مجاز بیشتر است"),
    0xC5: ("payment method not supported", "این روش پرداخت پشتیبانی نمی‌شود"),
    0xC6: ("currency not accepted", "این واحد پول پذیرفته نمی‌شود"),
    0xC8: ("amount too small", "مبلغ کمتر از حد مجاز است"),
    0xCC: ("printer not ready", "چاپگر آماده نیست"),
    0xDC: ("card still inserted", "کارت هنوز در دستگاه است"),
    0xE2: ("card reader does not answer", "کارت‌خوان پاسخ نمی‌دهد"),
    0xE4: ("terminal activation required", "پایانه باید فعال شود"),
    0xEC: ("PIN processing not possible", "پردازش رمز ممکن نیست"),
    0xF0: ("an end-of-day batch is still open", "حساب روزانهٔ باز وجود دارد"),
    0xFC: ("a required device is missing or defective", "دستگاه لازم وصل نیست یا خراب است"),
    0xFF: ("system error in the terminal", "خطای سیستمی پایانه"),
}


def result_text(code: int) -> Text:
    """English and Persian text for a result code (unknown codes are named, not hidden)."""
    if code in RESULTS:
        return RESULTS[code]
    if 0x01 <= code <= 0x63:
        return (
            f"declined by the bank (host code {code:02X})",
            f"بانک تراکنش را رد کرد (کد {code:02X})",
        )
    return (f"terminal error {code:02X}", f"خطای پایانه (کد {code:02X})")


_STATUS: dict[int, Text] = {
    0x00: ("waiting for amount confirmation", "در انتظار تأیید مبلغ"),
    0x01: ("please watch the PIN pad", "لطفاً به صفحه‌کلید رمز نگاه کنید"),
    0x02: ("please watch the PIN pad", "لطفاً به صفحه‌کلید رمز نگاه کنید"),
    0x03: ("not accepted", "پذیرفته نشد"),
    0x04: ("waiting for the bank", "در انتظار پاسخ بانک"),
    0x05: ("sending automatic reversal", "در حال ارسال برگشت خودکار"),
    0x06: ("sending stored transactions", "در حال ارسال تراکنش‌های ذخیره‌شده"),
    0x07: ("card not accepted", "این کارت پذیرفته نمی‌شود"),
    0x08: ("card unknown", "کارت ناشناخته است"),
    0x09: ("card expired", "تاریخ اعتبار کارت گذشته است"),
    0x0A: ("insert or tap the card", "لطفاً کارت را وارد کنید یا نزدیک کنید"),
    0x0B: ("please remove the card", "لطفاً کارت را خارج کنید"),
    0x0C: ("card not readable", "کارت خوانده نشد"),
    0x0D: ("processing error", "خطای پردازش"),
    0x0E: ("please wait", "لطفاً صبر کنید"),
    0x0F: ("automatic end-of-day batch", "بستن خودکار حساب روزانه"),
    0x10: ("invalid card", "کارت نامعتبر است"),
    0x11: ("balance display", "نمایش موجودی"),
    0x12: ("system malfunction", "اختلال در سیستم"),
    0x13: ("payment not possible", "پرداخت ممکن نیست"),
    0x14: ("insufficient funds", "موجودی کافی نیست"),
    0x15: ("incorrect PIN", "رمز نادرست است"),
    0x16: ("limit not sufficient", "سقف مجاز کافی نیست"),
    0x17: ("please wait", "لطفاً صبر کنید"),
    0x18: ("PIN try limit exceeded", "دفعات مجاز ورود رمز تمام شد"),
    0x19: ("card data incorrect", "اطلاعات کارت نادرست است"),
    0x1A: ("service mode", "حالت سرویس"),
    0x1B: ("approved, please fill up", "تأیید شد، لطفاً سوخت‌گیری کنید"),
    0x1C: ("approved, please take the goods", "تأیید شد، لطفاً کالا را بردارید"),
    0x1D: ("declined", "رد شد"),
    0xD2: ("connecting to the bank", "در حال برقراری ارتباط با بانک"),
    0xD3: ("connected to the bank", "ارتباط با بانک برقرار شد"),
    0xE0: ("waiting for application selection", "در انتظار انتخاب برنامهٔ کارت"),
    0xE1: ("waiting for language selection", "در انتظار انتخاب زبان"),
    0xF1: ("offline", "آفلاین"),
    0xF2: ("online", "آنلاین"),
    0xF3: ("offline transaction", "تراکنش آفلاین"),
    0xFF: ("payment in progress", "پرداخت در حال انجام است"),
}

_REMOVE: Text = ("please remove the card", "لطفاً کارت را خارج کنید")


def status_text(code: int) -> Text:
    """English and Persian text of an intermediate status code (04 FF)."""
    if code in _STATUS:
        return _STATUS[code]
    if 0x41 <= code <= 0x5D and (code - 0x40) in _STATUS:  # "... + please remove card"
        en, fa = _STATUS[code - 0x40]
        return (f"{en}; {_REMOVE[0]}", f"{fa}؛ {_REMOVE[1]}")
    return (f"terminal status {code:02X}", f"وضعیت پایانه (کد {code:02X})")


# ZVT card-type ids (BMP 8A), the ones seen in published traces; the card name (BMP 8B)
# is preferred when the terminal sends one.
CARD_TYPES: dict[int, str] = {
    0x02: "ec-card",
    0x05: "girocard",
    0x06: "Mastercard",
    0x0A: "VISA",
    0x2E: "Maestro",
}


def card_type_name(code: int) -> str:
    return CARD_TYPES.get(code, f"card type {code}")


def card_type_id(name: str) -> int | None:
    """The BMP 8A id of a card name, if ZVT has one."""
    for k, v in CARD_TYPES.items():
        if v.lower() == name.lower():
            return k
    return None

"""Bilingual explanations of applied rules (MicroPython subset).

Each function returns ``(fa, en)``: one line each, short enough for a receipt or a
customer display, naming the rule and what it did.
"""

from edge.core.text import fa_digits, group, num_fa, pct_en, pct_fa, pct_text, rials_en, rials_fa


def _mult(pct):
    # 150 -> 'x1.5'
    return "x" + pct_text(pct)


def discount(rule, amount, code="", uncapped=0):
    """``uncapped``: what the rule would have given without a cap (the rule's own, the
    line's or the basket's); the line says the discount was capped when it is more."""
    how = rule.how
    if how is None:
        how = rule.how = _discount_how(rule)
    how_fa, how_en = how
    if code:
        how_fa = how_fa + code
        how_en = how_en + code
    fa = "%s: %s، %s" % (rule.fa, how_fa, rials_fa(amount))
    en = "%s: %s, %s" % (rule.en, how_en, rials_en(amount))
    if uncapped > amount:
        fa = fa + " (با سقف؛ بدون سقف %s)" % (rials_fa(uncapped),)
        en = en + " (capped; %s without the cap)" % (rials_en(uncapped),)
    return (fa, en)


def _discount_how(rule):
    # The part of a discount line that depends only on the rule (cached on it).
    p = rule.p
    k = rule.kind
    if k == "pct_off":
        return (pct_fa(p["bp"]) + " تخفیف", pct_en(p["bp"]) + " off")
    if k == "basket_threshold":
        off_en = pct_en(p["bp"]) if p["bp"] is not None else rials_en(p["off_rials"])
        off_fa = pct_fa(p["bp"]) if p["bp"] is not None else rials_fa(p["off_rials"])
        return (
            "خرید از %s به بالا، %s تخفیف" % (rials_fa(p["min_spend"]), off_fa),
            "spend %s or more, %s off" % (rials_en(p["min_spend"]), off_en),
        )
    if k == "buy_x_get_y":
        if p["bp"] == 10000:
            return (
                "%s بخر، %s هدیه بگیر" % (num_fa(p["buy"]), num_fa(p["get"])),
                "buy %d get %d free" % (p["buy"], p["get"]),
            )
        return (
            "%s بخر، %s با %s تخفیف" % (num_fa(p["buy"]), num_fa(p["get"]), pct_fa(p["bp"])),
            "buy %d get %d at %s off" % (p["buy"], p["get"], pct_en(p["bp"])),
        )
    if k == "coupon":
        return ("کد تخفیف ", "coupon ")
    if k == "birthday":
        return ("تخفیف تولد", "birthday discount")
    return ("تخفیف", "discount")


def points_line(rule, points, tier=None):
    """``tier``: the member's tier when its earning multiplier applied to this rule."""
    p = rule.p
    k = rule.kind
    if k == "earn_rate":
        how_en = "%s points per %s" % (group(p["points"]), rials_en(p["per_rials"]))
        how_fa = "%s امتیاز به ازای هر %s" % (num_fa(p["points"]), rials_fa(p["per_rials"]))
        if tier is not None and tier.earn_pct != 100:
            x = pct_text(tier.earn_pct)
            how_en = how_en + " %s (%s tier)" % ("x" + x, tier.en)
            how_fa = how_fa + " ×%s (سطح %s)" % (fa_digits(x).replace(".", "٫"), tier.fa)
    elif k == "earn_multiplier":
        return (
            "%s: امتیاز ×%s" % (rule.fa, fa_digits(pct_text(p["pct"])).replace(".", "٫")),
            "%s: points %s" % (rule.en, _mult(p["pct"])),
        )
    elif k == "earn_visit":
        how_en = "thanks for your visit"
        how_fa = "بابت مراجعه"
    elif k == "welcome_bonus":
        how_en = "welcome to the club"
        how_fa = "به باشگاه خوش آمدید"
    elif k == "coupon":
        how_en = "coupon bonus"
        how_fa = "امتیاز کد تخفیف"
    elif k == "birthday":
        how_en = "birthday gift"
        how_fa = "هدیه تولد"
    else:
        how_en = "bonus"
        how_fa = "امتیاز هدیه"
    return (
        "%s: %s، %s امتیاز" % (rule.fa, how_fa, num_fa(points)),
        "%s: %s, %s points" % (rule.en, how_en, group(points)),
    )


def cashback(name_fa, name_en, bp, amount):
    return (
        "%s: %s بازگشت به کیف پول، %s" % (name_fa, pct_fa(bp), rials_fa(amount)),
        "%s: %s back to your wallet, %s" % (name_en, pct_en(bp), rials_en(amount)),
    )


def tier_multiplier(tier):
    return (
        "سطح %s: امتیاز ×%s" % (tier.fa, fa_digits(pct_text(tier.earn_pct)).replace(".", "٫")),
        "%s tier: points x%s" % (tier.en, pct_text(tier.earn_pct)),
    )


def redeemed(points, amount):
    return (
        "%s امتیاز خرج شد، %s تخفیف" % (num_fa(points), rials_fa(amount)),
        "%s points redeemed, %s off" % (group(points), rials_en(amount)),
    )


def wallet_used(amount):
    return (
        "پرداخت از کیف پول: %s" % (rials_fa(amount),),
        "Paid from wallet: %s" % (rials_en(amount),),
    )


def capped_points(cut):
    return (
        "سقف امتیاز روزانه: %s امتیاز کمتر" % (num_fa(cut),),
        "Daily points limit: %s points fewer" % (group(cut),),
    )


COUPON_REASONS = {
    "unknown": ("کد تخفیف معتبر نیست.", "Unknown coupon code."),
    "used": ("این کد تخفیف قبلاً استفاده شده است.", "This coupon has already been used."),
    "not_yours": (
        "این کد تخفیف متعلق به مشتری دیگری است.",
        "This coupon belongs to another member.",
    ),
    "conditions": ("شرایط این کد تخفیف برقرار نیست.", "This coupon's conditions are not met."),
    "member": ("برای این کد تخفیف عضویت لازم است.", "This coupon needs a member."),
    "outranked": (
        "این کد با پیشنهاد بهتری که اعمال شد قابل جمع نیست.",
        "This coupon does not combine with an offer already applied.",
    ),
    "limit": (
        "سقف تخفیف پر شده است؛ این کد تخفیف اعمال نشد و برای بعد می‌ماند.",
        "The discount limit is reached; this coupon was not applied and stays unused.",
    ),
}

NOTICES = {
    "member": (
        "امتیاز و کیف پول فقط برای اعضای باشگاه است.",
        "Points and wallet are for club members only.",
    ),
    "no_redeem": ("خرج کردن امتیاز در این فروشگاه فعال نیست.", "Points cannot be redeemed here."),
    "few_points": ("امتیاز کافی برای تخفیف وجود ندارد.", "Not enough points for a discount."),
    "no_wallet": ("کیف پول موجودی ندارد.", "The wallet has no credit to use."),
}

// The customer's screen: follows the till by server-sent events; as a kiosk (?mode=kiosk)
// it also offers a keypad to check a balance or join. Texts are Persian first; ?lang=en.
(function () {
  var params = new URLSearchParams(location.search);
  var en = params.get("lang") === "en";
  var kiosk = params.get("mode") === "kiosk";
  var T = {
    welcome: ["به باشگاه مشتریان خوش آمدید", "Welcome to the customer club"],
    welcome_hint: ["کارت عضویت را بکشید یا شماره موبایل خود را بگویید.", "Tap your club card or tell the cashier your mobile number."],
    subtotal: ["جمع", "Subtotal"], discount: ["تخفیف", "Discounts"], wallet: ["از کیف پول", "From your wallet"],
    payable: ["قابل پرداخت", "To pay"], thanks: ["از خرید شما سپاسگزاریم", "Thank you for shopping with us"],
    kiosk_title: ["باشگاه مشتریان", "Customer club"], balance: ["امتیاز من", "My points"],
    consent: ["با عضویت و دریافت پیامک باشگاه موافقم", "I agree to join and receive the club's SMS"],
    enrol: ["عضویت در باشگاه", "Join the club"], points: ["امتیاز", "points"], rial: ["ریال", "Rials"],
    earned: ["امتیاز این خرید", "Points for this purchase"], balance_now: ["امتیاز شما", "Your points"],
    tier: ["سطح", "Tier"], to_next: ["تا سطح", "more to"], not_member: ["این شماره هنوز عضو نیست؛ می‌توانید عضو شوید.", "This number is not a member yet: you can join."],
    joined: ["عضو باشگاه شدید. خوش آمدید!", "You joined the club. Welcome!"], already: ["این شماره پیش‌تر عضو است.", "This number is already a member."],
    coupons: ["کدهای تخفیف شما", "Your coupons"], wallet_now: ["کیف پول", "Wallet"], new_member: ["عضو تازه", "new member"]
  };
  function t(k) { return T[k] ? T[k][en ? 1 : 0] : k; }
  var FA = "۰۱۲۳۴۵۶۷۸۹";
  function digits(s) { s = String(s); return en ? s : s.replace(/[0-9]/g, function (d) { return FA[+d]; }); }
  function num(n) { return digits(Number(n || 0).toLocaleString("en-US").replace(/,/g, en ? "," : "٬")); }
  function money(n) { return num(n) + " " + t("rial"); }
  var app = document.getElementById("app");
  if (en) { document.documentElement.lang = "en"; document.documentElement.dir = "ltr"; }
  document.querySelectorAll("[data-t]").forEach(function (el) { el.textContent = t(el.getAttribute("data-t")); });
  function el(tag, text, cls) { var e = document.createElement(tag); if (text !== undefined) e.textContent = text; if (cls) e.className = cls; return e; }

  function render(s) {
    // a kiosk shows its keypad unless a checkout is going on at it
    if (kiosk && s.screen !== "basket") { app.setAttribute("data-screen", "kiosk"); return; }
    app.setAttribute("data-screen", s.screen);
    if (s.screen === "welcome") return;
    var who = document.getElementById("who");
    who.hidden = !s.member;
    if (s.member) {
      who.textContent = s.member.who + (s.member.enrolled ? " · " + t("new_member") : "") +
        " · " + t("tier") + " " + (en ? s.member.tier_en : s.member.tier_fa) +
        " · " + t("balance_now") + ": " + num(s.member.points_before);
    }
    var body = document.getElementById("lines");
    body.textContent = "";
    s.lines.forEach(function (ln) {
      var tr = el("tr");
      tr.appendChild(el("td", ln.name));
      tr.appendChild(el("td", "× " + num(ln.qty), "num"));
      var amount = el("td", "", "num");
      if (ln.discount) amount.appendChild(el("span", num(ln.gross), "was"));
      amount.appendChild(document.createTextNode(money(ln.paid + (ln.wallet || 0))));
      tr.appendChild(amount);
      body.appendChild(tr);
    });
    var ap = document.getElementById("applied");
    ap.textContent = "";
    s.applied.forEach(function (a) { ap.appendChild(el("li", en ? a.en : a.fa)); });
    document.getElementById("subtotal").textContent = money(s.subtotal);
    document.getElementById("discount").textContent = money(s.discount);
    document.getElementById("discount-row").hidden = !s.discount;
    document.getElementById("wallet").textContent = money(s.wallet_used);
    document.getElementById("wallet-row").hidden = !s.wallet_used;
    document.getElementById("payable").textContent = money(s.payable);
    var earn = document.getElementById("earn");
    earn.hidden = !(s.member && s.points_earned);
    if (s.member) earn.textContent = t("earned") + ": " + num(s.points_earned) + " · " + t("balance_now") + ": " + num(s.member.points_after);
    if (s.screen === "thanks" && s.member) {
      document.getElementById("thanks-points").textContent = t("earned") + ": " + num(s.points_earned) + " · " + t("balance_now") + ": " + num(s.member.points_after);
      document.getElementById("thanks-tier").textContent = t("tier") + " " + (en ? s.member.tier_en : s.member.tier_fa) +
        (s.member.next_fa ? " · " + money(s.member.left) + " " + t("to_next") + " " + (en ? s.member.next_en : s.member.next_fa) : "");
    } else if (s.screen === "thanks") {
      document.getElementById("thanks-points").textContent = "";
      document.getElementById("thanks-tier").textContent = "";
    }
  }

  var source = new EventSource("/events");
  source.onmessage = function (e) { render(JSON.parse(e.data)); app.setAttribute("data-updated", String(Date.now())); };

  if (!kiosk) return;
  // -- the kiosk: a keypad, a balance, joining; cleared after a while without a touch ----
  var typed = "", idleMs = 60000, timer = null;
  fetch("/config").then(function (r) { return r.json(); }).then(function (c) { idleMs = c.idle_s * 1000; touched(); });
  var phone = document.getElementById("phone"), result = document.getElementById("result");
  function show() { phone.textContent = digits(typed); }
  function clearAll() { typed = ""; show(); result.textContent = ""; result.className = "result"; document.getElementById("consent").checked = false; app.setAttribute("data-cleared", String(Date.now())); }
  function touched() { if (timer) clearTimeout(timer); timer = setTimeout(clearAll, idleMs); }
  var pad = document.getElementById("keypad");
  ["1", "2", "3", "4", "5", "6", "7", "8", "9", "⌫", "0", "C"].forEach(function (k) {
    var b = el("button", /[0-9]/.test(k) ? digits(k) : k);
    b.setAttribute("data-key", k);
    b.onclick = function () {
      touched();
      if (k === "⌫") typed = typed.slice(0, -1);
      else if (k === "C") typed = "";
      else if (typed.length < 13) typed += k;
      show();
    };
    pad.appendChild(b);
  });
  document.addEventListener("keydown", touched);
  function post(path, body) {
    touched();
    return fetch(path, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) })
      .then(function (r) { return r.json().then(function (d) { return { ok: r.ok, d: d }; }); });
  }
  function fail(d) { result.className = "result error"; result.textContent = en ? d.en : d.fa; }
  document.getElementById("balance").onclick = function () {
    post("/kiosk/balance", { phone: typed }).then(function (x) {
      if (!x.ok) return fail(x.d);
      result.className = "result";
      if (!x.d.known) { result.textContent = t("not_member"); return; }
      var text = x.d.who + " · " + t("balance_now") + ": " + num(x.d.points) + " " + t("points");
      if (x.d.wallet) text += " · " + t("wallet_now") + ": " + money(x.d.wallet);
      if (x.d.tier_fa) text += " · " + t("tier") + " " + (en ? x.d.tier_en : x.d.tier_fa);
      if (x.d.next_fa) text += " (" + money(x.d.left) + " " + t("to_next") + " " + (en ? x.d.next_en : x.d.next_fa) + ")";
      if (x.d.coupons && x.d.coupons.length) text += " · " + t("coupons") + ": " + x.d.coupons.join("، ");
      result.textContent = text;
    });
  };
  document.getElementById("enrol").onclick = function () {
    post("/kiosk/enrol", { phone: typed, consent: document.getElementById("consent").checked }).then(function (x) {
      if (!x.ok) return fail(x.d);
      result.className = "result";
      result.textContent = x.d.enrolled ? t("joined") : t("already");
    });
  };
  app.setAttribute("data-screen", "kiosk");
})();

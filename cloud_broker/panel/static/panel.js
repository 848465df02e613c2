// The membership QR renews itself (a code is valid five minutes; a screenshot soon stops
// working). The panel's own page asks /qr for the next one.
document.addEventListener("DOMContentLoaded", function () {
  var box = document.getElementById("qr");
  if (!box) return;
  var every = parseInt(box.getAttribute("data-every") || "60", 10) * 1000;
  setInterval(function () {
    fetch("/qr", { credentials: "same-origin", cache: "no-store" })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (d) { if (d) { box.innerHTML = d.svg; box.setAttribute("data-renewed", String(d.expires)); } });
  }, every);
});

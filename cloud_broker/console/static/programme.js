// Jalali date pickers on the programme's forms (inputs marked data-jdp); typed dates in
// Persian or Latin digits work without it.
document.addEventListener("DOMContentLoaded", function () {
  if (window.jalaliDatepicker) {
    jalaliDatepicker.startWatch({ persianDigits: false, autoShow: true, autoHide: true,
                                  hideAfterChange: true, date: true, time: false });
  }
});

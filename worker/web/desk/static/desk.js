// The desk's one script: "select this page" ticks every letter on the page; "all matching" ticks them too
// (the server acts on every letter matching the filters). Everything works without it, one box at a time.
document.addEventListener("DOMContentLoaded", function () {
  var page = document.getElementById("select-page");
  var all = document.getElementById("all-matching");
  var picks = function () { return document.querySelectorAll("input.pick:not([disabled])"); };
  if (page) {
    page.addEventListener("change", function () {
      picks().forEach(function (box) { box.checked = page.checked; });
      if (all && !page.checked) { all.checked = false; }
    });
  }
  if (all) {
    all.addEventListener("change", function () {
      picks().forEach(function (box) { box.checked = all.checked; box.disabled = all.checked; });
      if (page) { page.checked = all.checked; }
    });
  }
});

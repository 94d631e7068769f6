// What every console page does in the browser (no inline script: the CSP allows 'self' only).
//
// Asking before a change that cannot be undone: a form with data-confirm asks its question on submit; with
// data-confirm-field and data-confirm-value it asks only when that field holds that value (a status select
// set to 已取消). Declining keeps the page as it was.
//
// The menu on a phone: the 菜单 button (shown on narrow screens only) opens and closes the navigation.
document.addEventListener("submit", (event) => {
  const form = event.target;
  if (!(form instanceof HTMLFormElement) || !form.dataset.confirm) {
    return;
  }
  const field = form.dataset.confirmField;
  if (field && form.elements[field] && form.elements[field].value !== form.dataset.confirmValue) {
    return;
  }
  if (!window.confirm(form.dataset.confirm)) {
    event.preventDefault();
  }
});

(function () {
  "use strict";
  var button = document.querySelector(".menu-toggle");
  var bar = document.querySelector(".topbar");
  if (!button || !bar) { return; }
  button.addEventListener("click", function () {
    var open = bar.classList.toggle("menu-open");
    button.setAttribute("aria-expanded", open ? "true" : "false");
  });
}());

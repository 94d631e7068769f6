// Ask before a change that cannot be undone. A form with data-confirm asks its question on submit; with
// data-confirm-field and data-confirm-value it asks only when that field holds that value (a status select
// set to 已取消). Declining keeps the page as it was.
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

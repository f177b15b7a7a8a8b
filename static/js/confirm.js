// Forms marked data-confirm="question" ask before they submit (destructive actions).
// One listener for the page instead of inline handlers, so a strict content security
// policy can forbid inline script.
document.addEventListener("submit", (event) => {
  const form = event.target;
  if (form instanceof HTMLFormElement && form.dataset.confirm && !window.confirm(form.dataset.confirm)) {
    event.preventDefault();
  }
});

// Selects marked data-submit-on-change submit their form when changed (the language
// switch), again without inline handlers.
document.addEventListener("change", (event) => {
  const field = event.target;
  if (field instanceof HTMLSelectElement && field.dataset.submitOnChange !== undefined && field.form) {
    field.form.submit();
  }
});

// Forms marked data-confirm="question" ask before they submit (destructive actions).
// One listener for the page instead of inline handlers, so a strict content security
// policy can forbid inline script.
document.addEventListener("submit", (event) => {
  const form = event.target;
  if (form instanceof HTMLFormElement && form.dataset.confirm && !window.confirm(form.dataset.confirm)) {
    event.preventDefault();
  }
});

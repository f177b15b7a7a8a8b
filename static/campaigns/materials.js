// The material library and quick replies. No inline script: one listener each for the page.
//
// 1. Buttons with data-copy-text copy that text (guides paste it into WeCom). The
//    Clipboard API needs a secure page; elsewhere (an intranet over http, an old in-app
//    browser) a selected, off-screen textarea and execCommand("copy") do it.
// 2. On the material form, fields marked data-kinds="text image …" show only for those kinds.
(() => {
  if (window.scrmMaterials) return;
  window.scrmMaterials = true;

  const fallbackCopy = (text) => {
    const area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.style.position = "fixed";
    area.style.top = "-1000px";
    document.body.appendChild(area);
    area.select();
    area.setSelectionRange(0, text.length);
    let done = false;
    try {
      done = document.execCommand("copy");
    } catch (_error) {
      done = false;
    }
    area.remove();
    return done;
  };

  const copy = async (text) => {
    if (navigator.clipboard && window.isSecureContext) {
      try {
        await navigator.clipboard.writeText(text);
        return true;
      } catch (_error) {
        // Refused (no permission, page not focused): try the old way.
      }
    }
    return fallbackCopy(text);
  };

  document.addEventListener("click", async (event) => {
    const button = event.target instanceof Element ? event.target.closest("[data-copy-text]") : null;
    if (!button) return;
    const done = await copy(button.dataset.copyText);
    const item = button.closest("li") || button.parentElement;
    const status = item && item.querySelector("[data-copy-status]");
    if (status) status.textContent = done ? button.dataset.copied : button.dataset.failed;
    button.classList.toggle("btn-plain", done);
    if (done) {
      clearTimeout(button.copyTimer);
      button.copyTimer = setTimeout(() => {
        button.classList.remove("btn-plain");
        if (status) status.textContent = "";
      }, 3000);
    }
  });

  const showKindFields = () => {
    const kind = document.querySelector("#material-form [name=kind]");
    if (!kind) return;
    document.querySelectorAll("#material-form [data-kinds]").forEach((input) => {
      const wrapper = input.closest(".field");
      if (wrapper) wrapper.hidden = !input.dataset.kinds.split(" ").includes(kind.value);
    });
  };
  document.addEventListener("change", (event) => {
    if (event.target instanceof Element && event.target.matches("#material-form [name=kind]")) {
      showKindFields();
    }
  });
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", showKindFields);
  } else {
    showKindFields();
  }
})();

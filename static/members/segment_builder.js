// The segment builder: edits the rule tree (AND / OR / NOT groups of conditions) kept
// as JSON in the form's hidden "rules" field, and asks the server for a live count and
// a sample after every change. The server checks the tree again on save; this script
// only makes editing pleasant. Node paths ("rules[1].rules[0]") match the server's
// error messages, so a bad node can be highlighted.
(() => {
  "use strict";
  const form = document.getElementById("segment-form");
  const holder = document.getElementById("rule-tree");
  const input = document.getElementById("id_rules");
  const dataTag = document.getElementById("segment-catalogue");
  if (!form || !holder || !input || !dataTag) return;

  const catalogue = JSON.parse(dataTag.textContent);
  const text = catalogue.text;
  const fields = Object.fromEntries(catalogue.fields.map((f) => [f.name, f]));
  const countUrl = form.dataset.countUrl;
  const csrf = form.querySelector("input[name=csrfmiddlewaretoken]").value;
  const countBox = document.querySelector("[data-testid=live-count]");
  const statusBox = document.querySelector("[data-testid=live-status]");
  const errorBox = document.querySelector("[data-testid=live-error]");
  const sampleBody = document.querySelector("[data-testid=live-sample] tbody");
  const storeSelect = document.getElementById("id_store");

  let tree;
  try {
    tree = JSON.parse(input.value || "{}");
  } catch (e) {
    tree = {};
  }
  if (!tree || !tree.op) tree = { op: "and", rules: tree && tree.field ? [tree] : [] };

  const el = (tag, attrs = {}, children = []) => {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs)) {
      if (key === "text") node.textContent = value;
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value);
    }
    for (const child of children) node.append(child);
    return node;
  };

  const defaultCondition = () => {
    const spec = catalogue.fields[0];
    return { field: spec.name, operator: spec.operators[0][0], value: defaultValue(spec, spec.operators[0][0]) };
  };

  function defaultValue(spec, operator) {
    if (operator === "never" || (spec.name === "tier" && operator === "none")) return null;
    if (["choice-list", "id-list", "text-list"].includes(spec.value)) return [];
    if (operator === "between" || spec.value === "number-range") return [null, null];
    if (spec.value === "date-range") return operator === "between" ? [null, null] : 30;
    if (spec.value === "days") return 30;
    if (spec.value === "text") return "";
    return 0;
  }

  // --- rendering ---------------------------------------------------------------------
  function render() {
    holder.replaceChildren(renderGroup(tree, "", null));
    input.value = JSON.stringify(tree);
    scheduleCount();
  }

  function renderGroup(group, path, parent) {
    const box = el("div", { class: "rule-group", "data-path": path });
    const head = el("div", { class: "rule-row" });
    const op = el("select", { "aria-label": "AND / OR / NOT", "data-role": "op", onchange: (e) => {
      group.op = e.target.value;
      if (group.op === "not" && group.rules.length > 1) group.rules = group.rules.slice(0, 1);
      render();
    } });
    for (const key of ["and", "or", "not"]) {
      op.append(el("option", { value: key, text: text[key] }));
    }
    op.value = group.op;
    head.append(op);
    const canAdd = group.op !== "not" || group.rules.length === 0;
    if (canAdd) {
      head.append(el("button", { type: "button", class: "btn btn-plain", "data-role": "add-condition", text: text.add_condition,
        onclick: () => { group.rules.push(defaultCondition()); render(); } }));
      head.append(el("button", { type: "button", class: "btn btn-plain", "data-role": "add-group", text: text.add_group,
        onclick: () => { group.rules.push({ op: "and", rules: [defaultCondition()] }); render(); } }));
    }
    if (parent) head.append(removeButton(parent, group));
    box.append(head);
    group.rules.forEach((child, index) => {
      const childPath = `${path ? path + "." : ""}rules[${index}]`;
      box.append(child.op ? renderGroup(child, childPath, group) : renderCondition(child, childPath, group));
    });
    return box;
  }

  function removeButton(parent, node) {
    return el("button", { type: "button", class: "linklike", "aria-label": text.remove, title: text.remove, text: "✕",
      onclick: () => { parent.rules.splice(parent.rules.indexOf(node), 1); render(); } });
  }

  function renderCondition(cond, path, parent) {
    const spec = fields[cond.field] || catalogue.fields[0];
    const row = el("div", { class: "rule-row", "data-path": path, "data-testid": "condition" });
    const fieldSelect = el("select", { "data-role": "field", "aria-label": "field", onchange: (e) => {
      const next = fields[e.target.value];
      cond.field = next.name;
      cond.operator = next.operators[0][0];
      cond.value = defaultValue(next, cond.operator);
      delete cond.days;
      delete cond.min_times;
      render();
    } });
    for (const f of catalogue.fields) fieldSelect.append(el("option", { value: f.name, text: f.label }));
    fieldSelect.value = spec.name;
    const opSelect = el("select", { "data-role": "operator", "aria-label": "operator", onchange: (e) => {
      cond.operator = e.target.value;
      cond.value = defaultValue(spec, cond.operator);
      render();
    } });
    for (const [key, label] of spec.operators) opSelect.append(el("option", { value: key, text: label }));
    opSelect.value = cond.operator;
    row.append(fieldSelect, opSelect, ...valueEditor(spec, cond));
    if (spec.windowed) {
      row.append(el("label", { text: text.days }),
        numberInput(cond.days ?? "", (v) => { cond.days = v === "" ? null : Number(v); }, "days"));
    }
    if (spec.name === "bought") {
      row.append(el("label", { text: text.times }),
        numberInput(cond.min_times ?? 1, (v) => { cond.min_times = v === "" ? 1 : Number(v); }, "min-times"));
    }
    row.append(removeButton(parent, cond));
    return row;
  }

  function changed() {
    input.value = JSON.stringify(tree);
    scheduleCount();
  }

  function numberInput(value, set, role) {
    return el("input", { type: "number", value: value ?? "", "data-role": role, style: "width:90px",
      oninput: (e) => { set(e.target.value); changed(); } });
  }

  function valueEditor(spec, cond) {
    const op = cond.operator;
    if (op === "never" || (spec.name === "tier" && op === "none")) return [];
    if (spec.value === "choice-list" || spec.value === "id-list") {
      const select = el("select", { multiple: "", "data-role": "value", "aria-label": spec.label, onchange: (e) => {
        const picked = [...e.target.selectedOptions].map((o) => o.value);
        cond.value = spec.value === "id-list" ? picked.map(Number) : picked;
        changed();
      } });
      const chosen = new Set((cond.value || []).map(String));
      for (const [key, label] of spec.choices || []) {
        const option = el("option", { value: key, text: label });
        option.selected = chosen.has(String(key));
        select.append(option);
      }
      return [select];
    }
    if (spec.value === "text-list") {
      return [el("input", { type: "text", value: (cond.value || []).join(","), "data-role": "value", placeholder: "上海,北京",
        oninput: (e) => { cond.value = e.target.value.split(/[,，、]/).map((s) => s.trim()).filter(Boolean); changed(); } })];
    }
    if (spec.value === "text") {
      return [el("input", { type: "text", value: cond.value || "", "data-role": "value",
        oninput: (e) => { cond.value = e.target.value; changed(); } })];
    }
    const isRange = op === "between" || spec.value === "number-range";
    if (isRange) {
      const type = spec.value === "date-range" ? "date" : "number";
      const pair = Array.isArray(cond.value) ? cond.value : [null, null];
      cond.value = pair;
      const end = (index) => el("input", { type, value: pair[index] ?? "", "data-role": index ? "to" : "from",
        "aria-label": index ? text.to : text.from, style: type === "number" ? "width:90px" : "",
        oninput: (e) => {
          const raw = e.target.value;
          pair[index] = raw === "" ? null : (type === "number" ? Number(raw) : raw);
          changed();
        } });
      return [el("span", { text: text.from }), end(0), el("span", { text: text.to }), end(1)];
    }
    return [numberInput(cond.value, (v) => { cond.value = v === "" ? null : Number(v); }, "value")];
  }

  // --- live count ----------------------------------------------------------------------
  let timer = null;
  let latest = 0;
  function scheduleCount() {
    clearTimeout(timer);
    timer = setTimeout(count, 350);
  }

  function highlight(path) {
    holder.querySelectorAll(".rule-bad").forEach((n) => n.classList.remove("rule-bad"));
    if (path === null || path === undefined) return;
    const node = holder.querySelector(`[data-path="${CSS.escape(path)}"]`);
    if (node) node.classList.add("rule-bad");
  }

  async function count() {
    const ticket = ++latest;
    statusBox.textContent = text.counting;
    let response;
    let body;
    try {
      response = await fetch(countUrl, {
        method: "POST",
        headers: { "Content-Type": "application/json", "X-CSRFToken": csrf },
        body: JSON.stringify({ rules: tree, store: storeSelect ? storeSelect.value : "" }),
      });
      body = await response.json();
    } catch (e) {
      body = { message: text.error };
      response = { ok: false };
    }
    if (ticket !== latest) return; // a newer edit is already being counted
    if (!response.ok) {
      errorBox.hidden = false;
      errorBox.textContent = body.message || text.error;
      statusBox.textContent = "";
      highlight(body.path);
      return;
    }
    errorBox.hidden = true;
    highlight(null);
    countBox.textContent = body.count.toLocaleString();
    const asOf = body.source === "snapshot" ? ` · ${text.as_of} ${body.as_of}` : "";
    statusBox.textContent = `${text.members} · ${body.milliseconds} ms${asOf}`;
    sampleBody.replaceChildren(...body.sample.map((m) => el("tr", {}, [
      el("td", {}, [el("a", { href: m.url, text: m.name })]),
      el("td", { text: m.phone }),
    ])));
  }

  if (storeSelect) storeSelect.addEventListener("change", scheduleCount);
  render();
  if (form.dataset.errorPath) highlight(form.dataset.errorPath);
})();

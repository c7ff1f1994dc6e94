// "Create incident": a small form posting POST /v1/incidents with one
// Idempotency-Key per form, and the answer in plain words.

import { h } from "./render.js";

/** A v4 UUID: crypto.randomUUID where the page is a secure context, else
 * the same from crypto.getRandomValues (plain-http portals). */
export function uuid() {
  if (globalThis.crypto && typeof crypto.randomUUID === "function") return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const x = [...b].map((v) => v.toString(16).padStart(2, "0")).join("");
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20)}`;
}

/** What the trigger's answer means, in plain words: `{ok, text}`. */
export function describeAnswer(status, body, replayed) {
  if (status === 202) {
    const again = replayed ? " (the first answer to this form, replayed)" : "";
    return { ok: true, text: `Created: PagerDuty accepted the incident${again}. Dedup key ${body.dedup_key}.` };
  }
  const e = (body && body.error) || {};
  const d = e.details || {};
  let head;
  if (d.created === false) head = "NOT created.";
  else if (d.created === null) head = "Could not be confirmed: the incident may or may not exist.";
  else head = "NOT created.";
  const reason = {
    invalid_body: `The ${d.field || "form"} is not valid: ${e.message || ""}`,
    unauthorized: "dutycard needs a token (set the card's token or fetch hook).",
    rate_limited: `Too many incidents at once; try again in ${d.retry_after_secs ?? "a few"} s.`,
    not_found: "PagerDuty has no such service.",
    no_events_integration: "The service has no Events API v2 integration to page through.",
    in_progress: "The same form is still being sent; wait a moment.",
    idempotency_key_reused: "This form was already sent with other content; reopen the form.",
    event_rejected: `PagerDuty rejected the event: ${e.message || ""}`,
    upstream_unavailable: "PagerDuty could not be reached.",
    upstream_rate_limited: "PagerDuty is throttling events.",
    upstream_timeout: "PagerDuty did not answer in time.",
    upstream_bad_response: "PagerDuty's answer was unusable.",
  }[e.code] || e.message || `dutycard answered ${status}.`;
  let retry = "";
  if (d.retry_safe === true) retry = " Safe to retry: sending again cannot open a second incident.";
  else if (d.retry_safe === false) retry = " Do not resend as it is.";
  return { ok: false, text: `${head} ${reason}${retry}` };
}

/**
 * The button and its form. `send(body, key)` posts and resolves to
 * `{status, body, replayed}`; `done()` runs after every answer.
 */
export function incidentForm(send, done) {
  const formId = `dc-form-${uuid().slice(0, 8)}`;
  const open = h("button", { type: "button", "aria-expanded": "false", "aria-controls": formId, "data-action": "open-form" }, "Create incident");
  const summary = h("input", { name: "summary", required: true, maxlength: 1024, autocomplete: "off" });
  // An entity's card pages one of its services: chosen here (hidden when
  // the card has one service).
  const service = h("select", { name: "service" });
  const serviceLabel = h("label", { hidden: true }, "Service to page", service);
  const severity = h("select", { name: "severity" },
    ["critical", "error", "warning", "info"].map((s) => h("option", { value: s, selected: s === "error" }, s)));
  const details = h("textarea", { name: "details", rows: 3 });
  const answer = h("p", { class: "answer", role: "status", "aria-live": "polite", hidden: true });
  const submit = h("button", { type: "submit", class: "primary" }, "Send to PagerDuty");
  const cancel = h("button", { type: "button" }, "Cancel");
  const form = h("form", { id: formId, hidden: true, "aria-label": "Create incident" },
    serviceLabel,
    h("label", {}, "Summary (what is wrong)", summary),
    h("label", {}, "Severity", severity),
    h("label", {}, "Details (optional)", details),
    h("div", {}, submit, " ", cancel),
    answer);

  // One key per form: a retry of the same form replays the first answer
  // instead of paging twice; a changed form is a new request, a new key.
  let key = null;
  let sentBody = null;

  const setOpen = (yes) => {
    form.hidden = !yes;
    open.setAttribute("aria-expanded", String(yes));
    if (yes) {
      key = uuid();
      sentBody = null;
      answer.hidden = true;
      summary.focus();
    } else {
      open.focus();
    }
  };
  open.addEventListener("click", () => setOpen(form.hidden));
  cancel.addEventListener("click", () => setOpen(false));
  form.addEventListener("keydown", (ev) => {
    if (ev.key === "Escape") setOpen(false);
  });
  let busy = false;
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    if (busy) return;
    if (!summary.value.trim()) {
      summary.focus();
      return;
    }
    const body = { summary: summary.value.trim(), severity: severity.value };
    if (service.value) body.service_id = service.value;
    if (details.value.trim()) body.custom_details = { details: details.value.trim() };
    const text = JSON.stringify(body);
    if (sentBody !== null && sentBody !== text) key = uuid();
    sentBody = text;
    // aria-disabled, not disabled: a disabled button loses the focus, and
    // a keyboard user should stay where they pressed Enter.
    busy = true;
    submit.setAttribute("aria-disabled", "true");
    answer.hidden = false;
    answer.className = "answer";
    answer.textContent = "Sending…";
    let result;
    try {
      const { status, body: reply, replayed } = await send(body, key);
      result = describeAnswer(status, reply, replayed);
    } catch (e) {
      result = { ok: false, text: `Could not be confirmed: dutycard did not answer (${e.message}). Safe to retry.` };
    }
    busy = false;
    submit.removeAttribute("aria-disabled");
    answer.className = `answer ${result.ok ? "answer-ok" : "answer-bad"}`;
    answer.dataset.ok = String(result.ok);
    answer.textContent = result.text;
    if (result.ok) {
      summary.value = "";
      details.value = "";
      key = uuid();
      sentBody = null;
    }
    done(result);
  });
  const actions = h("div", { class: "actions" }, open, form);
  /** The services the form may page (`[{id, name}]`); the choice is kept
   * when it is still one of them. */
  actions.setServices = (list) => {
    const chosen = service.value;
    service.replaceChildren(...list.map((s) => h("option", { value: s.id, selected: s.id === chosen }, s.name)));
    serviceLabel.hidden = list.length < 2;
  };
  return actions;
}

// Pure rendering: a card JSON (GET /v1/cards/{id}, see openapi.json's
// ServiceCard) becomes DOM nodes. Built with createElement and text nodes
// only, never innerHTML, so PagerDuty's strings cannot inject markup.

/** `h("a", {href}, "text", child)`: an element with attributes and children. */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    el.setAttribute(name, value === true ? "" : String(value));
  }
  // Children may nest arrays (lists of [separator, link] pairs).
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

/** Only http(s) links are followed (a `javascript:` URL is dropped). */
export function safeUrl(url) {
  try {
    const u = new URL(url, document.baseURI);
    return u.protocol === "https:" || u.protocol === "http:" ? u.href : null;
  } catch {
    return null;
  }
}

/** A link when the URL is usable, else plain text. */
export function link(url, text, attrs = {}) {
  const href = url ? safeUrl(url) : null;
  if (!href) return h("span", {}, text);
  return h("a", { href, target: "_blank", rel: "noopener noreferrer", ...attrs }, text);
}

/** "42 s", "5 min", "3 h", "2 d": how long ago `iso` was, from `now` (ms). */
export function age(iso, now = Date.now()) {
  const t = Date.parse(iso);
  if (Number.isNaN(t)) return "";
  const s = Math.max(0, Math.round((now - t) / 1000));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min`;
  if (s < 86400) return `${Math.floor(s / 3600)} h`;
  return `${Math.floor(s / 86400)} d`;
}

/** A section error (SectionError) in plain words. */
export function sectionErrorText(error) {
  if (!error) return "";
  const scopes = (error.required_scopes || []).join(", ");
  switch (error.kind) {
    case "forbidden":
      return scopes
        ? `PagerDuty refused: the token lacks ${scopes}.`
        : "PagerDuty refused: the token may not read this.";
    case "unauthorized":
      return "PagerDuty rejected dutycard's credentials.";
    case "not_found":
      return "PagerDuty does not know this any more.";
    case "rate_limited":
      return error.retry_after_secs != null
        ? `PagerDuty is rate limiting dutycard; next try in ${error.retry_after_secs} s.`
        : "PagerDuty is rate limiting dutycard; it will try again.";
    case "timeout":
      return "PagerDuty did not answer in time.";
    case "unavailable":
      return "PagerDuty could not be reached.";
    default:
      return error.message || "This section could not be read.";
  }
}

/** A whole-card error (the /v1 error body's code) in plain words; `what`
 * is "service" or "entity" (an entity's 404: nothing is mapped to it). */
export function cardErrorText(status, body, what = "service") {
  const e = (body && body.error) || {};
  const scopes = ((e.details && e.details.required_scopes) || []).join(", ");
  switch (e.code) {
    case "not_found":
      return what === "entity"
        ? "No PagerDuty service is mapped to this entity (map one in the PagerDuty admin page)."
        : "PagerDuty has no such service.";
    case "store_unavailable":
      return "dutycard's database is unavailable; the card will try again.";
    case "unauthorized":
      return "dutycard needs a token: set the card's token (or fetch hook).";
    case "upstream_unauthorized":
      return "PagerDuty rejected dutycard's credentials (server configuration).";
    case "upstream_forbidden":
      return scopes ? `PagerDuty refused: the token lacks ${scopes}.` : "PagerDuty refused access.";
    case "upstream_rate_limited":
      return "PagerDuty is rate limiting dutycard; the card will try again.";
    case "upstream_timeout":
    case "deadline_exceeded":
      return "PagerDuty did not answer in time; the card will try again.";
    case "upstream_unavailable":
      return "PagerDuty could not be reached; the card will try again.";
    case "route_not_found":
      return "This dutycard server does not offer this kind of card.";
    case "invalid_parameter":
      return `The card's ${(e.details && e.details.parameter) || "settings"} is not valid: ${e.message || ""}`;
    default:
      return e.message ? `dutycard answered ${status}: ${e.message}` : `dutycard answered ${status}.`;
  }
}

/** Section heading, plus its stale marker and error, if any. */
function section(name, title, result, body, now) {
  const id = `dc-${name}`;
  const notes = [];
  if (result && result.stale && result.fetched_at) {
    notes.push(h("p", { class: "stale", role: "note" }, `Stale: read from PagerDuty ${age(result.fetched_at, now)} ago.`));
  }
  if (result && result.error) {
    notes.push(h("p", { class: "error", role: "alert", "data-error-kind": result.error.kind }, sectionErrorText(result.error)));
  }
  return h("section", { "aria-labelledby": id, "data-section": name }, h("h3", { id }, title), notes, body);
}

function initials(name) {
  return (name || "?").split(/\s+/).filter(Boolean).slice(0, 2).map((w) => w[0].toUpperCase()).join("");
}

function person(user) {
  const avatar = h("span", { class: "avatar", "aria-hidden": "true" }, initials(user.name));
  const src = user.avatar_url && safeUrl(user.avatar_url);
  if (src) {
    // Shown once it loads; a blocked or offline image leaves the initials.
    const img = h("img", { alt: "", width: 22, height: 22, loading: "lazy", referrerpolicy: "no-referrer" });
    img.addEventListener("load", () => avatar.replaceChildren(img), { once: true });
    img.src = src;
  }
  return h("span", { class: "person" }, avatar, link(user.html_url, user.name || user.email || user.id));
}

function oncall(result, now) {
  const levels = (result && result.data && result.data.levels) || [];
  const items = levelItems(levels);
  const body = result && result.data ? h("ul", {}, items.length ? items : h("li", { class: "muted" }, "No levels.")) : null;
  return section("oncall", "On call now", result, body, now);
}

/** One open incident; `service` (a name) when a list mixes services. */
function incident(i, now, service) {
  return h("li", { class: "incident", "data-incident-id": i.id },
    link(i.html_url, i.title || `Incident ${i.number || i.id}`),
    h("span", { class: "meta" },
      service ? [h("span", { class: "incident-service" }, service), " · "] : null,
      h("span", { class: `incident-${i.status}` }, i.status),
      i.urgency ? [" · ", h("span", { class: `urgency-${i.urgency}` }, `${i.urgency} urgency`)] : null,
      ` · ${age(i.created_at, now)} old`,
      i.assignees.length ? [" · ", i.assignees.map((a, n) => [n ? ", " : "", link(a.html_url, a.name || a.id)])] : " · unassigned",
    ));
}

/** On-call levels, primary first. */
function levelItems(levels) {
  const sorted = [...levels].sort((a, b) => (b.primary - a.primary) || (a.level - b.level));
  return sorted.map((l) =>
    h("li", { class: l.primary ? "level-primary" : null, "data-level": l.level },
      h("span", { class: "muted" }, l.primary ? `Primary (level ${l.level}): ` : `Level ${l.level}: `),
      l.users.length ? l.users.map(person) : h("span", { class: "muted" }, "nobody"),
    ));
}

function incidents(result, now) {
  const data = result && result.data;
  if (!data) return section("incidents", "Open incidents", result, null, now);
  const summary = h("p", { class: "meta" }, `${data.triggered} triggered, ${data.acknowledged} acknowledged${data.truncated ? " (at least)" : ""}`);
  const items = data.newest.map((i) => incident(i, now));
  const list = items.length ? h("ul", {}, items) : h("p", { class: "muted" }, "None open.");
  return section("incidents", "Open incidents", result, [summary, list], now);
}

function changes(result, now) {
  const data = result && result.data;
  const items = ((data && data.items) || []).map((c) =>
    h("li", {}, link(c.html_url, c.summary || "Change"), h("span", { class: "meta" }, ` ${c.source ? c.source + " · " : ""}${c.timestamp ? age(c.timestamp, now) + " ago" : ""}`)));
  const body = data ? (items.length ? h("ul", {}, items) : h("p", { class: "muted" }, "No recent changes.")) : null;
  return section("change_events", "Recent changes", result, body, now);
}

function policy(result, now) {
  const data = result && result.data;
  const body = data
    ? [
        h("p", {}, link(data.html_url, data.name || data.id)),
        h("ul", {}, data.levels.map((l) =>
          h("li", { class: "meta" }, `Level ${l.level}: `, l.targets.map((t, n) => [n ? ", " : "", link(t.html_url, t.name || t.id), ` (${t.kind})`]),
            l.escalation_delay_in_minutes != null ? `, escalates after ${l.escalation_delay_in_minutes} min` : ""))),
      ]
    : null;
  return section("escalation_policy", "Escalation policy", result, body, now);
}

function standards(result, now) {
  const data = result && result.data;
  const body = data
    ? [
        h("p", { class: "meta" }, `${data.passing ?? "?"} of ${data.total ?? data.standards.length} standards pass`),
        h("ul", {}, data.standards.map((s) => h("li", {}, s.pass ? "✓ " : "✗ ", s.name || s.id || "standard"))),
      ]
    : null;
  return section("standards", "Standards", result, body, now);
}

function minutes(secs) {
  return secs == null ? "n/a" : `${Math.round(secs / 60)} min`;
}

function metrics(result, now) {
  const data = result && result.data;
  const body = data
    ? h("p", { class: "meta" },
        `30 days: ${data.total_incident_count ?? "?"} incidents, mean time to acknowledge ${minutes(data.mean_seconds_to_first_ack)}, to resolve ${minutes(data.mean_seconds_to_resolve)}`)
    : null;
  return section("metrics", "Metrics", result, body, now);
}

/** The card's body (everything below the header). */
export function renderCard(card, now = Date.now()) {
  const service = card.service || {};
  const data = service.data || {};
  const status = data.status || "unknown";
  // The status links to the service in PagerDuty too (a bigger target
  // than the name alone); its label says where it goes.
  const chip = { class: `chip status-${status}`, "data-status": status };
  const serviceUrl = data.html_url && safeUrl(data.html_url);
  const header = h("header", {},
    h("h2", {}, link(data.html_url, data.name || data.id || "Service")),
    serviceUrl
      ? h("a", { ...chip, href: serviceUrl, target: "_blank", rel: "noopener noreferrer", "aria-label": `Status ${status}, in PagerDuty` }, status)
      : h("span", chip, status));
  const teams = (data.teams || []).length
    ? h("p", { class: "meta" }, "Team: ", data.teams.map((t, n) => [n ? ", " : "", link(t.html_url, t.name || t.id)]))
    : null;
  const serviceNotes = section("service", "Service", service, data.description ? h("p", { class: "meta" }, data.description) : null, now);
  // The service section's own heading is redundant next to the name: keep
  // only its stale marker or error.
  serviceNotes.querySelector("h3").classList.add("visually-hidden");
  return [
    header,
    teams,
    serviceNotes,
    oncall(card.oncall, now),
    incidents(card.incidents, now),
    changes(card.change_events, now),
    policy(card.escalation_policy, now),
    card.standards ? standards(card.standards, now) : null,
    card.metrics ? metrics(card.metrics, now) : null,
  ];
}

const STATUS_WORDS = {
  triggered: "incident triggered",
  acknowledged: "incident acknowledged",
  unknown: "status unknown",
  ok: "no open incident",
};

/** The body of an entity's card (GET /v1/entities/{kind}/{namespace}/{name}/card,
 * openapi.json's EntityCard): the combined summary, then each service's
 * own card, folded. */
export function renderEntity(entity, now = Date.now()) {
  const summary = entity.summary || {};
  const status = summary.status || "unknown";
  const services = entity.services || [];
  const names = new Map(services.map((s) => [s.service_id, (s.card && s.card.service && s.card.service.data && s.card.service.data.name) || s.service_id]));
  const header = h("header", {},
    h("h2", {}, entity.entity_ref || "Entity"),
    h("span", { class: `chip entity-${status}`, "data-status": status }, STATUS_WORDS[status] || status));
  const count = h("p", { class: "meta" },
    `${services.length} PagerDuty service${services.length === 1 ? "" : "s"}`,
    summary.failed_services ? `, ${summary.failed_services} could not be read` : "");
  const notes = entity.catalog_error
    ? h("p", { class: "error", role: "alert", "data-error-kind": "catalog" }, `The Backstage catalog could not be read: ${entity.catalog_error}`)
    : null;
  const oncallItems = (summary.oncall || []).map((o) =>
    h("li", { "data-policy": o.escalation_policy_id },
      h("span", { class: "meta" }, `${o.escalation_policy_name || o.escalation_policy_id} (${o.service_ids.map((id) => names.get(id) || id).join(", ")})`),
      h("ul", {}, levelItems(o.levels || []))));
  const oncallSection = h("section", { "aria-labelledby": "dc-entity-oncall", "data-section": "oncall" },
    h("h3", { id: "dc-entity-oncall" }, "On call now"),
    oncallItems.length ? h("ul", {}, oncallItems) : h("p", { class: "muted" }, "No on-call known."));
  const open = (summary.open_incidents || []).map((i) => incident(i, now, i.service_name || names.get(i.service_id)));
  const incidentsSection = h("section", { "aria-labelledby": "dc-entity-incidents", "data-section": "incidents" },
    h("h3", { id: "dc-entity-incidents" }, "Open incidents"),
    h("p", { class: "meta" }, `${summary.triggered ?? 0} triggered, ${summary.acknowledged ?? 0} acknowledged`),
    open.length ? h("ul", {}, open) : h("p", { class: "muted" }, "None open."));
  const parts = services.map((s) => {
    const name = names.get(s.service_id);
    const state = s.card
      ? (s.card.service && s.card.service.data && s.card.service.data.status) || "unknown"
      : "error";
    const inner = s.card
      ? renderCard(s.card, now).filter(Boolean)
      : [h("p", { class: "error", role: "alert" }, cardErrorText(s.status, { error: s.error }))];
    // The first heading of a folded card repeats its summary: keep it for
    // screen readers only.
    if (s.card && inner[0]) inner[0].classList.add("visually-hidden");
    // Each folded card's section ids are its own (one shadow root holds them all).
    const suffix = `-${s.service_id}`;
    for (const node of inner) {
      for (const el of [node, ...node.querySelectorAll("[id], [aria-labelledby]")]) {
        if (el.id) el.id += suffix;
        const label = el.getAttribute("aria-labelledby");
        if (label) el.setAttribute("aria-labelledby", label + suffix);
      }
    }
    return h("details", { class: "entity-service", "data-service-id": s.service_id },
      h("summary", {}, name, " ", h("span", { class: `chip status-${state}` }, state)),
      inner);
  });
  const servicesSection = h("section", { "aria-labelledby": "dc-entity-services", "data-section": "services" },
    h("h3", { id: "dc-entity-services" }, "Services"), parts);
  return [header, count, notes, oncallSection, incidentsSection, servicesSection];
}

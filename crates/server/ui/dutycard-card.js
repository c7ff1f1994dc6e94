// <dutycard-card>: a PagerDuty service card from a dutycard server, as a
// plain custom element (no build step, no third-party code).
//
//   <script type="module" src="https://dutycard.example/ui/dutycard-card.js"></script>
//   <dutycard-card service-id="PABC123"></dutycard-card>
//
// Attributes: service-id | integration-key | entity (kind:namespace/name:
// the combined card of every service mapped to a catalog entity), account, token (a bearer token),
// include ("standards,metrics"), incidents, change-events, interval (poll
// seconds, default 30), live ("auto" | "stream" | "poll" | "off"), theme
// ("light" | "dark"; default follows prefers-color-scheme), base-url (the
// dutycard server; default: where this script was loaded from).
// Property: `fetch` (a hook `(url, init) => Promise<Response>`, e.g. adding
// a portal's JWT). Events: `dutycard-card` (detail: the card JSON) and
// `dutycard-error` (detail: {status, text}).

import { CARD_CSS } from "./styles.js";
import { cardErrorText, h, renderCard, renderEntity } from "./render.js";
import { incidentForm } from "./form.js";

const SCRIPT_BASE = new URL("..", import.meta.url).href;

// Browsers open at most 6 HTTP/1.1 connections per host; every open stream
// holds one. A page of many cards streams the first few and polls the rest,
// so fetches never queue behind streams.
const MAX_STREAMS = 3;
let openStreams = 0;
// Servers (by base URL) without the stream route (404 route_not_found,
// 405): their cards poll.
const noStreams = new Set();

let sheet = null;
function styles() {
  if (!sheet) {
    sheet = new CSSStyleSheet();
    sheet.replaceSync(CARD_CSS);
  }
  return sheet;
}

/** `kind:namespace/name` (namespace optional: `component:checkout`). */
function parseEntity(ref) {
  const m = /^([^:/]+):(?:([^:/]+)\/)?([^:/]+)$/.exec(ref.trim());
  return m ? { kind: m[1], namespace: m[2] || "default", name: m[3] } : null;
}

export class DutycardCard extends HTMLElement {
  static observedAttributes = ["service-id", "integration-key", "entity", "account", "token", "include", "incidents", "change-events", "interval", "live", "base-url"];

  constructor() {
    super();
    this.attachShadow({ mode: "open" });
    this.shadowRoot.adoptedStyleSheets = [styles()];
    this._body = h("div", { class: "body", "aria-busy": "true" }, h("p", { class: "loading" }, "Loading PagerDuty card…"));
    this._problem = h("p", { class: "error", role: "alert", hidden: true });
    this._actions = incidentForm((body, key) => this._trigger(body, key), (result) => this._afterTrigger(result));
    // Shown once a card is there: the trigger needs the card's service.
    this._actions.hidden = true;
    this._root = h("article", { class: "card", role: "region", "aria-label": "PagerDuty service card" }, this._problem, this._body, this._actions);
    this.shadowRoot.append(this._root);
    this._hook = null;
    this._etag = null;
    this._card = null;
    this._timer = null;
    this._stream = null;
    this._generation = 0;
    this._pending = false;
    this._onVisible = () => {
      if (!document.hidden) this.refresh();
    };
    // A portal may set `fetch` before this script defined the element (an
    // async or late script tag): that own property would hide the setter
    // below, and the card would go out without the portal's JWT. Take it.
    if (Object.prototype.hasOwnProperty.call(this, "fetch")) {
      const hook = this.fetch;
      delete this.fetch;
      this.fetch = hook;
    }
  }

  /** A fetch hook `(url, init) => Promise<Response>`; replaces the `token`. */
  set fetch(fn) {
    this._hook = typeof fn === "function" ? fn : null;
    this._queueRestart();
  }

  get fetch() {
    return this._hook;
  }

  /** The last card JSON shown, if any. */
  get card() {
    return this._card;
  }

  connectedCallback() {
    document.addEventListener("visibilitychange", this._onVisible);
    this._queueRestart();
  }

  disconnectedCallback() {
    document.removeEventListener("visibilitychange", this._onVisible);
    this._generation += 1;
    this._stop();
  }

  attributeChangedCallback(name, before, after) {
    if (before !== after) this._queueRestart();
  }

  /** One restart for a burst of changes (an upgraded element reports each
   * of its attributes, then its connection). */
  _queueRestart() {
    if (this._pending || !this.isConnected) return;
    this._pending = true;
    queueMicrotask(() => {
      this._pending = false;
      if (this.isConnected) this._restart();
    });
  }

  /** Read the card now (a 304 keeps what is shown). */
  async refresh() {
    const generation = this._generation;
    const url = this._cardUrl();
    if (!url) return;
    const headers = { Accept: "application/json" };
    if (this._etag) headers["If-None-Match"] = this._etag;
    let res;
    try {
      res = await this._request(url, { headers });
    } catch (e) {
      return this._fail(0, `dutycard could not be reached (${e.message}); the card will try again.`, generation);
    }
    if (generation !== this._generation) return;
    if (res.status === 304) return this._fresh();
    const body = await res.json().catch(() => null);
    if (res.ok && body) this._show(body, res.headers.get("ETag"));
    else this._fail(res.status, cardErrorText(res.status, body, this._what()), generation);
  }

  _base() {
    return new URL(this.getAttribute("base-url") || SCRIPT_BASE, document.baseURI);
  }

  _query(params) {
    const q = new URLSearchParams(params);
    for (const [attr, param] of [["include", "include"], ["incidents", "incidents"], ["change-events", "change_events"], ["account", "account"]]) {
      const v = this.getAttribute(attr);
      if (v) q.set(param, v);
    }
    const s = q.toString();
    return s ? `?${s}` : "";
  }

  /** "entity" for an entity's card, else "service". */
  _what() {
    return !this.getAttribute("service-id") && !this.getAttribute("integration-key") && this.getAttribute("entity") ? "entity" : "service";
  }

  /** `kind/namespace/name` of the entity attribute, URL-encoded; null (and
   * the problem shown) when it does not parse. */
  _entityPath() {
    const e = parseEntity(this.getAttribute("entity"));
    if (!e) {
      this._fail(0, "The card's entity must read kind:namespace/name, e.g. component:default/checkout.", this._generation);
      return null;
    }
    return [e.kind, e.namespace, e.name].map(encodeURIComponent).join("/");
  }

  /** Where the card is read: by service id, integration key or entity. */
  _cardUrl() {
    const id = this.getAttribute("service-id");
    const key = this.getAttribute("integration-key");
    if (id) return new URL(`v1/cards/${encodeURIComponent(id)}${this._query({})}`, this._base());
    if (key) return new URL(`v1/cards${this._query({ integration_key: key })}`, this._base());
    if (this.getAttribute("entity")) {
      // A server without entity cards answers route_not_found, in words.
      const path = this._entityPath();
      return path ? new URL(`v1/entities/${path}/card${this._query({})}`, this._base()) : null;
    }
    this._fail(0, "Set service-id, integration-key or entity on the card.", this._generation);
    return null;
  }

  /** The push stream of this card, when one exists for it (an
   * integration-key card polls: its stream would need the key in a URL). */
  _streamUrl() {
    const id = this.getAttribute("service-id");
    if (id) return new URL(`v1/cards/${encodeURIComponent(id)}/stream${this._query({})}`, this._base());
    if (this._what() === "entity") {
      const path = this._entityPath();
      return path ? new URL(`v1/entities/${path}/stream${this._query({})}`, this._base()) : null;
    }
    return null;
  }

  _request(url, init = {}) {
    if (this._hook) return this._hook(url.href, init);
    const token = this.getAttribute("token");
    const headers = { ...(init.headers || {}) };
    if (token) headers.Authorization = `Bearer ${token}`;
    return window.fetch(url.href, { ...init, headers, credentials: "omit" });
  }

  _restart() {
    this._stop();
    this._generation += 1;
    this._etag = null;
    this.setAttribute("data-state", "loading");
    const live = this.getAttribute("live") || "auto";
    const generation = this._generation;
    this.refresh().then(() => {
      if (live === "off" || generation !== this._generation || !this.isConnected) return;
      if (live !== "poll" && this._tryStream()) return;
      this._schedule();
    });
  }

  _stop() {
    clearTimeout(this._timer);
    this._timer = null;
    if (this._stream) {
      this._stream.abort();
      this._stream = null;
    }
  }

  _interval() {
    const secs = Number(this.getAttribute("interval"));
    return (Number.isFinite(secs) && secs >= 1 ? secs : 30) * 1000;
  }

  _schedule() {
    clearTimeout(this._timer);
    this._timer = setTimeout(async () => {
      // A hidden tab does not poll; becoming visible refreshes at once.
      if (!document.hidden) await this.refresh();
      if (this.isConnected) this._schedule();
    }, this._interval());
  }

  /** Open the SSE stream over fetch (so the token or hook applies). */
  _tryStream() {
    const url = this._streamUrl();
    const base = this._base().href;
    if (!url || noStreams.has(base) || openStreams >= MAX_STREAMS) return false;
    const controller = new AbortController();
    this._stream = controller;
    openStreams += 1;
    const generation = this._generation;
    // No Last-Event-ID: a stream starts with the current card anyway, and
    // the header is not in the server's CORS list for embedding portals.
    const headers = { Accept: "text/event-stream" };
    this._request(url, { headers, signal: controller.signal })
      .then(async (res) => {
        const type = res.headers.get("Content-Type") || "";
        if (res.status === 404 || res.status === 405) {
          // No stream route on this server (poll its cards), unless the
          // 404 is about this card's service or entity (`not_found`).
          const body = await res.json().catch(() => null);
          if (!(body && body.error && body.error.code === "not_found")) noStreams.add(base);
        }
        if (!res.ok || !type.startsWith("text/event-stream") || !res.body) return;
        await this._readEvents(res.body, generation);
      })
      .catch(() => {})
      .finally(() => {
        openStreams -= 1;
        if (this._stream === controller) this._stream = null;
        // Stream ended or refused: poll (a later restart tries again).
        if (generation === this._generation && this.isConnected && !controller.signal.aborted) this._schedule();
      });
    return true;
  }

  async _readEvents(stream, generation) {
    const reader = stream.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    let data = [];
    let id = null;
    for (;;) {
      const { value, done } = await reader.read();
      if (done || generation !== this._generation) return;
      buffer += value;
      let nl;
      while ((nl = buffer.search(/\r\n|\r|\n/)) >= 0) {
        const line = buffer.slice(0, nl);
        buffer = buffer.slice(nl + (buffer.startsWith("\r\n", nl) ? 2 : 1));
        if (line === "") {
          // End of one event: its data is a card JSON, its id the ETag.
          if (data.length) this._onEvent(data.join("\n"), id);
          data = [];
        } else if (!line.startsWith(":")) {
          const colon = line.indexOf(":");
          const field = colon < 0 ? line : line.slice(0, colon);
          const v = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
          if (field === "data") data.push(v);
          else if (field === "id") id = v;
        }
      }
    }
  }

  _onEvent(text, id) {
    let item;
    try {
      item = JSON.parse(text);
    } catch {
      return;
    }
    if (!item || typeof item !== "object") return;
    // The server's stream sends a batch entry ({service_id, status, card}
    // or {status, error}; an entity stream {status, card} with the entity's
    // card); a bare card (a hook's own stream) is taken too.
    if (item.card && typeof item.card === "object") return this._show(item.card, id);
    if (item.error && typeof item.error === "object") {
      return this._fail(item.status || 0, cardErrorText(item.status || 0, { error: item.error }, this._what()), this._generation);
    }
    if (item.service || item.entity_ref) this._show(item, id);
  }

  _show(card, etag) {
    this._card = card;
    if (etag) this._etag = etag;
    this._problem.hidden = true;
    if (card.entity_ref !== undefined) {
      this._root.setAttribute("aria-label", `PagerDuty services of ${card.entity_ref}`);
      this._body.replaceChildren(...renderEntity(card).filter(Boolean));
      // Create incident asks which of the entity's services is paged.
      this._actions.setServices((card.services || []).filter((s) => s.card).map((s) => ({
        id: s.service_id,
        name: (s.card.service && s.card.service.data && s.card.service.data.name) || s.service_id,
      })));
    } else {
      const name = card.service && card.service.data && card.service.data.name;
      this._root.setAttribute("aria-label", name ? `PagerDuty service ${name}` : "PagerDuty service card");
      this._body.replaceChildren(...renderCard(card).filter(Boolean));
    }
    this._body.removeAttribute("aria-busy");
    // An entity none of whose services could be read has nothing to page.
    this._actions.hidden = card.entity_ref !== undefined && !(card.services || []).some((s) => s.card);
    this.setAttribute("data-state", "ready");
    if (etag) this.setAttribute("data-etag", etag);
    this.dispatchEvent(new CustomEvent("dutycard-card", { detail: card }));
  }

  _fresh() {
    this._problem.hidden = true;
    this.setAttribute("data-state", "ready");
  }

  _fail(status, text, generation) {
    if (generation !== this._generation) return;
    // The last good card stays visible under the problem.
    this._problem.textContent = text;
    this._problem.hidden = false;
    if (!this._card) {
      this._body.replaceChildren();
      this._body.removeAttribute("aria-busy");
    }
    this.setAttribute("data-state", "error");
    this.dispatchEvent(new CustomEvent("dutycard-error", { detail: { status, text } }));
  }

  async _trigger(fields, key) {
    const body = { ...fields, client_url: location.href };
    let account = this.getAttribute("account");
    if (fields.service_id) {
      // An entity's service (the form's choice), in the account its mapping names.
      const mapped = ((this._card && this._card.services) || []).find((s) => s.service_id === fields.service_id);
      if (mapped && mapped.account) account = mapped.account;
    } else {
      const id = (this._card && this._card.service && this._card.service.data && this._card.service.data.id) || this.getAttribute("service-id");
      if (id) body.service_id = id;
      else if (this.getAttribute("integration-key")) body.integration_key = this.getAttribute("integration-key");
    }
    const q = account ? `?account=${encodeURIComponent(account)}` : "";
    const res = await this._request(new URL(`v1/incidents${q}`, this._base()), {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "application/json", "Idempotency-Key": key },
      body: JSON.stringify(body),
    });
    const reply = await res.json().catch(() => ({}));
    return { status: res.status, body: reply, replayed: res.headers.get("Idempotent-Replayed") === "true" };
  }

  _afterTrigger() {
    // The server invalidated the incidents section: read the card again
    // so the new incident shows now, whatever the stream or poll timing.
    this.refresh();
  }
}

if (!customElements.get("dutycard-card")) customElements.define("dutycard-card", DutycardCard);

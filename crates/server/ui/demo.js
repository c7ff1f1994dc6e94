// The demo page: every service the server can list, as a grid of
// <dutycard-card>s, with a search box, a theme switch and a token field
// (the token lives in sessionStorage: this tab only).

const TOKEN_KEY = "dutycard-token";
const servicesUrl = document.querySelector('meta[name="dutycard-services"]').content;
const grid = document.getElementById("grid");
const status = document.getElementById("status");
const search = document.getElementById("search");
const theme = document.getElementById("theme");
const tokenInput = document.getElementById("token");

function token() {
  return sessionStorage.getItem(TOKEN_KEY) || "";
}

function headers() {
  const t = token();
  return t ? { Accept: "application/json", Authorization: `Bearer ${t}` } : { Accept: "application/json" };
}

/** ?services=P1,P2 shows those; otherwise the server's service list
 * (the Backstage route, every account, each service with its account). */
async function services() {
  const listed = new URLSearchParams(location.search).get("services");
  if (listed !== null) return listed.split(",").filter(Boolean).map((id) => ({ id, name: id }));
  if (!servicesUrl) {
    throw new Error("this server has its Backstage routes off (backstage.enabled = false), which list the services: add ?services=PABC123,PDEF456 to the address");
  }
  const res = await fetch(servicesUrl, { headers: headers(), credentials: "omit" });
  const body = await res.json().catch(() => null);
  if (res.status === 401) throw new Error("the server needs a token: enter one above");
  if (!res.ok || !body || !Array.isArray(body.services)) {
    const why = body && Array.isArray(body.errors) ? body.errors.join("; ") : `status ${res.status}`;
    throw new Error(`the service list failed: ${why}`);
  }
  return body.services;
}

function haystack(s) {
  const teams = (s.teams || []).map((t) => t.summary || t.name || "").join(" ");
  return `${s.name || ""} ${s.id} ${teams}`.toLowerCase();
}

function applySearch() {
  const words = search.value.toLowerCase().split(/\s+/).filter(Boolean);
  let shown = 0;
  for (const card of grid.children) {
    const match = words.every((w) => card.dataset.search.includes(w));
    card.hidden = !match;
    if (match) shown += 1;
  }
  status.textContent = `${shown} of ${grid.children.length} services`;
}

function applyTheme() {
  const value = theme.value;
  if (value) document.documentElement.dataset.theme = value;
  else delete document.documentElement.dataset.theme;
  for (const card of grid.children) {
    if (value) card.setAttribute("theme", value);
    else card.removeAttribute("theme");
  }
}

async function load() {
  status.textContent = "Loading the service list…";
  grid.replaceChildren();
  let list;
  try {
    list = await services();
  } catch (e) {
    status.textContent = `No cards: ${e.message}.`;
    return;
  }
  const t = token();
  // ?include=standards,metrics adds the optional sections to every card.
  const include = new URLSearchParams(location.search).get("include");
  for (const s of list) {
    const card = document.createElement("dutycard-card");
    card.setAttribute("service-id", s.id);
    if (include) card.setAttribute("include", include);
    if (s.account) card.setAttribute("account", s.account);
    if (t) card.setAttribute("token", t);
    card.dataset.search = haystack(s);
    grid.append(card);
  }
  applyTheme();
  applySearch();
}

tokenInput.value = token();
document.getElementById("auth").addEventListener("submit", (ev) => {
  ev.preventDefault();
  if (tokenInput.value) sessionStorage.setItem(TOKEN_KEY, tokenInput.value);
  else sessionStorage.removeItem(TOKEN_KEY);
  load();
});
search.addEventListener("input", applySearch);
theme.addEventListener("change", applyTheme);
load();

// The card's styles, adopted into its shadow root (a constructed
// stylesheet: no inline <style>, so a strict CSP on the host page holds).
// Everything a portal may want to change is a custom property; set them on
// `dutycard-card` (they inherit through the shadow boundary).
// The dark palette: for theme="dark", and for the system's dark mode
// unless theme="light".
const DARK = `
  --dc-bg: #161b22;
  --dc-fg: #e6edf3;
  --dc-muted: #9da7b3;
  --dc-border: #3d444d;
  --dc-accent: #6cb6ff;
  --dc-ok: #56d364;
  --dc-warn: #e3b341;
  --dc-critical: #ff7b72;
  --dc-stale-bg: #3b2e00;
  --dc-error-bg: #4a1d1d;
  --dc-chip-bg: #2d333b;
  --dc-focus: #6cb6ff;
`;

export const CARD_CSS = `
:host {
  --dc-font: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
  --dc-bg: #ffffff;
  --dc-fg: #1b1f24;
  --dc-muted: #57606a;
  --dc-border: #d0d7de;
  --dc-accent: #0a5bd3;
  --dc-ok: #116329;
  --dc-warn: #7d4e00;
  --dc-critical: #b3261e;
  --dc-stale-bg: #fff8c5;
  --dc-error-bg: #ffebe9;
  --dc-chip-bg: #eaeef2;
  --dc-radius: 8px;
  --dc-focus: #0a5bd3;
  display: block;
  font-family: var(--dc-font);
  font-size: 14px;
  line-height: 1.4;
  color: var(--dc-fg);
}
:host([theme="dark"]) {
${DARK}}
@media (prefers-color-scheme: dark) {
  :host(:not([theme="light"])) {
${DARK}  }
}
/* The hidden attribute wins over the display rules below. */
[hidden] { display: none !important; }
.card {
  background: var(--dc-bg);
  border: 1px solid var(--dc-border);
  border-radius: var(--dc-radius);
  padding: 12px 14px;
}
header { display: flex; align-items: center; gap: 8px; flex-wrap: wrap; }
h2 { font-size: 16px; margin: 0; flex: 1 1 auto; }
h3 { font-size: 12px; text-transform: uppercase; letter-spacing: .04em; color: var(--dc-muted); margin: 12px 0 4px; }
a { color: var(--dc-accent); }
a:focus-visible, button:focus-visible, input:focus-visible, select:focus-visible, textarea:focus-visible {
  outline: 2px solid var(--dc-focus); outline-offset: 2px;
}
ul { list-style: none; margin: 0; padding: 0; }
li { padding: 3px 0; }
.muted { color: var(--dc-muted); }
.chip { display: inline-block; border-radius: 999px; padding: 0 8px; font-size: 12px; background: var(--dc-chip-bg); }
a.chip { text-decoration: none; }
a.chip:hover { text-decoration: underline; }
.status-active { color: var(--dc-ok); }
.status-warning, .urgency-low { color: var(--dc-warn); }
.status-critical, .urgency-high, .incident-triggered { color: var(--dc-critical); }
.status-maintenance, .status-disabled { color: var(--dc-muted); }
.person { display: inline-flex; align-items: center; gap: 6px; margin-right: 10px; }
.avatar { width: 22px; height: 22px; border-radius: 50%; background: var(--dc-chip-bg); display: inline-grid; place-items: center; font-size: 10px; overflow: hidden; }
.avatar img { width: 100%; height: 100%; }
.level-primary { font-weight: 600; }
.stale { background: var(--dc-stale-bg); border-radius: 4px; padding: 2px 6px; font-size: 12px; margin: 2px 0; }
.error { background: var(--dc-error-bg); border-radius: 4px; padding: 4px 6px; margin: 2px 0; }
.incident { display: flex; flex-direction: column; }
.meta { font-size: 12px; color: var(--dc-muted); }
button {
  font: inherit; cursor: pointer; color: var(--dc-fg); background: var(--dc-chip-bg);
  border: 1px solid var(--dc-border); border-radius: 6px; padding: 4px 10px;
}
button.primary { background: var(--dc-accent); color: var(--dc-bg); border-color: var(--dc-accent); }
form { display: grid; gap: 6px; margin-top: 8px; padding: 8px; border: 1px solid var(--dc-border); border-radius: 6px; }
label { display: grid; gap: 2px; font-size: 12px; color: var(--dc-muted); }
input, select, textarea { font: inherit; color: var(--dc-fg); background: var(--dc-bg); border: 1px solid var(--dc-border); border-radius: 4px; padding: 4px 6px; }
.answer { margin: 6px 0 0; padding: 4px 6px; border-radius: 4px; }
.answer-ok { background: var(--dc-chip-bg); color: var(--dc-ok); }
.answer-bad { background: var(--dc-error-bg); }
.loading { color: var(--dc-muted); }
.entity-triggered { color: var(--dc-critical); }
.entity-acknowledged { color: var(--dc-warn); }
.entity-ok { color: var(--dc-ok); }
.entity-service { border-top: 1px solid var(--dc-border); padding: 4px 0; }
.entity-service > summary { cursor: pointer; }
.incident-service { font-weight: 600; }
.visually-hidden { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap; }
`;

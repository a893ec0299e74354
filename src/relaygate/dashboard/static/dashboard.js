// The Relaygate dashboard: signs in through the API, joins admin:dashboard with phoenix.js and
// renders each snapshot the node pushes (about once a second). No build step, no other library.
"use strict"

const TOKEN_KEY = "relaygate.dashboard.token"
const HISTORY = 90
const state = { token: sessionStorage.getItem(TOKEN_KEY), socket: null, channel: null, view: null, charts: {} }
const $ = (selector) => document.querySelector(selector)

function escapeHtml(value) {
  return String(value ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c])
}
function show(view) {
  for (const id of ["signin-view", "refused-view", "dashboard-view"]) $("#" + id).classList.toggle("hidden", id !== view)
  $("#sign-out").classList.toggle("hidden", view === "signin-view")
  $("#scope-label").classList.toggle("hidden", view !== "dashboard-view")
}
function status(text) { $("#status").textContent = text }
function num(value, digits = 1) {
  if (value === null || value === undefined) return "–"
  return Number.isInteger(value) ? String(value) : value.toFixed(digits)
}
function duration(seconds) {
  const d = Math.floor(seconds / 86400), h = Math.floor(seconds % 86400 / 3600), m = Math.floor(seconds % 3600 / 60)
  return d ? `${d}d ${h}h` : h ? `${h}h ${m}m` : `${m}m ${Math.floor(seconds % 60)}s`
}
function bytes(value) { return value ? `${(value / 1048576).toFixed(0)} MiB` : "–" }
function rows(selector, html, empty = "none") {
  const columns = $(selector + " thead tr")?.children.length || 2
  $(selector + " tbody").innerHTML = html.length ? html.join("") : `<tr><td colspan="${columns}" class="muted">${empty}</td></tr>`
}

// --- sign-in and the channel -------------------------------------------------------------------

async function signIn(event) {
  event.preventDefault()
  $("#signin-error").textContent = ""
  const response = await fetch("/api/v1/sessions", {
    method: "POST",
    headers: { "content-type": "application/json", accept: "application/json" },
    body: JSON.stringify({ email: $("#email").value, password: $("#password").value }),
  })
  const body = await response.json().catch(() => ({}))
  if (!response.ok) {
    $("#signin-error").textContent = body.detail || `Sign-in failed (${response.status})`
    return
  }
  state.token = body.data.token
  sessionStorage.setItem(TOKEN_KEY, state.token)
  $("#password").value = ""
  connect()
}

function signOut(message, revoke = false) {
  if (revoke && state.token) {  // log out: the token is revoked and every socket opened with it closes
    fetch("/api/v1/sessions", { method: "DELETE", headers: { authorization: `Bearer ${state.token}` } }).catch(() => {})
  }
  sessionStorage.removeItem(TOKEN_KEY)
  state.token = null
  if (state.socket) state.socket.disconnect()
  state.socket = state.channel = null
  show("signin-view")
  status("signed out")
  $("#signin-error").textContent = message || ""
}

function connect() {
  status("connecting…")
  let opened = false
  const socket = new Phoenix.Socket("/dashboard/socket", { authToken: state.token })
  socket.onOpen(() => { opened = true })
  socket.onError(() => {
    if (!opened) signOut("The session is no longer valid; sign in again.")
    else status("connection lost, reconnecting…")
  })
  socket.connect()
  const channel = socket.channel("admin:dashboard", {})
  channel.on("snapshot", render)
  channel.join()
    .receive("ok", (view) => { show("dashboard-view"); status("live"); render(view) })
    .receive("error", (reply) => {
      channel.leave()
      socket.disconnect()
      show("refused-view")
      status(reply && reply.reason === "forbidden" ? "refused: administrators only" : "refused")
    })
  state.socket = socket
  state.channel = channel
}

// --- rendering ---------------------------------------------------------------------------------

function scopeStats(view) {
  const scope = $("#scope").value
  const node = view.nodes.find((n) => n.name === scope)
  return node ? node.stats : view.totals
}

function remember(key, value) {
  const series = (state.charts[key] ||= [])
  series.push(value)
  if (series.length > HISTORY) series.shift()
}

function chart(id, key) {
  const series = state.charts[key] || []
  const max = Math.max(1, ...series)
  const step = 300 / (HISTORY - 1)
  const offset = HISTORY - series.length
  const points = series.map((v, i) => `${((offset + i) * step).toFixed(1)},${(58 - (v / max) * 56).toFixed(1)}`)
  $("#" + id).innerHTML = `<polyline points="${points.join(" ")}"></polyline>`
  $("#" + id + "-now").textContent = series.length ? `now ${num(series[series.length - 1])}, max ${num(max)}` : ""
}

function maxP99(stats) {
  const values = Object.values(stats.gateway).map((f) => f.p99_ms).filter((v) => v !== null)
  return values.length ? Math.max(...values) : 0
}

function renderScopes(view) {
  const select = $("#scope")
  const names = view.nodes.map((n) => n.name)
  const current = [...select.options].slice(1).map((o) => o.value)
  if (names.join("\n") === current.join("\n")) return
  const chosen = select.value
  select.innerHTML = `<option value="">Whole cluster</option>` +
    names.map((n) => `<option value="${escapeHtml(n)}">${escapeHtml(n)}</option>`).join("")
  select.value = names.includes(chosen) ? chosen : ""
}

function healthCell(node) {
  if (node.stale_s !== null) return `<span class="bad">no report for ${node.stale_s}s</span>`
  const failing = Object.entries(node.health).filter(([, v]) => v !== "ok")
  const text = failing.length ? failing.map(([k, v]) => `${k}: ${v}`).join(", ") : "ok"
  return `<span class="${failing.length ? "bad" : "ok"}">${escapeHtml(text)}${node.draining ? " (draining)" : ""}</span>`
}

function nodeRow(cells, attrs = "") {
  return `<tr ${attrs}>${cells.map((c) => `<td>${c}</td>`).join("")}</tr>`
}

function statCells(s) {
  return [s.sockets, num(s.joins_per_s), num(s.messages_in_per_s), num(s.messages_out_per_s),
    `${num(s.pubsub_in_per_s)} / ${num(s.pubsub_out_per_s)}`, `${num(s.cpu_percent)}%`, bytes(s.rss_bytes)]
}

function render(view) {
  state.view = view
  renderScopes(view)
  for (const scope of [{ name: "", stats: view.totals }, ...view.nodes]) {
    remember(`sockets:${scope.name}`, scope.stats.sockets)
    remember(`messages:${scope.name}`, scope.stats.messages_in_per_s + scope.stats.messages_out_per_s)
    remember(`latency:${scope.name}`, maxP99(scope.stats))
  }
  draw()
}

function draw() {
  const view = state.view
  if (!view) return
  const s = scopeStats(view)
  const scope = $("#scope").value
  const rejections = Object.values(s.rate_limited).reduce((sum, r) => sum + r.total, 0)
  const calls = Object.values(s.gateway).reduce((sum, f) => sum + f.calls_per_s, 0)
  $("#total-sockets").textContent = s.sockets
  $("#total-joins").textContent = num(s.joins_per_s)
  $("#total-messages-in").textContent = num(s.messages_in_per_s)
  $("#total-messages-out").textContent = num(s.messages_out_per_s)
  $("#total-presences").textContent = s.presence_entries
  $("#total-slow").textContent = `${s.slow_closes_total} (${num(s.slow_closes_per_s)}/s)`
  $("#total-calls").textContent = num(calls)
  $("#total-rejections").textContent = rejections
  chart("chart-sockets", `sockets:${scope}`)
  chart("chart-messages", `messages:${scope}`)
  chart("chart-latency", `latency:${scope}`)

  rows("#nodes", view.nodes.map((n) => nodeRow(
    [escapeHtml(n.name), escapeHtml(n.version), n.workers, duration(n.uptime_s), healthCell(n), ...statCells(n.stats)],
    `data-node="${escapeHtml(n.name)}"`)))
  $("#nodes tfoot").innerHTML = nodeRow(
    [`cluster (${view.nodes.length} node${view.nodes.length === 1 ? "" : "s"})`, "", view.nodes.reduce((a, n) => a + n.workers, 0), "", "", ...statCells(view.totals)],
    `id="cluster-row"`)

  rows("#channels", Object.entries(s.channels).sort().map(([prefix, c]) =>
    nodeRow([escapeHtml(prefix), c.topics, c.subscribers])))
  rows("#topics", s.topics.map(([topic, count]) => nodeRow([escapeHtml(topic), count,
    `<button type="button" class="presence-button" data-topic="${escapeHtml(topic)}">presence</button>`])))

  const rates = [["PubSub broadcasts dispatched/s", s.broadcasts_per_s], ["PubSub from Redis/s", s.pubsub_in_per_s],
    ["PubSub to Redis/s", s.pubsub_out_per_s],
    ...Object.entries(s.history_per_s).sort().map(([name, value]) => [`history ${name}/s`, value])]
  rows("#rates", rates.map(([label, value]) => nodeRow([escapeHtml(label), num(value)])))
  rows("#rate-limited", Object.entries(s.rate_limited).sort().map(([scopeName, r]) =>
    nodeRow([escapeHtml(scopeName), r.total, num(r.per_s)])))

  rows("#services", view.gateway.services.map((svc) => nodeRow([escapeHtml(svc.service), escapeHtml(svc.config_version ?? "–"),
    svc.nodes.length ? svc.nodes.map((n) => `<span class="${n.alive ? "ok" : "bad"}">${escapeHtml(n.name)}</span>`).join(", ") : "local"])))
  const functions = []
  for (const [service, types] of Object.entries(view.gateway.functions).sort()) {
    for (const [requestType, versions] of Object.entries(types).sort()) {
      const stats = s.gateway[`${service}/${requestType}`] || { calls_per_s: 0, codes: {}, p50_ms: null, p99_ms: null }
      for (const v of versions) {
        const key = `${service}/${requestType}/${v.version ?? "_"}`
        const codes = Object.entries(stats.codes).map(([code, n]) => `${escapeHtml(code)}: ${n}`).join(", ")
        const nodes = Array.isArray(v.nodes) ? v.nodes.join(", ") : v.nodes
        functions.push(nodeRow([escapeHtml(service), escapeHtml(requestType), escapeHtml(v.version ?? "(none)"),
          escapeHtml(v.response_type), escapeHtml(nodes),
          `<input type="checkbox" class="toggle" data-function="${escapeHtml(key)}" ${v.enabled ? "checked" : ""}>`,
          num(stats.calls_per_s), codes || "–", num(stats.p50_ms, 2), num(stats.p99_ms, 2)],
          `data-function="${escapeHtml(key)}"`))
      }
    }
  }
  rows("#functions", functions)
  rows("#errors", view.errors.map((e) => nodeRow([new Date(e.at * 1000).toLocaleTimeString(), escapeHtml(e.node),
    escapeHtml(e.level), escapeHtml(e.logger), escapeHtml(e.message + (e.exception ? ` (${e.exception})` : ""))])))
}

// --- actions -----------------------------------------------------------------------------------

function showPresence(topic) {
  $("#presence-topic").value = topic
  state.channel.push("presence", { topic })
    .receive("ok", (reply) => {
      $("#presence-title").textContent = `${reply.presences.length} present on ${reply.topic}`
      rows("#presence-list", reply.presences.map((p) => nodeRow([escapeHtml(p.key),
        p.metas.map((m) => `<code>${escapeHtml(JSON.stringify(m))}</code>`).join("<br>")])))
    })
    .receive("error", (reply) => { $("#presence-title").textContent = reply.reason || "refused" })
}

async function toggleFunction(input) {
  const key = input.dataset.function
  const action = input.checked ? "enable" : "disable"
  $("#function-error").textContent = ""
  const path = key.split("/").map(encodeURIComponent).join("/")
  const response = await fetch(`/api/v1/gateway/functions/${path}/${action}`, {
    method: "POST", headers: { authorization: `Bearer ${state.token}`, accept: "application/json" },
  })
  if (!response.ok) {
    const body = await response.json().catch(() => ({}))
    $("#function-error").textContent = `${action} ${key}: ${body.detail || response.status}`
    input.checked = !input.checked
  }
}

document.addEventListener("DOMContentLoaded", () => {
  $("#signin-form").addEventListener("submit", signIn)
  $("#sign-out").addEventListener("click", () => signOut("", true))
  $("#scope").addEventListener("change", draw)
  $("#presence-form").addEventListener("submit", (event) => { event.preventDefault(); showPresence($("#presence-topic").value) })
  document.addEventListener("click", (event) => {
    const button = event.target.closest(".presence-button")
    if (button) showPresence(button.dataset.topic)
  })
  document.addEventListener("change", (event) => {
    if (event.target.matches("input.toggle")) toggleFunction(event.target)
  })
  if (state.token) connect()
  else show("signin-view")
})

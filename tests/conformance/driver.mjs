// Drives the official phoenix.js client (npm phoenix 1.8.16, transport `ws`) through a scenario
// and prints one JSON line per observation on stdout. Driven from pytest (tests/conformance/node.py).
//
// Input (argv[2] or stdin): {"url": "...", "socket": {...options}, "steps": [...], "deadline_ms": N}
// Bytes travel as {"$bytes": [..]} in both directions (ArrayBuffer in phoenix.js). Socket options
// are phoenix.js options; backoffs are lists of ms, and "transport": "longpoll" selects LongPoll.
// Socket-level steps and observations name their socket ("main" unless "socket" is given).
//
// Steps:
//   {"op":"socket", "socket":"b", "opts":{...}, "url"?}  a second Socket (same URL unless given)
//   {"op":"connect"} | {"op":"disconnect", "code"?, "reason"?}
//   {"op":"raw", "message":{"topic","event","payload","ref","join_ref"}}  socket.push of a raw message
//   {"op":"channel", "chan":"c1", "topic":"room:1", "params":{}, "presence":true?, "history":true?, "since_of"?}
//        history: keep the last position (event refs, join replies) and send it as `since` on every
//        (re)join through a params function, as history.md says; since_of: send another channel's
//   {"op":"join", "chan":"c1", "timeout"?}     -> "join" observations for every receive hook firing
//   {"op":"push", "chan":"c1", "event":"e", "payload":{}, "timeout"?, "id"?} -> "push" observations
//   {"op":"leave", "chan":"c1"}                -> "leave" observations
//   {"op":"until", "match":{...}, "count"?:1, "timeout"?:5000}  wait for observations (subset match)
//   {"op":"sleep", "ms":N}
//   {"op":"presence_list", "chan":"c1"}        -> "presence_list"
//   {"op":"presence_static", "ops":[["state", S] | ["diff", D], ...]}  Presence.syncState/syncDiff
import { LongPoll, Presence, Serializer, Socket } from "phoenix"
import WebSocket from "ws"

const started = Date.now()
const observations = []
const waiters = []

function toJSON(value){
  if(value instanceof ArrayBuffer){ return {$bytes: Array.from(new Uint8Array(value))} }
  if(Array.isArray(value)){ return value.map(toJSON) }
  if(value && typeof value === "object"){
    const out = {}
    for(const key of Object.getOwnPropertyNames(value)){ out[key] = toJSON(value[key]) }
    return out
  }
  return value === undefined ? null : value
}

function fromJSON(value){
  if(value && typeof value === "object" && !Array.isArray(value) && Array.isArray(value.$bytes)){
    return new Uint8Array(value.$bytes).buffer
  }
  return value
}

function emit(obs){
  const record = {seq: observations.length, t: Date.now() - started, ...toJSON(obs)}
  observations.push(record)
  process.stdout.write(JSON.stringify(record) + "\n")
  for(const waiter of [...waiters]){ waiter() }
}

function matches(obs, pattern){
  return Object.entries(pattern).every(([key, expected]) => {
    const actual = obs[key]
    if(expected && typeof expected === "object"){ return JSON.stringify(actual) === JSON.stringify(expected) }
    return actual === expected
  })
}

function until(pattern, count, timeout){
  return new Promise((resolve) => {
    const check = () => {
      if(observations.filter(o => matches(o, pattern)).length >= count){
        waiters.splice(waiters.indexOf(check), 1)
        clearTimeout(timer)
        resolve()
        return true
      }
      return false
    }
    const timer = setTimeout(() => {
      waiters.splice(waiters.indexOf(check), 1)
      emit({type: "until_timeout", match: pattern, count})
      resolve()
    }, timeout)
    waiters.push(check)
    check()
  })
}

function backoff(list){
  return list ? (tries) => list[tries - 1] ?? list[list.length - 1] : undefined
}

async function readInput(){
  if(process.argv[2]){ return JSON.parse(process.argv[2]) }
  let data = ""
  for await (const chunk of process.stdin){ data += chunk }
  return JSON.parse(data)
}

function hooks(push, type, extra){
  for(const status of ["ok", "error", "timeout"]){
    push.receive(status, (response) => emit({type, status, response, ...extra}))
  }
  return push
}

const input = await readInput()
const deadline = setTimeout(() => {
  emit({type: "driver_timeout"})
  process.exit(2)
}, input.deadline_ms || 20000)

const sockets = {}

function makeSocket(name, options, url){
  const opts = {...(options || {})}
  opts.transport = opts.transport === "longpoll" ? LongPoll : WebSocket
  opts.reconnectAfterMs = backoff(opts.reconnectAfterMs)
  opts.rejoinAfterMs = backoff(opts.rejoinAfterMs)
  opts.encode = (msg, callback) => {
    emit({type: "sent", socket: name, join_ref: msg.join_ref, ref: msg.ref, topic: msg.topic, event: msg.event, payload: msg.payload})
    return Serializer.encode(msg, callback)
  }
  const socket = new Socket(url || input.url, opts)
  socket.onOpen(() => emit({type: "open", socket: name}))
  socket.onClose((event) => emit({type: "close", socket: name, code: event.code, reason: event.reason || ""}))
  socket.onError((error) => emit({type: "error", socket: name, message: String((error && error.message) || error)}))
  socket.onMessage((msg) => emit({type: "frame", socket: name, join_ref: msg.join_ref, ref: msg.ref, topic: msg.topic, event: msg.event, payload: msg.payload}))
  sockets[name] = socket
  return socket
}

makeSocket("main", input.socket)
const channels = {}
const presences = {}
const positions = {}

for(const step of input.steps || []){
  const socket = sockets[step.socket || "main"]
  switch(step.op){
    case "socket": makeSocket(step.socket, step.opts, step.url); break
    case "connect": socket.connect(); break
    case "disconnect": socket.disconnect(undefined, step.code, step.reason); break
    case "raw": socket.push({...step.message, payload: fromJSON(step.message.payload || {})}); break
    case "channel": {
      const name = step.chan
      const base = step.params || {}
      const source = step.since_of || (step.history ? name : null)
      const params = source ? () => (positions[source] ? {...base, since: positions[source]} : {...base}) : base
      const chan = socket.channel(step.topic, params)
      chan.onMessage = (event, payload, ref) => {
        if(!event.startsWith("chan_reply_")){
          emit({type: "event", chan: name, event, payload, ref: ref ?? null, state: chan.state})
          if(step.history && ref && !event.startsWith("phx_")){ positions[name] = ref }
        }
        return payload
      }
      if(step.history){
        chan.joinPush.receive("ok", (response) => {
          if(response && response.position && response.recovered !== true){ positions[name] = response.position }
        })
      }
      chan.onError((reason) => emit({type: "chan_error", chan: name, reason: reason ?? null}))
      chan.onClose((reason) => emit({type: "chan_close", chan: name, reason: reason ?? null}))
      if(step.presence){
        const presence = new Presence(chan)
        presence.onJoin((key, current, joined) => emit({type: "presence_join", chan: name, key, current: current ?? null, joined}))
        presence.onLeave((key, current, left) => emit({type: "presence_leave", chan: name, key, current, left}))
        presence.onSync(() => emit({type: "presence_sync", chan: name, list: presence.list((key, p) => ({key, metas: p.metas}))}))
        presences[name] = presence
      }
      channels[name] = chan
      break
    }
    case "join": hooks(channels[step.chan].join(step.timeout), "join", {chan: step.chan}); break
    case "push": {
      const push = channels[step.chan].push(step.event, fromJSON(step.payload || {}), step.timeout)
      hooks(push, "push", {chan: step.chan, event: step.event, id: step.id ?? null})
      break
    }
    case "leave": hooks(channels[step.chan].leave(), "leave", {chan: step.chan}); break
    case "until": await until(step.match, step.count || 1, step.timeout || 5000); break
    case "sleep": await new Promise((resolve) => setTimeout(resolve, step.ms)); break
    case "presence_list": {
      emit({type: "presence_list", chan: step.chan, list: presences[step.chan].list((key, p) => ({key, metas: p.metas}))})
      break
    }
    case "presence_static": {
      let state = {}
      for(const [kind, arg] of step.ops){
        const joins = []
        const leaves = []
        const onJoin = (key, current, joined) => joins.push([key, current ?? null, joined])
        const onLeave = (key, current, left) => leaves.push([key, current, left])
        state = kind === "state" ? Presence.syncState(state, arg, onJoin, onLeave) : Presence.syncDiff(state, arg, onJoin, onLeave)
        emit({type: "presence_static", state, joins, leaves, keys: Presence.list(state, (key) => key)})
      }
      break
    }
    default: emit({type: "bad_step", step})
  }
}

for(const socket of Object.values(sockets)){ socket.disconnect() }
clearTimeout(deadline)
emit({type: "done"})
process.exit(0)

// Calling gateway functions with the official Phoenix JavaScript client (npm "phoenix").
//
//   RELAYGATE_URL=ws://127.0.0.1:4000/socket RELAYGATE_TOKEN=<access token> node examples/gateway_client.mjs
//
// Get a token with POST /api/v1/sessions. In a browser drop the "ws" import and the transport option.
// Prints one JSON line per call.
import { Socket } from "phoenix"
import WebSocket from "ws"

const url = process.env.RELAYGATE_URL || "ws://127.0.0.1:4000/socket"
const socket = new Socket(url, {transport: WebSocket, params: {token: process.env.RELAYGATE_TOKEN}})
socket.connect()
const channel = socket.channel("gateway", {device_id: "example-client"})

// Results that arrive after the reply (async results, stream chunks) come as "phoenix_gen_api" events.
const pending = new Map()
channel.on("phoenix_gen_api", (response) => pending.get(response.request_id)?.(response))

let counter = 0
// Resolves with the result (sync, async) or the list of chunks (stream); rejects with the error response.
function call(service, request_type, args, version = null){
  const request_id = `req-${++counter}`
  return new Promise((resolve, reject) => {
    const chunks = []
    let streaming = false
    const settle = (response) => {
      if(!response.success){ pending.delete(request_id); reject(response); return }
      if(streaming){
        if(response.result !== null){ chunks.push(response.result) }
        if(!response.has_more){ pending.delete(request_id); resolve(chunks) }  // the terminal response
        return
      }
      pending.delete(request_id)
      resolve(response.result)
    }
    pending.set(request_id, settle)
    channel.push("phoenix_gen_api", {request_id, service, request_type, version, args})
      .receive("ok", (response) => {
        if(response.has_more){ streaming = true; return }  // stream ack: result "init", chunks follow
        if(response.async){ return }                        // async ack: the result follows as an event
        settle(response)                                    // sync: the result is in the reply
      })
      .receive("error", settle)
      .receive("timeout", () => { pending.delete(request_id); reject({code: "timeout", error: "no reply"}) })
  })
}

function print(name, outcome){ console.log(JSON.stringify({call: name, ...outcome})) }

channel.join()
  .receive("error", (reason) => { print("join", {error: reason}); process.exit(1) })
  .receive("ok", async () => {
    for(const [name, service, type, args, version] of [
      ["get_item", "inventory", "get_item", {id: 1}, "1.0.0"],       // sync
      ["reserve", "inventory", "reserve", {id: 2, quantity: 5}],      // async
      ["export", "inventory", "export", {min_stock: 1}],              // stream
      ["missing", "inventory", "get_item", {id: 99}],                 // a business error
    ]){
      try { print(name, {result: await call(service, type, args, version)}) }
      catch(error){ print(name, {code: error.code, error: error.error}) }
    }
    socket.disconnect(() => process.exit(0))
  })

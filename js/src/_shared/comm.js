// Request/reply over anywidget custom messages (the Python side is HawknbWidget.handle_request).
// Stable API:
//   request(model, kind, payload = {}, {buffers = [], timeoutMs = 30000} = {})
//       -> Promise<{payload, buffers: DataView[]}>; rejects with Error(msg) on {ok: false} or
//       timeout. Python calls `_request_<kind>(payload, buffers)` and answers with buffers.
//   listenReplies(model) is installed lazily; one listener per model, matched by request id.
const STATE = new WeakMap();

function stateFor(model) {
  let st = STATE.get(model);
  if (!st) {
    st = { next: 1, pending: new Map() };
    const onMsg = (msg, buffers) => {
      if (!msg || msg.type !== "reply") return;
      const p = st.pending.get(msg.id);
      if (!p) return;
      st.pending.delete(msg.id);
      clearTimeout(p.timer);
      if (msg.ok) p.resolve({ payload: msg.payload ?? {}, buffers: buffers ?? [] });
      else p.reject(new Error(msg.error || "request failed"));
    };
    model.on("msg:custom", onMsg);
    st.off = () => model.off("msg:custom", onMsg);
    STATE.set(model, st);
  }
  return st;
}

export function request(model, kind, payload = {}, { buffers = [], timeoutMs = 30000 } = {}) {
  const st = stateFor(model);
  const id = st.next++;
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      st.pending.delete(id);
      reject(new Error(`no reply to ${kind} within ${timeoutMs} ms (is the kernel running?)`));
    }, timeoutMs);
    st.pending.set(id, { resolve, reject, timer });
    model.send({ type: "request", id, kind, payload }, undefined, buffers);
  });
}

// sse.js: the console's one EventSource on /api/v1/events, shared by every
// page (ctx.events.on('job' | 'alert' | 'comm' | 'reset', fn)). EventSource
// reconnects by itself with Last-Event-ID; when the server refuses it (a 401:
// the session has ended) or ends it (event "end"), onEnded is called so the
// shell can check the session.

export function jobLogStream(id, { onMessage, onEnd, onError }) {
  // The job's messages (event "message", data {n, text}), then "end".
  const es = new EventSource(`/api/v1/jobs/${encodeURIComponent(id)}/log/stream`);
  let ended = false;
  es.addEventListener('message', (e) => { onMessage(JSON.parse(e.data)); });
  es.addEventListener('end', (e) => {
    ended = true;
    es.close();
    if (onEnd) onEnd(JSON.parse(e.data));
  });
  es.onerror = () => {
    if (!ended && es.readyState === EventSource.CLOSED && onError) onError();
  };
  return () => es.close();
}

export function createEvents({ onEnded }) {
  const handlers = { job: new Set(), alert: new Set(), comm: new Set(), reset: new Set(),
                     ready: new Set() };
  let es = null;
  let closed = false;

  function dispatch(type, e) {
    let data;
    try { data = JSON.parse(e.data); } catch (err) { return; }
    for (const fn of handlers[type]) {
      try { fn(data); } catch (err) { console.error(err); }
    }
  }

  function open() {
    if (closed) return;
    es = new EventSource('/api/v1/events');
    for (const type of Object.keys(handlers)) {
      es.addEventListener(type, (e) => dispatch(type, e));
    }
    es.addEventListener('end', () => {
      es.close();
      if (onEnded) onEnded();
    });
    es.onerror = () => {
      // CLOSED: the server answered with an error (not a stream): the session
      // may have ended. CONNECTING: EventSource retries by itself.
      if (es.readyState === EventSource.CLOSED && onEnded) onEnded();
    };
  }

  open();
  return {
    on(type, fn) {
      if (!handlers[type]) throw new Error(`no event type ${type}`);
      handlers[type].add(fn);
      return () => handlers[type].delete(fn);
    },
    reopen() { if (es) es.close(); open(); },
    // a page kept in the browser's back/forward cache must not hold its
    // connection: a browser gives one server 6 over HTTP/1.1
    pause() { if (es) es.close(); es = null; },
    close() { closed = true; if (es) es.close(); },
  };
}

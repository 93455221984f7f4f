// Express 4 upstream for the differential tests:
//
//     NODE_PATH=.tools/node/node_modules node tests/upstreams/express_app.js $PORT
//
// Every method on every path gets a 200 JSON answer naming the handler that
// Express's own router picked: "protected" for /admin and what is under it,
// "public" for anything else. The router keeps its defaults (case-insensitive,
// non-strict), so a path reads here as it would in a real Express app.
'use strict';

const express = require('express');

const FRAMEWORK = 'express';
const port = Number(process.argv[2]);
if (!Number.isInteger(port) || port <= 0 || port > 65535) {
  console.error('usage: node express_app.js PORT');
  process.exit(2);
}

function body(handler, req) {
  const header = (name) => {
    const value = req.headers[name];
    return value === undefined ? null : value;
  };
  return {
    handler,
    framework: FRAMEWORK,
    // The pathname the router matched against. Express routes on the
    // undecoded path (only route parameters are decoded), so unlike the
    // Python frameworks this keeps percent-escapes as they came.
    path: req.path === undefined ? null : req.path,
    // Node hands over the request-target exactly as it came off the wire.
    raw: req.originalUrl === undefined ? null : req.originalUrl,
    x_user_id: header('x-user-id'),
    x_client_id: header('x-client-id'),
    x_forwarded_for: header('x-forwarded-for'),
    x_forwarded_proto: header('x-forwarded-proto'),
    x_forwarded_host: header('x-forwarded-host'),
    forwarded: header('forwarded'),
    x_request_id: header('x-request-id'),
    host: header('host'),
  };
}

const app = express();

app.all('/admin', (req, res) => res.status(200).json(body('protected', req)));
app.all('/admin/*', (req, res) => res.status(200).json(body('protected', req)));
app.all('*', (req, res) => res.status(200).json(body('public', req)));

// Anything that makes routing throw (a malformed percent-escape in a route
// parameter, an odd target) is answered, never crashes the server, and is
// "not the protected handler".
// eslint-disable-next-line no-unused-vars
app.use((err, req, res, next) => {
  let answer;
  try {
    answer = body('public', req);
  } catch (_e) {
    answer = { handler: 'public', framework: FRAMEWORK, path: null, raw: null };
  }
  if (res.headersSent) {
    res.end();
    return;
  }
  res.status(400).json(answer);
});

process.on('uncaughtException', (err) => {
  console.error('express_app: uncaught exception:', err);
});

app.listen(port, '127.0.0.1');

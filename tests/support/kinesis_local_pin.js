// Preloaded into kinesis-local (`node -r`): every server it opens listens on 127.0.0.1 only.
// kinesis-local binds all interfaces and has no host option; tests never listen beyond loopback.
'use strict';
const net = require('net');
const listen = net.Server.prototype.listen;
net.Server.prototype.listen = function (...args) {
  const first = args[0];
  if (first !== null && typeof first === 'object') {
    // listen(options[, cb]); a handle or a unix socket path is left alone.
    if (!('fd' in first) && !('_handle' in first) && !('path' in first)) {
      args[0] = Object.assign({}, first, { host: '127.0.0.1' });
    }
    return listen.apply(this, args);
  }
  if (typeof first === 'number' || (typeof first === 'string' && /^\d+$/.test(first))) {
    // listen(port[, host][, backlog][, cb]): replace the host, keep the rest.
    const port = args.shift();
    if (typeof args[0] === 'string' || args[0] === undefined || args[0] === null) args.shift();
    return listen.call(this, port, '127.0.0.1', ...args);
  }
  return listen.apply(this, args);
};

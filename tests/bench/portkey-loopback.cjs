// Preloaded into the Portkey gateway (node --require) by run.sh: its server listens on every
// interface by default; this pins every listen() in the process to 127.0.0.1 (loopback only).
'use strict';
const net = require('net');
const listen = net.Server.prototype.listen;
net.Server.prototype.listen = function (...args) {
    if (typeof args[0] === 'number' || typeof args[0] === 'string') {
        if (args.length < 2 || typeof args[1] === 'string' || args[1] === undefined || args[1] === null)
            args[1] = '127.0.0.1';
        else if (typeof args[1] === 'function' || typeof args[1] === 'number')
            args.splice(1, 0, '127.0.0.1');
    } else if (args[0] && typeof args[0] === 'object' && 'port' in args[0]) {
        args[0] = { ...args[0], host: '127.0.0.1' };
    }
    return listen.apply(this, args);
};

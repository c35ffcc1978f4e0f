// Runs the handler once outside Lambda, as the receiver's test does:
// node run.js (with NODE_PATH pointing at the installed packages).
'use strict';

const { handler } = require('./handler');

handler({ items: 3 }).then(
  (res) => console.log(JSON.stringify(res)),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);

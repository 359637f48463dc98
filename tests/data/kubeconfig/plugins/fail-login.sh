#!/bin/sh
# An exec credential plugin whose login has expired: says why on stderr, exits 1.
# It echoes its secret env only to prove the message never contains it.
echo "error: login expired for $PLUGIN_SECRET; run 'platform login'" >&2
exit 1

#!/bin/sh
# An exec credential plugin that never answers (waits for an interactive login that never comes).
if [ -n "$KPF_TEST_PIDFILE" ]; then echo $$ > "$KPF_TEST_PIDFILE"; fi
exec sleep 300

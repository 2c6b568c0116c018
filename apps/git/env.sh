# Sourced by setup, workload and checker: Debian's git (/usr/bin/git; set GIT
# to use another), no user or system configuration (so git's own defaults,
# including core.fsync, apply; set UNPLUG_GIT_FSYNC=all, say, to try
# `core.fsync=all`), a fixed author and date (the commit's id is then always
# the same).
GIT=${GIT:-/usr/bin/git}
export GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null
export GIT_AUTHOR_NAME=unplug GIT_AUTHOR_EMAIL=unplug@example.com
export GIT_COMMITTER_NAME=unplug GIT_COMMITTER_EMAIL=unplug@example.com
export GIT_AUTHOR_DATE='2024-01-01T00:00:00Z' GIT_COMMITTER_DATE='2024-01-01T00:00:00Z'
if [ -n "$UNPLUG_GIT_FSYNC" ]; then
  export GIT_CONFIG_COUNT=1 GIT_CONFIG_KEY_0=core.fsync GIT_CONFIG_VALUE_0="$UNPLUG_GIT_FSYNC"
fi

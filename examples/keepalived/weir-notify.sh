#!/bin/sh
# keepalived notify hook for a Weir gateway (examples/keepalived/keepalived.conf).
# keepalived runs it as: weir-notify.sh INSTANCE|GROUP NAME MASTER|BACKUP|FAULT|STOP PRIORITY
#
# It logs every transition and never stops or restarts Weir: a gateway that loses the address
# keeps serving what it has open (requests in flight finish, and so does a pinned transaction on
# the old address if it still reaches this host) while new connections go to the new master. That
# is the drain: nothing is cut. It must stay running and healthy to be able to take the address
# back, so on BACKUP/FAULT it only records the change; on MASTER it makes sure Weir takes traffic
# (`weir health`), which is what "enabled again" means for a gateway that was never stopped.
#
# Settings (environment, or edit here):
#   WEIR_NOTIFY_LOG  file to append to (default: syslog via logger)
#   WEIR_BIN         the weir binary (default: weir on PATH)
#   WEIR_ADMIN       the admin listener (default: 127.0.0.1:9090)
set -u
kind=${1:-?} name=${2:-?} state=${3:-?} priority=${4:-?}
weir=${WEIR_BIN:-weir}
admin=${WEIR_ADMIN:-127.0.0.1:9090}

log() {
    line="$(date -u +%Y-%m-%dT%H:%M:%S.%3NZ) weir-notify: $kind $name $state (priority $priority): $*"
    if [ -n "${WEIR_NOTIFY_LOG:-}" ]; then echo "$line" >> "$WEIR_NOTIFY_LOG"; else logger -t weir-notify "$line"; fi
}

case "$state" in
    MASTER)
        # This gateway now holds the address: say whether Weir is ready for it.
        log "holding the virtual address; weir health: $("$weir" health --admin "$admin" --timeout-ms 300 2>&1)"
        ;;
    BACKUP|FAULT)
        # Given up (or not holding) the address: Weir drains what it has open and stays up.
        log "not holding the virtual address; weir keeps running and drains its open connections"
        ;;
    STOP)
        log "keepalived stopping"
        ;;
    *)
        log "unknown state"
        ;;
esac
exit 0

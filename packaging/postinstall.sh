#!/bin/sh
# Debian postinst of plcwatch: the system account the unit runs as, and the
# config readable by its group. Starting the daemon is the operator's step
# (systemctl enable --now plcwatch) after editing /etc/plcwatch/plcwatch.yaml.
set -e
if ! getent group plcwatch >/dev/null 2>&1; then
  groupadd --system plcwatch 2>/dev/null || true
fi
if ! getent passwd plcwatch >/dev/null 2>&1; then
  useradd --system --gid plcwatch --home-dir /var/lib/plcwatch --no-create-home \
    --shell /usr/sbin/nologin plcwatch 2>/dev/null || true
fi
if getent group plcwatch >/dev/null 2>&1 && [ -f /etc/plcwatch/plcwatch.yaml ]; then
  chgrp plcwatch /etc/plcwatch/plcwatch.yaml || true
fi
if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
  systemctl daemon-reload || true
fi
exit 0

#!/usr/bin/env bash
# Tests the Debian package as an OT site installs it: as root under CI=true
# it is installed into this machine with dpkg -i (and purged afterwards);
# otherwise it is unpacked with dpkg-deb -x into a temporary folder. Then the
# installed plcwatch must print its version, pass `config check` on the
# installed config and example, have its man pages and a systemd unit whose
# ExecStart and Documentation= name what was installed.
# Usage: packaging/test-deb.sh dist/plcwatch_VERSION_ARCH.deb
set -euo pipefail
deb=${1:?usage: $0 PACKAGE.deb}
[ -f "$deb" ] || { echo "test-deb: no package $deb" >&2; exit 1; }
fail() { echo "test-deb: FAIL: $*" >&2; exit 1; }

dpkg-deb --info "$deb" >/dev/null || fail "dpkg-deb cannot read $deb"
root=""
if [ "$(id -u)" = 0 ] && [ "${CI:-}" = true ]; then
  echo "test-deb: dpkg -i $deb"
  dpkg -i "$deb"
  trap 'dpkg --purge plcwatch >/dev/null || true' EXIT
  getent passwd plcwatch >/dev/null || fail "postinst created no plcwatch account"
else
  root=$(mktemp -d)
  trap 'rm -rf "$root"' EXIT
  echo "test-deb: dpkg-deb -x $deb $root (not root under CI=true: not installed)"
  dpkg-deb -x "$deb" "$root"
fi
bin=$root/usr/bin/plcwatch
[ -x "$bin" ] || fail "no executable /usr/bin/plcwatch"
"$bin" --version | grep -q '^plcwatch version ' || fail "plcwatch --version: $("$bin" --version 2>&1)"
for cfg in "$root/etc/plcwatch/plcwatch.yaml" "$root/usr/share/doc/plcwatch/plcwatch.example.yaml"; do
  [ -f "$cfg" ] || fail "no $cfg"
  out=$("$bin" --config "$cfg" config check) || fail "config check $cfg: $out"
  echo "$out" | grep -q ': ok (' || fail "config check $cfg said: $out"
  echo "test-deb: $out"
done
grep -q '/var/lib/plcwatch/plcwatch.db' "$root/etc/plcwatch/plcwatch.yaml" || fail "the installed config does not keep its store in /var/lib/plcwatch"
for page in plcwatch.1 plcwatch-check.1 plcwatch-daemon.1 plcwatch-change-start.1; do
  [ -f "$root/usr/share/man/man1/$page" ] || fail "no man page $page"
done
unit=$root/usr/lib/systemd/system/plcwatch.service
[ -f "$unit" ] || fail "no systemd unit"
grep -q '^ExecStart=/usr/bin/plcwatch daemon' "$unit" || fail "the unit does not start /usr/bin/plcwatch"
doc=$(sed -n 's|^Documentation=.*file://\([^ ]*\).*|\1|p' "$unit")
[ -n "$doc" ] && [ -f "$root$doc" ] || fail "the unit's Documentation= path ${doc:-(none)} is not installed"
echo "test-deb: ok: $("$bin" --version), config check, man pages, unit and its documentation"

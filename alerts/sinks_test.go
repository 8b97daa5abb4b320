package alerts

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/plcwatch/plcwatch/diffing"
	"github.com/plcwatch/plcwatch/snapshots"
	"github.com/plcwatch/plcwatch/store"
)

var update = flag.Bool("update", false, "rewrite golden files")

// sample derives a realistic set of alerts: a logic change with a line
// diff, a setpoint, a protection downgrade and an incomplete collection.
func sample(t *testing.T) []Alert {
	t.Helper()
	old := snap(t, true,
		block("OB1", 0x1111, attrs(snapshots.AttrRole, snapshots.RoleTasking)),
		block("FC1", 0x2222, attrs("load_size", "100")),
		mk("program/Main", snapshots.KindLogic, snapshots.String("IF a THEN\n  b := 1;\nEND_IF\n"), nil),
		mk("setpoints/TankHighLimit", snapshots.KindSetpoint, snapshots.Float(87.5, "%"), nil),
		mk("cpu/protection_level", snapshots.KindProtection, snapshots.Uint(3, ""), nil),
	)
	cur := snap(t, false,
		block("OB1", 0x1111, attrs(snapshots.AttrRole, snapshots.RoleTasking)),
		block("FC1", 0x2223, attrs("load_size", "104")),
		mk("program/Main", snapshots.KindLogic, snapshots.String("IF a THEN\n  b := 0;\nEND_IF\n"), nil),
		mk("setpoints/TankHighLimit", snapshots.KindSetpoint, snapshots.Float(95, "%"), nil),
		mk("cpu/protection_level", snapshots.KindProtection, snapshots.Uint(1, ""), nil),
	)
	return Derive(diffing.Compare(old, cur, diffing.Options{}), Input{Now: t0})
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./alerts -update)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file (rerun with -update after checking):\n%s", name, got)
	}
}

func TestConsoleGolden(t *testing.T) {
	als := sample(t)
	if len(als) != 4 {
		t.Fatalf("sample gave %d alerts, want 4", len(als))
	}
	var buf bytes.Buffer
	c := &Console{W: &buf}
	for i, a := range als {
		if i == 1 {
			a.Count, a.FirstSeen, a.LastSeen = 3, t0, t0.Add(2*time.Hour)
			a.Acks = []store.Ack{{Alert: a.ID, By: "eve", OSUser: "eve", Decision: "investigating", Comment: "asked the shift", At: t0.Add(time.Hour)}}
		}
		if err := c.Notify(a, i == 1); err != nil {
			t.Fatal(err)
		}
	}
	if bytes.Contains(buf.Bytes(), []byte("\x1b")) {
		t.Error("console output without colour contains an escape sequence")
	}
	golden(t, "console.txt", buf.Bytes())

	var col bytes.Buffer
	if err := (&Console{W: &col, Color: true}).Notify(als[0], false); err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(col.Bytes(), []byte("\x1b[")) {
		t.Error("colour requested, no escape sequence written")
	}
}

// TestRenderAlertState: the state in an alert's first line is the alert's:
// "NEW" only for one just raised, never for a resolved or acknowledged one
// listed by 'plcwatch alerts'.
func TestRenderAlertState(t *testing.T) {
	res := &store.AlertResolved{Alert: "A-1"}
	tests := []struct {
		name     string
		set      func(a *Alert)
		repeated bool
		want     string
	}{
		{name: "just raised", set: func(a *Alert) { a.Count, a.Status = 1, StatusOpen }, want: " NEW "},
		{name: "found again", set: func(a *Alert) { a.Count, a.Status = 3, StatusOpen }, repeated: true, want: " SEEN AGAIN (3 times) "},
		{name: "listed, open, seen several times", set: func(a *Alert) { a.Count, a.Status = 5, StatusOpen }, want: " OPEN (seen 5 times) "},
		{name: "listed, resolved", set: func(a *Alert) { a.Count, a.Status, a.Resolved = 1, StatusResolved, res }, want: " RESOLVED "},
		{name: "listed, acknowledged", set: func(a *Alert) {
			a.Count, a.Acks, a.Status = 2, []store.Ack{{Decision: "investigating"}}, "acknowledged (investigating)"
		}, want: " ACKNOWLEDGED (investigating) "},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := sample(t)[0]
			tc.set(&a)
			var buf bytes.Buffer
			if err := RenderAlert(&buf, a, tc.repeated, false); err != nil {
				t.Fatal(err)
			}
			first, _, _ := strings.Cut(buf.String(), "\n")
			if !strings.Contains(first, a.ID+tc.want) {
				t.Errorf("first line %q, want the state %q after the id", first, tc.want)
			}
		})
	}
}

func TestConsoleEscapesDeviceText(t *testing.T) {
	evil := "x\x1b[2J\r\n[CRITICAL] fake"
	old := snap(t, true, mk("cpu/mode", snapshots.KindMode, snapshots.String("RUN"), nil))
	cur := snap(t, true, mk("cpu/mode", snapshots.KindMode, snapshots.String(evil), nil))
	als := Derive(diffing.Compare(old, cur, diffing.Options{}), Input{Now: t0})
	var buf bytes.Buffer
	if err := RenderAlert(&buf, als[0], false, false); err != nil {
		t.Fatal(err)
	}
	if bytes.ContainsAny(buf.Bytes(), "\x1b\r") || strings.Contains(buf.String(), "\n[CRITICAL]") {
		t.Errorf("device text reached the console raw:\n%q", buf.String())
	}
}

func TestJSONL(t *testing.T) {
	path := filepath.Join(t.TempDir(), "alerts.jsonl")
	j := &JSONL{Path: path, Now: func() time.Time { return t0 }}
	als := sample(t)
	for _, a := range als {
		if err := j.Notify(a, false); err != nil {
			t.Fatal(err)
		}
	}
	heads := []store.Head{{Device: "press-7", Seq: 4, Digest: strings.Repeat("a", 64)}, {Device: "press-8", Seq: 1, Digest: strings.Repeat("b", 64)}}
	for _, h := range heads {
		if err := j.WriteHead(h); err != nil {
			t.Fatal(err)
		}
	}
	if err := j.Notify(als[0], true); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("alert log mode %v, want 0600", fi.Mode().Perm())
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	var types []string
	for sc.Scan() {
		var line struct {
			Type     string    `json:"type"`
			Repeated bool      `json:"repeated"`
			ID       string    `json:"id"`
			Device   string    `json:"device"`
			Time     time.Time `json:"time"`
		}
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		if line.Type == "alert" && (line.ID == "" || line.Device != "press-7") {
			t.Errorf("alert line without id or device: %s", sc.Text())
		}
		if line.Type == "chain_head" && !line.Time.Equal(t0) {
			t.Errorf("head line time %v, want %v", line.Time, t0)
		}
		types = append(types, fmt.Sprintf("%s/%v", line.Type, line.Repeated))
	}
	want := "alert/false alert/false alert/false alert/false chain_head/false chain_head/false alert/true"
	if got := strings.Join(types, " "); got != want {
		t.Errorf("lines %s, want %s", got, want)
	}
	got, err := ReadHeads(path)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got) != fmt.Sprint(heads) {
		t.Errorf("ReadHeads = %v, want %v", got, heads)
	}
}

func TestReadHeads(t *testing.T) {
	d1 := strings.Repeat("a", 64)
	head := func(dev string, seq int, d string) string {
		return fmt.Sprintf(`{"type":"chain_head","device":%q,"seq":%d,"digest":%q,"time":"2026-05-01T02:00:00Z"}`, dev, seq, d)
	}
	alert := `{"type":"alert","id":"A-0123456789","device":"d"}`
	tests := []struct {
		name     string
		content  string // "" with missing: no file
		missing  bool
		want     int
		badLines []int
	}{
		{name: "missing file", missing: true},
		{name: "empty", content: ""},
		{name: "heads and alerts", content: alert + "\n" + head("d", 1, d1) + "\n" + alert + "\n" + head("d", 2, d1) + "\n", want: 2},
		{name: "torn last line ignored", content: head("d", 1, d1) + "\n" + head("d", 2, d1)[:40], want: 1},
		{name: "complete last line without newline kept", content: head("d", 1, d1) + "\n" + head("d", 2, d1), want: 2},
		{name: "blank lines skipped", content: "\n" + head("d", 1, d1) + "\n\n", want: 1},
		{name: "garbage in the middle", content: head("d", 1, d1) + "\n{oops\n" + head("d", 2, d1) + "\n", want: 2, badLines: []int{2}},
		{name: "bad last line with its newline", content: head("d", 1, d1) + "\n{oops\n", want: 1, badLines: []int{2}},
		{name: "head without device", content: head("", 1, d1) + "\n", badLines: []int{1}},
		{name: "head with short digest", content: head("d", 1, "abc") + "\n" + head("d", 2, strings.Repeat("A", 64)) + "\n", badLines: []int{1, 2}},
		{name: "head with seq 0", content: head("d", 0, d1) + "\n", badLines: []int{1}},
		{name: "line without a type", content: `{"device":"d"}` + "\n", badLines: []int{1}},
		{name: "unknown line types skipped", content: `{"type":"future"}` + "\n" + head("d", 1, d1) + "\n", want: 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "alerts.jsonl")
			if !tc.missing {
				if err := os.WriteFile(path, []byte(tc.content), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			heads, err := ReadHeads(path)
			if len(heads) != tc.want {
				t.Errorf("%d heads %v, want %d", len(heads), heads, tc.want)
			}
			var bad *BadLinesError
			switch {
			case len(tc.badLines) == 0 && err != nil:
				t.Fatalf("err = %v", err)
			case len(tc.badLines) > 0 && !errors.As(err, &bad):
				t.Fatalf("err = %v, want a *BadLinesError", err)
			case len(tc.badLines) > 0:
				var lines []int
				for _, l := range bad.Lines {
					lines = append(lines, l.Line)
				}
				if fmt.Sprint(lines) != fmt.Sprint(tc.badLines) {
					t.Errorf("bad lines %v, want %v", lines, tc.badLines)
				}
				if !strings.Contains(err.Error(), fmt.Sprintf("%s:%d:", path, tc.badLines[0])) {
					t.Errorf("error %q does not name %s:%d", err, path, tc.badLines[0])
				}
			}
		})
	}
}

func TestReadHeadsLongLine(t *testing.T) {
	var b bytes.Buffer
	b.WriteString(`{"type":"alert","title":"`)
	b.Write(bytes.Repeat([]byte("x"), maxLogLine+10))
	b.WriteString("\"}\n")
	fmt.Fprintf(&b, `{"type":"chain_head","device":"d","seq":1,"digest":%q}`+"\n", strings.Repeat("c", 64))
	heads, err := readHeads(&b, "log")
	var bad *BadLinesError
	if !errors.As(err, &bad) || len(bad.Lines) != 1 || bad.Lines[0].Line != 1 {
		t.Fatalf("err = %v, want line 1 too long", err)
	}
	if len(heads) != 1 || heads[0].Seq != 1 {
		t.Errorf("heads after the long line: %v", heads)
	}
}

func FuzzReadHeads(f *testing.F) {
	f.Add([]byte(`{"type":"chain_head","device":"d","seq":1,"digest":"` + strings.Repeat("a", 64) + `"}` + "\n"))
	f.Add([]byte("{\"type\":\"alert\"}\n{bad\n{\"type\":\"chain_head\""))
	f.Add([]byte("\n\n\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		heads, err := readHeads(bytes.NewReader(data), "log")
		var bad *BadLinesError
		if err != nil && !errors.As(err, &bad) {
			t.Fatalf("error of another kind: %v", err)
		}
		for _, h := range heads {
			if h.Device == "" || h.Seq < 1 || len(h.Digest) != 64 {
				t.Fatalf("invalid head accepted: %+v", h)
			}
		}
	})
}

// syslogMsg is an RFC 5424 message as the test parses it.
type syslogMsg struct {
	pri                           int
	version                       int
	timestamp                     time.Time
	host, app, procID, msgID, msg string
	sdID                          string
	params                        map[string]string
}

var headerRE = regexp.MustCompile(`^<(\d{1,3})>(\d) (\S+) (\S+) (\S+) (\S+) (\S+) `)

// parseSyslog parses one RFC 5424 message with one SD element, strictly.
func parseSyslog(t *testing.T, s string) syslogMsg {
	t.Helper()
	m := headerRE.FindStringSubmatch(s)
	if m == nil {
		t.Fatalf("not an RFC 5424 header: %q", s)
	}
	var r syslogMsg
	r.pri, _ = strconv.Atoi(m[1])
	r.version, _ = strconv.Atoi(m[2])
	ts, err := time.Parse(time.RFC3339Nano, m[3])
	if err != nil {
		t.Fatalf("timestamp %q: %v", m[3], err)
	}
	if frac := regexp.MustCompile(`\.(\d+)`).FindStringSubmatch(m[3]); frac != nil && len(frac[1]) > 6 {
		t.Errorf("timestamp %q has more than 6 fractional digits", m[3])
	}
	r.timestamp, r.host, r.app, r.procID, r.msgID = ts, m[4], m[5], m[6], m[7]
	for name, v := range map[string]string{"hostname": r.host, "app-name": r.app, "procid": r.procID, "msgid": r.msgID} {
		limit := map[string]int{"hostname": 255, "app-name": 48, "procid": 128, "msgid": 32}[name]
		if len(v) > limit || strings.ContainsFunc(v, func(c rune) bool { return c < 33 || c > 126 }) {
			t.Errorf("%s %q is not 1-%d printable ASCII", name, v, limit)
		}
	}
	rest := s[len(m[0]):]
	if !strings.HasPrefix(rest, "[") {
		t.Fatalf("no structured data: %q", rest)
	}
	// SD-ELEMENT: "[" SD-ID *(SP PARAM-NAME "=" DQUOTE value DQUOTE) "]"
	i := 1
	for i < len(rest) && rest[i] != ' ' && rest[i] != ']' {
		i++
	}
	r.sdID = rest[1:i]
	r.params = map[string]string{}
	for rest[i] == ' ' {
		i++
		j := strings.IndexByte(rest[i:], '=')
		if j < 0 || rest[i+j+1] != '"' {
			t.Fatalf("bad SD-PARAM at %q", rest[i:])
		}
		name := rest[i : i+j]
		i += j + 2
		var v strings.Builder
		for ; rest[i] != '"'; i++ {
			if rest[i] == ']' {
				t.Fatalf("unescaped ] in the value of %s", name)
			}
			if rest[i] == '\\' && i+1 < len(rest) && strings.IndexByte(`"\]`, rest[i+1]) >= 0 {
				i++
			}
			v.WriteByte(rest[i])
		}
		r.params[name] = v.String()
		i++
	}
	if rest[i] != ']' {
		t.Fatalf("SD element not closed at %q", rest[i:])
	}
	r.msg = strings.TrimPrefix(rest[i+1:], " ")
	return r
}

func TestSyslogUDP(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	sl, err := NewSyslog("udp://"+pc.LocalAddr().String(), "local0", "plcwatch")
	if err != nil {
		t.Fatal(err)
	}
	defer sl.Close()
	sl.Hostname = "eng ws\x01-1" // not printable: cleaned
	sl.Now = func() time.Time { return t0.Add(123456789 * time.Nanosecond) }

	als := sample(t)
	tricky := als[1]
	tricky.Device = `press "7"]\x`
	tricky.Title = "mode changed:\nRUN -> STOP\x1b[0m"
	tricky.Count = 2
	tests := []struct {
		name     string
		alert    Alert
		repeated bool
		pri      int
		msgID    string
	}{
		{"critical", als[0], false, 16*8 + 2, "ALERT"},
		{"escaping, seen again", tricky, true, 16*8 + syslogSev()[tricky.Severity], "ALERT_SEEN"},
		{"medium", als[3], false, 16*8 + 4, "ALERT"},
	}
	buf := make([]byte, 65536)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := sl.Notify(tc.alert, tc.repeated); err != nil {
				t.Fatal(err)
			}
			if err := pc.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
				t.Fatal(err)
			}
			n, _, err := pc.ReadFrom(buf)
			if err != nil {
				t.Fatal(err)
			}
			m := parseSyslog(t, string(buf[:n]))
			if m.pri != tc.pri || m.version != 1 || m.msgID != tc.msgID || m.app != "plcwatch" || m.host != "engws-1" {
				t.Errorf("header: pri %d version %d msgid %s app %s host %s", m.pri, m.version, m.msgID, m.app, m.host)
			}
			if !m.timestamp.Equal(t0.Add(123456 * time.Microsecond)) {
				t.Errorf("timestamp %v", m.timestamp)
			}
			if m.procID != strconv.Itoa(os.Getpid()) {
				t.Errorf("procid %s", m.procID)
			}
			if m.sdID != SyslogSDID || m.params["id"] != tc.alert.ID || m.params["device"] != diffing.Printable(tc.alert.Device) ||
				m.params["category"] != tc.alert.Category || m.params["fingerprint"] != tc.alert.Fingerprint {
				t.Errorf("structured data %s %v", m.sdID, m.params)
			}
			if tc.alert.Technique != nil && (m.params["technique"] != tc.alert.Technique.ID || m.params["attack"] != AttackVersion) {
				t.Errorf("technique params %v", m.params)
			}
			if tc.repeated && m.params["count"] != "2" {
				t.Errorf("count param %q", m.params["count"])
			}
			if strings.ContainsAny(m.msg, "\n\r\x1b") || !strings.Contains(m.msg, tc.alert.ID) {
				t.Errorf("message %q", m.msg)
			}
		})
	}
}

func TestSyslogLimits(t *testing.T) {
	sl := &Syslog{Facility: 16, AppName: strings.Repeat("a", 60), Hostname: ""}
	a := sample(t)[0]
	a.Title = strings.Repeat("ü", 3000)
	s := sl.Format(a, false, t0)
	if len(s) > MaxSyslogMessage {
		t.Errorf("message of %d bytes, want at most %d", len(s), MaxSyslogMessage)
	}
	if !utf8Valid(s) {
		t.Error("message cut inside a character")
	}
	m := parseSyslog(t, s)
	if m.host != "-" || len(m.app) != 48 {
		t.Errorf("host %q app %q", m.host, m.app)
	}
}

func utf8Valid(s string) bool { return strings.ToValidUTF8(s, "\uFFFD") == s }

func TestSyslogUnixgram(t *testing.T) {
	dir, err := os.MkdirTemp("", "plcw")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	sock := filepath.Join(dir, "log")
	pc, err := net.ListenPacket("unixgram", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	sl, err := NewSyslog("unixgram://"+sock, "daemon", "plcwatch")
	if err != nil {
		t.Fatal(err)
	}
	defer sl.Close()
	a := sample(t)[0]
	if err := sl.Notify(a, false); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4096)
	if err := pc.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
		t.Fatal(err)
	}
	n, _, err := pc.ReadFrom(buf)
	if err != nil {
		t.Fatal(err)
	}
	if m := parseSyslog(t, string(buf[:n])); m.pri != 3*8+2 || m.params["id"] != a.ID {
		t.Errorf("pri %d params %v", m.pri, m.params)
	}

	// The syslog daemon restarts: the socket is re-created; the sink
	// reconnects on its own.
	pc.Close()
	os.Remove(sock)
	pc2, err := net.ListenPacket("unixgram", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer pc2.Close()
	if err := sl.Notify(a, true); err != nil {
		t.Fatalf("after the daemon restarted: %v", err)
	}
	if err := pc2.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if n, _, err = pc2.ReadFrom(buf); err != nil || !strings.Contains(string(buf[:n]), "ALERT_SEEN") {
		t.Errorf("after restart: %q %v", buf[:n], err)
	}
}

func TestNewSyslogErrors(t *testing.T) {
	tests := []struct{ name, addr, facility, want string }{
		{"scheme", "tcp://127.0.0.1:514", "local0", "want unixgram"},
		{"facility", "udp://127.0.0.1:514", "local9", "facility"},
		{"no path", "unixgram://", "local0", "no socket path"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := NewSyslog(tc.addr, tc.facility, "plcwatch"); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

// failing is a sink that always fails.
type failing struct{ calls int }

func (f *failing) Notify(Alert, bool) error { f.calls++; return errors.New("disk full") }

type recording struct{ got []string }

func (r *recording) Notify(a Alert, _ bool) error { r.got = append(r.got, a.ID); return nil }

func TestFanout(t *testing.T) {
	bad1, good, bad2 := &failing{}, &recording{}, &failing{}
	sl, err := NewSyslog("unixgram://"+filepath.Join(t.TempDir(), "nobody-listens"), "local0", "plcwatch")
	if err != nil {
		t.Fatal(err)
	}
	a := sample(t)[0]
	err = Fanout{bad1, sl, good, bad2}.Notify(a, false)
	if err == nil || strings.Count(err.Error(), "disk full") != 2 || !strings.Contains(err.Error(), "syslog") {
		t.Errorf("err = %v, want both failures and the syslog one", err)
	}
	if bad1.calls != 1 || bad2.calls != 1 || len(good.got) != 1 || good.got[0] != a.ID {
		t.Errorf("calls: %d %v %d: every sink must be tried", bad1.calls, good.got, bad2.calls)
	}
}

// TestJSONLTornLine: a line cut short by a crash or a full disk is moved to
// a side file before the next line is written, so the log holds whole lines
// only and its heads read without a finding.
func TestJSONLTornLine(t *testing.T) {
	head := func(seq int64) store.Head {
		return store.Head{Device: "press-7", Seq: seq, Digest: strings.Repeat("c", 64)}
	}
	enospc := func(f *os.File, b []byte) (int, error) {
		n, _ := f.Write(b[:len(b)/2])
		return n, &os.PathError{Op: "write", Path: f.Name(), Err: syscall.ENOSPC}
	}
	tests := []struct {
		name string
		// prepare leaves the log as a crash or a failing write would;
		// it returns how many whole head lines the log then holds.
		prepare   func(t *testing.T, j *JSONL) int
		wantTorn  bool
		wantHeads int // after one more WriteHead
	}{
		{"whole lines: nothing to repair", func(t *testing.T, j *JSONL) int {
			if err := j.WriteHead(head(1)); err != nil {
				t.Fatal(err)
			}
			return 1
		}, false, 2},
		{"a crash cut the last line", func(t *testing.T, j *JSONL) int {
			if err := j.WriteHead(head(1)); err != nil {
				t.Fatal(err)
			}
			f, err := os.OpenFile(j.Path, os.O_WRONLY|os.O_APPEND, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if _, err := f.WriteString(`{"type":"chain_head","device":"press-7","se`); err != nil {
				t.Fatal(err)
			}
			return 1
		}, true, 2},
		{"the disk filled mid-line (ENOSPC)", func(t *testing.T, j *JSONL) int {
			if err := j.WriteHead(head(1)); err != nil {
				t.Fatal(err)
			}
			j.write = enospc
			err := j.WriteHead(head(2))
			j.write = nil
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("WriteHead on a full disk = %v, want ENOSPC", err)
			}
			return 1
		}, true, 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "alerts.jsonl")
			var repairs []TornLine
			j := &JSONL{Path: path, OnRepair: func(tl TornLine) { repairs = append(repairs, tl) }}
			whole := tc.prepare(t, j)
			got, err := ReadHeads(path)
			if err != nil || len(got) != whole {
				t.Fatalf("before the next write: ReadHeads = %v, %v; want %d heads and no finding", got, err, whole)
			}
			if err := j.WriteHead(head(9)); err != nil {
				t.Fatal(err)
			}
			got, err = ReadHeads(path)
			if err != nil || len(got) != tc.wantHeads {
				t.Fatalf("ReadHeads = %v, %v; want %d heads and no finding", got, err, tc.wantHeads)
			}
			b, _ := os.ReadFile(path)
			if !bytes.HasSuffix(b, []byte("\n")) || bytes.Count(b, []byte("\n")) != tc.wantHeads {
				t.Errorf("log is not %d whole lines: %q", tc.wantHeads, b)
			}
			if tc.wantTorn != (len(repairs) > 0) {
				t.Fatalf("repairs %+v, want torn=%v", repairs, tc.wantTorn)
			}
			for _, r := range repairs {
				side, err := os.ReadFile(r.SideFile)
				if err != nil || len(side) != r.Bytes || bytes.Contains(side, []byte("\n")) || !bytes.HasPrefix(side, []byte(`{"type":"chain_head"`)) {
					t.Errorf("side file %s = %q, %v; want the %d torn bytes", r.SideFile, side, err, r.Bytes)
				}
			}
		})
	}
}

// TestJSONLFullDisk fills a small tmpfs (root only) and checks the alert
// log stays whole lines through ENOSPC and heals once space is freed.
func TestJSONLFullDisk(t *testing.T) {
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size=64k"); err != nil {
		t.Skipf("cannot mount a tmpfs here (%v); TestJSONLTornLine injects ENOSPC instead", err)
	}
	t.Cleanup(func() { syscall.Unmount(dir, 0) })
	filler := filepath.Join(dir, "filler")
	path := filepath.Join(dir, "alerts.jsonl")
	j := &JSONL{Path: path}
	// Leave a few hundred bytes free, then write heads until the disk is full.
	fill, err := os.Create(filler)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 512)
	for {
		if _, err := fill.Write(buf); err != nil {
			break
		}
	}
	fill.Close()
	if err := os.Truncate(filler, mustSize(t, filler)-1000); err != nil {
		t.Fatal(err)
	}
	var full error
	for i := int64(1); i < 100 && full == nil; i++ {
		full = j.WriteHead(store.Head{Device: "press-7", Seq: i, Digest: strings.Repeat("d", 64)})
	}
	if !errors.Is(full, syscall.ENOSPC) {
		t.Fatalf("never ran out of space: %v", full)
	}
	if _, err := ReadHeads(path); err != nil {
		t.Errorf("alert log on a full disk: %v (a torn line is not a finding)", err)
	}
	os.Remove(filler)
	if err := j.WriteHead(store.Head{Device: "press-7", Seq: 100, Digest: strings.Repeat("e", 64)}); err != nil {
		t.Fatalf("after freeing space: %v", err)
	}
	b, _ := os.ReadFile(path)
	for i, l := range bytes.Split(bytes.TrimSuffix(b, []byte("\n")), []byte("\n")) {
		if _, err := parseHeadLine(l); err != nil {
			t.Errorf("line %d %q: %v", i+1, l, err)
		}
	}
}

func mustSize(t *testing.T, p string) int64 {
	st, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return st.Size()
}

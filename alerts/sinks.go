package alerts

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/plcwatch/plcwatch/diffing"
	"github.com/plcwatch/plcwatch/snapshots"
	"github.com/plcwatch/plcwatch/store"
)

// Sink tells people about an alert that is already stored. A sink's failure
// never loses the alert: the store has it.
type Sink interface {
	// Notify delivers one alert; repeated is true when it was seen again
	// rather than newly raised.
	Notify(a Alert, repeated bool) error
}

// Fanout delivers to every sink, even when some fail, and joins their errors.
type Fanout []Sink

// Notify implements Sink.
func (f Fanout) Notify(a Alert, repeated bool) error {
	var errs []error
	for _, s := range f {
		if err := s.Notify(a, repeated); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Console prints alerts for people.
type Console struct {
	W     io.Writer
	Color bool
}

// Notify implements Sink.
func (c *Console) Notify(a Alert, repeated bool) error {
	return RenderAlert(c.W, a, repeated, c.Color)
}

var sevColor = sync.OnceValue(func() map[Severity]string {
	return map[Severity]string{Critical: "\x1b[1;41;97m", High: "\x1b[1;31m", Medium: "\x1b[33m", Low: "\x1b[36m", Info: ""}
})

// RenderAlert writes one alert as a readable block: severity, id, state
// (NEW just raised, SEEN AGAIN when repeated, else the listed alert's own:
// RESOLVED, ACKNOWLEDGED (decision) or OPEN (seen N times)), device and
// title; the ATT&CK technique; why it matters; the disposition;
// the snapshots compared; every item with old -> new and line diffs; the
// reasons. Text that came from a device passes through diffing.Printable, so
// it cannot inject terminal escape sequences or extra lines.
func RenderAlert(w io.Writer, a Alert, repeated bool, color bool) error {
	var b strings.Builder
	p := diffing.Printable
	sev := strings.ToUpper(string(a.Severity))
	if color {
		sev = sevColor()[a.Severity] + sev + "\x1b[0m"
	}
	state := "NEW"
	switch {
	case repeated:
		state = fmt.Sprintf("SEEN AGAIN (%d times)", a.Count)
	case a.Resolved != nil:
		state = "RESOLVED"
	case len(a.Acks) > 0:
		state = fmt.Sprintf("ACKNOWLEDGED (%s)", a.Acks[len(a.Acks)-1].Decision)
	case a.Count > 1:
		// Listed by 'plcwatch alerts': raised long ago, found again since.
		state = fmt.Sprintf("OPEN (seen %d times)", a.Count)
	}
	fmt.Fprintf(&b, "[%s] %s %s %s: %s\n", sev, a.ID, state, p(a.Device), p(a.Title))
	if a.Technique != nil {
		fmt.Fprintf(&b, "  ATT&CK for ICS %s: %s %s\n", a.AttackVersion, a.Technique.ID, a.Technique.Name)
	}
	fmt.Fprintf(&b, "  why: %s\n", a.Why)
	if a.Disposition != "" {
		fmt.Fprintf(&b, "  disposition: %s", a.Disposition)
		if a.Ticket != "" {
			fmt.Fprintf(&b, " (change %s)", p(a.Ticket))
		}
		b.WriteString("\n")
	}
	if a.Snapshot != "" || a.Baseline != "" {
		fmt.Fprintf(&b, "  snapshot %s vs baseline %s\n", orDash(a.Snapshot), orDash(a.Baseline))
	}
	for _, it := range a.Items {
		switch it.Change {
		case "added":
			fmt.Fprintf(&b, "    + %s = %s\n", p(it.Path), p(it.New))
		case "removed":
			fmt.Fprintf(&b, "    - %s (was %s)\n", p(it.Path), p(it.Old))
		case "touched":
			fmt.Fprintf(&b, "    = %s re-downloaded, content identical (%s)\n", p(it.Path), p(strings.Join(it.Fields, ", ")))
		case "not_read":
			last := ""
			if it.Old != "" {
				last = "; last known " + p(it.Old)
			}
			fmt.Fprintf(&b, "    ? %s not read (%s)%s\n", p(it.Path), p(it.Reason), last)
		default:
			delta := ""
			if it.Delta != nil && it.Kind == snapshots.KindSetpoint {
				delta = " (" + strconv.FormatFloat(*it.Delta, 'g', 6, 64) + ")"
				if *it.Delta > 0 {
					delta = " (+" + delta[2:]
				}
			}
			if it.LineDiff != "" {
				// A text (program source, a string setpoint): its changed
				// lines, not "(text, 7 lines) -> (text, 7 lines)".
				fmt.Fprintf(&b, "    ~ %s: text changed:\n", p(it.Path))
				for _, l := range ChangedLines(it.LineDiff) {
					fmt.Fprintf(&b, "        %s\n", p(l))
				}
				continue
			}
			fmt.Fprintf(&b, "    ~ %s: %s -> %s%s\n", p(it.Path), p(it.Old), p(it.New), delta)
		}
	}
	for _, r := range a.Reasons {
		fmt.Fprintf(&b, "    reason: %s\n", p(r))
	}
	if !a.FirstSeen.IsZero() && a.Count > 1 {
		fmt.Fprintf(&b, "  first seen %s, last seen %s, %d times\n", a.FirstSeen.UTC().Format(time.RFC3339), a.LastSeen.UTC().Format(time.RFC3339), a.Count)
	}
	for _, k := range a.Acks {
		fmt.Fprintf(&b, "  ack %s by %s (%s) at %s: %s\n", p(k.Decision), p(k.By), p(k.OSUser), k.At.UTC().Format(time.RFC3339), p(k.Comment))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// ChangedLines returns the removed and added lines of a diffing.LineDiff,
// each as "- line N: text" (N counted in the old text) or "+ line N: text"
// (N counted in the new text); unchanged lines are left out.
func ChangedLines(lineDiff string) []string {
	var out []string
	oldN, newN := 0, 0
	for _, l := range strings.Split(strings.TrimSuffix(lineDiff, "\n"), "\n") {
		switch {
		case strings.HasPrefix(l, "- "):
			oldN++
			out = append(out, fmt.Sprintf("- line %d: %s", oldN, l[2:]))
		case strings.HasPrefix(l, "+ "):
			newN++
			out = append(out, fmt.Sprintf("+ line %d: %s", newN, l[2:]))
		default:
			oldN++
			newN++
		}
	}
	return out
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// JSONL appends one JSON object per line to a file: alerts ("type":"alert")
// and evidence-chain heads ("type":"chain_head"). The file is created with
// mode 0600. Each line goes out in one write(2) on a file opened O_APPEND
// and is fsynced before Notify or WriteHead returns (fsync policy: every
// line). A line cut short (a crash or a full disk mid-write) is repaired
// before the next line is written: see RepairTornLine.
type JSONL struct {
	Path string
	// Now stamps chain-head lines (time.Now when nil).
	Now func() time.Time
	// OnRepair, when set, is told of each torn last line moved aside.
	OnRepair func(TornLine)
	mu       sync.Mutex
	// write writes one line to f (f.Write; tests inject a full disk).
	write func(f *os.File, b []byte) (int, error)
}

// TornLine is the unterminated end of an alert log that RepairTornLine cut
// off and kept in SideFile.
type TornLine struct {
	Path     string // the alert log
	Offset   int64  // where the torn bytes started (the new file size)
	Bytes    int    // how many bytes were moved
	SideFile string // where they are kept
}

// RepairTornLine cuts an unterminated last line off the alert log at path
// (what a crash or a full disk leaves behind) so that the next line starts
// on its own: the torn bytes are first written and fsynced to a side file
// (path + ".torn-" + UTC time), then the log is truncated to its last
// newline. It returns nil when the log is missing, empty or ends with a
// newline. If the side file cannot be written (the disk is still full) the
// log is left as it is and the error says so: nothing is ever dropped.
func RepairTornLine(path string, now time.Time) (*TornLine, error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("alert log %s: opening it to check its last line: %w", path, err)
	}
	defer f.Close()
	return repairTorn(f, path, now)
}

func repairTorn(f *os.File, path string, now time.Time) (*TornLine, error) {
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("alert log %s: %w", path, err)
	}
	size := st.Size()
	if size == 0 {
		return nil, nil
	}
	last := make([]byte, 1)
	if _, err := f.ReadAt(last, size-1); err != nil {
		return nil, fmt.Errorf("alert log %s: reading its last byte: %w", path, err)
	}
	if last[0] == '\n' {
		return nil, nil
	}
	// Find the last newline, reading backwards in chunks.
	cut := int64(0)
	buf := make([]byte, 64*1024)
	for end := size; end > 0 && cut == 0; {
		start := max(0, end-int64(len(buf)))
		chunk := buf[:end-start]
		if _, err := f.ReadAt(chunk, start); err != nil {
			return nil, fmt.Errorf("alert log %s: looking for its last newline: %w", path, err)
		}
		if i := bytes.LastIndexByte(chunk, '\n'); i >= 0 {
			cut = start + int64(i) + 1
		}
		end = start
	}
	torn := make([]byte, size-cut)
	if _, err := f.ReadAt(torn, cut); err != nil {
		return nil, fmt.Errorf("alert log %s: reading its torn last line: %w", path, err)
	}
	side := fmt.Sprintf("%s.torn-%s", path, now.UTC().Format("20060102T150405.000000000Z"))
	if err := writeSynced(side, torn); err != nil {
		return nil, fmt.Errorf("alert log %s: keeping its torn last line (%d bytes) in %s before cutting it off: %w", path, len(torn), side, err)
	}
	if err := f.Truncate(cut); err != nil {
		return nil, fmt.Errorf("alert log %s: cutting its torn last line off at byte %d: %w", path, cut, err)
	}
	if err := f.Sync(); err != nil {
		return nil, fmt.Errorf("alert log %s: %w", path, err)
	}
	return &TornLine{Path: path, Offset: cut, Bytes: len(torn), SideFile: side}, nil
}

func writeSynced(path string, b []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		os.Remove(path)
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		os.Remove(path)
		return err
	}
	return f.Close()
}

type jsonlAlert struct {
	Type     string `json:"type"`
	Repeated bool   `json:"repeated"`
	Alert
}

// HeadLine is a chain head as written to the alert log.
type HeadLine struct {
	Type   string    `json:"type"`
	Device string    `json:"device"`
	Seq    int64     `json:"seq"`
	Digest string    `json:"digest"`
	Time   time.Time `json:"time"`
}

// Notify implements Sink.
func (j *JSONL) Notify(a Alert, repeated bool) error {
	return j.append(jsonlAlert{Type: "alert", Repeated: repeated, Alert: a})
}

// WriteHead records a new chain head.
func (j *JSONL) WriteHead(h store.Head) error {
	now := time.Now
	if j.Now != nil {
		now = j.Now
	}
	return j.append(HeadLine{Type: "chain_head", Device: h.Device, Seq: h.Seq, Digest: h.Digest, Time: now().UTC()})
}

func (j *JSONL) append(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	f, err := os.OpenFile(j.Path, os.O_RDWR|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("alert log: %w", err)
	}
	// One appender at a time across processes (CLI and daemon), so that a
	// repair never cuts a line another process is writing.
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return fmt.Errorf("alert log %s: locking it: %w", j.Path, err)
	}
	// A line an earlier write left unterminated (here or in another
	// process) is moved aside first, so this one starts on its own.
	if t, err := repairTorn(f, j.Path, time.Now()); err != nil {
		f.Close()
		return err
	} else if t != nil && j.OnRepair != nil {
		j.OnRepair(*t)
	}
	write := j.write
	if write == nil {
		write = (*os.File).Write
	}
	if _, err := write(f, append(b, '\n')); err != nil {
		// Cut what part of the line got out, so the log stays whole lines
		// (kept aside when the disk allows; else the next write does it).
		if t, rerr := repairTorn(f, j.Path, time.Now()); rerr == nil && t != nil && j.OnRepair != nil {
			j.OnRepair(*t)
		}
		f.Close()
		return fmt.Errorf("alert log %s: %w", j.Path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("alert log %s: %w", j.Path, err)
	}
	return f.Close()
}

// ReadHeads reads the chain heads recorded in an alert log, in file order.
// A missing file gives no heads. A torn last line (a crash mid-write leaves
// it without its newline) is ignored. Every other malformed line is reported
// in a *BadLinesError naming its line number, returned together with the
// heads that could be read, so verify can still use them.
func ReadHeads(path string) ([]store.Head, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading the alert log: %w", err)
	}
	defer f.Close()
	return readHeads(f, path)
}

// BadLine is one malformed line of an alert log.
type BadLine struct {
	Line int
	Err  string
}

// BadLinesError lists the malformed lines of an alert log.
type BadLinesError struct {
	Path  string
	Lines []BadLine
}

func (e *BadLinesError) Error() string {
	var parts []string
	for i, l := range e.Lines {
		if i == 5 {
			parts = append(parts, fmt.Sprintf("and %d more", len(e.Lines)-5))
			break
		}
		parts = append(parts, fmt.Sprintf("%s:%d: %s", e.Path, l.Line, l.Err))
	}
	return strings.Join(parts, "; ")
}

// maxLogLine bounds one alert-log line (an alert with long line diffs).
const maxLogLine = 16 << 20

func readHeads(r io.Reader, name string) ([]store.Head, error) {
	var heads []store.Head
	bad := &BadLinesError{Path: name}
	br := bufio.NewReaderSize(r, 64*1024)
	for n := 1; ; n++ {
		line, err := readLine(br)
		if err != nil && !errors.Is(err, io.EOF) {
			if errors.Is(err, errLineTooLong) {
				bad.Lines = append(bad.Lines, BadLine{n, err.Error()})
				continue
			}
			return heads, fmt.Errorf("reading %s at line %d: %w", name, n, err)
		}
		torn := errors.Is(err, io.EOF) // no newline after it
		if len(line) == 0 && torn {
			break
		}
		if strings.TrimSpace(string(line)) != "" {
			h, perr := parseHeadLine(line)
			switch {
			case perr != nil && torn:
				// a crash cut the last line short: tolerated
			case perr != nil:
				bad.Lines = append(bad.Lines, BadLine{n, perr.Error()})
			case h != nil:
				heads = append(heads, *h)
			}
		}
		if torn {
			break
		}
	}
	if len(bad.Lines) > 0 {
		return heads, bad
	}
	return heads, nil
}

var errLineTooLong = fmt.Errorf("line longer than %d bytes", maxLogLine)

// readLine returns one line without its newline; io.EOF when the line (maybe
// empty) had no newline after it.
func readLine(br *bufio.Reader) ([]byte, error) {
	var line []byte
	for {
		chunk, err := br.ReadSlice('\n')
		if len(line)+len(chunk) > maxLogLine {
			// skip the rest of the line
			for errors.Is(err, bufio.ErrBufferFull) {
				_, err = br.ReadSlice('\n')
			}
			if err != nil && !errors.Is(err, io.EOF) {
				return nil, err
			}
			return nil, errLineTooLong
		}
		line = append(line, chunk...)
		switch {
		case err == nil:
			return line[:len(line)-1], nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		default:
			return line, err
		}
	}
}

// parseHeadLine returns the head of a chain_head line, nil for other line
// types (alerts), or an error saying what is wrong.
func parseHeadLine(line []byte) (*store.Head, error) {
	var h HeadLine
	if err := json.Unmarshal(line, &h); err != nil {
		return nil, fmt.Errorf("not a JSON object: %v", err)
	}
	switch h.Type {
	case "chain_head":
	case "":
		return nil, errors.New(`no "type"`)
	default:
		return nil, nil
	}
	if h.Device == "" {
		return nil, errors.New("chain_head without a device")
	}
	if h.Seq < 1 {
		return nil, fmt.Errorf("chain_head seq %d, want >= 1", h.Seq)
	}
	if len(h.Digest) != 64 || strings.Trim(h.Digest, "0123456789abcdef") != "" {
		return nil, fmt.Errorf("chain_head digest %q, want 64 lower-case hex digits", h.Digest)
	}
	return &store.Head{Device: h.Device, Seq: h.Seq, Digest: h.Digest}, nil
}

// Syslog sends alerts as RFC 5424 messages to the local syslog (a unix
// datagram socket such as /dev/log) or to a UDP address on this machine.
// Each alert is one datagram of at most MaxSyslogMessage bytes.
type Syslog struct {
	Network, Address string
	Facility         int
	AppName          string
	Hostname         string
	// Now stamps messages (time.Now when nil).
	Now  func() time.Time
	mu   sync.Mutex
	conn net.Conn
}

// MaxSyslogMessage bounds one message: RFC 5426 asks every receiver to take
// 2048-byte datagrams, so longer messages are cut at a character boundary.
const MaxSyslogMessage = 2048

// SyslogSDID is the structured-data id of plcwatch's parameters. 32473 is
// the private enterprise number reserved for documentation (RFC 5612); a
// site that needs its own can filter on the name part.
const SyslogSDID = "plcwatch@32473"

var facilities = sync.OnceValue(func() map[string]int {
	return map[string]int{"kern": 0, "user": 1, "daemon": 3, "auth": 4, "local0": 16, "local1": 17, "local2": 18, "local3": 19, "local4": 20, "local5": 21, "local6": 22, "local7": 23}
})

// NewSyslog parses an address such as "unixgram:///dev/log" or
// "udp://127.0.0.1:514". It does not connect until the first alert.
func NewSyslog(address, facility, app string) (*Syslog, error) {
	u, err := url.Parse(address)
	if err != nil {
		return nil, fmt.Errorf("syslog address %q: %w", address, err)
	}
	fac, ok := facilities()[facility]
	if !ok {
		return nil, fmt.Errorf("syslog facility %q: want one of local0..local7, daemon, user, auth", facility)
	}
	s := &Syslog{Facility: fac, AppName: app}
	switch u.Scheme {
	case "unixgram", "unix":
		s.Network, s.Address = "unixgram", u.Path
	case "udp":
		s.Network, s.Address = "udp", u.Host
	default:
		return nil, fmt.Errorf("syslog address %q: want unixgram:///dev/log or udp://127.0.0.1:514", address)
	}
	if s.Address == "" {
		return nil, fmt.Errorf("syslog address %q: no socket path or host:port", address)
	}
	s.Hostname, _ = os.Hostname()
	return s, nil
}

var syslogSev = sync.OnceValue(func() map[Severity]int {
	return map[Severity]int{Critical: 2, High: 3, Medium: 4, Low: 5, Info: 6}
})

// Format returns the RFC 5424 message for an alert:
//
//	<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID [plcwatch@32473 ...] MSG
//
// PRI is facility*8 plus the syslog severity (critical 2 crit, high 3 err,
// medium 4 warning, low 5 notice, info 6 info); TIMESTAMP is UTC with
// microseconds (the most RFC 5424 allows); MSGID is ALERT or ALERT_SEEN; the
// structured data carries id, device, severity, category, technique, ATT&CK
// version, snapshot, disposition and fingerprint; MSG is one line: the
// device, title and id, made printable. Header fields are cut to their RFC
// 5424 lengths and printable ASCII, "-" when empty.
func (s *Syslog) Format(a Alert, repeated bool, now time.Time) string {
	pri := s.Facility*8 + syslogSev()[a.Severity]
	if _, ok := syslogSev()[a.Severity]; !ok {
		pri = s.Facility*8 + 4
	}
	tech := ""
	if a.Technique != nil {
		tech = a.Technique.ID
	}
	msgID := "ALERT"
	if repeated {
		msgID = "ALERT_SEEN"
	}
	var sd strings.Builder
	sd.WriteString("[" + SyslogSDID)
	for _, p := range [][2]string{
		{"id", a.ID}, {"device", a.Device}, {"severity", string(a.Severity)}, {"category", a.Category},
		{"technique", tech}, {"attack", a.AttackVersion}, {"snapshot", a.Snapshot},
		{"disposition", a.Disposition}, {"fingerprint", a.Fingerprint},
	} {
		if p[1] == "" {
			continue
		}
		fmt.Fprintf(&sd, ` %s="%s"`, p[0], sdEscape(p[1]))
	}
	if repeated {
		fmt.Fprintf(&sd, ` count="%d"`, a.Count)
	}
	sd.WriteString("]")
	head := fmt.Sprintf("<%d>1 %s %s %s %d %s %s ", pri, now.UTC().Format("2006-01-02T15:04:05.000000Z"),
		headerField(s.Hostname, 255), headerField(s.AppName, 48), os.Getpid(), msgID, sd.String())
	msg := diffing.Printable(fmt.Sprintf("%s: %s (%s)", a.Device, a.Title, a.ID))
	return head + truncateUTF8(msg, MaxSyslogMessage-len(head))
}

// headerField makes s an RFC 5424 header field: printable US-ASCII without
// spaces, at most max bytes, "-" (nil value) when empty.
func headerField(s string, max int) string {
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s) && len(b) < max; i++ {
		if c := s[i]; c > 32 && c < 127 {
			b = append(b, c)
		}
	}
	if len(b) == 0 {
		return "-"
	}
	return string(b)
}

func truncateUTF8(s string, n int) string {
	if n < 0 {
		n = 0
	}
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// sdEscape escapes a structured-data parameter value (RFC 5424 section
// 6.3.3: double quote, backslash and ']') after making it printable.
func sdEscape(s string) string {
	return strings.NewReplacer(`\`, `\\`, `"`, `\"`, `]`, `\]`).Replace(diffing.Printable(s))
}

// Notify implements Sink. A failed write is retried once on a fresh
// connection (the syslog daemon may have restarted); every write has a
// one-second deadline.
func (s *Syslog) Notify(a Alert, repeated bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now
	if s.Now != nil {
		now = s.Now
	}
	msg := []byte(s.Format(a, repeated, now()))
	var err error
	for try := 0; try < 2; try++ {
		if s.conn == nil {
			var c net.Conn
			if c, err = net.DialTimeout(s.Network, s.Address, time.Second); err != nil {
				continue
			}
			s.conn = c
		}
		_ = s.conn.SetWriteDeadline(time.Now().Add(time.Second))
		if _, err = s.conn.Write(msg); err == nil {
			return nil
		}
		s.conn.Close()
		s.conn = nil
	}
	return fmt.Errorf("syslog %s %s: %w", s.Network, s.Address, err)
}

// Close closes the connection.
func (s *Syslog) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conn == nil {
		return nil
	}
	err := s.conn.Close()
	s.conn = nil
	return err
}

package alerts

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

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

var sevColor = map[Severity]string{Critical: "\x1b[1;41;97m", High: "\x1b[1;31m", Medium: "\x1b[33m", Low: "\x1b[36m", Info: ""}

// RenderAlert writes one alert as a readable block.
func RenderAlert(w io.Writer, a Alert, repeated bool, color bool) error {
	var b strings.Builder
	sev := strings.ToUpper(string(a.Severity))
	if color {
		sev = sevColor[a.Severity] + sev + "\x1b[0m"
	}
	state := "NEW"
	if repeated {
		state = fmt.Sprintf("SEEN AGAIN (%d times)", a.Count)
	}
	fmt.Fprintf(&b, "[%s] %s %s %s: %s\n", sev, a.ID, state, a.Device, a.Title)
	if a.Technique != nil {
		fmt.Fprintf(&b, "  ATT&CK for ICS %s: %s %s\n", a.AttackVersion, a.Technique.ID, a.Technique.Name)
	}
	fmt.Fprintf(&b, "  why: %s\n", a.Why)
	fmt.Fprintf(&b, "  disposition: %s", a.Disposition)
	if a.Ticket != "" {
		fmt.Fprintf(&b, " (change %s)", a.Ticket)
	}
	b.WriteString("\n")
	if a.Snapshot != "" || a.Baseline != "" {
		fmt.Fprintf(&b, "  snapshot %s vs baseline %s\n", orDash(a.Snapshot), orDash(a.Baseline))
	}
	for _, it := range a.Items {
		switch it.Change {
		case "added":
			fmt.Fprintf(&b, "    + %s = %s\n", it.Path, it.New)
		case "removed":
			fmt.Fprintf(&b, "    - %s (was %s)\n", it.Path, it.Old)
		default:
			fmt.Fprintf(&b, "    ~ %s: %s -> %s\n", it.Path, it.Old, it.New)
		}
		if it.LineDiff != "" {
			for _, l := range strings.Split(strings.TrimSuffix(it.LineDiff, "\n"), "\n") {
				fmt.Fprintf(&b, "        %s\n", l)
			}
		}
	}
	for _, r := range a.Reasons {
		fmt.Fprintf(&b, "    reason: %s\n", r)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// JSONL appends one JSON object per line to a file: alerts ("type":"alert")
// and evidence-chain heads ("type":"chain_head"). The file is created with
// mode 0600 and every line is synced to disk.
type JSONL struct {
	Path string
	mu   sync.Mutex
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
	return j.append(HeadLine{Type: "chain_head", Device: h.Device, Seq: h.Seq, Digest: h.Digest, Time: time.Now().UTC()})
}

func (j *JSONL) append(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	f, err := os.OpenFile(j.Path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("alert log: %w", err)
	}
	if _, err := f.Write(append(b, '\n')); err != nil {
		f.Close()
		return fmt.Errorf("alert log %s: %w", j.Path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("alert log %s: %w", j.Path, err)
	}
	return f.Close()
}

// ReadHeads reads the chain heads recorded in an alert log. A missing file
// gives no heads. A torn last line (a crash mid-write) is ignored; any other
// malformed line is an error naming its line number.
func ReadHeads(path string) ([]store.Head, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var heads []store.Head
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 16*1024*1024)
	n := 0
	var pending error
	for sc.Scan() {
		n++
		if pending != nil {
			return nil, pending
		}
		line := sc.Bytes()
		if len(strings.TrimSpace(string(line))) == 0 {
			continue
		}
		var h HeadLine
		if err := json.Unmarshal(line, &h); err != nil {
			pending = fmt.Errorf("%s:%d: not a JSON object: %v", path, n, err)
			continue
		}
		if h.Type == "chain_head" {
			if h.Device == "" || len(h.Digest) != 64 {
				return nil, fmt.Errorf("%s:%d: chain_head without device or a 64-digit digest", path, n)
			}
			heads = append(heads, store.Head{Device: h.Device, Seq: h.Seq, Digest: h.Digest})
		}
	}
	return heads, sc.Err()
}

// Syslog sends alerts as RFC 5424 messages to the local syslog (a unix
// datagram socket such as /dev/log) or to a UDP address on this machine.
type Syslog struct {
	Network, Address string
	Facility         int
	AppName          string
	Hostname         string
	mu               sync.Mutex
	conn             net.Conn
}

var facilities = map[string]int{"kern": 0, "user": 1, "daemon": 3, "auth": 4, "local0": 16, "local1": 17, "local2": 18, "local3": 19, "local4": 20, "local5": 21, "local6": 22, "local7": 23}

// NewSyslog parses an address such as "unixgram:///dev/log" or
// "udp://127.0.0.1:514". It does not connect until the first alert.
func NewSyslog(address, facility, app string) (*Syslog, error) {
	u, err := url.Parse(address)
	if err != nil {
		return nil, fmt.Errorf("syslog address %q: %w", address, err)
	}
	fac, ok := facilities[facility]
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
	s.Hostname, _ = os.Hostname()
	return s, nil
}

var syslogSev = map[Severity]int{Critical: 2, High: 3, Medium: 4, Low: 5, Info: 6}

// Format returns the RFC 5424 message for an alert.
func (s *Syslog) Format(a Alert, repeated bool, now time.Time) string {
	pri := s.Facility*8 + syslogSev[a.Severity]
	host := s.Hostname
	if host == "" {
		host = "-"
	}
	tech := "-"
	if a.Technique != nil {
		tech = a.Technique.ID
	}
	msgID := "ALERT"
	if repeated {
		msgID = "ALERT_SEEN"
	}
	sd := fmt.Sprintf(`[plcwatch@32473 id="%s" device="%s" severity="%s" category="%s" technique="%s" attack="%s" snapshot="%s"]`,
		sdEscape(a.ID), sdEscape(a.Device), a.Severity, sdEscape(a.Category), sdEscape(tech), sdEscape(a.AttackVersion), sdEscape(a.Snapshot))
	return fmt.Sprintf("<%d>1 %s %s %s %d %s %s %s", pri, now.UTC().Format(time.RFC3339Nano), host, s.AppName, os.Getpid(), msgID, sd, a.Title)
}

func sdEscape(s string) string {
	return strings.NewReplacer(`\`, `\\`, `"`, `\"`, `]`, `\]`).Replace(s)
}

// Notify implements Sink.
func (s *Syslog) Notify(a Alert, repeated bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conn == nil {
		c, err := net.Dial(s.Network, s.Address)
		if err != nil {
			return fmt.Errorf("syslog %s %s: %w", s.Network, s.Address, err)
		}
		s.conn = c
	}
	if _, err := s.conn.Write([]byte(s.Format(a, repeated, time.Now()))); err != nil {
		s.conn.Close()
		s.conn = nil
		return fmt.Errorf("syslog %s %s: %w", s.Network, s.Address, err)
	}
	return nil
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

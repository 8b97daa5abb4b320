package store

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/plcwatch/plcwatch/snapshots"
)

// MinPrefix is the shortest snapshot id prefix a reference may use.
const MinPrefix = 6

// maxName bounds device names and labels in references and records.
const maxName = 255

// RefKind says what a snapshot reference names.
type RefKind int

// The reference kinds.
const (
	// RefID names a snapshot by id, unique id prefix or full digest.
	RefID RefKind = iota + 1
	// RefLatest names a device's newest snapshot ("DEVICE@latest").
	RefLatest
	// RefBaseline names a device's approved baseline ("DEVICE@baseline").
	RefBaseline
	// RefLabel names a device's newest snapshot with a label ("DEVICE@LABEL").
	RefLabel
)

// Ref is a parsed snapshot reference.
type Ref struct {
	Kind RefKind
	// ID is the lower-case hex id, prefix or digest (RefID).
	ID string
	// Device is the device of RefLatest, RefBaseline and RefLabel.
	Device string
	// Label is the label of RefLabel.
	Label string
}

// String returns the reference in the form ParseRef reads.
func (r Ref) String() string {
	switch r.Kind {
	case RefID:
		return r.ID
	case RefLatest:
		return r.Device + "@latest"
	case RefBaseline:
		return r.Device + "@baseline"
	case RefLabel:
		return r.Device + "@" + r.Label
	}
	return ""
}

// ParseRef parses a snapshot reference: an id (MinPrefix to 64 hex digits:
// a prefix of the id or of the digest), "DEVICE@latest", "DEVICE@baseline"
// or "DEVICE@LABEL". The device is everything before the first '@'.
func ParseRef(s string) (Ref, error) {
	const want = "want an id (6 to 64 hex digits), DEVICE@latest, DEVICE@baseline or DEVICE@LABEL"
	dev, rest, found := strings.Cut(s, "@")
	if !found {
		id := strings.ToLower(s)
		if len(id) < MinPrefix || len(id) > 64 || !isHex(id) {
			return Ref{}, fmt.Errorf("snapshot reference %q: %s", s, want)
		}
		return Ref{Kind: RefID, ID: id}, nil
	}
	if err := ValidDevice(dev); err != nil {
		return Ref{}, fmt.Errorf("snapshot reference %q: %w; %s", s, err, want)
	}
	switch rest {
	case "":
		return Ref{}, fmt.Errorf("snapshot reference %q: nothing after '@'; %s", s, want)
	case "latest":
		return Ref{Kind: RefLatest, Device: dev}, nil
	case "baseline":
		return Ref{Kind: RefBaseline, Device: dev}, nil
	}
	if err := validText("label", rest); err != nil {
		return Ref{}, fmt.Errorf("snapshot reference %q: %w", s, err)
	}
	return Ref{Kind: RefLabel, Device: dev, Label: rest}, nil
}

// ValidDevice returns an error unless name can name a device in the store:
// 1 to 255 bytes of UTF-8 without '@', spaces or control characters.
func ValidDevice(name string) error {
	if err := validText("device name", name); err != nil {
		return err
	}
	if i := strings.IndexFunc(name, func(r rune) bool { return r == '@' || unicode.IsSpace(r) }); i >= 0 {
		return fmt.Errorf("device name %q: contains %q at byte %d, want no '@' or spaces", name, name[i], i)
	}
	return nil
}

func validText(what, s string) error {
	if s == "" {
		return fmt.Errorf("%s is empty", what)
	}
	if len(s) > maxName {
		return fmt.Errorf("%s is %d bytes long, want at most %d", what, len(s), maxName)
	}
	if !utf8.ValidString(s) {
		return fmt.Errorf("%s %q is not valid UTF-8", what, s)
	}
	if i := strings.IndexFunc(s, unicode.IsControl); i >= 0 {
		return fmt.Errorf("%s %q: control character at byte %d", what, s, i)
	}
	return nil
}

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// idOf returns the snapshot id part of a hex reference.
func idOf(hexRef string) string {
	if len(hexRef) > snapshots.IDLength {
		return hexRef[:snapshots.IDLength]
	}
	return hexRef
}

package opcua

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash"
	"reflect"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gopcua/opcua/ua"

	"github.com/plcwatch/plcwatch/snapshots"
)

// maxArray bounds the elements of an array value that are recorded; the
// rest are summarised by their count and the SHA-256 of every element, so
// that one huge array cannot bloat a snapshot while growth, or a change of
// any element, is still a change.
const maxArray = 1000

// canonical turns a value read from a server into a snapshot value. ok is
// false, with a reason, for values whose content cannot be observed (a
// structure of a type gopcua cannot decode).
func canonical(v *ua.Variant, unit string) (val snapshots.Value, ok bool, reason string) {
	if v == nil || v.Value() == nil {
		return nullValue, true, ""
	}
	val, ok, reason = scalar(v.Value(), unit, 0)
	if ok {
		val = summarised(val)
	}
	return val, ok, reason
}

// maxValueText bounds the canonical text of one value that is recorded as
// it is (a String, a ByteString in hex, an array); a longer one is
// recorded as its length and SHA-256, so that one huge value (a trend
// buffer, a file in a ByteString) cannot bloat every snapshot of the
// store while a change of any byte is still a change.
const maxValueText = 64 << 10

// summarised returns v, or for a value whose text exceeds maxValueText its
// summary "(N bytes, sha256 HEX)" as a string (bytes of a ByteString, or
// of the value's canonical text).
func summarised(v snapshots.Value) snapshots.Value {
	if len(v.Raw) <= maxValueText {
		return v
	}
	var n int
	var sum [32]byte
	what := "bytes"
	if b, err := hex.DecodeString(v.Raw); v.Type == snapshots.TypeBytes && err == nil {
		n, sum = len(b), sha256.Sum256(b)
	} else {
		n, sum = len(v.Raw), sha256.Sum256([]byte(v.Raw))
		what = "bytes of text"
	}
	return withUnit(snapshots.String(fmt.Sprintf("(%d %s, sha256 %x)", n, what, sum)), v.Unit)
}

// nullValue is an empty (null) Variant as the server sent it: a value in
// its own right, distinct from every number and from "not captured". A
// variable whose whole value is empty is recorded with it and marked not
// observable (ReasonEmptyValue); an empty element of an array is part of
// the array's value.
var nullValue = snapshots.Value{Type: snapshots.TypeString, Raw: "(null)"}

// ReasonEmptyValue is the provenance reason of a variable whose Value the
// server answered Good but empty (a Null Variant, OPC UA Part 6 §5.2.2.16).
const ReasonEmptyValue = "the server answered Good with an empty value (a Null Variant)"

// text records a string as the server sent it: valid UTF-8 as text, any
// other bytes as hex (TypeBytes), so that no byte is ever replaced and a
// change of any byte is a change (OPC UA Part 6 §5.2.2.4 says String is
// UTF-8; servers bridging PLCs often pass code-page bytes through).
func text(s, unit string) snapshots.Value {
	if !utf8.ValidString(s) {
		return withUnit(snapshots.Bytes([]byte(s)), unit)
	}
	return withUnit(snapshots.String(s), unit)
}

// localized renders a LocalizedText with its locale: "text" without a
// locale, "[de-DE] text" with one. A text without a locale that itself
// starts with '[' is written "[] [..." so that the two forms never meet.
func localized(t *ua.LocalizedText, unit string) snapshots.Value {
	s := t.Text
	switch {
	case t.Locale != "":
		s = "[" + strings.ReplaceAll(t.Locale, "]", "%5D") + "] " + t.Text
	case strings.HasPrefix(t.Text, "["):
		s = "[] " + t.Text
	}
	return text(s, unit)
}

func scalar(x any, unit string, depth int) (snapshots.Value, bool, string) {
	if depth > 8 {
		return snapshots.Value{}, false, "value nested more than 8 levels deep"
	}
	switch t := x.(type) {
	case nil:
		return nullValue, true, ""
	case bool:
		return snapshots.Bool(t), true, ""
	case int8:
		return snapshots.Int(int64(t), unit), true, ""
	case int16:
		return snapshots.Int(int64(t), unit), true, ""
	case int32:
		return snapshots.Int(int64(t), unit), true, ""
	case int64:
		return snapshots.Int(t, unit), true, ""
	case uint8:
		return snapshots.Uint(uint64(t), unit), true, ""
	case uint16:
		return snapshots.Uint(uint64(t), unit), true, ""
	case uint32:
		return snapshots.Uint(uint64(t), unit), true, ""
	case uint64:
		return snapshots.Uint(t, unit), true, ""
	case float32:
		return snapshots.Float32(t, unit), true, ""
	case float64:
		if float64(float32(t)) == t {
			// A Float sent as a Double (a gateway that widens a PLC's
			// REAL, or one that sends Float before a restart and Double
			// after): the same value, so the same text ("0.3", never
			// "0.30000001192092896").
			return snapshots.Float32(float32(t), unit), true, ""
		}
		return snapshots.Float(t, unit), true, ""
	case string:
		return text(t, unit), true, ""
	case time.Time:
		return snapshots.Time(t), true, ""
	case []byte:
		return snapshots.Bytes(t), true, ""
	case ua.ByteArray:
		return snapshots.Bytes(t), true, ""
	case ua.XMLElement:
		return text(string(t), ""), true, ""
	case *ua.XMLElement:
		if t == nil {
			return nullValue, true, ""
		}
		return text(string(*t), ""), true, ""
	case *ua.GUID:
		if t == nil {
			return nullValue, true, ""
		}
		return snapshots.String(strings.ToLower(t.String())), true, ""
	case *ua.NodeID:
		return snapshots.String(t.String()), true, ""
	case *ua.ExpandedNodeID:
		if t == nil {
			return nullValue, true, ""
		}
		return snapshots.String(expandedString(t)), true, ""
	case ua.StatusCode:
		return snapshots.String(statusName(t)), true, ""
	case *ua.QualifiedName:
		if t == nil {
			return nullValue, true, ""
		}
		return snapshots.String(fmt.Sprintf("%d:%s", t.NamespaceIndex, t.Name)), true, ""
	case *ua.LocalizedText:
		if t == nil {
			return nullValue, true, ""
		}
		return localized(t, unit), true, ""
	case *ua.ExtensionObject:
		return extension(t)
	case *ua.DataValue:
		if t == nil || t.Value == nil {
			return nullValue, true, ""
		}
		return scalar(t.Value.Value(), unit, depth+1)
	case *ua.Variant:
		if t == nil {
			return nullValue, true, ""
		}
		return scalar(t.Value(), unit, depth+1)
	case *ua.DiagnosticInfo:
		return snapshots.Value{}, false, "a DiagnosticInfo is not a configuration value"
	}
	rv := reflect.ValueOf(x)
	if rv.Kind() != reflect.Slice && rv.Kind() != reflect.Array {
		return snapshots.Value{}, false, fmt.Sprintf("values of Go type %T are not recorded", x)
	}
	var a arrayText
	for i := 0; i < rv.Len(); i++ {
		if why := a.add(rv.Index(i).Interface(), depth+1); why != "" {
			return snapshots.Value{}, false, why
		}
	}
	return a.value(unit), true, ""
}

// arrayText builds an array's canonical text one element at a time, so
// that an array read in parts (IndexRange) gets the same text as one read
// whole: the first maxArray elements, then, for a longer array, the count
// and the SHA-256 of every element, so that growth or a change of any
// element is a change while memory stays bounded.
type arrayText struct {
	n     int
	parts []string
	sum   hash.Hash
}

// add appends one element; it returns why the element cannot be
// recorded, or "".
func (a *arrayText) add(x any, depth int) string {
	e, ok, why := scalar(x, "", depth)
	if !ok {
		return fmt.Sprintf("element %d: %s", a.n, why)
	}
	p := elementText(e)
	if a.n < maxArray {
		a.parts = append(a.parts, p)
	}
	if a.sum == nil {
		a.sum = sha256.New()
	}
	fmt.Fprintf(a.sum, "%d:%s\n", len(p), p)
	a.n++
	return ""
}

func (a *arrayText) value(unit string) snapshots.Value {
	parts := a.parts
	if a.n > maxArray {
		parts = append(parts[:len(parts):len(parts)], fmt.Sprintf("… %d elements in all, sha256 %x", a.n, a.sum.Sum(nil)))
	}
	return withUnit(snapshots.String("["+strings.Join(parts, ", ")+"]"), unit)
}

// elementText is an array element as the array's text shows it.
func elementText(e snapshots.Value) string {
	if e == nullValue {
		return "null"
	}
	switch e.Type {
	case snapshots.TypeString, snapshots.TypeText:
		return strconv.Quote(e.Raw)
	case snapshots.TypeBytes:
		return "0x" + e.Raw
	case snapshots.TypeNone:
		return "null"
	}
	return e.Raw
}

func withUnit(v snapshots.Value, unit string) snapshots.Value {
	v.Unit = unit
	return v
}

// extension records structures gopcua can decode as canonical JSON of their
// fields, and the common ones (units, ranges) in short form.
func extension(e *ua.ExtensionObject) (snapshots.Value, bool, string) {
	if e == nil || e.EncodingMask == ua.ExtensionObjectEmpty {
		return nullValue, true, ""
	}
	switch v := e.Value.(type) {
	case nil:
		tid := "unknown type"
		if e.TypeID != nil {
			tid = expandedString(e.TypeID)
		}
		return snapshots.Value{}, false, fmt.Sprintf("structure of type %s cannot be decoded", tid)
	case *ua.EUInformation:
		return snapshots.String(unitText(v)), true, ""
	case *ua.Range:
		return snapshots.String(fmt.Sprintf("%s..%s", snapshots.Float(v.Low, "").Raw, snapshots.Float(v.High, "").Raw)), true, ""
	case *ua.XMLElement:
		if v == nil {
			return nullValue, true, ""
		}
		return snapshots.String(string(*v)), true, ""
	}
	b, err := json.Marshal(e.Value)
	if err != nil {
		return snapshots.Value{}, false, fmt.Sprintf("structure %T cannot be encoded: %v", e.Value, err)
	}
	return snapshots.String(string(b)), true, ""
}

func unitText(u *ua.EUInformation) string {
	if u == nil {
		return ""
	}
	if u.DisplayName != nil && u.DisplayName.Text != "" {
		return u.DisplayName.Text
	}
	if u.Description != nil {
		return u.Description.Text
	}
	return ""
}

func expandedString(e *ua.ExpandedNodeID) string {
	s := e.NodeID.String()
	if e.NamespaceURI != "" {
		s = "nsu=" + e.NamespaceURI + ";" + stripNS(s)
	}
	if e.ServerIndex != 0 {
		s = fmt.Sprintf("svr=%d;%s", e.ServerIndex, s)
	}
	return s
}

func stripNS(s string) string {
	if strings.HasPrefix(s, "ns=") {
		if _, rest, ok := strings.Cut(s, ";"); ok {
			return rest
		}
	}
	return s
}

// stableID renders a node id with its namespace URI instead of its index,
// which a server may renumber on restart.
func stableID(nid *ua.NodeID, uris []string) string {
	if nid == nil {
		return ""
	}
	ns := int(nid.Namespace())
	if ns == 0 || ns >= len(uris) || uris[ns] == "" {
		return nid.String()
	}
	return "nsu=" + uris[ns] + ";" + stripNS(nid.String())
}

// dataTypeName names a DataType attribute value: the standard name for
// namespace 0 types ("Double"), else the type's stable node id.
func dataTypeName(v *ua.Variant, uris []string) string {
	if v == nil {
		return ""
	}
	var nid *ua.NodeID
	switch t := v.Value().(type) {
	case *ua.NodeID:
		nid = t
	case *ua.ExpandedNodeID:
		if t != nil {
			nid = t.NodeID
		}
	}
	if nid == nil {
		return ""
	}
	if nid.Namespace() == 0 && nid.Type() != ua.NodeIDTypeString && nid.Type() != ua.NodeIDTypeGUID && nid.Type() != ua.NodeIDTypeByteString {
		if n := typeName(nid.IntID()); n != "" {
			return n
		}
	}
	return stableID(nid, uris)
}

var accessFlags = []struct {
	bit  ua.AccessLevelType
	name string
}{
	{ua.AccessLevelTypeCurrentRead, "read"},
	{ua.AccessLevelTypeCurrentWrite, "write"},
	{ua.AccessLevelTypeHistoryRead, "history_read"},
	{ua.AccessLevelTypeHistoryWrite, "history_write"},
	{ua.AccessLevelTypeSemanticChange, "semantic_change"},
	{ua.AccessLevelTypeStatusWrite, "status_write"},
	{ua.AccessLevelTypeTimestampWrite, "timestamp_write"},
}

// accessString renders an AccessLevel byte as "read+write".
func accessString(a byte) string {
	var parts []string
	for _, f := range accessFlags {
		if a&byte(f.bit) != 0 {
			parts = append(parts, f.name)
		}
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, "+")
}

// accessLevel extracts an AccessLevel attribute value (a Byte; some servers
// send other integer types).
func accessLevel(v *ua.Variant) (byte, bool) {
	if v == nil {
		return 0, false
	}
	switch t := v.Value().(type) {
	case uint8:
		return t, true
	case int8:
		return byte(t), true
	case uint16:
		return byte(t), true
	case int16:
		return byte(t), true
	case uint32:
		return byte(t), true
	case int32:
		return byte(t), true
	}
	return 0, false
}

// statusName renders a status code as its symbolic name
// ("StatusBadUserAccessDenied" becomes "BadUserAccessDenied").
func statusName(s ua.StatusCode) string {
	if s == ua.StatusOK {
		return "Good"
	}
	if d, ok := ua.StatusCodes[s]; ok && d.Name != "" {
		return strings.TrimPrefix(d.Name, "Status")
	}
	return fmt.Sprintf("0x%08X", uint32(s))
}

// stableValue records the values that refer to a namespace (a NodeId, an
// ExpandedNodeId, a QualifiedName) by the namespace's URI rather than its
// index, which a server may renumber on restart; ok is false for any other
// value, which canonical records.
func stableValue(v *ua.Variant, uris []string) (snapshots.Value, bool) {
	if v == nil {
		return snapshots.Value{}, false
	}
	switch t := v.Value().(type) {
	case *ua.NodeID:
		if t != nil {
			return text(stableID(t, uris), ""), true
		}
	case *ua.ExpandedNodeID:
		if t != nil && t.NodeID != nil && t.NamespaceURI == "" && t.ServerIndex == 0 {
			return text(stableID(t.NodeID, uris), ""), true
		}
	case *ua.QualifiedName:
		if t != nil && t.NamespaceIndex != 0 && int(t.NamespaceIndex) < len(uris) && uris[t.NamespaceIndex] != "" {
			return text("nsu="+uris[t.NamespaceIndex]+";"+t.Name, ""), true
		}
	}
	return snapshots.Value{}, false
}

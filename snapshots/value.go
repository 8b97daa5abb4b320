package snapshots

import (
	"encoding/hex"
	"math"
	"strconv"
	"strings"
	"time"
)

// Float returns a float value in canonical form. NaN and infinities are
// written as "NaN", "+Inf" and "-Inf".
func Float(v float64, unit string) Value {
	switch {
	case math.IsNaN(v):
		return Value{Type: TypeFloat, Raw: "NaN", Unit: unit}
	case math.IsInf(v, 1):
		return Value{Type: TypeFloat, Raw: "+Inf", Unit: unit}
	case math.IsInf(v, -1):
		return Value{Type: TypeFloat, Raw: "-Inf", Unit: unit}
	}
	return Value{Type: TypeFloat, Raw: strconv.FormatFloat(v, 'g', -1, 64), Unit: unit}
}

// Float32 returns a float value for a 32-bit float, formatted with the
// shortest text that reads back as the same float32 (so 0.1f is "0.1").
func Float32(v float32, unit string) Value {
	f := float64(v)
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return Float(f, unit)
	}
	return Value{Type: TypeFloat, Raw: strconv.FormatFloat(f, 'g', -1, 32), Unit: unit}
}

// Int returns a signed integer value.
func Int(v int64, unit string) Value {
	return Value{Type: TypeInt, Raw: strconv.FormatInt(v, 10), Unit: unit}
}

// Uint returns an unsigned integer value.
func Uint(v uint64, unit string) Value {
	return Value{Type: TypeUint, Raw: strconv.FormatUint(v, 10), Unit: unit}
}

// Bool returns a boolean value.
func Bool(v bool) Value { return Value{Type: TypeBool, Raw: strconv.FormatBool(v)} }

// String returns a short text value. Text with a newline, or longer than
// 200 bytes, becomes TypeText so that diffs show it line by line.
func String(v string) Value {
	if len(v) > 200 || strings.Contains(v, "\n") {
		return Value{Type: TypeText, Raw: v}
	}
	return Value{Type: TypeString, Raw: v}
}

// Bytes returns a byte-string value in lower-case hex.
func Bytes(v []byte) Value { return Value{Type: TypeBytes, Raw: hex.EncodeToString(v)} }

// Time returns a time value in UTC with nanoseconds.
func Time(t time.Time) Value { return Value{Type: TypeTime, Raw: t.UTC().Format(time.RFC3339Nano)} }

// None is the value of items whose value is not captured.
func None() Value { return Value{Type: TypeNone} }

// Number returns the value as a float64 when it is numeric.
func (v Value) Number() (float64, bool) {
	switch v.Type {
	case TypeInt, TypeUint, TypeFloat:
		f, err := strconv.ParseFloat(v.Raw, 64)
		if err != nil && !strings.Contains(err.Error(), "range") {
			return 0, false
		}
		return f, true
	}
	return 0, false
}

// String renders the value for people: the raw text plus its unit.
func (v Value) String() string {
	switch v.Type {
	case TypeNone:
		return "(not captured)"
	case TypeString:
		return strconv.Quote(v.Raw)
	}
	if v.Unit != "" {
		return v.Raw + " " + v.Unit
	}
	return v.Raw
}

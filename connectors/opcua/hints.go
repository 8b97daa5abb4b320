package opcua

import (
	"strconv"
	"strings"
	"sync"
	"unicode"

	"github.com/gopcua/opcua/ua"

	"github.com/plcwatch/plcwatch/snapshots"
)

// enumNames holds the standard enumerations of namespace 0 whose values
// plcwatch records by name, keyed by the DataType's name (OPC UA Part 5
// §12.6 ServerState, Part 3 §8.29 NodeClass, Part 4 §7.20
// MessageSecurityMode, Part 5 §12.5 RedundancySupport, Part 4 §7.42
// UserTokenType).
var enumNames = sync.OnceValue(func() map[string]map[int64]string {
	return map[string]map[int64]string{
		"ServerState":         {0: "Running", 1: "Failed", 2: "NoConfiguration", 3: "Suspended", 4: "Shutdown", 5: "Test", 6: "CommunicationFault", 7: "Unknown"},
		"NodeClass":           {0: "Unspecified", 1: "Object", 2: "Variable", 4: "Method", 8: "ObjectType", 16: "VariableType", 32: "ReferenceType", 64: "DataType", 128: "View"},
		"MessageSecurityMode": {0: "Invalid", 1: "None", 2: "Sign", 3: "SignAndEncrypt"},
		"RedundancySupport":   {0: "None", 1: "Cold", 2: "Warm", 3: "Hot", 4: "Transparent", 5: "HotAndMirrored"},
		"UserTokenType":       {0: "Anonymous", 1: "UserName", 2: "Certificate", 3: "IssuedToken"},
	}
})

// enumName names v when dataType is an enumeration plcwatch knows and v
// one of its values ("Running" for ServerState 0). The number stays the
// recorded, compared value; the name goes into snapshots.AttrValueName for
// reports. ok is false for any other type or value.
func enumName(dataType string, v snapshots.Value) (string, bool) {
	names, known := enumNames()[dataType]
	if !known || v.Type != snapshots.TypeInt && v.Type != snapshots.TypeUint {
		return "", false
	}
	n, err := strconv.ParseInt(v.Raw, 10, 64)
	if err != nil {
		return "", false
	}
	name, ok := names[n]
	return name, ok
}

// codeWords are the words that make a read-only variable's name say it
// identifies code: its value moves exactly when logic is downloaded.
var codeWords = sync.OnceValue(func() map[string]bool {
	return map[string]bool{"hash": true, "checksum": true, "crc": true, "crc16": true, "crc32": true,
		"signature": true, "fingerprint": true, "digest": true, "sha1": true, "sha256": true, "md5": true}
})

// codeOwners are the words that, followed by "version" or "revision",
// name the version of code ("ProgramVersion", "POU_Version").
var codeOwners = sync.OnceValue(func() map[string]bool {
	return map[string]bool{"program": true, "pou": true, "code": true, "logic": true, "project": true,
		"application": true, "routine": true, "block": true, "fb": true, "fc": true, "ob": true}
})

// liveWords mark counters and diagnostics that merely mention a code word
// ("CrcErrorCount"): live values, not code identity.
var liveWords = sync.OnceValue(func() map[string]bool {
	return map[string]bool{"error": true, "errors": true, "count": true, "counter": true, "fail": true,
		"failed": true, "failures": true, "rate": true, "time": true, "timestamp": true, "status": true}
})

// isCodeIdentity reports whether a variable's browse name, or its name
// within its parent's ("Programs/Main/Version"), says that it identifies
// code: a hash, checksum, CRC or signature, or the version of a program or
// POU. parent is the parent's browse name.
func isCodeIdentity(name, parent string) bool {
	words := splitWords(name)
	code := false
	for i, w := range words {
		if liveWords()[w] {
			return false
		}
		if codeWords()[w] {
			code = true
		}
		if (w == "version" || w == "revision" || w == "rev" || w == "id") && i > 0 && codeOwners()[words[i-1]] {
			code = true
		}
	}
	if code {
		return true
	}
	if len(words) == 1 && (words[0] == "version" || words[0] == "revision") {
		for _, w := range splitWords(parent) {
			if codeOwners()[w] || w == "programs" {
				return true
			}
		}
	}
	return false
}

// splitWords splits a browse name into lower-case words at case changes,
// digits-to-letters, and any non-letter: "POU_Version" gives pou, version;
// "ProgramHash" gives program, hash; "CRC32" gives crc32.
func splitWords(s string) []string {
	var words []string
	var cur []rune
	flush := func() {
		if len(cur) > 0 {
			words = append(words, strings.ToLower(string(cur)))
			cur = cur[:0]
		}
	}
	rs := []rune(s)
	for i, r := range rs {
		switch {
		case unicode.IsLetter(r):
			if len(cur) > 0 && unicode.IsUpper(r) {
				prev := rs[i-1]
				nextLower := i+1 < len(rs) && unicode.IsLower(rs[i+1])
				if unicode.IsLower(prev) || unicode.IsDigit(prev) || (unicode.IsUpper(prev) && nextLower) {
					flush()
				}
			} else if len(cur) > 0 && unicode.IsDigit(cur[len(cur)-1]) {
				flush()
			}
			cur = append(cur, r)
		case unicode.IsDigit(r):
			cur = append(cur, r)
		default:
			flush()
		}
	}
	flush()
	return words
}

// severity classes of a StatusCode (Part 4 §7.39: the top two bits).
func statusGood(s ua.StatusCode) bool { return uint32(s)&0xC0000000 == 0 }

package s7

import (
	"encoding/binary"
	"fmt"
	"strings"
	"unicode/utf16"
	"unicode/utf8"

	"golang.org/x/text/encoding/charmap"
)

// This file decodes S7 text as the controller means it. STEP 7 and TIA
// Portal store CHAR and STRING as single bytes of the Windows-1252 code
// page; WCHAR and WSTRING (S7-1200/1500) as UTF-16 big-endian code units.

// cp1252Rune maps one Windows-1252 byte to its character. The five bytes
// the code page leaves undefined (0x81, 0x8D, 0x8F, 0x90, 0x9D) map to the
// C1 control characters of the same number, as Windows itself does, so the
// mapping is one to one: every byte change is a change of the text.
func cp1252Rune(b byte) rune {
	if r := charmap.Windows1252.DecodeByte(b); r != utf8.RuneError {
		return r
	}
	return rune(b)
}

// decodeCP1252 decodes Windows-1252 bytes losslessly (see cp1252Rune).
func decodeCP1252(b []byte) string {
	var sb strings.Builder
	sb.Grow(len(b))
	for _, c := range b {
		sb.WriteRune(cp1252Rune(c))
	}
	return sb.String()
}

// encodeCP1252 is the inverse of decodeCP1252; ok is false for text with a
// character the code page has no byte for.
func encodeCP1252(s string) (b []byte, ok bool) {
	for _, r := range s {
		if r < 0x100 && cp1252Rune(byte(r)) == r {
			b = append(b, byte(r))
			continue
		}
		c, found := charmap.Windows1252.EncodeRune(r)
		if !found {
			return nil, false
		}
		b = append(b, c)
	}
	return b, true
}

// TextError says why bytes read for a STRING, WSTRING, CHAR or WCHAR are
// not a value the controller could hold.
type TextError struct {
	Type   string
	Reason string
}

// Error says which type could not be read and why.
func (e *TextError) Error() string { return fmt.Sprintf("%s: %s", e.Type, e.Reason) }

// decodeString decodes an S7 STRING read with maxLen declared: maximum
// length (1 byte), current length (1 byte), then maxLen character bytes.
// A current length beyond the maximum the CPU holds, or beyond the length
// declared in the configuration, is an error: the bytes are not a STRING,
// and no value is made up from them.
func decodeString(b []byte, maxLen int) (string, error) {
	if len(b) < 2 {
		return "", &TextError{"STRING", fmt.Sprintf("%d bytes read: want at least the 2-byte header", len(b))}
	}
	max, cur := int(b[0]), int(b[1])
	switch {
	case cur > max:
		return "", &TextError{"STRING", fmt.Sprintf("current length %d exceeds its maximum length %d", cur, max)}
	case cur > maxLen || cur > len(b)-2:
		return "", &TextError{"STRING", fmt.Sprintf("current length %d exceeds the declared length %d", cur, maxLen)}
	}
	return decodeCP1252(b[2 : 2+cur]), nil
}

// decodeWString decodes an S7 WSTRING read with maxLen declared: maximum
// length (2 bytes), current length (2 bytes), both in characters, then
// maxLen UTF-16BE code units. The same length rules as for STRING apply; a
// lone surrogate is an error rather than a replacement character, so that
// no two contents decode to the same text.
func decodeWString(b []byte, maxLen int) (string, error) {
	if len(b) < 4 {
		return "", &TextError{"WSTRING", fmt.Sprintf("%d bytes read: want at least the 4-byte header", len(b))}
	}
	max, cur := int(binary.BigEndian.Uint16(b)), int(binary.BigEndian.Uint16(b[2:]))
	switch {
	case cur > max:
		return "", &TextError{"WSTRING", fmt.Sprintf("current length %d exceeds its maximum length %d", cur, max)}
	case cur > maxLen || 2*cur > len(b)-4:
		return "", &TextError{"WSTRING", fmt.Sprintf("current length %d exceeds the declared length %d", cur, maxLen)}
	}
	return decodeUTF16BE("WSTRING", b[4:4+2*cur])
}

// decodeUTF16BE decodes UTF-16BE code units, refusing lone surrogates.
func decodeUTF16BE(typ string, b []byte) (string, error) {
	u := make([]uint16, len(b)/2)
	for i := range u {
		u[i] = binary.BigEndian.Uint16(b[2*i:])
	}
	for i := 0; i < len(u); i++ {
		switch {
		case u[i] >= 0xD800 && u[i] < 0xDC00 && i+1 < len(u) && u[i+1] >= 0xDC00 && u[i+1] < 0xE000:
			i++
		case u[i] >= 0xD800 && u[i] < 0xE000:
			return "", &TextError{typ, fmt.Sprintf("character %d is a lone UTF-16 surrogate 0x%04X", i+1, u[i])}
		}
	}
	return string(utf16.Decode(u)), nil
}
